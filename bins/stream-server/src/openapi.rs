//! The admin API's OpenAPI 3.0 document: every route with its parameters, request body,
//! responses and error shapes. A test validates it with openapi-spec-validator and calls
//! every route, checking the status is one the document lists.

use serde_json::{json, Value};

/// A route: method, path, summary, parameters, request body schema, responses.
struct Route {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    params: Vec<Value>,
    body: Option<Value>,
    ok: Value,
    errors: &'static [u16],
}

fn path_param(name: &str, schema: Value, what: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": schema, "description": what })
}

fn query(name: &str, schema: Value, what: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": what })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn routes() -> Vec<Route> {
    let id = || path_param("id", json!({"type": "string"}), "a source id");
    let row = || {
        path_param(
            "id",
            json!({"type": "integer", "format": "int64"}),
            "a DLQ row id",
        )
    };
    let filters = || {
        vec![
            query("status", reference("DlqStatus"), "only this status"),
            query(
                "reason",
                json!({"type": "string"}),
                "only this failure reason",
            ),
            query("source_id", json!({"type": "string"}), "only this source"),
            query(
                "limit",
                json!({"type": "integer", "minimum": 0, "default": 100}),
                "rows per page",
            ),
            query(
                "offset",
                json!({"type": "integer", "minimum": 0, "default": 0}),
                "rows to skip",
            ),
            query(
                "payload",
                json!({"type": "boolean", "default": false}),
                "include payloads",
            ),
        ]
    };
    let object = || json!({"type": "object"});
    vec![
        Route { method: "get", path: "/health", summary: "Liveness: 200 while the process serves", params: vec![], body: None, ok: object(), errors: &[] },
        Route { method: "get", path: "/ready", summary: "Readiness: 200 when Kafka is reachable and streams run, else 503 with reasons (details only with a token)", params: vec![], body: None, ok: reference("Ready"), errors: &[503] },
        Route { method: "get", path: "/metrics", summary: "Prometheus text format", params: vec![], body: None, ok: json!({"type": "string"}), errors: &[] },
        Route { method: "get", path: "/metrics/summary", summary: "The seed's get_metrics() figures: producer, queue, throttling, API, per stream", params: vec![query("streams", json!({"type": "boolean", "default": true}), "include the per-stream map")], body: None, ok: reference("Summary"), errors: &[401] },
        Route { method: "get", path: "/streams", summary: "Every stream with status and figures; with any of q, status, offset, limit one page of them (a StreamPage), for thousands of sources", params: vec![
            query("q", json!({"type": "string"}), "only ids containing this text (case-insensitive)"),
            query("status", json!({"type": "string", "enum": ["running", "paused", "stopped", "disabled", "unassigned"]}), "only this status"),
            query("offset", json!({"type": "integer", "minimum": 0, "default": 0}), "matching streams to skip, in id order"),
            query("limit", json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}), "streams per page"),
        ], body: None, ok: json!({"oneOf": [{"type": "array", "items": reference("Stream")}, reference("StreamPage")]}), errors: &[400, 401] },
        Route { method: "get", path: "/whoami", summary: "What the caller's token may do: admin, read (the read-only token) or open (no token configured); the console hides its buttons for read", params: vec![], body: None, ok: json!({"type": "object", "required": ["role", "can_change"], "properties": {"role": {"type": "string", "enum": ["admin", "read", "open"]}, "can_change": {"type": "boolean"}}}), errors: &[401] },
        Route { method: "get", path: "/config/warnings", summary: "What `stream-server validate` warns about the configuration in force", params: vec![], body: None, ok: json!({"type": "object", "properties": {"warnings": {"type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"}, "message": {"type": "string"}, "hint": {"type": "string", "nullable": true}}}}}}), errors: &[401] },
        Route { method: "get", path: "/ui", summary: "The operator console (HTML; no data, so no token: the page asks for one); strict Content-Security-Policy", params: vec![], body: None, ok: json!({"type": "string"}), errors: &[] },
        Route { method: "get", path: "/ui/app.js", summary: "The console's script", params: vec![], body: None, ok: json!({"type": "string"}), errors: &[] },
        Route { method: "get", path: "/ui/app.css", summary: "The console's stylesheet", params: vec![], body: None, ok: json!({"type": "string"}), errors: &[] },
        Route { method: "get", path: "/streams/{id}", summary: "One stream, with each upstream part", params: vec![id()], body: None, ok: reference("Stream"), errors: &[401, 404] },
        Route { method: "post", path: "/streams/{id}/{action}", summary: "Start, stop, pause or resume a stream", params: vec![id(), path_param("action", json!({"type": "string", "enum": ["start", "stop", "pause", "resume"]}), "what to do")], body: None, ok: reference("Stream"), errors: &[400, 401, 403, 404, 409, 415] },
        Route { method: "get", path: "/dlq", summary: "Dead letters, newest first", params: filters(), body: None, ok: json!({"type": "object", "properties": {"items": {"type": "array", "items": reference("DeadLetter")}, "limit": {"type": "integer"}, "offset": {"type": "integer"}}}), errors: &[400, 401, 503] },
        Route { method: "get", path: "/dlq/stats", summary: "Counts by reason and status, oldest pending", params: vec![], body: None, ok: object(), errors: &[401, 503] },
        Route { method: "post", path: "/dlq/{id}/replay", summary: "Replay one dead letter", params: vec![row(), query("topic", json!({"type": "string"}), "another topic")], body: None, ok: reference("ReplayOutcome"), errors: &[401, 403, 404, 415, 503] },
        Route { method: "post", path: "/dlq/replay", summary: "Replay by filter (default status: permanent_failure)", params: vec![], body: Some(json!({"type": "object", "properties": {"status": reference("DlqStatus"), "reason": {"type": "string"}, "source_id": {"type": "string"}, "topic": {"type": "string"}, "limit": {"type": "integer"}}, "additionalProperties": false})), ok: reference("ReplayOutcome"), errors: &[400, 401, 403, 415, 503] },
        Route { method: "post", path: "/dlq/purge", summary: "Delete rows (default statuses: the rows done with)", params: vec![], body: Some(json!({"type": "object", "properties": {"status": {"type": "array", "items": reference("DlqStatus")}, "older_than_days": {"type": "number", "minimum": 0}, "keep_newest": {"type": "integer", "minimum": 0}}, "additionalProperties": false})), ok: json!({"type": "object", "properties": {"deleted": {"type": "integer"}}}), errors: &[400, 401, 403, 415, 503] },
        Route { method: "delete", path: "/dlq/{id}", summary: "Discard one dead letter", params: vec![row()], body: None, ok: object(), errors: &[401, 403, 404, 415, 503] },
        Route { method: "get", path: "/config", summary: "The configuration in force, secrets redacted", params: vec![], body: None, ok: object(), errors: &[401] },
        Route { method: "put", path: "/config", summary: "Checked runtime update, written to the config file when applied", params: vec![], body: Some(object()), ok: json!({"type": "object", "properties": {"applied": {"type": "boolean"}, "persisted": {"type": "boolean"}, "restarted_streams": {"type": "array", "items": {"type": "string"}}, "warnings": {"type": "array", "items": {"type": "string"}}}}), errors: &[400, 401, 403, 409, 413, 415, 422, 503] },
        Route { method: "get", path: "/cluster", summary: "Cluster mode: the worker group (members, their slots and sources, health); 404 in single-process mode", params: vec![], body: None, ok: json!({"type": "object", "properties": {"group_id": {"type": "string"}, "worker_id": {"type": "string"}, "slots": {"type": "array", "items": {"type": "integer"}}, "sources": {"type": "array", "items": {"type": "string"}}, "members": {"type": "array", "items": {"type": "object", "properties": {"worker_id": {"type": "string"}, "last_seen_ms_ago": {"type": "integer"}, "report": {"type": "object"}}}}}}), errors: &[401, 404, 503] },
        Route { method: "get", path: "/throughput", summary: "Records in (accepted into the queue), out (acknowledged by Kafka) and dead-lettered per second over the last 15 minutes, oldest first, from a ring the server keeps", params: vec![], body: None, ok: reference("Throughput"), errors: &[401] },
        Route { method: "get", path: "/openapi.json", summary: "This description", params: vec![], body: None, ok: object(), errors: &[401] },
    ]
}

