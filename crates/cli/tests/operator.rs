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

/// On a failure, what the operator said and what the CephCluster's status shows.
struct OperatorReport<'a>(&'a Kube);

impl Drop for OperatorReport<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for args in [
            &["logs", "-n", NS, "deploy/rookery-operator", "--tail", "120"][..],
            &["logs", "-n", NS, "ds/rookery-agent", "--tail", "40"][..],
            &["get", "cephcluster", "-n", NS, "-o", "yaml"][..],
        ] {
            let o = self.0.kubectl_output(args, None);
            eprintln!("--- kubectl {}\n{}", args.join(" "), text(&o));
        }
    }
}

/// The resident memory of the host process `rookery <role>` (a pod's process is one of the host's), MiB.
fn rss_of(role: &str) -> f64 {
    let want = format!("/usr/local/bin/rookery\0{role}\0");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).starts_with(&want) {
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let kb: f64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0.0);
            return kb / 1024.0;
        }
    }
    0.0
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
    let _on_failure = OperatorReport(&kube);
    let osd_device = Loop::new(6 << 30);

    // The cluster is applied by `rookery bench operator`, which times it until Ready with HEALTH_OK next
    // to `rookery up` of the same spec on this host, and reads the operator's and agent's memory.
    let fixture = repo().join("crates/spec/tests/fixtures/test-cluster.yaml");
    let bench = std::process::Command::new(env!("CARGO_BIN_EXE_rookery"))
        .args([
            "-o",
            "json",
            "bench",
            "operator",
            "--timeout",
            "300",
            "--kubeconfig",
        ])
        .arg(kube.dir.join("kubeconfig"))
        .arg("-f")
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(
        bench.status.success(),
        "rookery bench operator: {}",
        text(&bench)
    );
    let figures: serde_json::Value = serde_json::from_slice(&bench.stdout).unwrap();
    eprintln!("rookery bench operator: {figures}");
    assert!(
        figures["readySecs"].as_f64().unwrap() > 0.0
            && figures["floorSecs"].as_f64().unwrap() > 0.0
    );
    assert!(
        figures["operatorMiB"]["atRest"].as_u64().unwrap() > 0,
        "{figures}"
    );
    assert!(
        figures["agentMiB"]["atRest"].as_u64().unwrap() > 0,
        "{figures}"
    );
    assert_eq!(cluster_field(&kube, "{.status.ceph.health}"), "HEALTH_OK");
    // Each step is an Event named by its kind, and the device plan is one too: `kubectl describe` tells
    // why a disk was taken or skipped.
    let reasons = kube.jsonpath(&["get", "events", "-n", NS], "{.items[*].reason}");
    for reason in ["CreateMonStore", "Start", "AddDeviceOsd", "DevicePlan"] {
        assert!(
            reasons.split_whitespace().any(|r| r == reason),
            "no {reason} event: {reasons}"
        );
    }
    let described = kube.kubectl(&["describe", "cephcluster", "my-cluster", "-n", NS]);
    let device = osd_device
        .dev
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(described.contains(&format!("{device}: ")), "{described}");
    // Every OSD up, every placement group active+clean (the bench waits for both).
    let osds = cluster_field(&kube, "{.status.rookery.osds}");
    let pgs: serde_json::Value =
        serde_json::from_str(&cluster_field(&kube, "{.status.rookery.pgs}")).unwrap();
    assert!(
        osds.contains("\"up\":1") && osds.contains("\"total\":1"),
        "{osds}"
    );
    assert_eq!(pgs["activeClean"], pgs["total"], "{pgs}");
    let rss_busy = (rss_of("operator"), rss_of("agent"));

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

    block_volumes_through_rooks_storage_class(&kube);
    one_pod_per_node(&kube);
    shared_files_through_rooks_filesystem(&kube);
    objects_through_rooks_store_and_user(&kube);
    eprintln!(
        "RSS (MiB): operator {:.1} just after HEALTH_OK, {:.1} at rest with a filesystem and an object store; agent {:.1} / {:.1}",
        rss_busy.0, rss_of("operator"), rss_busy.1, rss_of("agent")
    );
    bad_input_changes_nothing(&kube);
    let _more_devices = heals_itself(&kube, &host_path);
    one_operator_acts(&kube);
    operator_killed_during_a_pool_delete(&kube, &host_path);
    deletion_waits_for_dependents_then_cleans_up(&kube, &host_path, &osd_device);
}

