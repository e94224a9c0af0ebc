//! `GET /v1/watch?prefix=P&from_index=N`: every change to keys starting with `P`, in log order,
//! from the entry at index `N` on (default: the next entry this node applies), as a WebSocket
//! (one JSON text message per change) or, without the upgrade, as Server-Sent Events (`event:
//! change`, `id:` the log index, `data:` the JSON).
//!
//! A change is `{"index", "key", "op", "type", "value"}`: `op` is the keyspace event Redis
//! publishes for the command (`set`, `del`, `expired`, `hset`, `lpush`...; `flushall` with an
//! empty key for FLUSHALL/FLUSHDB), `type` the key's type after it (null: gone), `value` the new
//! value when the key holds a string. Keys and values are JSON strings when they are UTF-8, else
//! `{"base64": ...}`. A watcher that saw index `K` resumes, on any node, with `from_index=K+1`;
//! an index this node's feed no longer holds answers 410 (see `raft::feed`), and a feed that
//! skips while watching (the node installed a snapshot) ends the watch with an error message.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};
use tokio::sync::broadcast;

use super::super::Shared;
use super::api::json_bytes;
use crate::raft::feed::{Event, Feed, Notice};

#[derive(Debug, Deserialize)]
pub struct WatchParams {
    prefix: Option<String>,
    from_index: Option<String>,
}

/// One watcher's position in the feed.
struct Watcher {
    feed: Arc<Feed>,
    prefix: Vec<u8>,
    queue: VecDeque<Event>,
    live: broadcast::Receiver<Notice>,
    /// The first index not yet looked at.
    next: u64,
}

impl Watcher {
    /// The next matching change, or why the watch ends (`None`: the node is stopping).
    async fn next(&mut self) -> Option<Result<Event, String>> {
        loop {
            while let Some(e) = self.queue.pop_front() {
                self.next = self.next.max(e.index + 1);
                // FLUSHALL removed every key, whatever the prefix.
                if e.change.key.starts_with(&self.prefix) || e.change.op == "flushall" {
                    return Some(Ok(e));
                }
            }
            match self.live.recv().await {
                Ok(Notice::Changes(events)) => {
                    self.queue.extend(events.iter().filter(|e| e.index >= self.next).cloned());
                }
                Ok(Notice::Skipped { to }) if to >= self.next => {
                    return Some(Err(format!(
                        "this node installed a snapshot up to index {to}: the changes from index {} \
                         are not in its feed; read the keys again and watch from index {}",
                        self.next,
                        to + 1
                    )))
                }
                Ok(Notice::Skipped { .. }) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => match self.feed.subscribe(self.next) {
                    // Fell behind the live notices: take the rest from the kept changes.
                    Ok((kept, live)) => {
                        self.queue.extend(kept);
                        self.live = live;
                    }
                    Err(e) => return Some(Err(format!("this watcher fell behind: {e}"))),
                },
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// A change as JSON.
fn change_json(e: &Event) -> JsonValue {
    json!({
        "index": e.index,
        "key": json_bytes(&e.change.key),
        "op": e.change.op,
        "type": e.change.kind.map(|k| k.name()),
        "value": e.change.value.as_deref().map(json_bytes),
    })
}

/// `GET /v1/watch`.
pub async fn watch(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<WatchParams>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let feed = shared.backend.feed().clone();
    let from = match params.from_index.as_deref().map(str::parse::<u64>) {
        None => feed.bounds().0 + 1,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("from_index must be a log index, got {:?}", params.from_index)})),
            )
                .into_response()
        }
    };
    let (kept, live) = match feed.subscribe(from) {
        Ok(pair) => pair,
        Err(e) => {
            return (StatusCode::GONE, Json(json!({"error": e.to_string(), "oldest_index": e.oldest}))).into_response()
        }
    };
    let watcher =
        Watcher { feed, prefix: params.prefix.unwrap_or_default().into_bytes(), queue: kept.into(), live, next: from };
    match upgrade {
        Ok(upgrade) => upgrade.on_upgrade(move |socket| websocket(socket, watcher)),
        Err(_) => {
            let stream = futures_util::stream::unfold(Some(watcher), |state| async move {
                let mut watcher = state?;
                match watcher.next().await? {
                    Ok(e) => {
                        let event = SseEvent::default().event("change").id(e.index.to_string());
                        let event = event.data(change_json(&e).to_string());
                        Some((Ok::<_, Infallible>(event), Some(watcher)))
                    }
                    Err(why) => {
                        Some((Ok(SseEvent::default().event("error").data(json!({"error": why}).to_string())), None))
                    }
                }
            });
            Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
        }
    }
}

async fn websocket(mut socket: WebSocket, mut watcher: Watcher) {
    loop {
        tokio::select! {
            next = watcher.next() => match next {
                Some(Ok(e)) => {
                    if socket.send(Message::Text(change_json(&e).to_string().into())).await.is_err() {
                        return;
                    }
                }
                Some(Err(why)) => {
                    let _ = socket.send(Message::Text(json!({"error": why}).to_string().into())).await;
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                None => return,
            },
            incoming = socket.recv() => match incoming {
                // Whatever the client sends is ignored; it closing ends the watch.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
