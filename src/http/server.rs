//! The HTTP/1.1 server loop: accepts connections and serves the router on each, with a deadline
//! for reading a request's headers, so that a client sending them slowly (slowloris) or never
//! holds a connection only that long. (The per-request deadline is the router's timeout layer.)
//!
//! It stands in for `axum::serve`, which offers no header-read timeout, and keeps what that gives:
//! the peer address as `ConnectInfo`, and a graceful shutdown that stops accepting and lets
//! requests in flight finish.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How much longer than the request timeout finishing the requests in flight may take after a
/// shutdown signal.
const DRAIN_MARGIN: Duration = Duration::from_secs(5);
/// Largest request head (request line and headers) read; beyond it hyper answers 431.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves `service` (a router, or the public listener's `http::Public`) on `listener` until
/// `shutdown` completes.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
    request_timeout: Duration,
) -> std::io::Result<()>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let per_connection =
            TowerToHyperService::new(tower::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                service.clone().oneshot(request.map(axum::body::Body::new))
            }));
        let connection =
            graceful.watch(http.serve_connection(TokioIo::new(stream), per_connection));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let drain = request_timeout + DRAIN_MARGIN;
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {drain:?}; stopping anyway");
    }
    Ok(())
}