/// The node runs one pod of ours, where Rook runs three: the agent with both CSI node plugins (which
/// just served a volume), and only the agent's container holds an API token.
fn one_pod_per_node(kube: &Kube) {
    let daemon_sets = kube.jsonpath(
        &["get", "daemonsets", "--all-namespaces"],
        "{.items[*].metadata.name}",
    );
    assert_eq!(daemon_sets.trim(), "rookery-agent");
    let pods = kube.jsonpath(
        &["get", "pods", "-n", NS, "-l", "app=rookery-agent"],
        "{range .items[*]}{.metadata.name}:{.spec.containers[*].name}{\"\\n\"}{end}",
    );
    let pods: Vec<&str> = pods.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(pods.len(), 1, "{pods:?}");
    let (pod, containers) = pods[0].split_once(':').unwrap();
    assert_eq!(containers, "agent csi-rbd csi-cephfs");
    let has_token = |container: &str| {
        kube.kubectl_output(
            &[
                "exec",
                "-n",
                NS,
                pod,
                "-c",
                container,
                "--",
                "test",
                "-e",
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
            ],
            None,
        )
        .status
        .success()
    };
    assert!(has_token("agent"));
    assert!(!has_token("csi-rbd") && !has_token("csi-cephfs"));
}

/// `kubectl patch --type merge` of the CephCluster.
fn patch_cluster(kube: &Kube, patch: &str) -> std::process::Output {
    kube.kubectl_output(
        &[
            "patch",
            "cephcluster",
            "my-cluster",
            "-n",
            NS,
            "--type",
            "merge",
            "-p",
            patch,
        ],
        None,
    )
}

fn pod_uids(kube: &Kube, selector: &str) -> String {
    kube.jsonpath(
        &["get", "pods", "-n", NS, "-l", selector],
        "{.items[*].metadata.uid}",
    )
}

/// An invalid change of the CephCluster is reported in its status with the field named, and changes
/// nothing that runs; putting it back makes the cluster Ready again.
fn bad_input_changes_nothing(kube: &Kube) {
    let daemons = pod_uids(kube, "app.kubernetes.io/managed-by=rookery");
    // A wrong type is refused by the CRD's schema, generated from the spec's Rust types.
    let refused = patch_cluster(kube, r#"{"spec":{"mon":{"count":"three"}}}"#);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("spec.mon.count"),
        "{said}"
    );
    let taken = patch_cluster(kube, r#"{"spec":{"mon":{"count":2}}}"#);
    assert!(taken.status.success(), "{}", text(&taken));
    let message = kube.wait_for("the invalid spec reported", Duration::from_secs(60), || {
        // One read, so the phase and its message come from the same status.
        let status = cluster_field(kube, "{.status.phase}|{.status.message}");
        let (phase, message) = status.split_once('|')?;
        (phase == "Failure").then(|| message.to_string())
    });
    assert!(
        message.contains("spec.mon.count") && message.contains("odd number"),
        "{message}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        pod_uids(kube, "app.kubernetes.io/managed-by=rookery"),
        daemons,
        "an invalid spec changed the daemons"
    );
    let restored = patch_cluster(kube, r#"{"spec":{"mon":{"count":1}}}"#);
    assert!(restored.status.success(), "{}", text(&restored));
    kube.wait_for("the cluster Ready again", Duration::from_secs(60), || {
        (cluster_field(kube, "{.status.phase}") == "Ready").then_some(())
    });
}

/// The host pid of `rookery <role>`.
fn pid_of(role: &str) -> Option<i32> {
    let want = format!("/usr/local/bin/rookery\0{role}\0");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .starts_with(&want)
            .then(|| e.file_name().to_str()?.parse().ok())
            .flatten()
    })
}

