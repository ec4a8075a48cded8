//! The state every handler gets: the use cases, behind one pointer.

use std::sync::Arc;

use crate::service::Service;

/// The shared state of every handler: the use cases behind one reference-counted pointer, so
/// that handing it to a request costs one atomic increment. Handlers reach the service through
/// its methods only (`state.service().create_token(...)`).
#[derive(Clone)]
pub struct AppState(Arc<Service>);

impl AppState {
    pub fn new(service: Service) -> Self {
        Self(Arc::new(service))
    }

    pub fn service(&self) -> &Service {
        &self.0
    }
}
