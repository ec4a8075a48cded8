//! The metrics listener's router (`GET /metrics`, the Prometheus text exposition, and nothing
//! else), and the layer that counts the public router's requests.
//!
//! The exposition is served on its own address (`METRICS_ADDR`), never by the public router: it
//! tells who may read it how the service is used, and it is for the operator's Prometheus only.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Request, Response};
use axum::response::IntoResponse;
use axum::routing::get;
use tower::{Layer, Service};

use crate::error::{ApiError, Error};
use crate::metrics::{self, HttpMetrics, Metrics};

/// The metrics listener's router.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .fallback(not_found)
        .with_state(metrics)
}

async fn render(State(metrics): State<Arc<Metrics>>) -> Result<impl IntoResponse, ApiError> {
    let text = metrics
        .render()
        .map_err(|e| Error::internal("rendering the metrics", e))?;
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        text,
    ))
}

async fn not_found() -> ApiError {
    ApiError(Error::NotFound(
        "no such route: the metrics listener serves /metrics".to_owned(),
    ))
}

/// Counts every request of the wrapped router by route template, method and status, and its
/// latency: from when the request reaches the layer to when its response head is ready.
#[derive(Clone)]
pub struct CountRequests(pub Arc<HttpMetrics>);

impl<S> Layer<S> for CountRequests {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Arc<HttpMetrics>,
}

impl<S, B> Service<Request<Body>> for Counted<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = CountedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The template is shared (an `Arc<str>` clone), never the raw path.
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        CountedFuture {
            inner: self.inner.call(request),
            seen: Some(Seen {
                metrics: self.metrics.clone(),
                route,
                method,
                started: Instant::now(),
            }),
        }
    }
}

struct Seen {
    metrics: Arc<HttpMetrics>,
    route: Option<MatchedPath>,
    method: axum::http::Method,
    started: Instant,
}

pin_project_lite::pin_project! {
    pub struct CountedFuture<F> {
        #[pin]
        inner: F,
        seen: Option<Seen>,
    }
}

impl<F, B, E> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(seen)) = (&result, this.seen.take()) {
            seen.metrics.record(
                seen.route.as_ref().map(MatchedPath::as_str),
                seen.method.as_str(),
                response.status().as_u16(),
                seen.started.elapsed(),
            );
        }
        Poll::Ready(result)
    }
}