/// A second replica of the operator waits on the Lease while the first one leads.
fn one_operator_acts(kube: &Kube) {
    let holder = kube.jsonpath(
        &["get", "lease", "rookery-operator", "-n", NS],
        "{.spec.holderIdentity}",
    );
    kube.kubectl(&[
        "scale",
        "deployment",
        "rookery-operator",
        "-n",
        NS,
        "--replicas",
        "2",
    ]);
    let second = kube.wait_for(
        "a second operator running",
        Duration::from_secs(120),
        || {
            let names = kube.jsonpath(
                &[
                    "get",
                    "pods",
                    "-n",
                    NS,
                    "-l",
                    "app=rookery-operator",
                    "--field-selector",
                    "status.phase=Running",
                ],
                "{.items[*].metadata.name}",
            );
            names
                .split_whitespace()
                .find(|n| *n != holder)
                .map(str::to_string)
        },
    );
    kube.wait_for(
        "the second operator waiting on the Lease",
        Duration::from_secs(60),
        || {
            let log = kube.kubectl(&["logs", "-n", NS, &second]);
            log.contains("waiting to lead").then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(5));
    let log = kube.kubectl(&["logs", "-n", NS, &second]);
    assert!(
        !log.contains("leading\n") && !log.contains("INFO rookery_k8s::operator: leading"),
        "two operators lead:\n{log}"
    );
    assert_eq!(
        kube.jsonpath(
            &["get", "lease", "rookery-operator", "-n", NS],
            "{.spec.holderIdentity}"
        ),
        holder
    );
    // Scaling down removes the newer pod (the standby); were it the leader, the standby would lead
    // once the Lease expires.
    kube.kubectl(&[
        "scale",
        "deployment",
        "rookery-operator",
        "-n",
        NS,
        "--replicas",
        "1",
    ]);
    kube.wait_for("one operator again", Duration::from_secs(60), || {
        let names = kube.jsonpath(
            &["get", "pods", "-n", NS, "-l", "app=rookery-operator"],
            "{.items[*].metadata.name}",
        );
        (names.split_whitespace().count() == 1).then_some(())
    });
}

/// The operator killed (-9) just after a pool's deletion was asked: the restarted one finishes it.
fn operator_killed_during_a_pool_delete(kube: &Kube, host_path: &std::path::Path) {
    kube.apply(&format!(
        "apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {{name: doomed, namespace: {NS}}}\nspec:\n  replicated: {{size: 1}}\n"
    ));
    kube.wait_for("pool doomed Ready", Duration::from_secs(60), || {
        (phase_of(kube, &["cephblockpool", "doomed", "-n", NS]) == "Ready").then_some(())
    });
    let pools = |kube: &Kube| {
        let conf = host_path.join(NS).join("ceph.conf");
        kube.kubectl(&[
            "exec",
            "-n",
            NS,
            "deploy/rookery-operator",
            "--",
            "ceph",
            "--conf",
            &conf.to_string_lossy(),
            "osd",
            "pool",
            "ls",
        ])
    };
    assert!(pools(kube).lines().any(|p| p == "doomed"));
    kube.kubectl(&[
        "delete",
        "cephblockpool",
        "doomed",
        "-n",
        NS,
        "--wait=false",
    ]);
    let pid = pid_of("operator").expect("the operator's process");
    // SAFETY: kill(2) on a pid read from /proc.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    kube.wait_for(
        "the pool's deletion finished by the restarted operator",
        Duration::from_secs(180),
        || gone(kube, &["cephblockpool", "doomed", "-n", NS]).then_some(()),
    );
    assert!(
        !pools(kube).lines().any(|p| p == "doomed"),
        "pool doomed is still in Ceph"
    );
}

/// A `ceph` command through the operator (which holds the admin key).
fn ceph(kube: &Kube, host_path: &std::path::Path, args: &[&str]) -> String {
    let conf = host_path.join(NS).join("ceph.conf");
    let conf = conf.to_string_lossy();
    let mut all = vec![
        "exec",
        "-n",
        NS,
        "deploy/rookery-operator",
        "--",
        "ceph",
        "--conf",
        &conf,
    ];
    all.extend(args);
    kube.kubectl(&all)
}

