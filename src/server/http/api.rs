//! The HTTP key-value API (`GET/PUT/DELETE /v1/keys/{key}`) and `GET /v1/status`.
//!
//! A key request runs as the RESP command a client would send (GET and TTL, SET with EX, DEL),
//! over a pooled connection to the leader's client port, the same path the follower proxy uses:
//! writes go through the log, reads are the leader's linearizable reads, and everything RESP
//! enforces (maxmemory, the leader's lease) holds here too. Any node answers: a follower sends
//! the command to the leader it knows, and follows one MOVED if leadership moved meanwhile.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};

use super::super::Shared;
use crate::resp::Reply;

/// Largest request body (a value) accepted.
pub const MAX_BODY: usize = 16 << 20;

/// How long a key request waits for the leader.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How long `/v1/status` waits for each peer's INFO.
const PEER_TIMEOUT: Duration = Duration::from_millis(400);

/// An error answer: a status and a JSON body `{"error": ...}`.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

/// The key of a `/v1/keys/{key}` path.
fn key_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match path {
        Ok(Path(key)) if !key.is_empty() => Ok(key),
        Ok(_) => Err(ApiError(StatusCode::BAD_REQUEST, "the key is empty".into())),
        Err(e) => Err(ApiError(StatusCode::BAD_REQUEST, format!("bad key: {}", e.body_text()))),
    }
}

/// Runs `commands` (pipelined, in order) on the leader and returns their replies.
async fn on_leader(shared: &Shared, commands: Vec<Vec<Bytes>>) -> Result<Vec<Reply>, ApiError> {
    let unavailable = |why: String| ApiError(StatusCode::SERVICE_UNAVAILABLE, why);
    let mut addr = match shared.backend.leader().and_then(|id| shared.backend.addr_of(id)) {
        Some(addr) => addr,
        None => return Err(unavailable("no leader known: the cluster is electing one or lost its quorum".into())),
    };
    for _ in 0..3 {
        let replies = shared.forwarder.call_many(&addr, &commands, TIMEOUT).await.map_err(|e| match e {
            super::super::forward::ForwardError::Unreachable { .. } => unavailable(e.to_string()),
            super::super::forward::ForwardError::NoReply { .. } => {
                ApiError(StatusCode::GATEWAY_TIMEOUT, format!("{e}: the command may or may not have run"))
            }
        })?;
        match replies.first() {
            Some(Reply::Error(e)) if e.starts_with("MOVED ") => {
                addr = e.rsplit(' ').next().unwrap_or_default().to_string();
            }
            _ => return Ok(replies),
        }
    }
    Err(unavailable("leadership kept moving; try again".into()))
}

/// An error reply of a command as an HTTP error.
fn command_error(text: &str) -> ApiError {
    let code = text.split(' ').next().unwrap_or("");
    let status = match code {
        "WRONGTYPE" => StatusCode::CONFLICT,
        "OOM" => StatusCode::INSUFFICIENT_STORAGE,
        "CLUSTERDOWN" | "TRYAGAIN" | "MOVED" | "LOADING" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError(status, text.to_string())
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("application/json"))
}

