//! The admin HTTP API (axum): health, readiness, metrics, streams, DLQ, config.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::{json, Value};
use stream_config::{Format, Loader};
use stream_manager::{DeadLetter, DlqFilter, DlqStatus, StreamManager};

/// What handlers share.
pub(crate) struct AppState {
    pub(crate) manager: Arc<StreamManager>,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) token: Option<String>,
    /// A token that may only read (`server.read_token`).
    pub(crate) read_token: Option<String>,
    pub(crate) loader: Loader,
    /// Where a successful `PUT /config` is written.
    pub(crate) config_path: std::path::PathBuf,
    /// Kafka is the in-process broker (a new config saying `embedded` keeps it).
    pub(crate) embedded: bool,
    /// Topics the configuration names that the cluster refused to create.
    pub(crate) missing_topics: stream_manager::MissingTopics,
    /// The last health check and its per-component verdicts, for `/ready`.
    pub(crate) ready_cache: tokio::sync::Mutex<Option<ReadyCheck>>,
    /// The size of the last `/metrics` answer: the next is written into a buffer that
    /// size and an eighth, not one grown by doubling (at 10,000 sources, megabytes).
    pub(crate) metrics_size: std::sync::atomic::AtomicUsize,
}

type AppResult = Result<Response, ApiError>;

/// One health check: when, what it found, the components' verdicts from it.
pub(crate) type ReadyCheck = (
    std::time::Instant,
    stream_manager::Health,
    stream_manager::Components,
);

/// A JSON error with a 4xx status.
pub(crate) struct ApiError(StatusCode, Value);

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(status, json!({ "error": message.into() }))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<stream_manager::Error> for ApiError {
    fn from(e: stream_manager::Error) -> Self {
        match &e {
            stream_manager::Error::UnknownStream(_)
            | stream_manager::Error::UnknownDeadLetter(_) => {
                ApiError::new(StatusCode::NOT_FOUND, e.to_string())
            }
            stream_manager::Error::State { .. } => {
                ApiError::new(StatusCode::CONFLICT, e.to_string())
            }
            stream_manager::Error::Config(c) => config_error(c),
            stream_manager::Error::NeedsRestart { .. } => {
                ApiError::new(StatusCode::CONFLICT, e.to_string())
            }
            _ => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error_chain(&e)),
        }
    }
}

/// An error with its causes, `outer: cause: cause` (as anyhow's `{:#}` prints).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn config_error(e: &stream_config::Error) -> ApiError {
    match e.diagnostics() {
        Some(d) => ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({
                "error": "invalid configuration; nothing was changed",
                "errors": d.items.iter().map(|i| json!({
                    "path": i.path,
                    "line": i.location.map(|l| l.line),
                    "column": i.location.map(|l| l.column),
                    "message": i.message,
                    "hint": i.hint,
                })).collect::<Vec<_>>(),
            }),
        ),
        None => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/streams", get(list_streams))
        .route("/streams/{id}", get(get_stream))
        .route("/streams/{id}/{action}", post(stream_action))
        .route("/dlq", get(list_dlq))
        .route("/dlq/stats", get(dlq_stats))
        .route("/dlq/replay", post(replay_filter))
        .route("/dlq/purge", post(purge_dlq))
        .route("/dlq/{id}/replay", post(replay_one))
        .route("/dlq/{id}", delete(discard))
        .route("/config", get(get_config).put(put_config))
        .route("/config/warnings", get(crate::ui::config_warnings))
        .route("/whoami", get(crate::ui::whoami))
        .route("/cluster", get(get_cluster))
        .route("/throughput", get(get_throughput))
        .route("/metrics/summary", get(crate::summary::metrics_summary))
        .route("/openapi.json", get(openapi))
        .route_layer(middleware::from_fn(json_only))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES));
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .merge(crate::ui::routes())
        .merge(protected)
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no such route; see /openapi.json")
        })
        .with_state(state)
}