/// `ceph osd ls`, as ids.
fn ceph_osd_ids(kube: &Kube, host_path: &std::path::Path) -> Vec<String> {
    ceph(kube, host_path, &["osd", "ls"])
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// A CephFilesystemSubVolumeGroup's group leaves Ceph with it, as in Rook; while it holds a subvolume
/// its deletion waits, naming it.
fn subvolume_group_deletion_waits_for_its_subvolumes(kube: &Kube, host_path: &std::path::Path) {
    let groups = |kube: &Kube| ceph(kube, host_path, &["fs", "subvolumegroup", "ls", "myfs"]);
    assert!(groups(kube).contains("\"csi\""), "{}", groups(kube));
    ceph(
        kube,
        host_path,
        &[
            "fs",
            "subvolume",
            "create",
            "myfs",
            "held",
            "--group_name",
            "csi",
        ],
    );
    kube.kubectl(&[
        "delete",
        "cephfilesystemsubvolumegroup",
        "myfs-csi",
        "-n",
        NS,
        "--wait=false",
    ]);
    let group = ["cephfilesystemsubvolumegroup", "myfs-csi", "-n", NS];
    let why = blocked_deletion(kube, &group);
    assert!(why.contains("subvolumes held"), "{why}");
    ceph(
        kube,
        host_path,
        &[
            "fs",
            "subvolume",
            "rm",
            "myfs",
            "held",
            "--group_name",
            "csi",
        ],
    );
    kube.wait_for(
        "the subvolume group deleted once it is empty",
        Duration::from_secs(120),
        || gone(kube, &group).then_some(()),
    );
    assert!(!groups(kube).contains("\"csi\""), "{}", groups(kube));
}

fn osd_deployments(kube: &Kube) -> Vec<String> {
    let mut names: Vec<String> = kube
        .jsonpath(
            &["get", "deployments", "-n", NS, "-l", "app=rook-ceph-osd"],
            "{.items[*].metadata.name}",
        )
        .split_whitespace()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// A deleted mon pod comes back; a device attached to the node becomes an OSD within 15 s with
/// nothing restarted; the operator killed (-9) while it makes an OSD converges after its restart, with
/// no duplicate daemon and no leaked OSD. Returns the devices attached, detached by the caller's end.
fn heals_itself(kube: &Kube, host_path: &std::path::Path) -> Vec<Loop> {
    let healthy = || {
        // Once a run timed out here after osd.2's creation survived the operator's kill -9: the
        // health checks that were still failing say why.
        kube.wait_until("HEALTH_OK again", Duration::from_secs(180), || {
            let ceph = cluster_field(kube, "{.status.ceph}");
            let health = serde_json::from_str::<serde_json::Value>(&ceph)
                .ok()
                .and_then(|v| v["health"].as_str().map(str::to_string));
            match health.as_deref() {
                Some("HEALTH_OK") => Ok(()),
                _ => Err(ceph),
            }
        })
    };
    kube.kubectl(&[
        "delete",
        "pod",
        "-n",
        NS,
        "-l",
        "app=rook-ceph-mon",
        "--wait=true",
    ]);
    kube.wait_for("the mon back", Duration::from_secs(120), || {
        let phase = kube.jsonpath(
            &["get", "pods", "-n", NS, "-l", "app=rook-ceph-mon"],
            "{.items[*].status.phase}",
        );
        (phase == "Running").then_some(())
    });
    healthy();

    // Nothing restarted: Rook users had to delete the operator's pod for a new disk to be seen. The
    // operator's and the agent's pods stay the same, their containers never restart.
    let controllers = || {
        kube.jsonpath(
            &[
                "get",
                "pods",
                "-n",
                NS,
                "-l",
                "app in (rookery-operator,rookery-agent)",
            ],
            "{.items[*].metadata.uid} {.items[*].status.containerStatuses[*].restartCount}",
        )
    };
    let before = controllers();
    let second = Loop::new(6 << 30);
    let attached = Instant::now();
    kube.wait_for("osd.1 on the new device", Duration::from_secs(60), || {
        let up = kube.jsonpath(
            &[
                "get",
                "pods",
                "-n",
                NS,
                "-l",
                "ceph_daemon_id=1,app=rook-ceph-osd",
            ],
            "{.items[*].status.containerStatuses[*].ready}",
        );
        (up == "true").then_some(())
    });
    let took = attached.elapsed();
    eprintln!(
        "a new device became a running OSD in {:.1} s",
        took.as_secs_f64()
    );
    assert!(
        took < Duration::from_secs(15),
        "the new device took {took:?} to become an OSD"
    );
    assert_eq!(
        controllers(),
        before,
        "the operator or the agent restarted while a device was added"
    );
    healthy();

    // kill -9 of the operator while it makes an OSD on a third device.
    let third = Loop::new(6 << 30);
    let name = third.dev.file_name().unwrap().to_string_lossy().to_string();
    kube.wait_for("the third device taken", Duration::from_secs(30), || {
        let devices = cluster_field(kube, "{.status.rookery.devices}");
        devices
            .contains(&format!("{name}: becomes an OSD"))
            .then_some(())
    });
    let pid = pid_of("operator").expect("the operator's process");
    // SAFETY: kill(2) on a pid read from /proc; the worst case is a signal to a process that is gone.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    kube.wait_for(
        "osd.2 running after the operator's restart",
        Duration::from_secs(180),
        || {
            let up = kube.jsonpath(
                &[
                    "get",
                    "pods",
                    "-n",
                    NS,
                    "-l",
                    "ceph_daemon_id=2,app=rook-ceph-osd",
                ],
                "{.items[*].status.containerStatuses[*].ready}",
            );
            (up == "true").then_some(())
        },
    );
    healthy();
    assert_eq!(
        osd_deployments(kube),
        ["rook-ceph-osd-0", "rook-ceph-osd-1", "rook-ceph-osd-2"]
    );
    assert_eq!(
        ceph_osd_ids(kube, host_path),
        ["0", "1", "2"],
        "an OSD leaked"
    );
    vec![second, third]
}

fn phase_of(kube: &Kube, what: &[&str]) -> String {
    let mut args = vec!["get"];
    args.extend(what);
    let o = kube.kubectl_output(
        &[args.as_slice(), &["-o", "jsonpath={.status.phase}"]].concat(),
        None,
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A pool and a StorageClass with the fields of Rook's block example (its secrets, clusterID = the
/// cluster's namespace; our driver's name), then a claim that a pod writes checksummed files to and
/// another pod reads back.
fn block_volumes_through_rooks_storage_class(kube: &Kube) {
    kube.apply(&format!(
        r#"apiVersion: ceph.rook.io/v1
kind: CephBlockPool
metadata: {{name: replicapool, namespace: {NS}}}
spec:
  failureDomain: osd
  replicated: {{size: 1, requireSafeReplicaSize: false}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: rook-ceph-block}}
provisioner: rbd.csi.rookery.io
parameters:
  clusterID: {NS}
  pool: replicapool
  imageFormat: "2"
  imageFeatures: layering
  csi.storage.k8s.io/provisioner-secret-name: rook-csi-rbd-provisioner
  csi.storage.k8s.io/provisioner-secret-namespace: {NS}
  csi.storage.k8s.io/controller-expand-secret-name: rook-csi-rbd-provisioner
  csi.storage.k8s.io/controller-expand-secret-namespace: {NS}
  csi.storage.k8s.io/controller-publish-secret-name: rook-csi-rbd-provisioner
  csi.storage.k8s.io/controller-publish-secret-namespace: {NS}
  csi.storage.k8s.io/node-stage-secret-name: rook-csi-rbd-node
  csi.storage.k8s.io/node-stage-secret-namespace: {NS}
  csi.storage.k8s.io/controller-modify-secret-name: rook-csi-rbd-provisioner
  csi.storage.k8s.io/controller-modify-secret-namespace: {NS}
  csi.storage.k8s.io/node-publish-secret-name: rook-csi-rbd-node
  csi.storage.k8s.io/node-publish-secret-namespace: {NS}
  csi.storage.k8s.io/fstype: ext4
allowVolumeExpansion: true
reclaimPolicy: Delete
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: rbd-pvc, namespace: default}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
  storageClassName: rook-ceph-block
"#
    ));
    kube.wait_for("claim rbd-pvc bound", Duration::from_secs(180), || {
        (phase_of(kube, &["pvc", "rbd-pvc", "-n", "default"]) == "Bound").then_some(())
    });
    let written = run_pod(
        kube,
        "rbd-writer",
        "rbd-pvc",
        "for i in 1 2 3; do head -c 4000000 /dev/urandom > /data/f$i; done; \
         cd /data && sha256sum f1 f2 f3 > sums && sync && cat sums",
    );
    assert_eq!(written.lines().count(), 3, "{written}");
    let read = run_pod(
        kube,
        "rbd-reader",
        "rbd-pvc",
        "cd /data && sha256sum -c sums >&2 && cat sums",
    );
    // The pod's log has sha256sum's verdicts (its stderr) before the sums.
    assert!(
        read.ends_with(&written) && read.matches(": OK").count() == 3,
        "{read}"
    );
    assert_eq!(
        phase_of(kube, &["cephblockpool", "replicapool", "-n", NS]),
        "Ready"
    );
}

/// A filesystem with the fields of Rook's small filesystem example (and its subvolume group), a
/// StorageClass with those of Rook's CephFS class, and a ReadWriteMany claim two pods use at once.
fn shared_files_through_rooks_filesystem(kube: &Kube) {
    kube.apply(&format!(
        r#"apiVersion: ceph.rook.io/v1
kind: CephFilesystem
metadata: {{name: myfs, namespace: {NS}}}
spec:
  metadataPool:
    replicated: {{size: 1, requireSafeReplicaSize: false}}
  dataPools:
    - name: replicated
      failureDomain: osd
      replicated: {{size: 1, requireSafeReplicaSize: false}}
  preserveFilesystemOnDelete: false
  metadataServer:
    activeCount: 1
    activeStandby: false
---
apiVersion: ceph.rook.io/v1
kind: CephFilesystemSubVolumeGroup
metadata: {{name: myfs-csi, namespace: {NS}}}
spec:
  name: csi
  filesystemName: myfs
  pinning: {{distributed: 1}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: rook-cephfs}}
provisioner: cephfs.csi.rookery.io
parameters:
  clusterID: {NS}
  fsName: myfs
  pool: myfs-replicated
  csi.storage.k8s.io/provisioner-secret-name: rook-csi-cephfs-provisioner
  csi.storage.k8s.io/provisioner-secret-namespace: {NS}
  csi.storage.k8s.io/controller-expand-secret-name: rook-csi-cephfs-provisioner
  csi.storage.k8s.io/controller-expand-secret-namespace: {NS}
  csi.storage.k8s.io/controller-publish-secret-name: rook-csi-cephfs-provisioner
  csi.storage.k8s.io/controller-publish-secret-namespace: {NS}
  csi.storage.k8s.io/node-stage-secret-name: rook-csi-cephfs-node
  csi.storage.k8s.io/node-stage-secret-namespace: {NS}
reclaimPolicy: Delete
allowVolumeExpansion: true
mountOptions: []
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: cephfs-pvc, namespace: default}}
spec:
  accessModes: [ReadWriteMany]
  resources: {{requests: {{storage: 1Gi}}}}
  storageClassName: rook-cephfs
"#
    ));
    kube.wait_for(
        "CephFilesystem myfs Ready",
        Duration::from_secs(180),
        || (phase_of(kube, &["cephfilesystem", "myfs", "-n", NS]) == "Ready").then_some(()),
    );
    kube.wait_for(
        "subvolume group myfs-csi Ready",
        Duration::from_secs(60),
        || {
            let what = ["cephfilesystemsubvolumegroup", "myfs-csi", "-n", NS];
            (phase_of(kube, &what) == "Ready").then_some(())
        },
    );
    kube.wait_for("claim cephfs-pvc bound", Duration::from_secs(180), || {
        (phase_of(kube, &["pvc", "cephfs-pvc", "-n", "default"]) == "Bound").then_some(())
    });
    // Two pods on the claim at once: each writes its file, waits for the other's, checks it.
    for (me, other) in [("a", "b"), ("b", "a")] {
        kube.apply(&pod_yaml(
            &format!("cephfs-{me}"),
            "cephfs-pvc",
            &format!(
                "head -c 3000000 /dev/urandom > /data/{me}.bin; sha256sum /data/{me}.bin > /data/{me}.sum; \
                 for i in $(seq 1 600); do [ -s /data/{other}.sum ] && break; sleep 0.2; done; \
                 sha256sum -c /data/{other}.sum >&2 && cat /data/{other}.sum"
            ),
        ));
    }
    let a = kube.pod_succeeds("default", "cephfs-a", Duration::from_secs(240));
    let b = kube.pod_succeeds("default", "cephfs-b", Duration::from_secs(240));
    assert!(
        a.contains("/data/b.bin") && b.contains("/data/a.bin"),
        "{a}\n{b}"
    );
    for pod in ["cephfs-a", "cephfs-b"] {
        kube.kubectl(&["delete", "pod", pod, "-n", "default", "--wait=true"]);
    }
}

