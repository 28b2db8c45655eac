//! The web dashboard the supervisor serves on 127.0.0.1 (`rookery up --dashboard-port`): a login page,
//! the app (one HTML page, one script, one stylesheet, all inside the binary), and `/api/...`, which
//! hands the requests the app may make to the control API in this process. The dashboard itself reads
//! nothing from Ceph: what a page shows is what the control API answers, with the same refusals.
//!
//! Every route but `/login` needs a session; every change needs the session's CSRF token as well (in
//! `X-CSRF-Token`; the cookie is also SameSite=Strict).

pub mod access;
mod routes;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tower::ServiceExt as _;

use access::{Granted, Sessions};

const COOKIE: &str = "rookery_session";
const CSRF_HEADER: &str = "x-csrf-token";

const LOGIN_HTML: &str = include_str!("assets/login.html");
const APP_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Scripts only from here; nothing may frame the pages; no page sends a referrer.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Where the digest of the access key is kept.
pub fn key_file(layout: &rookery_orchestrator::Layout) -> PathBuf {
    layout.root.join("dashboard").join("access-key.sha256")
}

pub struct Dashboard {
    key_file: PathBuf,
    sessions: Mutex<Sessions>,
    /// The control API, with its state: where `/api/...` requests go.
    api: Router,
}

impl Dashboard {
    pub fn new(key_file: PathBuf, api: Router) -> Arc<Dashboard> {
        Arc::new(Dashboard {
            key_file,
            sessions: Mutex::new(Sessions::default()),
            api,
        })
    }

    /// The digests of the keys in force (read each time, so `rotate-key` acts at once).
    fn digests(&self) -> Vec<String> {
        match access::digests_in_force(&self.key_file) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "dashboard access key");
                Vec::new()
            }
        }
    }

    fn session(&self, headers: &HeaderMap) -> Option<Granted> {
        let token = cookie(headers, COOKIE)?;
        let in_force = self.digests();
        crate::supervisor::lock(&self.sessions).check(&token, &in_force, Instant::now())
    }
}

pub fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/", get(app_page))
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
        .route("/api/{*path}", axum::routing::any(api))
        .fallback(not_found)
        .with_state(dashboard)
        .layer(axum::middleware::map_response(secure_headers))
}

async fn secure_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn login_form(message: &str) -> String {
    LOGIN_HTML.replace("{{MESSAGE}}", &escape(message))
}

/// Text made safe inside HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

async fn login_page(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if d.session(&headers).is_some() {
        return Redirect::to("/").into_response();
    }
    html(login_form(""))
}

#[derive(Deserialize)]
struct LoginForm {
    key: String,
}

async fn login(State(d): State<Arc<Dashboard>>, form: Form<LoginForm>) -> Response {
    let in_force = d.digests();
    if in_force.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            html(login_form(
                "This cluster has no dashboard access key yet: run `rookery dashboard rotate-key` to make one.",
            )),
        )
            .into_response();
    }
    let Some(digest) = access::matching(&form.key, &in_force) else {
        tracing::warn!("dashboard login refused: wrong access key");
        // Slows down guessing (a 192-bit key cannot be guessed anyway).
        tokio::time::sleep(Duration::from_millis(500)).await;
        return (
            StatusCode::UNAUTHORIZED,
            html(login_form(
                "That access key is not this cluster's. `rookery up` printed it when the dashboard was first turned on; `rookery dashboard rotate-key` makes a new one.",
            )),
        )
            .into_response();
    };
    let opened = crate::supervisor::lock(&d.sessions).open(digest, &in_force, Instant::now());
    match opened {
        Ok((token, _)) => {
            tracing::info!("dashboard login");
            let cookie = format!(
                "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                access::LIFETIME.as_secs()
            );
            let mut r = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            html(login_form(&e.to_string())),
        )
            .into_response(),
    }
}

async fn logout(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let Some(granted) = d.session(&headers) else {
        return Redirect::to("/login").into_response();
    };
    if !access::csrf_matches(
        &granted,
        headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()),
    ) {
        return refused_csrf();
    }
    if let Some(token) = cookie(&headers, COOKIE) {
        crate::supervisor::lock(&d.sessions).close(&token);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("rookery_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    r
}

async fn app_page(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    match d.session(&headers) {
        Some(g) => html(APP_HTML.replace("{{CSRF}}", &escape(&g.csrf))),
        None => Redirect::to("/login").into_response(),
    }
}

fn asset(d: &Dashboard, headers: &HeaderMap, kind: &'static str, body: &'static str) -> Response {
    if d.session(headers).is_none() {
        return unauthenticated();
    }
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

async fn app_js(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    asset(&d, &headers, "text/javascript; charset=utf-8", APP_JS)
}

async fn app_css(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    asset(&d, &headers, "text/css; charset=utf-8", APP_CSS)
}

fn unauthenticated() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({
            "code": "unauthenticated",
            "message": "log in to the dashboard first (/login)",
        })),
    )
        .into_response()
}

fn refused_csrf() -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({
            "code": "csrf",
            "message": "a change must carry the page's X-CSRF-Token; reload the page and try again",
        })),
    )
        .into_response()
}

async fn not_found(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if d.session(&headers).is_none() {
        return unauthenticated();
    }
    (StatusCode::NOT_FOUND, "no such page").into_response()
}

/// `/api/PATH` -> the control API's `/PATH`, for the requests the app makes (`routes::allowed`).
async fn api(State(d): State<Arc<Dashboard>>, request: Request) -> Response {
    let Some(granted) = d.session(request.headers()) else {
        return unauthenticated();
    };
    let method = request.method().clone();
    let path = request
        .uri()
        .path()
        .strip_prefix("/api")
        .unwrap_or_default()
        .to_string();
    if method != Method::GET {
        let offered = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok());
        if !access::csrf_matches(&granted, offered) {
            return refused_csrf();
        }
    }
    let Some(route) = routes::allowed(&method, &path) else {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({
                "code": "not_in_dashboard",
                "message": format!("{method} {path} is not something the dashboard does; use the rookery CLI"),
            })),
        )
            .into_response();
    };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 1 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "a request body is at most 1 MiB",
            )
                .into_response()
        }
    };
    if route == routes::Route::Apply {
        if let Err(why) = routes::only_block_pools(&body) {
            return (
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({"code": "not_in_dashboard", "message": why})),
            )
                .into_response();
        }
    }
    let target = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut forward = Request::builder().method(parts.method).uri(target);
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = parts.headers.get(&name) {
            forward = forward.header(name, v);
        }
    }
    let Ok(forward) = forward.body(Body::from(body)) else {
        return (
            StatusCode::BAD_REQUEST,
            "a request the dashboard cannot pass on",
        )
            .into_response();
    };
    match d.api.clone().oneshot(forward).await {
        Ok(r) => r.into_response(),
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; rookery_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