/// The largest request body accepted (a configuration is far smaller).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Requests that change something must say `Content-Type: application/json`: a browser
/// cannot send that cross-site without a CORS preflight, so no web page can post a form
/// to the admin API. (JSON only also keeps YAML parsing off the API.)
async fn json_only(request: Request, next: Next) -> Response {
    let mutating = !matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if mutating && !json {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "requests that change something must be Content-Type: application/json",
        )
        .into_response();
    }
    next.run(request).await
}

async fn auth(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.token {
        let admin = bearer_matches(&headers, token);
        let reader = state
            .read_token
            .as_ref()
            .is_some_and(|t| bearer_matches(&headers, t));
        let reading = matches!(
            *request.method(),
            axum::http::Method::GET | axum::http::Method::HEAD
        );
        if reader && !admin && !reading {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "the read-only token cannot change anything; use the admin token",
            )
            .into_response();
        }
        if !admin && !reader {
            return ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
                .into_response();
        }
    }
    next.run(request).await
}

/// How long one health check answers `/ready` (a probe every second must not run a
/// Kafka metadata request and DLQ scans each time).
const READY_CACHE: std::time::Duration = std::time::Duration::from_secs(1);

async fn ready(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let (h, components) = {
        let mut cache = s.ready_cache.lock().await;
        match &*cache {
            Some((at, h, c)) if at.elapsed() < READY_CACHE => (h.clone(), c.clone()),
            _ => {
                let h = s.manager.health().await;
                let c = s.manager.components(&h);
                *cache = Some((std::time::Instant::now(), h.clone(), c.clone()));
                (h, c)
            }
        }
    };
    // Details (broker errors name addresses) only with the token, when one is set.
    let detailed = s.token.as_ref().is_none_or(|t| bearer_matches(&headers, t))
        || s.read_token
            .as_ref()
            .is_some_and(|t| bearer_matches(&headers, t));
    let mut reasons = Vec::new();
    if !h.producer.kafka_connected {
        reasons.push(if detailed {
            format!(
                "kafka unreachable: {}",
                h.producer.last_error.clone().unwrap_or_default()
            )
        } else {
            "kafka unreachable".to_owned()
        });
    }
    if !h.streams.commit_failing.is_empty() {
        reasons.push(format!(
            "fetch state cannot be committed: {}",
            h.streams.commit_failing.join(", ")
        ));
    }
    for t in s.missing_topics.list() {
        let why = if detailed { t.why.as_str() } else { "refused" };
        reasons.push(format!(
            "topic `{}` does not exist and the cluster did not create it ({why}): create it, or allow this service to (records routed to it are dead-lettered as unknown_topic)",
            t.topic
        ));
    }
    if h.streams.total > 0 && h.streams.active == 0 {
        reasons.push("no stream is running".to_owned());
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = if detailed {
        json!({ "ready": reasons.is_empty(), "reasons": reasons, "health": h, "components": components })
    } else {
        json!({ "ready": reasons.is_empty(), "reasons": reasons })
    };
    (status, Json(body)).into_response()
}

/// The request carries `Authorization: Bearer <token>`, compared in constant time (how
/// much of a guess matches must not show in the timing).
pub(crate) fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| {
            subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.as_bytes()).into()
        })
}

