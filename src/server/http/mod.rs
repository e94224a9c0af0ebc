//! The node's HTTP listener (`--http-port`, default client port + 1000): `GET /health`,
//! `GET /ready`, `GET /metrics` (Prometheus text format), the key-value API and status
//! (`api`), the watch feed (`watch`) and the dashboard (`dashboard`).
//!
//! Every value comes from where INFO reads it (`Backend::view` for Raft, the command statistics,
//! the client registry), rendered at each scrape, so `/metrics` and INFO never disagree.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

mod api;
mod dashboard;
mod feed;

use super::Shared;
use crate::cluster::{ClusterView, Role};
use crate::latency::LatencySnapshot;
use crate::raft::catchup::CatchupState;

/// Serves HTTP on `listener` until `shutdown` turns true.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving HTTP (/, /metrics, /health, /ready, /v1/...)");
    }
    let app = router(shared);
    let stopped = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
        warn!(error = %e, "the HTTP listener stopped");
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/", get(dashboard::page))
        .route("/v1/status", get(api::status))
        .route("/v1/status/live", get(dashboard::live))
        .route("/v1/keys/{*key}", get(api::get_key).put(api::put_key).delete(api::delete_key))
        .route("/v1/watch", get(feed::watch))
        .layer(axum::extract::DefaultBodyLimit::max(api::MAX_BODY))
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .with_state(shared)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found: the paths are /, /health, /ready, /metrics, /v1/status, /v1/status/live, /v1/keys/{key} and /v1/watch"})))
        .into_response()
}

async fn not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, Json(json!({"error": "method not allowed on this path"}))).into_response()
}

/// 200 while the process serves.
async fn health(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({"status": "ok", "id": shared.config.id})).into_response()
}

/// Why this node is not ready to serve (empty: it is): it knows a leader, has applied the log
/// it held at start, and is caught up with the leader.
pub fn not_ready(view: &ClusterView, start_commit: u64) -> Vec<String> {
    let mut why = Vec::new();
    if view.leader.is_none() {
        why.push("no leader known".to_string());
    }
    if view.applied_index < start_commit {
        why.push(format!("applying the log it held at start: applied {} of {start_commit}", view.applied_index));
    }
    match view.catchup.state {
        CatchupState::CaughtUp => {}
        CatchupState::Unknown => why.push("not heard from a leader yet".to_string()),
        CatchupState::CatchingUp => {
            why.push(format!("catching up with the leader: {} entries behind", view.catchup.entries_behind))
        }
        CatchupState::ReceivingSnapshot => why.push("receiving a snapshot from the leader".to_string()),
    }
    why
}

/// 200 when ready to serve, 503 otherwise; the JSON body says why.
async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    let view = shared.backend.view();
    let why = not_ready(&view, shared.start_commit);
    let status = if why.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "ready": why.is_empty(),
        "reasons": why,
        "id": view.my_id,
        "role": view.role.name(),
        "leader": view.leader,
        "term": view.term,
        "commit_index": view.commit_index,
        "applied_index": view.applied_index,
    });
    (status, Json(body)).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match render(&shared) {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding the metrics failed: {e}")).into_response(),
    }
}

type Labels = Vec<(String, String)>;

/// Histograms read from `latency::Latency` values at scrape time, one per label set (an empty
/// label set for a lone histogram).
#[derive(Debug)]
struct Histograms(Vec<(Labels, LatencySnapshot)>);

