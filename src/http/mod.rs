//! HTTP: the router, its layers, and the handlers of each resource.
//!
//! Every route is added through `Routes`, which records each operation; a test compares that
//! record with `openapi.yaml`, so the spec and the router cannot drift apart.

pub mod audit;
pub mod caller;
pub mod federation;
pub mod health;
pub mod introspect;
pub mod json;
pub mod leaks;
pub mod metrics;
pub mod pagination;
pub mod policy;
pub mod server;
pub mod state;
pub mod status_lists;
pub mod tokens;
pub mod ui;
pub mod webhooks;
pub mod well_known;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, State};
use axum::handler::Handler;
use axum::http::header::{
    ACCESS_CONTROL_EXPOSE_HEADERS, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, ETAG, LINK,
    ORIGIN, TRANSFER_ENCODING, VARY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use futures_util::TryFutureExt;
use futures_util::future::{Either, MapOk};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::{Level, Span};

use crate::error::{ApiError, Error, NotAFailure, error_response};
use crate::tokens::KeySetName;
pub use state::AppState;
use well_known::Document;

pub use json::MAX_BODY_BYTES;
/// The body limit of `POST /v1/access-tokens/revoke`: a thousand tokens of about 1.2 KB each,
/// with room for long names and roles.
pub const MAX_REPORT_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Request headers larger than this in total (names and values) are a 431 with the JSON body;
/// a request head beyond `server::MAX_HEAD_BYTES` is refused by hyper before it gets here.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// A request that takes longer is answered 408 and its work dropped.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// A client's `X-Request-Id` is kept (logged and echoed) only when it is at most this long and of
/// `[A-Za-z0-9._:-]`; anything else is replaced by a generated id.
const MAX_REQUEST_ID_CHARS: usize = 128;

/// The router under construction, with a record of every operation (method and path) it serves.
pub struct Routes {
    router: Router<AppState>,
    /// Routes whose bodies may be as large as [`MAX_REPORT_BODY_BYTES`] (a thousand tokens).
    large: Router<AppState>,
    operations: Vec<(Method, String)>,
}

impl Routes {
    fn add(mut self, method: Method, path: &str, route: MethodRouter<AppState>) -> Self {
        self.operations.push((method, path.to_owned()));
        self.router = self.router.route(path, route);
        self
    }

    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.add(Method::GET, path, routing::get(handler))
    }

    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.add(Method::POST, path, routing::post(handler))
    }

    fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.add(Method::DELETE, path, routing::delete(handler))
    }

    fn put<H: Handler<T, AppState>, T: 'static>(self, path: &str, handler: H) -> Self {
        self.add(Method::PUT, path, routing::put(handler))
    }

    /// A POST route whose body may be as large as [`MAX_REPORT_BODY_BYTES`].
    fn post_large<H: Handler<T, AppState>, T: 'static>(mut self, path: &str, handler: H) -> Self {
        self.operations.push((Method::POST, path.to_owned()));
        self.large = self.large.route(path, routing::post(handler));
        self
    }

    /// Every operation served, as (method, path template).
    pub fn operations(&self) -> &[(Method, String)] {
        &self.operations
    }
}