/// `GET /metrics`. Rendered on a blocking thread: at 10,000 sources the text is tens of
/// megabytes and takes most of a second, which would otherwise stall one of the runtime's
/// workers (and every poll scheduled on it) for as long.
async fn metrics_text(State(s): State<Arc<AppState>>) -> Response {
    let (manager, handle) = (s.manager.clone(), s.metrics.clone());
    let size = s.metrics_size.load(std::sync::atomic::Ordering::Relaxed);
    let rendered = tokio::task::spawn_blocking(move || {
        manager.refresh_metrics();
        let mut text = Vec::with_capacity(size + size / 8);
        handle.render_to_write(&mut text).map(|()| text)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|written| written.map_err(|e| e.to_string()));
    match rendered {
        Ok(text) => {
            (s.metrics_size).store(text.len(), std::sync::atomic::Ordering::Relaxed);
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering /metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `GET /streams` paging: with none of these, the whole list as before.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamsQuery {
    q: Option<String>,
    status: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

/// The most streams one page returns.
const MAX_STREAMS_PAGE: usize = 1000;

async fn list_streams(State(s): State<Arc<AppState>>, Query(q): Query<StreamsQuery>) -> AppResult {
    if q.q.is_none() && q.status.is_none() && q.offset.is_none() && q.limit.is_none() {
        return Ok(Json(json!(s.manager.list_streams().await)).into_response());
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_STREAMS_PAGE).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit must be 1-{MAX_STREAMS_PAGE}"),
        ));
    }
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        Some(name) => Some(
            name.parse()
                .map_err(|e: String| ApiError::new(StatusCode::BAD_REQUEST, e))?,
        ),
        None => None,
    };
    let query = stream_manager::StreamQuery {
        q: q.q.unwrap_or_default(),
        status,
        offset: q.offset.unwrap_or(0),
        limit,
    };
    Ok(Json(s.manager.stream_page(&query).await).into_response())
}

async fn get_throughput(State(s): State<Arc<AppState>>) -> Json<stream_manager::Throughput> {
    Json(s.manager.throughput())
}

async fn get_cluster(State(s): State<Arc<AppState>>) -> AppResult {
    match s.manager.cluster_view().await {
        Some(view) => Ok(Json(view?).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not a worker group: `cluster.enabled` is false, this process runs every source",
        )),
    }
}

async fn get_stream(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> AppResult {
    Ok(Json(s.manager.stream(&id).await?).into_response())
}

async fn stream_action(
    State(s): State<Arc<AppState>>,
    Path((id, action)): Path<(String, String)>,
) -> AppResult {
    let info = match action.as_str() {
        "start" => s.manager.start_stream(&id).await?,
        "stop" => s.manager.stop_stream(&id).await?,
        "pause" => s.manager.pause_stream(&id).await?,
        "resume" => s.manager.resume_stream(&id).await?,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("unknown action `{other}`; use start, stop, pause or resume"),
            ))
        }
    };
    Ok(Json(info).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DlqQuery {
    status: Option<String>,
    reason: Option<String>,
    source_id: Option<String>,
    #[serde(default = "default_limit")]
    limit: i64,
    #[serde(default)]
    offset: i64,
    topic: Option<String>,
    /// Include payloads (off by default: a page of rows stays small).
    #[serde(default)]
    payload: bool,
}

fn default_limit() -> i64 {
    100
}

impl DlqQuery {
    fn filter(&self) -> Result<DlqFilter, ApiError> {
        let status = match &self.status {
            Some(s) => Some(
                s.parse::<DlqStatus>()
                    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?,
            ),
            None => None,
        };
        if !(1..=1000).contains(&self.limit) || self.offset < 0 {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "limit must be 1-1000 and offset >= 0",
            ));
        }
        Ok(DlqFilter {
            status,
            reason: self.reason.clone(),
            source_id: self.source_id.clone(),
        })
    }
}

fn letter_json(l: &DeadLetter, with_payload: bool) -> Value {
    let mut v = json!({
        "id": l.id, "message_id": l.message_id, "source_id": l.source_id, "source_topic": l.source_topic,
        "payload_bytes": l.payload.len(),
        "failure_reason": l.failure_reason, "error_details": l.error_details, "retry_count": l.retry_count,
        "status": l.status.as_str(), "retry_at": l.retry_at, "created_at": l.created_at, "updated_at": l.updated_at,
    });
    if with_payload {
        v["payload"] = l
            .payload_json
            .as_ref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&l.payload).into_owned()));
    }
    v
}

/// `POST /dlq/purge`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    #[serde(default)]
    status: Option<Vec<String>>,
    #[serde(default)]
    older_than_days: Option<f64>,
    #[serde(default)]
    keep_newest: Option<u64>,
}