impl EncodeMetric for Histograms {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, h) in &self.0 {
            if labels.is_empty() {
                encoder.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?;
            } else {
                encoder.encode_family(labels)?.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

/// The metrics text of this node, at this moment.
pub fn render(shared: &Shared) -> Result<String, std::fmt::Error> {
    let mut r = Registry::default();
    let view = shared.backend.view();
    let roles = Family::<Labels, Gauge<i64>>::default();
    for role in [Role::Leader, Role::Follower, Role::Candidate, Role::Learner, Role::Shutdown] {
        roles.get_or_create(&vec![("role".into(), role.name().into())]).set(i64::from(view.role == role));
    }
    r.register("raftis_raft_role", "This node's Raft role (1 for the current one)", roles);
    gauge(&mut r, "raftis_raft_node_id", "This node's id", view.my_id as i64);
    gauge(&mut r, "raftis_raft_term", "Current Raft term", view.term as i64);
    gauge(
        &mut r,
        "raftis_raft_leader_id",
        "Id of the leader this node knows (0: none)",
        view.leader.unwrap_or(0) as i64,
    );
    gauge(&mut r, "raftis_raft_commit_index", "Highest log index known committed", view.commit_index as i64);
    gauge(
        &mut r,
        "raftis_raft_applied_index",
        "Highest log index applied to the state machine",
        view.applied_index as i64,
    );
    gauge(&mut r, "raftis_raft_last_log_index", "Highest log index stored", view.last_log_index as i64);
    gauge(&mut r, "raftis_raft_snapshot_index", "Log index the latest snapshot covers", view.snapshot_index as i64);
    gauge(
        &mut r,
        "raftis_raft_entries_behind_leader",
        "Entries between this node's applied index and the leader's commit index",
        view.catchup.entries_behind as i64,
    );
    let members = Family::<Labels, Gauge<i64>>::default();
    let matched = Family::<Labels, Gauge<i64>>::default();
    let lag = Family::<Labels, Gauge<i64>>::default();
    for n in &view.nodes {
        members.get_or_create(&vec![("node".into(), n.id.to_string())]).set(1);
        if view.role == Role::Leader && n.id != view.my_id {
            let peer = vec![("peer".into(), n.id.to_string())];
            matched.get_or_create(&peer).set(n.offset as i64);
            lag.get_or_create(&peer).set(view.commit_index.saturating_sub(n.offset) as i64);
        }
    }
    r.register("raftis_raft_member", "Members of the cluster's configuration", members);
    r.register("raftis_raft_match_index", "Highest log index known replicated to each follower (leader only)", matched);
    r.register("raftis_raft_follower_lag_entries", "Commit index minus each follower's match index (leader only)", lag);
    if let Some((flushes, micros, waiters)) = shared.backend.flush_stats() {
        counter(&mut r, "raftis_log_flushes", "Raft log flushes to disk", flushes);
        let seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        seconds.inc_by(micros as f64 / 1e6);
        r.register("raftis_log_flush_seconds", "Time spent flushing the Raft log", seconds);
        counter(&mut r, "raftis_log_flushed_appends", "Log appends made durable by those flushes", waiters);
    }
    if let Some(flush) = shared.backend.flush_latency() {
        r.register(
            "raftis_log_flush_duration_seconds",
            "Time of each Raft log flush (fsync)",
            Histograms(vec![(Vec::new(), flush)]),
        );
    }
    r.register(
        "raftis_apply_duration_seconds",
        "Time of each apply of committed entries to the state machine",
        Histograms(vec![(Vec::new(), shared.backend.apply_latency())]),
    );
    counter(
        &mut r,
        "raftis_raft_elections_started",
        "Elections this node started (voted for itself in a new term), as observed",
        shared.elections.started.load(Ordering::Relaxed),
    );
    counter(
        &mut r,
        "raftis_raft_elections_won",
        "Elections this node won (became leader of a new term)",
        shared.elections.won.load(Ordering::Relaxed),
    );
    let batches = shared.backend.batches();
    r.register(
        "raftis_raft_entry_proposals",
        "Proposals (client writes) per log entry this node proposed",
        Histograms(vec![(Vec::new(), batches.proposals.snapshot())]),
    );
    r.register(
        "raftis_raft_entry_requests",
        "Requests per log entry this node proposed",
        Histograms(vec![(Vec::new(), batches.requests.snapshot())]),
    );
    let snapshots = shared.backend.snapshot_stats();
    counter(
        &mut r,
        "raftis_snapshots_written",
        "Snapshots this node built and wrote (INFO raft_snapshots_written)",
        snapshots.written.load(Ordering::Relaxed),
    );
    counter(
        &mut r,
        "raftis_snapshots_written_bytes",
        "Bytes of the snapshots this node wrote",
        snapshots.written_bytes.load(Ordering::Relaxed),
    );
    counter(
        &mut r,
        "raftis_snapshots_installed",
        "Snapshots received from the leader and installed",
        snapshots.installed.load(Ordering::Relaxed),
    );
    gauge(
        &mut r,
        "raftis_snapshot_size_bytes",
        "Size of the newest snapshot written or installed",
        snapshots.last_bytes.load(Ordering::Relaxed) as i64,
    );
    r.register(
        "raftis_snapshot_duration_seconds",
        "Time to build and write each snapshot",
        Histograms(vec![(Vec::new(), snapshots.duration.snapshot())]),
    );
    let bus_errors = Family::<Labels, Counter<u64>>::default();
    // Every peer and kind present from the start (at 0), as Prometheus advises for counters.
    for n in view.nodes.iter().filter(|n| n.id != view.my_id) {
        for kind in crate::net::BUS_ERROR_KINDS {
            bus_errors.get_or_create(&vec![("peer".into(), n.id.to_string()), ("kind".into(), kind.into())]).inc_by(0);
        }
    }
    for (peer, kind, n) in shared.backend.bus_errors() {
        bus_errors.get_or_create(&vec![("peer".into(), peer.to_string()), ("kind".into(), kind.into())]).inc_by(n);
    }
    r.register("raftis_bus_rpc_errors", "Failed Raft RPCs to each peer, by kind", bus_errors);
    gauge(&mut r, "raftis_connected_clients", "Connected clients", shared.clients.count() as i64);
    gauge(&mut r, "raftis_blocked_clients", "Clients waiting in a blocking command", shared.blocked.len() as i64);
    gauge(
        &mut r,
        "raftis_keys",
        "Keys in the keyspace (expired ones not yet deleted included)",
        shared.backend.inspect(|a| a.sm.keyspace.len()) as i64,
    );
    gauge(
        &mut r,
        "raftis_resident_memory_bytes",
        "Resident set size (INFO used_memory)",
        super::commands::server::resident_bytes() as i64,
    );
    gauge(&mut r, "raftis_maxmemory_bytes", "CONFIG maxmemory (0: none)", shared.memory.limit() as i64);
    counter(&mut r, "raftis_commands", "Commands processed", shared.stats.commands.load(Ordering::Relaxed));
    counter(&mut r, "raftis_expired_keys", "Keys deleted by expiry", shared.stats.expired_keys.load(Ordering::Relaxed));
    let calls = Family::<Labels, Counter<u64>>::default();
    let failed = Family::<Labels, Counter<u64>>::default();
    let rejected = Family::<Labels, Counter<u64>>::default();
    let seconds = Family::<Labels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
    let mut durations = Vec::new();
    for c in shared.stats.per_command() {
        if c.calls > 0 {
            let labels = vec![("command".to_string(), c.name.to_string())];
            durations.push((labels, LatencySnapshot::from_micros(&c.buckets, c.usec)));
        }
        let labels = vec![("command".into(), c.name.to_string())];
        calls.get_or_create(&labels).inc_by(c.calls);
        failed.get_or_create(&labels).inc_by(c.failed);
        rejected.get_or_create(&labels).inc_by(c.rejected);
        seconds.get_or_create(&labels).inc_by(c.usec as f64 / 1e6);
    }
    r.register("raftis_command_seconds", "Time spent in each command (INFO commandstats usec)", seconds);
    r.register("raftis_command_duration_seconds", "Time of each call, by command", Histograms(durations));
    r.register("raftis_command_calls", "Calls of each command (INFO commandstats calls)", calls);
    r.register("raftis_command_failed", "Calls that answered an error (failed_calls)", failed);
    r.register("raftis_command_rejected", "Calls refused before running (rejected_calls)", rejected);
    let errors = Family::<Labels, Counter<u64>>::default();
    for (code, count) in shared.stats.errors() {
        errors.get_or_create(&vec![("code".into(), code)]).inc_by(count);
    }
    r.register("raftis_error_replies", "Error replies by error code (INFO errorstats)", errors);
    let mut out = String::new();
    encode(&mut out, &r)?;
    Ok(out)
}