/// All routes of the service.
pub fn routes() -> Routes {
    let mut routes = Routes {
        router: Router::new(),
        large: Router::new(),
        operations: Vec::new(),
    }
    .post("/v1/access-tokens", tokens::create)
    .get("/v1/access-tokens", tokens::list)
    .get("/v1/access-tokens/self", tokens::get_self)
    .delete("/v1/access-tokens/self", tokens::revoke_self)
    .post("/v1/access-tokens/self/rotate", tokens::rotate_self)
    .get("/v1/access-tokens/{id}", tokens::get)
    .delete("/v1/access-tokens/{id}", tokens::revoke)
    .post("/v1/access-tokens/{id}/rotate", tokens::rotate)
    .post("/v1/access-tokens/{id}/suspend", tokens::suspend)
    .post("/v1/access-tokens/{id}/resume", tokens::resume)
    .post("/v1/access-tokens/introspect", introspect::introspect)
    .get("/v1/access-tokens/audit-events", audit::list)
    .post("/v1/access-tokens/identify", leaks::identify)
    .post("/v1/access-tokens/offboard", leaks::offboard)
    .post_large("/v1/access-tokens/revoke", leaks::revoke)
    .post_large("/v1/access-tokens/secret-scanning/github", leaks::github)
    .post("/v1/access-tokens/token", federation::exchange)
    .post(
        "/v1/access-tokens/federated-credentials",
        federation::create,
    )
    .get("/v1/access-tokens/federated-credentials", federation::list)
    .get(
        "/v1/access-tokens/federated-credentials/{id}",
        federation::get,
    )
    .delete(
        "/v1/access-tokens/federated-credentials/{id}",
        federation::delete,
    )
    .post("/v1/access-tokens/webhooks", webhooks::create)
    .get("/v1/access-tokens/webhooks", webhooks::list)
    .get("/v1/access-tokens/webhooks/{id}", webhooks::get)
    .delete("/v1/access-tokens/webhooks/{id}", webhooks::delete)
    .post(
        "/v1/access-tokens/webhooks/{id}/rotate-secret",
        webhooks::rotate_secret,
    )
    .get(
        "/v1/access-tokens/webhooks/{id}/deliveries",
        webhooks::deliveries,
    )
    .post(
        "/v1/access-tokens/webhooks/{id}/deliveries/{delivery}/redeliver",
        webhooks::redeliver,
    )
    .get("/v1/access-tokens/policy", policy::get)
    .put("/v1/access-tokens/policy", policy::put)
    .get("/openapi.yaml", openapi)
    .get("/health/live", health::live)
    .get("/health/ready", health::ready);
    for set in KeySetName::ALL {
        let base = format!("/v1/access-tokens{}/.well-known", set.path_prefix());
        routes = routes
            .get(
                &format!("{base}/jwks.json"),
                move |state: State<AppState>, headers: HeaderMap| {
                    well_known::serve(state, headers, set, Document::Jwks)
                },
            )
            .get(
                &format!("{base}/openid-configuration"),
                move |state: State<AppState>, headers: HeaderMap| {
                    well_known::serve(state, headers, set, Document::Discovery)
                },
            );
        if set.has_status_lists() {
            let base = format!("/v1/access-tokens{}/status-lists", set.path_prefix());
            routes = routes
                .get(&base, move |state: State<AppState>, headers: HeaderMap| {
                    status_lists::aggregation(state, headers, set)
                })
                .get(
                    &format!("{base}/{{list}}"),
                    move |state: State<AppState>, request: Request<Body>| {
                        status_lists::list(state, set, request)
                    },
                );
        }
    }
    routes
}

