//! The state every handler gets: the use cases, behind one pointer.

use std::sync::Arc;

use crate::service::Service;

/// The shared state of every handler: the use cases behind one reference-counted pointer, so
/// that handing it to a request costs one atomic increment.
#[derive(Clone)]
pub struct AppState(Arc<Service>);

impl AppState {
    pub fn new(service: Service) -> Self {
        Self(Arc::new(service))
    }
}

impl std::ops::Deref for AppState {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.0
    }
}
