//! The layer in a real axum server on loopback, driven by a real HTTP
//! client: a linked cluster refused with its headers and an API-shaped
//! error, unrelated users served, usage settled from JSON and from a
//! streamed (SSE) response that reaches the client before it ends, and
//! the guard's metrics scraped and parsed.

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::StreamExt;
use ringfence::guard::{Guard, GuardConfig};
use ringfence_tower::GuardLayer;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

#[derive(Clone)]
struct App {
    guard: Arc<Guard>,
    /// Lets a streamed answer finish (the test holds it back).
    release: Arc<Notify>,
}

/// A stand-in model: echoes the prompt, reports 10 output tokens, or
/// streams "Hel", "lo" and, once released, a usage chunk of 33.
async fn completions(State(app): State<App>, Json(body): Json<Value>) -> Response {
    let prompt = body["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    if body["stream"] != json!(true) {
        let answer = json!({"choices": [{"message": {"content": format!("echo: {prompt}")}}],
                            "usage": {"prompt_tokens": 5, "completion_tokens": 10}});
        return Json(answer).into_response();
    }
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let chunk = |c: &str| {
            Bytes::from(format!(
                "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{c}\"}}}}]}}\n\n"
            ))
        };
        let _ = tx.send(chunk("Hel")).await;
        app.release.notified().await;
        let _ = tx.send(chunk("lo")).await;
        let _ = tx
            .send(Bytes::from_static(
                b"data: {\"choices\":[],\"usage\":{\"completion_tokens\":33}}\n\ndata: [DONE]\n\n",
            ))
            .await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn metrics(State(app): State<App>) -> String {
    app.guard.metrics()
}

/// Serves the app on a free loopback port: its base URL and state.
async fn serve() -> (String, App) {
    // A cluster of three accounts or more is denied (the policy applies
    // from a score of 0, so the test does not depend on scoring signals).
    let config = GuardConfig::from_toml("share_at = 0.0\ndeny_at = 0.0\n").unwrap();
    let app = App {
        guard: Arc::new(Guard::new(config)),
        release: Arc::new(Notify::new()),
    };
    let layer = GuardLayer::new(app.guard.clone())
        .fingerprint_header("payment", http::HeaderName::from_static("x-payment"))
        .client_ip(|p| {
            p.extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        });
    let router = Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/v1/messages", post(completions))
        .layer(layer)
        .route("/metrics", get(metrics))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (format!("http://{addr}"), app)
}

fn chat(prompt: &str, stream: bool) -> Value {
    json!({"model": "m", "max_tokens": 5000, "stream": stream,
           "messages": [{"role": "user", "content": prompt}]})
}

async fn post_as(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    card: &str,
    body: &Value,
) -> reqwest::Response {
    client
        .post(url)
        .bearer_auth(key)
        .header("x-payment", card)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The guard's metrics as served at /metrics, parsed by a Prometheus parser.
async fn scrape(client: &reqwest::Client, base: &str) -> Vec<prometheus_parse::Sample> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).unwrap().samples
}

fn value(samples: &[prometheus_parse::Sample], name: &str, label: Option<(&str, &str)>) -> f64 {
    let s = samples
        .iter()
        .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name} {label:?}"));
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("{name}: {other:?}"),
    }
}

fn headers_of(r: &reqwest::Response) -> HeaderMap {
    r.headers().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_cluster_is_refused_and_others_are_served() {
    let (base, _app) = serve().await;
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");
    let mut statuses = Vec::new();
    let mut refused = None;
    for i in 0..5 {
        let r = post_as(
            &client,
            &url,
            &format!("sk-ring-{i}"),
            "card-shared",
            &chat("hello", false),
        )
        .await;
        statuses.push(r.status());
        if r.status() == StatusCode::TOO_MANY_REQUESTS && refused.is_none() {
            let h = headers_of(&r);
            refused = Some((h, r.json::<Value>().await.unwrap()));
        }
    }
    use StatusCode as S;
    assert_eq!(
        statuses,
        [
            S::OK,
            S::OK,
            S::TOO_MANY_REQUESTS,
            S::TOO_MANY_REQUESTS,
            S::TOO_MANY_REQUESTS
        ]
    );
    let (h, body) = refused.unwrap();
    assert_eq!(h["retry-after"], "3600", "the score's half-life");
    assert!(h["ratelimit-policy"]
        .to_str()
        .unwrap()
        .starts_with("\"suspected_distillation\";q=0"));
    assert!(h.contains_key("ratelimit"));
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("suspected_distillation"));

    // Anthropic's endpoint answers in Anthropic's error shape.
    let r = post_as(
        &client,
        &format!("{base}/v1/messages"),
        "sk-ring-9",
        "card-shared",
        &chat("hi", false),
    )
    .await;
    assert_eq!(r.status(), S::TOO_MANY_REQUESTS);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "rate_limit_error"
    );

    // An unrelated user is served, with the body replayed to the model and
    // the rate-limit headers added.
    let r = post_as(
        &client,
        &url,
        "sk-alone",
        "card-own",
        &chat("just me", false),
    )
    .await;
    assert_eq!(r.status(), S::OK);
    let h = headers_of(&r);
    assert_eq!(h["ratelimit-policy"], "\"account\";q=20;w=60");
    assert_eq!(
        r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"],
        "echo: just me"
    );

    // A request without a key is not guarded.
    let r = client
        .post(&url)
        .header("x-payment", "card-shared")
        .json(&chat("anon", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), S::OK);
    assert!(!r.headers().contains_key("ratelimit"));

    let m = scrape(&client, &base).await;
    assert_eq!(
        value(&m, "ringfence_requests_total", Some(("verdict", "deny"))),
        4.0
    );
    assert_eq!(
        value(&m, "ringfence_requests_total", Some(("verdict", "allow"))),
        3.0
    );
    assert_eq!(value(&m, "ringfence_clusters_refused_total", None), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_settled_from_json_and_from_a_stream_as_it_passes() {
    let (base, app) = serve().await;
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");

    let r = post_as(&client, &url, "sk-user", "card-a", &chat("one", false)).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.bytes().await.unwrap();
    let m = scrape(&client, &base).await;
    assert_eq!(value(&m, "ringfence_settlements_total", None), 1.0);
    let input = value(&m, "ringfence_settlement_reserved_tokens_total", None) - 5000.0;
    assert_eq!(
        value(&m, "ringfence_settlement_actual_tokens_total", None),
        input + 10.0
    );

    // The streamed answer: its first event arrives while the model is
    // still holding the rest back, so nothing is buffered.
    let r = post_as(&client, &url, "sk-user", "card-a", &chat("two", true)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("ratelimit"));
    let mut stream = r.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("Hel"));
    let m = scrape(&client, &base).await;
    assert_eq!(
        value(&m, "ringfence_settlements_total", None),
        1.0,
        "not settled before the end"
    );
    app.release.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&rest).ends_with("data: [DONE]\n\n"));
    let m = scrape(&client, &base).await;
    assert_eq!(value(&m, "ringfence_settlements_total", None), 2.0);
    assert_eq!(
        value(&m, "ringfence_settlement_actual_tokens_total", None),
        2.0 * input + 10.0 + 33.0
    );
    assert_eq!(
        value(&m, "ringfence_settlement_drift_tokens", None),
        2.0 * 5000.0 - 10.0 - 33.0
    );
}