/// The service's router with its layers, ready to serve.
pub fn router(state: AppState) -> Router {
    // The allowed origins behind one pointer: the layers are cloned for every request, and a
    // list would be a vector copied each time.
    let origins: std::sync::Arc<[HeaderValue]> = state
        .service()
        .http_settings()
        .cors_allowed_origins
        .clone()
        .into();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origins.contains(origin)
        }))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            HeaderName::from_static(crate::service::authenticate::ORG_HEADER),
        ])
        .expose_headers(EXPOSED)
        .max_age(Duration::from_secs(600));
    // Outermost, so that it counts what the client got (a 408 or 413 of the layers included). In
    // this one stack, not a layer of its own: each `Router::layer` wraps every route once more,
    // which costs a clone of the stack per request.
    let counted = (state.service().http_settings().metrics_addr.is_some())
        .then(|| metrics::CountRequests(state.service().metrics().http.clone()));
    // The same stack over every route; only the body limit differs (see `Routes::post_large`).
    let layers = |body_limit: usize| {
        ServiceBuilder::new()
            .option_layer(counted.clone())
            // Marks credentials so that no debug output of the headers can show them.
            .layer(SetSensitiveRequestHeadersLayer::new([
                AUTHORIZATION,
                COOKIE,
            ]))
            // A plain function of the request: no future, no clone of the inner service.
            .map_request(drop_unusable_request_id)
            .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(|response: &Response, latency: Duration, span: &Span| {
                        span.record("status", response.status().as_u16());
                        span.record("latency_ms", latency.as_secs_f64() * 1000.0);
                        if response.status().is_server_error()
                            && response.extensions().get::<NotAFailure>().is_none()
                        {
                            tracing::warn!("request failed");
                        } else if span.metadata().is_some_and(|m| *m.level() == Level::INFO) {
                            tracing::info!("request finished");
                        } else {
                            tracing::debug!("request finished");
                        }
                    })
                    .on_failure(()),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(SetResponseHeaderLayer::overriding(
                X_CONTENT_TYPE_OPTIONS,
                NOSNIFF,
            ))
            // Both plain functions of the request or the response: no boxed future, no clone of the
            // inner service per request (axum's `middleware::map_*` makes both).
            .map_response(json_error_bodies)
            .layer(tower::layer::layer_fn(LimitHeaderBytes))
            .layer(cors.clone())
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                state.service().http_settings().request_timeout,
            ))
            .layer(RequestBodyLimitLayer::new(body_limit))
    };
    let Routes { router, large, .. } = routes();
    // Rendered once: the settings page's policy, with the portals that may frame it.
    let csp = HeaderValue::from_str(&ui::content_security_policy(
        &state.service().http_settings().ui_frame_ancestors,
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    router
        .fallback(not_found)
        .layer(layers(MAX_BODY_BYTES))
        .merge(
            large
                .layer(axum::extract::DefaultBodyLimit::max(MAX_REPORT_BODY_BYTES))
                .layer(layers(MAX_REPORT_BODY_BYTES)),
        )
        .merge(ui::router(csp).layer(layers(MAX_BODY_BYTES)))
        .with_state(state)
}

/// The public listener's service: the router with its layers, and ahead of it the `.well-known`
/// documents (JWKS and discovery), answered directly when none of the layers has anything to do
/// for the request.
///
/// Verifiers and gateways fetch those documents at machine rates, and the layer stack costs about
/// a third of such a request (bench/RESULTS.md, "Where a JWKS request's time goes"). A request
/// is answered here only when it is a plain `GET` of one of those paths: no `Origin` (CORS is the
/// stack's), no body, headers within `MAX_HEADER_BYTES`, and the request log at `info` or above
/// (a `debug` filter sees every request's span, as before). The answer is the handler's own,
/// with what the layers add to it: the request id, `nosniff`, CORS's `Vary` and exposed headers,
/// and the count in the metrics. A test holds both paths to the same answer; every other request goes to the router.
#[derive(Clone)]
pub struct Public {
    router: Router,
    state: AppState,
    counted: Option<std::sync::Arc<crate::metrics::HttpMetrics>>,
    /// [`EXPOSED`] as the CORS layer writes it on every answer.
    exposed: HeaderValue,
}

impl Public {
    pub fn new(state: AppState) -> Self {
        let counted = (state.service().http_settings().metrics_addr.is_some())
            .then(|| state.service().metrics().http.clone());
        let exposed = EXPOSED
            .iter()
            .map(HeaderName::as_str)
            .collect::<Vec<_>>()
            .join(",");
        Self {
            router: router(state.clone()),
            state,
            counted,
            exposed: HeaderValue::from_str(&exposed).unwrap_or(HeaderValue::from_static("")),
        }
    }

    /// The document answered directly, or `None` for the router.
    fn direct(&self, request: &Request<Body>) -> Option<Response> {
        if request.method() != Method::GET || tracing::enabled!(Level::DEBUG) {
            return None;
        }
        let (set, document) = well_known::document_at(request.uri().path())?;
        let headers = request.headers();
        let plain = !headers.contains_key(ORIGIN)
            && !headers.contains_key(CONTENT_LENGTH)
            && !headers.contains_key(TRANSFER_ENCODING)
            && header_bytes(headers) <= MAX_HEADER_BYTES;
        if !plain {
            return None;
        }
        let started = std::time::Instant::now();
        let mut response = well_known::respond(&self.state, headers, set, document);
        let id = usable_request_id(headers).cloned().or_else(|| {
            RandomRequestId
                .make_request_id(request)
                .map(RequestId::into_header_value)
        });
        let answer = response.headers_mut();
        if let Some(id) = id {
            answer.insert(REQUEST_ID, id);
        }
        answer.insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
        answer.insert(VARY, HeaderValue::from_static("origin"));
        answer.insert(ACCESS_CONTROL_EXPOSE_HEADERS, self.exposed.clone());
        if let Some(metrics) = &self.counted {
            metrics.record(
                Some(request.uri().path()),
                "GET",
                response.status().as_u16(),
                started.elapsed(),
            );
        }
        Some(response)
    }
}

/// The response headers a page of another origin may read (CORS). The layer writes them, and
/// `Vary: origin`, on every answer, with an `Origin` or without.
const EXPOSED: [HeaderName; 2] = [ETAG, LINK];

/// Every answer's `X-Content-Type-Options`: a browser never guesses another type than the one sent.
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

impl tower::Service<Request<Body>> for Public {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Either<
        std::future::Ready<Result<Response, std::convert::Infallible>>,
        axum::routing::future::RouteFuture<std::convert::Infallible>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::<Request<Body>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        match self.direct(&request) {
            Some(response) => Either::Left(std::future::ready(Ok(response))),
            None => Either::Right(tower::Service::call(&mut self.router, request)),
        }
    }
}

/// Routes called at machine rates by verifiers and load balancers, whose requests are logged at
/// DEBUG: the public documents, health checks and introspection. At the default `info` filter
/// their spans are disabled and cost nothing, which roughly doubles JWKS throughput. Management
/// requests, and any request answered with a 5xx, are always logged.
fn is_high_volume(route: &str) -> bool {
    route.contains("/.well-known/")
        || route.contains("/status-lists")
        || route.starts_with("/health/")
        || route == "/openapi.yaml"
        || route == "/v1/access-tokens/introspect"
}

