//! A [`tower`](https://docs.rs/tower) layer that puts a ringfence
//! [`Guard`] in front of an OpenAI- or Anthropic-style API served by axum,
//! hyper or tonic: the same middleware as the Python package's
//! `ringfence.asgi`.
//!
//! For each guarded request (`POST` to a path ending in one of
//! [`DEFAULT_PATHS`], or those configured) the layer:
//!
//! 1. takes the **account** from the configured header, else from the API
//!    key (`Authorization: Bearer …` or `x-api-key`), hashed so that no key
//!    is kept; a request with neither passes through unguarded;
//! 2. takes the **fingerprints**: `ip` (the peer address, or the first
//!    `X-Forwarded-For` address when told to trust it), `user_agent`, and
//!    the configured headers;
//! 3. reads the **body** (up to `max_body_bytes`) as an OpenAI or Anthropic
//!    JSON request: prompt, system prompt, model and `max_tokens` (see
//!    [`parse_request_body`]), and replays it to the service unchanged;
//! 4. answers **429** with `Retry-After`, `RateLimit` and
//!    `RateLimit-Policy`, and an error body shaped like the API's, when the
//!    guard refuses; otherwise adds `RateLimit` and `RateLimit-Policy` to
//!    the service's response;
//! 5. **settles** the request with the `usage` of the JSON response, or of
//!    the last server-sent event carrying it in a streamed response, as the
//!    stream passes (nothing is buffered but the line being read). An
//!    error status settles with no output; a response without usage
//!    leaves the reservation at `max_tokens`.
//!
//! ```no_run
//! use axum::{extract::ConnectInfo, routing::post, Router};
//! use ringfence::guard::{Guard, GuardConfig};
//! use ringfence_tower::GuardLayer;
//! use std::{net::SocketAddr, sync::Arc};
//!
//! # async fn completions() -> &'static str { "{}" }
//! # async fn run() {
//! let guard = Arc::new(Guard::new(GuardConfig::default()));
//! let app = Router::new()
//!     .route("/v1/chat/completions", post(completions))
//!     .layer(
//!         GuardLayer::new(guard.clone())
//!             .fingerprint_header("ja4", http::HeaderName::from_static("x-ja4"))
//!             .client_ip(|parts| {
//!                 let c = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
//!                 Some(c.0.ip())
//!             }),
//!     );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
//!     .await
//!     .unwrap();
//! # }
//! ```

mod body;
mod parse;
mod usage;

pub use body::{GuardedBody, ResponseBody};
pub use parse::{account_of_key, parse_request_body, RequestInfo};

use body::Settler;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use ringfence::guard::{Guard, Request as GuardRequest, Settlement, Verdict};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;
use usage::UsageScanner;

/// The path suffixes guarded by default: OpenAI's and Anthropic's
/// generation endpoints.
pub const DEFAULT_PATHS: [&str; 4] = [
    "/chat/completions",
    "/completions",
    "/messages",
    "/responses",
];

/// What the layer checks requests with and settles them on: a [`Guard`],
/// or anything that decides like one (a fleet node, a guard behind a
/// wrapper of your own).
pub trait Checker: Send + Sync + 'static {
    /// Decides a request.
    fn check(&self, request: &GuardRequest<'_>) -> Verdict;
    /// Settles a served request with its output tokens.
    fn settle(&self, settlement: Settlement, output_tokens: u32);
}

impl Checker for Guard {
    fn check(&self, request: &GuardRequest<'_>) -> Verdict {
        Guard::check(self, request)
    }

    fn settle(&self, settlement: Settlement, output_tokens: u32) {
        // A settlement from this guard's own verdict: never foreign.
        let _ = self.settle_token(settlement, output_tokens);
    }
}

type ClientIp = dyn Fn(&http::request::Parts) -> Option<IpAddr> + Send + Sync;

struct Config {
    guard: Arc<dyn Checker>,
    account_header: Option<HeaderName>,
    fingerprint_headers: Vec<(String, HeaderName)>,
    trust_forwarded: bool,
    paths: Vec<String>,
    max_body_bytes: usize,
    default_max_tokens: u32,
    rate_limit_headers: bool,
    client_ip: Option<Arc<ClientIp>>,
}

