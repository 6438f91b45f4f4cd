//! The operator console: `/ui`, one HTML page, one script and one stylesheet compiled
//! into the binary (no build step, nothing fetched at run time). The page holds no
//! data, so it loads without a token; it reads everything from the JSON API with the
//! token the operator types (kept in the tab's `sessionStorage`, sent as a bearer
//! header; no cookies, so no new cross-site surface). Also the two small routes the
//! page needs besides the API: `GET /whoami` (its role) and `GET /config/warnings`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::api::{bearer_matches, AppState};

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

/// No inline script or style, nothing from another origin, no framing, no forms.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'none'";

/// The page and its two assets (open routes: they hold no data).
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(|| async { asset("text/html", INDEX) }))
        .route("/ui/", get(|| async { asset("text/html", INDEX) }))
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript", SCRIPT) }),
        )
        .route("/ui/app.css", get(|| async { asset("text/css", STYLE) }))
}

fn asset(kind: &str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(h, header::CONTENT_TYPE, &format!("{kind}; charset=utf-8"));
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::CACHE_CONTROL, "no-cache");
    response
}

/// `GET /whoami`: what the caller may do, `admin`, `read` (the read-only token) or
/// `open` (no token configured: loopback, every action allowed). A wrong token never
/// gets here (401 from the auth layer).
pub(crate) async fn whoami(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Json<Value> {
    let role = match &s.token {
        None => "open",
        Some(t) if bearer_matches(&headers, t) => "admin",
        Some(_) => "read",
    };
    Json(json!({ "role": role, "can_change": role != "read" }))
}

/// `GET /config/warnings`: what `validate` warns about the configuration in force
/// (valid, but probably not meant).
pub(crate) async fn config_warnings(State(s): State<Arc<AppState>>) -> Json<Value> {
    let warnings = stream_config::warnings(&s.manager.config());
    Json(json!({
        "warnings": warnings.iter().map(|w| json!({
            "path": w.path,
            "message": w.message,
            "hint": w.hint,
        })).collect::<Vec<_>>(),
    }))
}