/// Bytes as JSON: a string when they are UTF-8, else `{"base64": ...}`.
pub fn json_bytes(bytes: &[u8]) -> JsonValue {
    match std::str::from_utf8(bytes) {
        Ok(text) => JsonValue::String(text.to_string()),
        Err(_) => json!({ "base64": base64(bytes) }),
    }
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `GET /v1/keys/{key}`: the value (raw, or JSON with `Accept: application/json`); 404 when
/// the key does not exist, 409 when it holds another type.
pub async fn get_key(
    State(shared): State<Arc<Shared>>,
    key: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = key_of(key)?;
    let k = Bytes::from(key.clone());
    let replies =
        on_leader(&shared, vec![vec![Bytes::from_static(b"GET"), k.clone()], vec![Bytes::from_static(b"TTL"), k]])
            .await?;
    let ttl = match replies.get(1) {
        Some(Reply::Int(n)) if *n >= 0 => Some(*n),
        _ => None,
    };
    match replies.first() {
        Some(Reply::Bulk(value)) if wants_json(&headers) => {
            Ok(Json(json!({"key": key, "value": json_bytes(value), "ttl": ttl})).into_response())
        }
        Some(Reply::Bulk(value)) => {
            let mut response = ([(header::CONTENT_TYPE, "application/octet-stream")], value.clone()).into_response();
            if let Some(ttl) = ttl {
                response.headers_mut().insert("x-raftis-ttl", ttl.into());
            }
            Ok(response)
        }
        Some(Reply::Nil) => Err(ApiError(StatusCode::NOT_FOUND, format!("no such key: {key}"))),
        Some(Reply::Error(e)) => Err(command_error(e)),
        other => Err(ApiError(StatusCode::BAD_GATEWAY, format!("unexpected reply {other:?}"))),
    }
}

#[derive(Debug, Deserialize)]
pub struct PutParams {
    ttl: Option<String>,
}

/// `PUT /v1/keys/{key}[?ttl=SECONDS]`: sets the key to the request body.
pub async fn put_key(
    State(shared): State<Arc<Shared>>,
    key: Result<Path<String>, PathRejection>,
    Query(params): Query<PutParams>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = key_of(key)?;
    let body = body.map_err(|e| ApiError(e.status(), e.body_text()))?;
    let mut command = vec![Bytes::from_static(b"SET"), Bytes::from(key.clone()), body];
    let mut ttl = None;
    if let Some(text) = params.ttl {
        match text.parse::<u64>() {
            Ok(seconds) if seconds > 0 && seconds <= i64::MAX as u64 / 1000 => {
                command.extend([Bytes::from_static(b"EX"), Bytes::from(seconds.to_string())]);
                ttl = Some(seconds);
            }
            _ => {
                return Err(ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("ttl must be a positive number of seconds, got {text:?}"),
                ))
            }
        }
    }
    match on_leader(&shared, vec![command]).await?.first() {
        Some(Reply::Ok) => Ok(Json(json!({"key": key, "ok": true, "ttl": ttl})).into_response()),
        Some(Reply::Error(e)) => Err(command_error(e)),
        other => Err(ApiError(StatusCode::BAD_GATEWAY, format!("unexpected reply {other:?}"))),
    }
}

/// `DELETE /v1/keys/{key}`: deletes the key; `deleted` says whether it existed.
pub async fn delete_key(
    State(shared): State<Arc<Shared>>,
    key: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let key = key_of(key)?;
    match on_leader(&shared, vec![vec![Bytes::from_static(b"DEL"), Bytes::from(key.clone())]]).await?.first() {
        Some(Reply::Int(n)) => Ok(Json(json!({"key": key, "deleted": *n > 0})).into_response()),
        Some(Reply::Error(e)) => Err(command_error(e)),
        other => Err(ApiError(StatusCode::BAD_GATEWAY, format!("unexpected reply {other:?}"))),
    }
}

#[derive(Debug, Deserialize)]
pub struct StatusParams {
    local: Option<String>,
}

/// `GET /v1/status[?local=1]`: this node, and (unless `local`) every member as its INFO says.
pub async fn status(State(shared): State<Arc<Shared>>, Query(params): Query<StatusParams>) -> Response {
    let local = params.local.is_some_and(|v| v != "0" && v != "false");
    Json(gather(&shared, !local).await).into_response()
}