/// The layer (see the crate docs). Cheap to clone: its configuration is
/// shared.
#[derive(Clone)]
pub struct GuardLayer {
    config: Arc<Config>,
}

impl GuardLayer {
    /// A layer checking requests with `guard`, with the defaults: accounts
    /// from API keys, fingerprints `ip` and `user_agent`, the
    /// [`DEFAULT_PATHS`], bodies read up to 8 MiB, 1,024 output tokens
    /// reserved when a request names no `max_tokens`, rate-limit headers on
    /// allowed responses.
    pub fn new(guard: Arc<impl Checker>) -> GuardLayer {
        GuardLayer {
            config: Arc::new(Config {
                guard,
                account_header: None,
                fingerprint_headers: Vec::new(),
                trust_forwarded: false,
                paths: DEFAULT_PATHS.iter().map(|p| p.to_string()).collect(),
                max_body_bytes: 8 << 20,
                default_max_tokens: 1024,
                rate_limit_headers: true,
                client_ip: None,
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Config)) -> Self {
        // Before the layer is cloned (while it is built) this is the only
        // reference; afterwards a builder call copies what it changes.
        match Arc::get_mut(&mut self.config) {
            Some(c) => f(c),
            None => {
                let c = &self.config;
                let mut copy = Config {
                    guard: c.guard.clone(),
                    account_header: c.account_header.clone(),
                    fingerprint_headers: c.fingerprint_headers.clone(),
                    trust_forwarded: c.trust_forwarded,
                    paths: c.paths.clone(),
                    max_body_bytes: c.max_body_bytes,
                    default_max_tokens: c.default_max_tokens,
                    rate_limit_headers: c.rate_limit_headers,
                    client_ip: c.client_ip.clone(),
                };
                f(&mut copy);
                self.config = Arc::new(copy);
            }
        }
        self
    }

    /// A header naming the account; requests without it fall back to the
    /// API key.
    pub fn account_header(self, header: HeaderName) -> Self {
        self.with(|c| c.account_header = Some(header))
    }

    /// A fingerprint of kind `kind` from `header` (e.g. `ja4` from
    /// `x-ja4`, set by the TLS terminator).
    pub fn fingerprint_header(self, kind: impl Into<String>, header: HeaderName) -> Self {
        let kind = kind.into();
        self.with(|c| c.fingerprint_headers.push((kind, header)))
    }

    /// Take the client address from the first `X-Forwarded-For` address.
    /// Only behind a proxy that overwrites that header: a client can set
    /// it to anything.
    pub fn trust_forwarded(self, on: bool) -> Self {
        self.with(|c| c.trust_forwarded = on)
    }

    /// The path suffixes to guard (`"*"` guards every `POST`).
    pub fn paths<I: IntoIterator<Item = S>, S: Into<String>>(self, paths: I) -> Self {
        let paths = paths.into_iter().map(Into::into).collect();
        self.with(|c| c.paths = paths)
    }

    /// The most request body (and JSON response body) read for prompts and
    /// usage; a longer request body is passed on with what was read.
    pub fn max_body_bytes(self, n: usize) -> Self {
        self.with(|c| c.max_body_bytes = n)
    }

    /// The output tokens reserved when a request names no `max_tokens`.
    pub fn default_max_tokens(self, n: u32) -> Self {
        self.with(|c| c.default_max_tokens = n)
    }

    /// Whether allowed responses carry `RateLimit` and `RateLimit-Policy`.
    pub fn rate_limit_headers(self, on: bool) -> Self {
        self.with(|c| c.rate_limit_headers = on)
    }

    /// How to find the peer's address in a request (by default a
    /// [`SocketAddr`] or [`IpAddr`] in its extensions). With axum:
    /// `|p| p.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())`.
    pub fn client_ip(
        self,
        f: impl Fn(&http::request::Parts) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        self.with(|c| c.client_ip = Some(Arc::new(f)))
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> GuardService<S> {
        GuardService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`GuardLayer`] wraps around another.
#[derive(Clone)]
pub struct GuardService<S> {
    inner: S,
    config: Arc<Config>,
}

fn header<'a>(parts: &'a http::request::Parts, name: &HeaderName) -> Option<&'a str> {
    parts
        .headers
        .get(name)?
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl Config {
    fn guarded(&self, parts: &http::request::Parts) -> bool {
        parts.method == Method::POST
            && self
                .paths
                .iter()
                .any(|p| p == "*" || parts.uri.path().ends_with(p.as_str()))
    }

    fn account(&self, parts: &http::request::Parts) -> Option<String> {
        if let Some(name) = self.account_header.as_ref().and_then(|h| header(parts, h)) {
            return Some(parse::account_of_header(name));
        }
        let bearer = header(parts, &AUTHORIZATION).and_then(|a| {
            let (scheme, key) = a.split_at_checked(7)?;
            scheme.eq_ignore_ascii_case("bearer ").then(|| key.trim())
        });
        let key = bearer
            .filter(|k| !k.is_empty())
            .or_else(|| header(parts, &HeaderName::from_static("x-api-key")))?;
        Some(account_of_key(key))
    }

    fn fingerprints(&self, parts: &http::request::Parts) -> Vec<(String, String)> {
        let mut fps = Vec::new();
        let forwarded = self
            .trust_forwarded
            .then(|| header(parts, &HeaderName::from_static("x-forwarded-for")))
            .flatten()
            .and_then(|f| f.split(',').next())
            .map(|ip| ip.trim().to_owned())
            .filter(|ip| !ip.is_empty());
        let ip = forwarded.or_else(|| {
            let found = match &self.client_ip {
                Some(f) => f(parts),
                None => (parts.extensions.get::<SocketAddr>().map(SocketAddr::ip))
                    .or_else(|| parts.extensions.get::<IpAddr>().copied()),
            };
            found.map(|ip| ip.to_string())
        });
        if let Some(ip) = ip {
            fps.push(("ip".to_owned(), ip));
        }
        if let Some(ua) = header(parts, &USER_AGENT) {
            fps.push(("user_agent".to_owned(), ua.to_owned()));
        }
        for (kind, h) in &self.fingerprint_headers {
            if let Some(v) = parts.headers.get(h) {
                let v = String::from_utf8_lossy(v.as_bytes());
                if !v.trim().is_empty() {
                    fps.push((kind.clone(), v.trim().to_owned()));
                }
            }
        }
        fps.into_iter()
            .map(|(k, v)| (k, parse::fingerprint(&v)))
            .collect()
    }

    fn check(&self, account: &str, fps: &[(String, String)], info: &RequestInfo) -> Verdict {
        let fps: Vec<(&str, &str)> = fps.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.guard.check(&GuardRequest {
            account,
            fingerprints: &fps,
            prompt: info.prompt.as_deref(),
            system: info.system.as_deref(),
            model: info.model.as_deref(),
            input_tokens: info.input_tokens,
            max_tokens: info.max_tokens.unwrap_or(self.default_max_tokens),
        })
    }
}

/// What reading the request body gave: the frames read, an error that
/// ended it, the rest (when it was longer than the limit), and the whole
/// body (when it was not).
struct Read<B: Body> {
    frames: VecDeque<Frame<Bytes>>,
    error: Option<B::Error>,
    rest: Option<Pin<Box<B>>>,
    whole: Option<Vec<u8>>,
}

async fn read_body<B: Body<Data = Bytes>>(body: B, limit: usize) -> Read<B> {
    let mut body = Box::pin(body);
    let mut frames: VecDeque<Frame<Bytes>> = VecDeque::new();
    let mut size = 0usize;
    loop {
        match poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            None => {
                let mut whole = Vec::with_capacity(size);
                for f in &frames {
                    if let Some(d) = f.data_ref() {
                        whole.extend_from_slice(d);
                    }
                }
                return Read {
                    frames,
                    error: None,
                    rest: None,
                    whole: Some(whole),
                };
            }
            Some(Err(e)) => {
                return Read {
                    frames,
                    error: Some(e),
                    rest: None,
                    whole: None,
                }
            }
            Some(Ok(frame)) => {
                size += frame.data_ref().map_or(0, Bytes::len);
                frames.push_back(frame);
                if size > limit {
                    return Read {
                        frames,
                        error: None,
                        rest: Some(body),
                        whole: None,
                    };
                }
            }
        }
    }
}

/// The layer's 429: the verdict's headers and an error body shaped like
/// the API's (Anthropic's for `/messages`, OpenAI's otherwise).
fn refusal<B>(verdict: &Verdict, path: &str) -> Response<ResponseBody<B>> {
    let reasons: Vec<&str> = verdict.reasons.iter().map(|r| r.as_str()).collect();
    let reasons = if reasons.is_empty() {
        "rate_limited".to_owned()
    } else {
        reasons.join(", ")
    };
    let headers = verdict.headers();
    let retry = headers
        .iter()
        .find(|(k, _)| *k == "Retry-After")
        .map(|(_, v)| v.as_str());
    let message = match retry {
        Some(r) => format!("Request refused by ringfence ({reasons}); retry after {r} s"),
        None => format!("Request refused by ringfence ({reasons})"),
    };
    let payload = if path.ends_with("/messages") {
        serde_json::json!({"type": "error", "error": {"type": "rate_limit_error", "message": message}})
    } else {
        serde_json::json!({"error": {"message": message, "type": "rate_limit_exceeded", "param": null, "code": "rate_limit_exceeded"}})
    };
    let mut response = Response::new(ResponseBody::refused(Bytes::from(payload.to_string())));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(HeaderName::from_static(static_lower(k)), v);
        }
    }
    response
}

