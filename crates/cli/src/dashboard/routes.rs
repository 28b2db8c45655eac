//! Which control API requests the dashboard passes on: what its pages read and the actions it offers.
//! Everything else (shutdown, CSI access keys, removing OSDs, changing the CephCluster) stays with the
//! CLI, where the person is already root on the host.

use axum::http::Method;
use serde::Deserialize as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Read,
    Change,
    /// `POST /v1/resources`: only CephBlockPool documents (the "create a pool" form).
    Apply,
}

/// `pattern` segments: a literal, or `*` for any one non-empty segment.
fn matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    p.len() == s.len()
        && p.iter()
            .zip(&s)
            .all(|(p, s)| (*p == "*" && !s.is_empty() && *s != "." && *s != "..") || p == s)
}

const READS: [&str; 12] = [
    "/v1/status",
    "/v1/history",
    "/v1/events",
    "/v1/filesystems/*/mounts",
    "/v1/pools",
    "/v1/volumes",
    "/v1/volumes/*/*",
    "/v1/filesystems/*/subvolumes",
    "/v1/filesystems/*/subvolumes/*",
    "/v1/objectstores/*/users",
    "/v1/objectstores/*/users/*",
    "/v1/objectstores/*/buckets",
];

const CHANGES: [(&str, &str); 6] = [
    ("POST", "/v1/volumes"),
    ("POST", "/v1/volumes/*/*/resize"),
    ("POST", "/v1/volumes/*/*/snapshots"),
    ("DELETE", "/v1/volumes/*/*"),
    ("DELETE", "/v1/volumes/*/*/snapshots/*"),
    ("POST", "/v1/filesystems/*/subvolumes"),
];

/// What kind of request `method path` (the control API's path) is, or None when the dashboard does
/// not pass it on.
pub fn allowed(method: &Method, path: &str) -> Option<Route> {
    if *method == Method::GET {
        return READS
            .iter()
            .any(|p| matches(p, path))
            .then_some(Route::Read);
    }
    if *method == Method::POST && path == "/v1/resources" {
        return Some(Route::Apply);
    }
    CHANGES
        .iter()
        .any(|(m, p)| method.as_str() == *m && matches(p, path))
        .then_some(Route::Change)
}

/// Refuses an apply body holding anything but CephBlockPool documents.
pub fn only_block_pools(body: &[u8]) -> Result<(), String> {
    let text =
        std::str::from_utf8(body).map_err(|_| "the documents are not UTF-8 text".to_string())?;
    let mut seen = 0;
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| format!("not YAML: {e}"))?;
        if value.is_null() {
            continue;
        }
        let kind = value["kind"].as_str().unwrap_or_default();
        if kind != "CephBlockPool" {
            return Err(format!(
                "the dashboard creates pools (CephBlockPool) only, not {kind:?}; use `rookery apply -f` for other kinds"
            ));
        }
        seen += 1;
    }
    if seen == 0 {
        return Err("no CephBlockPool document in the request".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_read_and_the_offered_actions_pass() {
        for (m, p, r) in [
            (Method::GET, "/v1/status", Route::Read),
            (Method::GET, "/v1/volumes", Route::Read),
            (Method::GET, "/v1/volumes/replicapool/data1", Route::Read),
            (Method::GET, "/v1/objectstores/s3/users/alice", Route::Read),
            (Method::POST, "/v1/volumes", Route::Change),
            (
                Method::POST,
                "/v1/volumes/replicapool/v/resize",
                Route::Change,
            ),
            (Method::DELETE, "/v1/volumes/replicapool/v", Route::Change),
            (
                Method::DELETE,
                "/v1/volumes/replicapool/v/snapshots/s1",
                Route::Change,
            ),
            (
                Method::POST,
                "/v1/filesystems/myfs/subvolumes",
                Route::Change,
            ),
            (Method::POST, "/v1/resources", Route::Apply),
        ] {
            assert_eq!(allowed(&m, p), Some(r), "{m} {p}");
        }
    }

    #[test]
    fn the_rest_stays_with_the_cli() {
        for (m, p) in [
            (Method::POST, "/v1/shutdown"),
            (Method::POST, "/v1/csi/access"),
            (Method::POST, "/v1/osds/1/retire"),
            (Method::POST, "/v1/daemons/osd.1/retry"),
            (Method::POST, "/v1/resources/delete"),
            (Method::DELETE, "/v1/objectstores/s3/buckets/b"),
            (Method::DELETE, "/v1/filesystems/myfs/subvolumes/a"),
            (Method::GET, "/v1/volumes/replicapool"),
            (Method::GET, "/v1/volumes/../status"),
            (Method::GET, "/v1/volumes//x"),
            (Method::PUT, "/v1/volumes"),
            (Method::GET, "/metrics"),
        ] {
            assert_eq!(allowed(&m, p), None, "{m} {p}");
        }
    }

    #[test]
    fn apply_takes_block_pools_only() {
        let pool = b"apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {name: p}\nspec: {replicated: {size: 1}}\n";
        assert!(only_block_pools(pool).is_ok());
        let cluster = b"kind: CephBlockPool\nmetadata: {name: p}\n---\nkind: CephCluster\nmetadata: {name: c}\n";
        assert!(only_block_pools(cluster)
            .unwrap_err()
            .contains("CephCluster"));
        assert!(only_block_pools(b"").is_err());
        assert!(only_block_pools(b"\xff").is_err());
    }
}