/// This node's status, and with `peers` every member's (read from its INFO over RESP).
pub async fn gather(shared: &Shared, peers: bool) -> JsonValue {
    let view = shared.backend.view();
    let (feed_applied, feed_oldest) = shared.backend.feed().bounds();
    let leader_addr = view.leader.and_then(|id| shared.backend.addr_of(id));
    let mut node = json!({
        "id": view.my_id,
        "role": view.role.name(),
        "term": view.term,
        "leader": view.leader,
        "leader_addr": leader_addr,
        "commit_index": view.commit_index,
        "applied_index": view.applied_index,
        "last_log_index": view.last_log_index,
        "snapshot_index": view.snapshot_index,
        "entries_behind": view.catchup.entries_behind,
        "ready": super::not_ready(&view, shared.start_commit).is_empty(),
        "watch": {"next_index": feed_applied + 1, "oldest_index": feed_oldest},
        "elections": shared.elections.changes(),
    });
    if !peers {
        return json!({ "node": node });
    }
    let members: Vec<(u64, String, u64)> = view
        .nodes
        .iter()
        .map(|n| (n.id, n.addr.clone(), if view.role == crate::cluster::Role::Leader { n.offset } else { 0 }))
        .collect();
    let infos = futures_util::future::join_all(members.iter().map(|(_, addr, _)| async move {
        let info = vec![
            Bytes::from_static(b"INFO"),
            Bytes::from_static(b"raft"),
            Bytes::from_static(b"stats"),
            Bytes::from_static(b"commandstats"),
        ];
        match shared.forwarder.call_many(addr, &[info], PEER_TIMEOUT).await {
            Ok(mut replies) => match replies.pop() {
                Some(Reply::Bulk(text)) => Ok(String::from_utf8_lossy(&text).into_owned()),
                Some(Reply::Verbatim(text)) => Ok(text),
                other => Err(format!("INFO answered {other:?}")),
            },
            Err(e) => Err(e.to_string()),
        }
    }))
    .await;
    let nodes: Vec<JsonValue> = members
        .iter()
        .zip(infos)
        .map(|((id, addr, matched), info)| {
            let mut n = match info {
                Ok(text) => info_fields(&text),
                Err(e) => json!({"reachable": false, "error": e}),
            };
            n["id"] = json!(id);
            n["addr"] = json!(addr);
            if view.role == crate::cluster::Role::Leader {
                n["match_index"] = json!(matched);
            }
            n
        })
        .collect();
    node["serving"] = json!(true);
    json!({
        "node": node,
        "cluster": {"leader": view.leader, "term": view.term, "nodes": nodes},
        "at_ms": super::super::unix_millis(),
    })
}

/// The fields of an INFO reply the status shows.
fn info_fields(text: &str) -> JsonValue {
    let mut out = json!({"reachable": true});
    let mut command_calls = 0u64;
    let mut command_usec = 0u64;
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let number = |v: &str| v.trim().parse::<u64>().ok();
        match name {
            "raft_role" | "raft_catchup_state" => out[&name[5..]] = json!(value.trim()),
            "raft_term"
            | "raft_commit_index"
            | "raft_applied_index"
            | "raft_last_log_index"
            | "raft_snapshot_index"
            | "raft_entries_behind"
            | "raft_leader_commit_index"
            | "raft_elections_started"
            | "raft_elections_won" => out[&name[5..]] = json!(number(value)),
            "raft_leader_id" => out["leader"] = json!(number(value).filter(|&l| l != 0)),
            "total_commands_processed" => out["commands_processed"] = json!(number(value)),
            _ if name.starts_with("cmdstat_") => {
                for field in value.split(',') {
                    match field.split_once('=') {
                        Some(("calls", n)) => command_calls += n.parse::<u64>().unwrap_or(0),
                        Some(("usec", n)) => command_usec += n.parse::<u64>().unwrap_or(0),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out["command_calls"] = json!(command_calls);
    out["command_usec"] = json!(command_usec);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_as_the_standard_says() {
        for (plain, coded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg==")] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
        assert_eq!(json_bytes(b"ok"), json!("ok"));
        assert_eq!(json_bytes(&[0xff]), json!({"base64": "/w=="}));
    }

    #[test]
    fn info_fields_pick_the_raft_and_command_figures() {
        let text = "# Raft\r\nraft_role:follower\r\nraft_leader_id:0\r\nraft_term:7\r\n\
                    raft_catchup_state:caught_up\r\n# Stats\r\ntotal_commands_processed:12\r\n\
                    # Commandstats\r\ncmdstat_set:calls=3,usec=30,usec_per_call=10.00\r\n\
                    cmdstat_get:calls=2,usec=4,usec_per_call=2.00\r\n";
        let f = info_fields(text);
        assert_eq!(f["role"], "follower");
        assert_eq!(f["leader"], JsonValue::Null);
        assert_eq!(f["term"], 7);
        assert_eq!(f["catchup_state"], "caught_up");
        assert_eq!(f["commands_processed"], 12);
        assert_eq!((f["command_calls"].clone(), f["command_usec"].clone()), (json!(5), json!(34)));
    }
}
