//! Serving `/metrics` (the supervisor's and the CSI driver's): OpenMetrics text to scrapers that ask
//! for it (Prometheus does), the classic Prometheus text format (0.0.4) to everyone else.
//!
//! prometheus-client writes OpenMetrics only, whose counters are declared without their `_total`
//! suffix. Parsers of the classic format (promtool, older scrapers, curl users' scripts) then see an
//! empty counter family and an untyped `..._total` without help, so those get a translation.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub const PATH: &str = "/metrics";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the registry as OpenMetrics text; may block (collectors ask Ceph).
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// The router serving `GET /metrics` from `render`.
pub fn router(render: Render) -> Router {
    Router::new().route(
        PATH,
        get(move |headers: HeaderMap| {
            let render = render.clone();
            async move {
                match tokio::task::spawn_blocking(move || render()).await {
                    Ok(text) => respond(&headers, text),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                }
            }
        }),
    )
}

fn respond(headers: &HeaderMap, openmetrics: String) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (kind, body) = if wants_openmetrics(accept) {
        (OPENMETRICS, openmetrics)
    } else {
        (CLASSIC, classic_text(&openmetrics))
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(kind))],
        body,
    )
        .into_response()
}

/// True when the Accept header prefers OpenMetrics to the classic text format (by its q values; a tie
/// or no mention goes to the classic format, which every parser reads).
pub fn wants_openmetrics(accept: &str) -> bool {
    let mut openmetrics = 0.0f32;
    let mut classic = 0.0f32;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|v| v.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => classic = classic.max(q),
            _ => {}
        }
    }
    openmetrics > classic
}

/// OpenMetrics text as the classic Prometheus text format: counter families named with `_total` like
/// their samples, `unknown` as `untyped`, no `# UNIT` or `# EOF` lines.
pub fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match descriptor {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let tail = if prefix == "# TYPE " && tail == "unknown" {
                    "untyped"
                } else {
                    tail
                };
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The address to serve metrics on, refused unless it is 127.0.0.1 (nothing of rookery listens
/// beyond this host: the endpoint has no authentication).
pub fn loopback_address(flag: &str, value: &str) -> Result<SocketAddr, String> {
    let refuse = || {
        format!(
            "{flag} {value:?}: metrics are served on 127.0.0.1 only (they have no authentication); \
             use 127.0.0.1:PORT (0 picks a free port) and reach it from elsewhere through an SSH \
             tunnel or a local proxy"
        )
    };
    let addr: SocketAddr = value.parse().map_err(|_| refuse())?;
    if addr.ip() != IpAddr::V4(Ipv4Addr::LOCALHOST) {
        return Err(refuse());
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OM: &str = "# HELP rookery_reconcile_runs Passes.\n\
# TYPE rookery_reconcile_runs counter\n\
rookery_reconcile_runs_total 3\n\
# HELP rookery_ceph_osds_up OSDs up.\n\
# TYPE rookery_ceph_osds_up gauge\n\
rookery_ceph_osds_up 3\n\
# HELP rookery_reconcile_duration_seconds Time.\n\
# TYPE rookery_reconcile_duration_seconds histogram\n\
# UNIT rookery_reconcile_duration_seconds seconds\n\
rookery_reconcile_duration_seconds_sum 0.5\n\
rookery_reconcile_duration_seconds_count 3\n\
rookery_reconcile_duration_seconds_bucket{le=\"+Inf\"} 3\n\
# HELP x Something.\n\
# TYPE x unknown\n\
x 1\n\
# EOF\n";

    #[test]
    fn classic_text_names_counters_with_total() {
        let text = classic_text(OM);
        assert!(text.starts_with(
            "# HELP rookery_reconcile_runs_total Passes.\n\
             # TYPE rookery_reconcile_runs_total counter\n\
             rookery_reconcile_runs_total 3\n"
        ));
        assert!(text.contains("# TYPE rookery_ceph_osds_up gauge\nrookery_ceph_osds_up 3\n"));
        assert!(text.contains("# TYPE rookery_reconcile_duration_seconds histogram\n"));
        assert!(text.contains("# TYPE x untyped\n"));
        assert!(
            !text.contains("# UNIT") && !text.contains("# EOF"),
            "{text}"
        );
    }

    #[test]
    fn accept_header_chooses_the_format() {
        // What Prometheus 2.x sends.
        assert!(wants_openmetrics(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(!wants_openmetrics(""));
        assert!(!wants_openmetrics("*/*"));
        assert!(!wants_openmetrics("text/plain"));
        assert!(!wants_openmetrics(
            "text/plain;version=0.0.4,application/openmetrics-text;q=0.5"
        ));
    }

    #[test]
    fn only_127_0_0_1_is_served() {
        let ok = loopback_address("--metrics-address", "127.0.0.1:9100").unwrap();
        assert_eq!(ok.port(), 9100);
        for bad in [
            "0.0.0.0:9100",
            "203.0.113.5:9100",
            "[::]:9100",
            "[::1]:9100",
            "localhost:9100",
            "9100",
        ] {
            let e = loopback_address("--metrics-address", bad).unwrap_err();
            assert!(e.contains("127.0.0.1:PORT"), "{e}");
        }
    }
}