fn secret_field(kube: &Kube, secret: &str, key: &str) -> String {
    let b64 = kube.jsonpath(
        &["get", "secret", secret, "-n", NS],
        &format!("{{.data.{key}}}"),
    );
    String::from_utf8(base64_decode(&b64)).unwrap()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap()
}

const USER_SECRET: &str = "rook-ceph-object-user-my-store-my-user";

/// An object store and a user with the fields of Rook's examples (on a free port); S3 with boto3
/// through the user's Secret: put, get, list, delete, with checksums.
fn objects_through_rooks_store_and_user(kube: &Kube) {
    let port = common::free_port();
    kube.apply(&format!(
        r#"apiVersion: ceph.rook.io/v1
kind: CephObjectStore
metadata: {{name: my-store, namespace: {NS}}}
spec:
  metadataPool:
    replicated: {{size: 1}}
  dataPool:
    replicated: {{size: 1}}
  preservePoolsOnDelete: false
  gateway:
    port: {port}
    instances: 1
---
apiVersion: ceph.rook.io/v1
kind: CephObjectStoreUser
metadata: {{name: my-user, namespace: {NS}}}
spec:
  store: my-store
  displayName: "my display name"
"#
    ));
    kube.wait_for("the user's Secret", Duration::from_secs(240), || {
        let o = kube.kubectl_output(&["get", "secret", USER_SECRET, "-n", NS], None);
        o.status.success().then_some(())
    });
    let endpoint = secret_field(kube, USER_SECRET, "Endpoint");
    let access = secret_field(kube, USER_SECRET, "AccessKey");
    let secret_key = secret_field(kube, USER_SECRET, "SecretKey");
    assert_eq!(endpoint, format!("http://127.0.0.1:{port}"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/s3/client.py");
    let o = Command::new("/usr/bin/python3")
        .arg(script)
        .args([&endpoint, &access, &secret_key, "roundtrip", "k8s-bucket"])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(o.status.success(), "boto3: {}", text(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["small_equal"], true, "{out}");
    assert_eq!(out["big_equal"], true, "{out}");
    assert_eq!(
        out["after_delete"],
        serde_json::json!(["big.bin", "kept.bin"]),
        "{out}"
    );
    for what in [
        ["cephobjectstore", "my-store"],
        ["cephobjectstoreuser", "my-user"],
    ] {
        kube.wait_for(&format!("{what:?} Ready"), Duration::from_secs(60), || {
            (phase_of(kube, &[what[0], what[1], "-n", NS]) == "Ready").then_some(())
        });
    }
}

/// Runs `script` in a pod on `claim` (mounted at /data) to completion; what it printed.
fn run_pod(kube: &Kube, name: &str, claim: &str, script: &str) -> String {
    kube.apply(&pod_yaml(name, claim, script));
    let out = kube.pod_succeeds("default", name, Duration::from_secs(180));
    kube.kubectl(&["delete", "pod", name, "-n", "default", "--wait=true"]);
    out
}

fn pod_yaml(name: &str, claim: &str, script: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: app
      image: rookery.local/rookery:0.1.0
      imagePullPolicy: IfNotPresent
      command: [sh, -ec, {script:?}]
      volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
    - name: data
      persistentVolumeClaim: {{claimName: {claim}}}
"#
    )
}

fn gone(kube: &Kube, what: &[&str]) -> bool {
    let mut args = vec!["get"];
    args.extend(what);
    !kube.kubectl_output(&args, None).status.success()
}

fn condition(kube: &Kube, what: &[&str], kind: &str) -> String {
    let mut args = vec!["get"];
    args.extend(what);
    let path = format!("jsonpath={{.status.conditions[?(@.type==\"{kind}\")].message}}");
    let o = kube.kubectl_output(&[args.as_slice(), &["-o", &path]].concat(), None);
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn sha256_of(path: &std::path::Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn blocked_deletion(kube: &Kube, what: &[&str]) -> String {
    kube.wait_for(
        &format!("the deletion of {what:?} blocked"),
        Duration::from_secs(60),
        || {
            let m = condition(kube, what, "DeletionIsBlocked");
            (!m.is_empty()).then_some(m)
        },
    )
}

/// Deleting the cluster while it has pools, a filesystem and a store is blocked, naming them; a pool
/// whose volume backs a claim is blocked, naming the claim; a user with a bucket, naming the bucket;
/// each deletion completes once what blocks it is gone. With cleanupPolicy confirmed, no data dir is
/// left, the OSD's device is blank again and a device the cluster did not use is untouched.
fn deletion_waits_for_dependents_then_cleans_up(
    kube: &Kube,
    host_path: &std::path::Path,
    osd_device: &Loop,
) {
    // A device that holds someone's data: an ext4 filesystem.
    let bystander = Loop::new(6 << 30);
    let mkfs = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&bystander.dev)
        .output()
        .unwrap();
    assert!(mkfs.status.success(), "{}", text(&mkfs));
    let before = sha256_of(&bystander.dev);

    let confirmed = patch_cluster(
        kube,
        r#"{"spec":{"cleanupPolicy":{"confirmation":"yes-really-destroy-data"}}}"#,
    );
    assert!(confirmed.status.success(), "{}", text(&confirmed));
    kube.kubectl(&[
        "delete",
        "cephcluster",
        "my-cluster",
        "-n",
        NS,
        "--wait=false",
    ]);
    let cluster = ["cephcluster", "my-cluster", "-n", NS];
    let blocked = blocked_deletion(kube, &cluster);
    for name in [
        "CephBlockPool: [builtin-mgr replicapool]",
        "CephFilesystem: [myfs]",
        "CephObjectStore: [my-store]",
        "CephObjectStoreUser: [my-user]",
    ] {
        assert!(blocked.contains(name), "{name} missing: {blocked}");
    }

    kube.kubectl(&[
        "delete",
        "cephblockpool",
        "replicapool",
        "-n",
        NS,
        "--wait=false",
    ]);
    let pool = ["cephblockpool", "replicapool", "-n", NS];
    let why = blocked_deletion(kube, &pool);
    assert!(why.contains("PVC default/rbd-pvc"), "{why}");
    kube.kubectl(&["delete", "pvc", "rbd-pvc", "-n", "default", "--wait=true"]);
    kube.wait_for(
        "the pool deleted once its claim is gone",
        Duration::from_secs(120),
        || gone(kube, &pool).then_some(()),
    );

    // A user with a bucket is not deleted with its data: its deletion waits, naming the bucket.
    kube.kubectl(&[
        "delete",
        "cephobjectstoreuser",
        "my-user",
        "-n",
        NS,
        "--wait=false",
    ]);
    let user = ["cephobjectstoreuser", "my-user", "-n", NS];
    let why = blocked_deletion(kube, &user);
    assert!(why.contains("k8s-bucket"), "{why}");
    empty_bucket(kube, "k8s-bucket");
    kube.wait_for(
        "the user deleted once its bucket is gone",
        Duration::from_secs(120),
        || gone(kube, &user).then_some(()),
    );

    kube.kubectl(&[
        "delete",
        "pvc",
        "cephfs-pvc",
        "-n",
        "default",
        "--wait=true",
    ]);
    subvolume_group_deletion_waits_for_its_subvolumes(kube, host_path);
    for what in [
        "cephfilesystem/myfs",
        "cephobjectstore/my-store",
        "cephblockpool/builtin-mgr",
    ] {
        kube.kubectl(&["delete", what, "-n", NS, "--wait=false"]);
    }
    let started = Instant::now();
    kube.wait_for(
        "the cluster deleted once its dependents are",
        Duration::from_secs(300),
        || gone(kube, &cluster).then_some(()),
    );
    eprintln!(
        "cluster deleted {:.1} s after its last dependents were",
        started.elapsed().as_secs_f64()
    );

    let data_dir = host_path.join(NS);
    assert!(!data_dir.exists(), "{} is left behind", data_dir.display());
    assert_eq!(
        sha256_of(&bystander.dev),
        before,
        "a device the cluster did not use changed"
    );
    let mut head = vec![0u8; 64];
    use std::io::Read as _;
    std::fs::File::open(&osd_device.dev)
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&head).contains("bluestore"),
        "the OSD's label is still on {}",
        osd_device.dev.display()
    );
    let left = kube.kubectl(&["get", "deployments", "-n", NS, "-o", "name"]);
    assert!(!left.contains("rook-ceph-"), "daemons left: {left}");
}

/// Deletes every object of a bucket and the bucket, as its owner, with the keys in the user's Secret.
fn empty_bucket(kube: &Kube, bucket: &str) {
    let script = format!(
        "import boto3\nfrom botocore.config import Config\n\
         s3 = boto3.resource('s3', endpoint_url='{}', aws_access_key_id='{}', aws_secret_access_key='{}', \
         region_name='us-east-1', config=Config(s3={{'addressing_style': 'path'}}))\n\
         b = s3.Bucket('{bucket}')\nb.objects.all().delete()\nb.delete()\n",
        secret_field(kube, USER_SECRET, "Endpoint"),
        secret_field(kube, USER_SECRET, "AccessKey"),
        secret_field(kube, USER_SECRET, "SecretKey"),
    );
    let o = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(o.status.success(), "emptying {bucket}: {}", text(&o));
}