async fn purge_dlq(State(s): State<Arc<AppState>>, Json(body): Json<PurgeBody>) -> AppResult {
    let statuses = match body.status {
        None => stream_manager::Purge::SETTLED.to_vec(),
        Some(names) => names
            .iter()
            .map(|n| n.parse::<DlqStatus>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?,
    };
    if body.older_than_days.is_none() && body.keep_newest.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "give older_than_days and/or keep_newest",
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let purge = stream_manager::Purge {
        statuses,
        older_than_ms: body
            .older_than_days
            .map(|d| now - (d.max(0.0) * 86_400_000.0) as i64),
        keep_newest: body.keep_newest,
    };
    let deleted = s.manager.dlq_purge(&purge).await?;
    Ok(Json(json!({ "deleted": deleted })).into_response())
}

async fn list_dlq(State(s): State<Arc<AppState>>, Query(q): Query<DlqQuery>) -> AppResult {
    let filter = q.filter()?;
    let rows = s.manager.dlq_list(&filter, q.limit, q.offset).await?;
    Ok(Json(json!({ "items": rows.iter().map(|l| letter_json(l, q.payload)).collect::<Vec<_>>(), "limit": q.limit, "offset": q.offset })).into_response())
}

async fn dlq_stats(State(s): State<Arc<AppState>>) -> AppResult {
    Ok(Json(s.manager.dlq_stats().await?).into_response())
}

async fn replay_one(
    State(s): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Query(q): Query<DlqQuery>,
) -> AppResult {
    let outcome = s.manager.dlq_replay_one(id, q.topic.as_deref()).await?;
    Ok(Json(outcome).into_response())
}

async fn replay_filter(State(s): State<Arc<AppState>>, body: Option<Json<DlqQuery>>) -> AppResult {
    let q = body.map(|b| b.0).unwrap_or(DlqQuery {
        status: None,
        reason: None,
        source_id: None,
        limit: default_limit(),
        offset: 0,
        topic: None,
        payload: false,
    });
    let filter = q.filter()?;
    let outcome = s
        .manager
        .dlq_replay(&filter, q.limit, q.topic.as_deref())
        .await?;
    Ok(Json(outcome).into_response())
}

async fn discard(State(s): State<Arc<AppState>>, Path(id): Path<i64>) -> AppResult {
    s.manager.dlq_discard(id).await?;
    Ok(Json(json!({ "discarded": id })).into_response())
}

async fn get_config(State(s): State<Arc<AppState>>) -> Json<Value> {
    let tree = stream_config::redacted(&s.manager.config());
    Json(serde_json::to_value(tree).unwrap_or(Value::Null))
}

/// `PUT /config`: a JSON body (the `json_only` layer has checked the content type).
async fn put_config(State(s): State<Arc<AppState>>, body: String) -> AppResult {
    let mut next = s
        .loader
        .load_str(&body, Format::Json, "<PUT /config>")
        .map_err(|e| {
            // Counted like a refused reload (apply_config counts the rest).
            metrics::counter!(stream_manager::CONFIG_UPDATES, "outcome" => "refused").increment(1);
            config_error(&e)
        })?;
    crate::run::keep_embedded_broker(&mut next, &s.manager, s.embedded);
    let warnings = stream_config::warnings(&next);
    crate::log_warnings(&warnings);
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    let touched = s.manager.apply_config(next).await?;
    // Applied: the file says so too, so a SIGHUP or a restart does not revert it. The
    // text is kept as sent (`${VAR}` references stay references, secrets stay out).
    let persisted = match stream_config::save_json_text(&body, &s.config_path) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = &e as &dyn std::error::Error, path = %s.config_path.display(),
                "the update is applied but could not be written to the config file; a restart will revert it");
            false
        }
    };
    Ok(Json(json!({
        "applied": true,
        "persisted": persisted,
        "restarted_streams": touched,
        "warnings": warnings,
    }))
    .into_response())
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
