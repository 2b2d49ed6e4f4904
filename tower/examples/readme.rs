use axum::{
    extract::ConnectInfo,
    routing::{get, post},
    Json, Router,
};
use ringfence::guard::{Guard, GuardConfig};
use ringfence_tower::GuardLayer;
use std::{net::SocketAddr, sync::Arc};

async fn completions(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    // Your model here; the layer settles with the `usage` you answer with.
    let _ = body;
    Json(serde_json::json!({"choices": [], "usage": {"completion_tokens": 1}}))
}

#[tokio::main]
async fn main() {
    let guard = Arc::new(Guard::new(GuardConfig::for_accounts(100_000)));
    let metrics = guard.clone();
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .layer(
            GuardLayer::new(guard)
                .fingerprint_header("ja4", http::HeaderName::from_static("x-ja4"))
                .client_ip(|p| {
                    p.extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|c| c.0.ip())
                }),
        )
        .route("/metrics", get(move || async move { metrics.metrics() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080")
        .await
        .unwrap();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .unwrap();
}