fn error_text(status: u16) -> &'static str {
    match status {
        400 => "bad request: the message says which parameter",
        401 => "missing or wrong bearer token",
        403 => "the read-only token cannot change anything",
        404 => "no such stream or dead letter",
        409 => "the stream's state does not allow it, or the update needs a restart",
        413 => "body larger than 1 MiB",
        415 => "a change must be Content-Type: application/json",
        422 => "invalid configuration: every problem with path and line",
        503 => "a component (Kafka, the DLQ store) is unavailable",
        _ => "error",
    }
}

/// What a route's 200 answers with.
fn media_type(path: &str) -> &'static str {
    match path {
        "/metrics" => "text/plain",
        "/ui" => "text/html",
        "/ui/app.js" => "text/javascript",
        "/ui/app.css" => "text/css",
        _ => "application/json",
    }
}

/// The document.
pub(crate) fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for r in routes() {
        let mut responses = serde_json::Map::new();
        responses.insert(
            "200".into(),
            json!({ "description": "OK", "content": { media_type(r.path): { "schema": r.ok } } }),
        );
        for status in r.errors {
            let schema = if *status == 422 {
                reference("ConfigErrors")
            } else {
                reference("Error")
            };
            responses.insert(
                status.to_string(),
                json!({ "description": error_text(*status), "content": { "application/json": { "schema": schema } } }),
            );
        }
        let mut op =
            json!({ "summary": r.summary, "parameters": r.params, "responses": responses });
        if let Some(body) = r.body {
            op["requestBody"] =
                json!({ "required": true, "content": { "application/json": { "schema": body } } });
        }
        if matches!(r.path, "/health" | "/ready" | "/metrics") || r.path.starts_with("/ui") {
            op["security"] = json!([]);
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    let mut document = json!({
        "openapi": "3.0.3",
        "info": { "title": "stream-manager admin API", "version": env!("CARGO_PKG_VERSION") },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } },
                "ConfigErrors": { "type": "object", "properties": {
                    "error": { "type": "string" },
                    "errors": { "type": "array", "items": { "type": "object", "properties": {
                        "path": { "type": "string" }, "line": { "type": "integer", "nullable": true },
                        "column": { "type": "integer", "nullable": true }, "message": { "type": "string" },
                        "hint": { "type": "string", "nullable": true } } } } } },
                "DlqStatus": { "type": "string", "enum": ["queued_for_retry", "permanent_failure", "retry_success", "replayed", "discarded"] },
                "DeadLetter": { "type": "object", "properties": {
                    "id": { "type": "integer" }, "message_id": { "type": "string" }, "source_id": { "type": "string" },
                    "source_topic": { "type": "string" }, "payload_bytes": { "type": "integer" },
                    "payload": { "description": "only with payload=true" },
                    "failure_reason": { "type": "string" }, "error_details": { "type": "string" },
                    "retry_count": { "type": "integer" }, "status": { "$ref": "#/components/schemas/DlqStatus" },
                    "retry_at": { "type": "integer", "nullable": true }, "created_at": { "type": "integer" },
                    "updated_at": { "type": "integer" } } },
                "ReplayOutcome": { "type": "object", "properties": { "replayed": { "type": "integer" }, "failed": { "type": "integer" } } },
                "Stream": { "type": "object", "properties": {
                    "id": { "type": "string" }, "source_type": { "type": "string" }, "status": { "type": "string" },
                    "records_processed": { "type": "integer" }, "records_dead_lettered": { "type": "integer" },
                    "failing": { "type": "boolean" }, "commit_failing": { "type": "boolean" }, "last_error": { "type": "string", "nullable": true },
                    "cursor": { "type": "string", "nullable": true },
                    "parts": { "type": "array", "items": { "type": "object" } },
                    "progress": { "$ref": "#/components/schemas/Progress" },
                    "schema_violations": { "type": "integer", "description": "records that failed their schema (data contracts)" },
                    "last_schema_violation": { "type": "object", "description": "only after one", "properties": { "at_ms": { "type": "integer" }, "schema": { "type": "string" }, "topic": { "type": "string" }, "mode": { "type": "string", "enum": ["enforce", "observe"] }, "details": { "type": "string" } } },
                    "newest_event_at": { "type": "string", "format": "date-time", "nullable": true,
                        "description": "the newest record's own event time (freshness_basis event_time), else the last successful fetch (last_fetch); null before either" },
                    "freshness_seconds": { "type": "number", "nullable": true, "description": "seconds since newest_event_at (0 when it lies in the future)" },
                    "freshness_basis": { "type": "string", "enum": ["event_time", "last_fetch"], "nullable": true },
                    "last_poll_at": { "type": "string", "format": "date-time", "nullable": true, "description": "when the last fetch ended" },
                    "last_poll_outcome": { "type": "string", "enum": ["ok", "error"], "nullable": true } } },
                "StreamPage": { "type": "object", "required": ["total", "matched", "offset", "limit", "by_status", "items"], "properties": {
                    "total": { "type": "integer", "description": "streams configured" },
                    "matched": { "type": "integer", "description": "streams the query matches, before paging" },
                    "offset": { "type": "integer" }, "limit": { "type": "integer" },
                    "by_status": { "type": "object", "additionalProperties": { "type": "integer" }, "description": "every stream counted by status" },
                    "items": { "type": "array", "items": { "$ref": "#/components/schemas/Stream" } } } },
                "Throughput": { "type": "object", "required": ["start_unix_seconds", "step_seconds", "records_in", "records_out", "dead_lettered"], "properties": {
                    "start_unix_seconds": { "type": "integer", "description": "the first value's second, UTC" },
                    "step_seconds": { "type": "integer", "description": "seconds per value (1)" },
                    "records_in": { "type": "array", "items": { "type": "integer" }, "description": "900 values, oldest first" },
                    "records_out": { "type": "array", "items": { "type": "integer" } },
                    "dead_lettered": { "type": "array", "items": { "type": "integer" } } } },
                "Progress": { "type": "object", "additionalProperties": true,
                    "description": "the source's own progress, only for sources that report one; a noaa_weather state sweep (kind noaa_state_sweep) has these properties",
                    "properties": {
                        "kind": { "type": "string" }, "state": { "type": "string" },
                        "stations_known": { "type": "integer" }, "stations_fetched_this_sweep": { "type": "integer" },
                        "sweeps_completed": { "type": "integer" }, "last_sweep_seconds": { "type": "number", "nullable": true },
                        "list_refreshed_at": { "type": "string", "format": "date-time", "nullable": true },
                        "requests_per_poll": { "type": "integer" }, "stations_per_poll": { "type": "integer" },
                        "polls_per_sweep": { "type": "integer" } } },
                "Ready": { "type": "object", "required": ["ready", "reasons"], "properties": { "ready": { "type": "boolean" }, "reasons": { "type": "array", "items": { "type": "string" } }, "health": { "type": "object", "description": "only with a token" }, "components": { "$ref": "#/components/schemas/Components" } } }
            }
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
    });
    if let (Some(schemas), Value::Object(more)) = (
        document["components"]["schemas"].as_object_mut(),
        crate::summary::schemas(),
    ) {
        schemas.extend(more);
    }
    document
}
