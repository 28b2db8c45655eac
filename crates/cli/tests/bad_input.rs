//! Bad input is refused with exit code 2, a message naming the field and the fix, and nothing on disk.

mod common;

use common::{rookery, text};

fn refused(yaml: &str, expect: &[&str]) {
    let parent = tempfile::tempdir().unwrap();
    let file = parent.path().join("cluster.yaml");
    std::fs::write(&file, yaml).unwrap();
    let dir = parent.path().join("data");
    let o = rookery(
        &dir,
        &["up", "--mon-port", "0", "-f", file.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    for e in expect {
        assert!(err.contains(e), "{err:?} lacks {e:?}");
    }
    assert!(err.contains("fix:"), "{err}");
    assert!(!dir.exists(), "the data dir was created for a bad spec");
}

const HEAD: &str = "apiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata: {name: c}\n";

#[test]
fn malformed_yaml() {
    refused(
        "apiVersion: [ceph.rook.io/v1\nkind: CephCluster\n",
        &["line", "YAML"],
    );
}

#[test]
fn unknown_kind_and_api_version() {
    refused(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: c}\n",
        &["apiVersion", "ceph.rook.io/v1", "kind", "Pod"],
    );
    refused(
        "apiVersion: ceph.rook.io/v1\nkind: CephClusterz\nmetadata: {name: c}\n",
        &["kind", "CephClusterz"],
    );
}

#[test]
fn invalid_fields() {
    refused(
        &format!(
            "{HEAD}spec:\n  mon: {{count: 0}}\n  storage: {{osdFiles: {{count: 3, size: 10Gi}}}}\n"
        ),
        &["spec.mon.count"],
    );
    refused(
        &format!("{HEAD}spec:\n  storage: {{osdFiles: {{count: 3, size: ten}}}}\n"),
        &["spec.storage.osdFiles.size", "ten", "10Gi"],
    );
}

#[test]
fn unsupported_rook_field_is_reported_not_ignored() {
    refused(
        &format!("{HEAD}spec:\n  storage: {{osdFiles: {{count: 3, size: 10Gi}}}}\n  network: {{connections: {{requireMsgr2: true}}}}\n"),
        &["spec.network.connections", "does not support"],
    );
    // A network setting other than what rookery does is refused, named.
    refused(
        &format!("{HEAD}spec:\n  storage: {{osdFiles: {{count: 3, size: 10Gi}}}}\n  network: {{provider: multus}}\n"),
        &["spec.network.provider", "\"multus\" networking is not supported", "provider: host"],
    );
}

#[test]
fn a_folder_that_is_not_a_cluster_is_left_alone() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("precious"), b"keep me").unwrap();
    let o = rookery(&dir, &["up", "--mon-port", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("holds no rookery cluster"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    assert_eq!(std::fs::read(dir.join("precious")).unwrap(), b"keep me");
}

#[test]
fn commands_on_a_missing_cluster_say_what_to_do() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("none");
    let o = rookery(&dir, &["status"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rookery up"),
        "{}",
        text(&o)
    );
    let o = rookery(&dir, &["down"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!dir.exists());
}

#[test]
fn metrics_are_served_on_loopback_only() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("none");
    let socket = format!("unix://{}/csi.sock", parent.path().display());
    for address in ["0.0.0.0:9100", "[::]:9100", "localhost:9100"] {
        let o = rookery(
            &dir,
            &[
                "csi",
                "--endpoint",
                &socket,
                "--node-id",
                "n1",
                "--metrics-address",
                address,
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("use 127.0.0.1:PORT"), "{}", text(&o));
    }
    assert!(!dir.exists());
}

#[test]
fn a_taken_metrics_port_changes_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let o = rookery(&dir, &["up", "--mon-port", "0", "--metrics-port", &port]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is taken"),
        "{}",
        text(&o)
    );
    assert!(!dir.exists(), "the data dir was created");
}