/// The rate-limit header names, lower-cased as `HeaderName` wants them.
fn static_lower(name: &'static str) -> &'static str {
    match name {
        "Retry-After" => "retry-after",
        "RateLimit" => "ratelimit",
        "RateLimit-Policy" => "ratelimit-policy",
        _ => "x-ringfence",
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, ResB> Service<Request<B>> for GuardService<S>
where
    S: Service<Request<GuardedBody<B>>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Send,
    ResB: Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let config = self.config.clone();
        let (parts, body) = request.into_parts();
        let account = config
            .guarded(&parts)
            .then(|| config.account(&parts))
            .flatten();
        let Some(account) = account else {
            let request = Request::from_parts(parts, GuardedBody::untouched(body));
            return Box::pin(async move {
                let response = inner.call(request).await?;
                Ok(response.map(|b| ResponseBody::served(b, None)))
            });
        };
        Box::pin(async move {
            let read = read_body(body, config.max_body_bytes).await;
            let info = read
                .whole
                .as_deref()
                .map(parse_request_body)
                .unwrap_or_default();
            let verdict = config.check(&account, &config.fingerprints(&parts), &info);
            if !verdict.allowed() {
                return Ok(refusal(&verdict, parts.uri.path()));
            }
            let request =
                Request::from_parts(parts, GuardedBody::new(read.frames, read.error, read.rest));
            let settlement = verdict.settlement();
            let response = match inner.call(request).await {
                Ok(r) => r,
                Err(e) => {
                    // Nothing was served.
                    config.guard.settle(settlement, 0);
                    return Err(e);
                }
            };
            let (mut head, body) = response.into_parts();
            let content_type = head
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let settler = Settler {
                guard: config.guard.clone(),
                settlement,
                scanner: UsageScanner::new(content_type, config.max_body_bytes),
                failed: head.status.is_client_error() || head.status.is_server_error(),
            };
            if config.rate_limit_headers {
                for (k, v) in verdict.headers() {
                    if k != "Retry-After" {
                        if let Ok(v) = HeaderValue::from_str(&v) {
                            head.headers
                                .insert(HeaderName::from_static(static_lower(k)), v);
                        }
                    }
                }
            }
            Ok(Response::from_parts(
                head,
                ResponseBody::served(body, Some(settler)),
            ))
        })
    }
}
