//! Health checks for load balancers: live (the process answers) and ready (the database answers).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::state::AppState;
use crate::error::Result;

pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>> {
    state.service().ready().await?;
    Ok(Json(json!({ "status": "ok" })))
}
