//! Health checks for load balancers: live (the process answers) and ready (the database answers).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use crate::error::{Error, Result};

pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>> {
    state.store.ping().await.map_err(|error| {
        tracing::warn!(%error, "readiness check failed: the database does not answer");
        Error::Unavailable
    })?;
    Ok(Json(json!({ "status": "ok" })))
}
