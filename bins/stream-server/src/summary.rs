//! The seed's views on the admin API: `GET /metrics/summary` (its `get_metrics()`
//! figures) and the `components` of a detailed `/ready` answer (its `health_check()`),
//! with their OpenAPI schemas.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use crate::api::AppState;

/// `GET /metrics/summary?streams=false`: without the per-stream map (the console's
/// overview, which at thousands of sources reads them a page at a time instead).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SummaryQuery {
    #[serde(default = "yes")]
    streams: bool,
}

fn yes() -> bool {
    true
}

/// `GET /metrics/summary`.
pub(crate) async fn metrics_summary(
    State(s): State<Arc<AppState>>,
    Query(q): Query<SummaryQuery>,
) -> Json<stream_manager::Summary> {
    let mut summary = s.manager.summary();
    if !q.streams {
        summary.streams.clear();
    }
    Json(summary)
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

fn count() -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": 0 })
}

fn state() -> Value {
    json!({ "type": "string", "enum": ["normal", "moderate", "critical"] })
}

fn names() -> Value {
    json!({ "type": "array", "items": { "type": "string" } })
}

/// The schemas `Summary` and `Components` (for `components.schemas`).
pub(crate) fn schemas() -> Value {
    let percent = json!({ "type": "number", "minimum": 0 });
    let ratio = json!({ "type": "number", "minimum": 0, "maximum": 1 });
    let verdict = || json!({ "type": "boolean" });
    json!({
        "Summary": object(&["uptime_seconds", "producer", "queue", "throttling", "api", "streams"], json!({
            "uptime_seconds": count(),
            "producer": object(&["total_sent", "total_failed", "retry_count"], json!({
                "total_sent": count(), "total_failed": count(), "retry_count": count() })),
            "queue": object(&["size", "enqueued", "dequeued", "dropped", "utilization_percent"], json!({
                "size": count(), "enqueued": count(), "dequeued": count(), "dropped": count(),
                "utilization_percent": percent,
                "by_priority": { "type": "object", "additionalProperties": count(), "description": "records held by priority (low, normal, high, critical)" },
                "bytes_by_priority": { "type": "object", "additionalProperties": count() },
                "max_size": count(),
                "max_bytes": { "type": "integer", "format": "int64", "minimum": 0, "nullable": true } })),
            "throttling": object(&["current_state", "backoff_level", "rate_adjustments"], json!({
                "current_state": state(), "backoff_level": count(), "rate_adjustments": count() })),
            "api": object(&["success_rate", "cache_hit_rate", "total_requests"], json!({
                "success_rate": ratio, "cache_hit_rate": ratio, "total_requests": count() })),
            "streams": { "type": "object", "description": "by source id",
                "additionalProperties": object(&["records_processed", "errors", "uptime_seconds"], json!({
                    "records_processed": count(), "errors": count(), "uptime_seconds": count() })) },
        })),
        "Components": object(&["producer", "queue", "throttling", "api_clients", "dlq", "streams"], json!({
            "producer": object(&["healthy", "kafka_connected"], json!({
                "healthy": verdict(), "kafka_connected": { "type": "boolean" } })),
            "queue": object(&["healthy", "size", "utilization_percent"], json!({
                "healthy": verdict(), "size": count(), "utilization_percent": percent })),
            "throttling": object(&["healthy", "current_state", "backoff_level"], json!({
                "healthy": verdict(), "current_state": state(), "backoff_level": count() })),
            "api_clients": object(&["healthy", "failing"], json!({
                "healthy": verdict(), "failing": names() })),
            "dlq": object(&["healthy", "reachable", "pending", "buffered"], json!({
                "healthy": verdict(), "reachable": { "type": "boolean" },
                "pending": { "type": "integer", "format": "int64", "minimum": -1 }, "buffered": count() })),
            "streams": object(&["healthy", "active_count", "total", "not_running", "failing"], json!({
                "healthy": verdict(), "active_count": count(), "total": count(),
                "not_running": names(), "failing": names() })),
        })),
    })
}
