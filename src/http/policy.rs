//! `/v1/access-tokens/policy`: the organization's policy, read by any member and replaced, as a
//! whole, by its admins.

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::json::Json;
use super::state::AppState;
use crate::error::Result;
use crate::tokens::Caller;
use crate::tokens::policy::PolicyBody;

/// `GET /v1/access-tokens/policy`: the policy in force (the defaults when none was set).
pub async fn get(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    let policy = state.service().policy(&caller).await?;
    Ok(axum::Json(&policy).into_response())
}

/// `PUT /v1/access-tokens/policy`: replaces the policy; 200 with the policy now in force.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<PolicyBody>,
) -> Result<Response> {
    let policy = state.service().set_policy(&caller, body).await?;
    Ok(axum::Json(&policy).into_response())
}