/// One span per request: method, route template (never the raw URI), request id; status and
/// latency are recorded when the response is ready. No header is recorded.
fn request_span(request: &Request<Body>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if is_high_volume(route) {
        tracing::debug_span!(
            "request",
            method = %request.method(),
            route,
            request_id,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        )
    } else {
        // Management requests also name the caller's organization and the token they created,
        // revoked or rotated (recorded by the extractor and the handlers), in the same one line.
        tracing::info_span!(
            "request",
            method = %request.method(),
            route,
            request_id,
            org_id = tracing::field::Empty,
            token_id = tracing::field::Empty,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        )
    }
}

#[derive(Clone)]
struct RandomRequestId;

/// Request ids: a random prefix per process and a counter, so ids are unique across replicas and
/// restarts without a call to the random number generator on every request.
impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let prefix = PREFIX.get_or_init(|| {
            let mut bytes = [0u8; 8];
            // Without randomness the ids are still unique within the process.
            let _ = aws_lc_rs::rand::fill(&mut bytes);
            u64::from_le_bytes(bytes)
        });
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeaderValue::from_str(&format!("{prefix:016x}{n:08x}"))
            .ok()
            .map(RequestId::new)
    }
}

/// Removes a client's `X-Request-Id` unless it is one usable id (`is_usable_request_id`), so that
/// the next layer generates one: a client cannot put kilobytes, or characters that mean something
/// to a log reader, into every log line and response of its requests.
fn drop_unusable_request_id(mut request: Request<Body>) -> Request<Body> {
    if request.headers().contains_key(REQUEST_ID) && usable_request_id(request.headers()).is_none()
    {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

/// The client's `X-Request-Id` when it gave exactly one and it is usable.
fn usable_request_id(headers: &HeaderMap) -> Option<&HeaderValue> {
    let mut given = headers.get_all(REQUEST_ID).iter();
    match (given.next(), given.next()) {
        (Some(id), None) if is_usable_request_id(id.as_bytes()) => Some(id),
        _ => None,
    }
}

fn is_usable_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_CHARS
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Refuses requests whose headers are larger in total than `MAX_HEADER_BYTES` (431), before the
/// service it wraps sees them.
#[derive(Clone)]
struct LimitHeaderBytes<S>(S);

impl<S, B> tower::Service<Request<Body>> for LimitHeaderBytes<S>
where
    S: tower::Service<Request<Body>, Response = Response<B>>,
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<
        std::future::Ready<Result<Response, S::Error>>,
        MapOk<S::Future, fn(Response<B>) -> Response>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if header_bytes(request.headers()) > MAX_HEADER_BYTES {
            return Either::Left(std::future::ready(Ok(error_response(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                &format!("request headers are larger than {MAX_HEADER_BYTES} bytes"),
            ))));
        }
        Either::Right(
            self.0
                .call(request)
                .map_ok(|response| response.map(Body::new)),
        )
    }
}

/// The size of a request's headers, names and values, as `MAX_HEADER_BYTES` counts it.
fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

async fn not_found() -> ApiError {
    ApiError(Error::NotFound("no such route".to_owned()))
}

async fn openapi() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/yaml"))],
        include_str!("../../openapi.yaml"),
    )
}

/// Error responses written by the HTTP stack itself (405, 408, 413, ...) get the contract's JSON
/// body too; their headers (such as `Allow`) are kept.
fn json_error_bodies<B>(response: Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response.map(Body::new);
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("request body is larger than {MAX_BODY_BYTES} bytes")
        }
        StatusCode::REQUEST_TIMEOUT => "request took too long".to_owned(),
        other => other
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    };
    let (mut parts, _) = response.into_parts();
    let replacement = error_response(status, &message);
    parts.headers.remove(CONTENT_LENGTH);
    for (name, value) in replacement.headers() {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, replacement.into_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_short_and_plain() {
        for id in [
            "a",
            "req-1",
            "0f3c:abc.DEF_9",
            &"x".repeat(MAX_REQUEST_ID_CHARS),
        ] {
            assert!(is_usable_request_id(id.as_bytes()), "{id}");
        }
        for id in [
            "",
            "has space",
            "new\nline",
            "quote\"",
            "slash/",
            "ümlaut",
            "semi;colon",
            &"x".repeat(MAX_REQUEST_ID_CHARS + 1),
        ] {
            assert!(!is_usable_request_id(id.as_bytes()), "{id:?}");
        }
    }
}
