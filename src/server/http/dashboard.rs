//! `GET /`: the live dashboard (one self-contained page compiled into the binary: no CDN), and
//! `GET /v1/status/live`: the WebSocket that feeds it, sending `/v1/status` (every member, as
//! its INFO says) every [`PERIOD`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::super::Shared;

/// The page.
const PAGE: &str = include_str!("dashboard.html");

/// How often the dashboard's WebSocket sends the cluster's status.
const PERIOD: Duration = Duration::from_millis(500);

/// `GET /`.
pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], PAGE).into_response()
}

/// `GET /v1/status/live`.
pub async fn live(State(shared): State<Arc<Shared>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| push(shared, socket))
}

async fn push(shared: Arc<Shared>, mut socket: WebSocket) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let status = super::api::gather(&shared, true).await;
                if socket.send(Message::Text(status.to_string().into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
