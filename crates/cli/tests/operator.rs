//! The operator under a real Kubernetes (scripts/k8s/up.sh: etcd, API server, controller-manager,
//! scheduler, containerd, a kubelet, all on 127.0.0.1): deploy/operator/ applied as a user applies it,
//! then Rook's own cluster-test.yaml, unchanged; its `useAllDevices` takes a blank loop device the test
//! attaches to the node. Everything is checked through kubectl, as a user would.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::k8s::{repo, Kube};
use common::text;

const NS: &str = "rook-ceph";

/// A loop device over a sparse file, detached on drop.
struct Loop {
    dev: PathBuf,
    _file: tempfile::NamedTempFile,
}

impl Loop {
    fn new(size: u64) -> Loop {
        let file = tempfile::NamedTempFile::new_in("/var/tmp").unwrap();
        file.as_file().set_len(size).unwrap();
        let o = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "losetup: {}", text(&o));
        Loop {
            dev: PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
            _file: file,
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

fn cluster_field(kube: &Kube, path: &str) -> String {
    let o = kube.kubectl_output(
        &[
            "get",
            "cephcluster",
            "my-cluster",
            "-n",
            NS,
            "-o",
            &format!("jsonpath={path}"),
        ],
        None,
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn operator_runs_rooks_cluster_test() {
    let kube = Kube::start();
    let host_path = kube.dir.join("rook-data");
    // The node serves on loopback only: its daemons bind the address this annotation gives.
    kube.kubectl(&[
        "annotate",
        "node",
        kube.var("K8S_NODE"),
        "rookery.io/address=127.0.0.1",
        "--overwrite",
    ]);
    kube.apply(&kube.deploy_operator(&host_path, common::free_port()));
    let osd_device = Loop::new(6 << 30);

    let started = Instant::now();
    let cluster_test =
        std::fs::read_to_string(repo().join("crates/spec/tests/fixtures/test-cluster.yaml"))
            .unwrap();
    kube.apply(&cluster_test);
    kube.wait_for(
        "CephCluster my-cluster Ready and HEALTH_OK",
        Duration::from_secs(300),
        || {
            let phase = cluster_field(&kube, "{.status.phase}");
            let health = cluster_field(&kube, "{.status.ceph.health}");
            (phase == "Ready" && health == "HEALTH_OK").then_some(())
        },
    );
    let ready_in = started.elapsed();
    eprintln!(
        "cluster-test.yaml: Ready and HEALTH_OK in {:.1} s",
        ready_in.as_secs_f64()
    );

    // Rook's objects are where its users look for them.
    for deployment in ["rook-ceph-mon-a", "rook-ceph-mgr-a", "rook-ceph-osd-0"] {
        kube.kubectl(&["get", "deployment", deployment, "-n", NS]);
    }
    // The device plan is in the status, with the test's device taken.
    let devices = cluster_field(&kube, "{.status.rookery.devices}");
    let name = osd_device
        .dev
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(devices.contains(&format!("{name}: osd.0")), "{devices}");
    let columns = kube.kubectl(&["get", "cephcluster", "-n", NS]);
    assert!(
        columns.contains("HEALTH_OK") && columns.contains("Ready"),
        "{columns}"
    );
    let generation = cluster_field(&kube, "{.metadata.generation}");
    assert_eq!(
        cluster_field(&kube, "{.status.observedGeneration}"),
        generation
    );
    let pool = kube.jsonpath(
        &["get", "cephblockpool", "builtin-mgr", "-n", NS],
        "{.status.phase}",
    );
    assert_eq!(pool.trim(), "Ready");
}
