//! rookery's CSI drivers under a real Kubernetes (its own etcd, API server, controller-manager,
//! scheduler, containerd and kubelet, on 127.0.0.1): deploy/csi/ as a user applies it, with the
//! ConfigMap and Secrets of `rookery k8s export` for a standalone rookery cluster on this host; then
//! claims used by pods, all through kubectl.

mod common;

use std::time::Duration;

use common::k8s::Kube;
use common::{json, TestCluster};

const NS: &str = "e2e";

/// A pod on `claim` running `script` once (restartPolicy Never); a block claim is the device /dev/vol.
fn pod(name: &str, claim: &str, script: &str) -> String {
    pod_with(name, claim, script, false)
}

fn pod_with(name: &str, claim: &str, script: &str, block: bool) -> String {
    let attach = if block {
        "volumeDevices: [{name: data, devicePath: /dev/vol}]"
    } else {
        "volumeMounts: [{name: data, mountPath: /data}]"
    };
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {NS}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: app
      image: rookery.local/rookery:0.1.0
      imagePullPolicy: IfNotPresent
      command: [sh, -ec, {script:?}]
      {attach}
  volumes:
    - name: data
      persistentVolumeClaim: {{claimName: {claim}}}
"#
    )
}

fn claim(name: &str, class: &str, mode: &str, size: &str) -> String {
    claim_with(name, class, mode, size, "volumeMode: Filesystem")
}

fn claim_with(name: &str, class: &str, mode: &str, size: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  accessModes: [{mode}]\n  storageClassName: {class}\n  resources: {{requests: {{storage: {size}}}}}\n  {extra}\n"
    )
}

fn bound(kube: &Kube, name: &str) {
    kube.wait_for(
        &format!("claim {name} bound"),
        Duration::from_secs(120),
        || {
            let phase = kube.jsonpath(&["get", "pvc", name, "-n", NS], "{.status.phase}");
            (phase == "Bound").then_some(())
        },
    );
}

/// Waits for `pod` to succeed and asserts what it printed.
fn prints(kube: &Kube, pod: &str, want: &str) {
    let got = kube.pod_succeeds(NS, pod, Duration::from_secs(240));
    assert_eq!(got.trim(), want, "pod {pod} printed {got:?}");
}

fn running(kube: &Kube, pod: &str) {
    kube.wait_for(
        &format!("pod {pod} running"),
        Duration::from_secs(180),
        || (kube.pod_phase(NS, pod).as_deref() == Some("Running")).then_some(()),
    );
}

fn delete_pod(kube: &Kube, pod: &str) {
    kube.kubectl(&[
        "delete",
        "pod",
        pod,
        "-n",
        NS,
        "--wait=true",
        "--grace-period=1",
    ]);
}

#[test]
fn csi_under_kubernetes() {
    let ceph = TestCluster::new_dir();
    ceph.ok(&["up", "--mon-port", "0"]);
    ceph.apply_myfs();
    let kube = Kube::start();

    // What a user applies: the drivers, then the cluster's ConfigMap and Secrets.
    kube.apply(&kube.deploy_csi());
    let export = ceph.ok(&["k8s", "export"]);
    let export = String::from_utf8(export.stdout).unwrap();
    assert!(
        !export.contains("client.admin") && export.contains("rookery-csi-rbd"),
        "the export must carry the drivers' own users:\n{export}"
    );
    kube.apply(&export);
    // The node plugin registered itself with the kubelet (no node-driver-registrar).
    kube.wait_for(
        "both node plugins registered with the kubelet",
        Duration::from_secs(120),
        || {
            let drivers = kube.jsonpath(
                &["get", "csinode", kube.var("K8S_NODE")],
                "{.spec.drivers[*].name}",
            );
            (drivers.contains("rbd.csi.rookery.io") && drivers.contains("cephfs.csi.rookery.io"))
                .then_some(())
        },
    );
    kube.kubectl(&["create", "namespace", NS]);

    // A filesystem claim: a pod writes files with checksums, is deleted; a new pod finds them intact.
    kube.apply(&claim("data", "rookery-rbd", "ReadWriteOnce", "1Gi"));
    bound(&kube, "data");
    kube.apply(&pod(
        "writer",
        "data",
        "for i in 1 2 3 4 5; do head -c 3000000 /dev/urandom > /data/f$i; done; \
         cd /data && sha256sum f1 f2 f3 f4 f5 > sums && sync && cat sums",
    ));
    let written = kube.pod_succeeds(NS, "writer", Duration::from_secs(180));
    assert_eq!(written.lines().count(), 5, "{written}");
    kube.kubectl(&["delete", "pod", "writer", "-n", NS, "--wait=true"]);
    kube.apply(&pod(
        "reader",
        "data",
        "cd /data && sha256sum -c sums && cat sums",
    ));
    let read = kube.pod_succeeds(NS, "reader", Duration::from_secs(180));
    assert!(
        read.ends_with(&written),
        "read back:\n{read}\nwritten:\n{written}"
    );
    kube.kubectl(&["delete", "pod", "reader", "-n", NS, "--wait=true"]);

    // The claim's namespace and name are on the volume, for `rookery volume list`.
    let pv = kube.jsonpath(&["get", "pvc", "data", "-n", NS], "{.spec.volumeName}");
    let volumes = json(&ceph.ok(&["volume", "list", "-o", "json"]));
    let listed = volumes.to_string();
    assert!(
        listed.contains(NS) && listed.contains("\"data\"")
            || listed.contains(&format!("{NS}/data")),
        "volume list must name the claim {NS}/data (PV {pv}):\n{volumes:#}"
    );

    // reclaimPolicy Delete: deleting the claim removes the volume.
    let handle = kube.jsonpath(&["get", "pv", pv.trim()], "{.spec.csi.volumeHandle}");
    {
        let image = handle.trim().rsplit('/').next().unwrap();
        let rados = ceph.rados();
        let io = rados.ioctx("replicapool").unwrap();
        assert!(
            io.read_all(&format!("rookery.csi.vol.{image}")).is_ok(),
            "no journal for {handle}"
        );
    }
    kube.kubectl(&["delete", "pvc", "data", "-n", NS, "--wait=true"]);
    kube.wait_for(
        "the PV of claim data deleted",
        Duration::from_secs(120),
        || {
            let o = kube.kubectl_output(&["get", "pv", pv.trim()], None);
            (!o.status.success()).then_some(())
        },
    );
    // ...and its journal entry beside it.
    let handle = handle.trim().to_string();
    let image = handle.rsplit('/').next().unwrap();
    let rados = ceph.rados();
    let io = rados.ioctx("replicapool").unwrap();
    let journal = io.read_all(&format!("rookery.csi.vol.{image}"));
    assert!(
        journal.is_err(),
        "the journal of {handle} outlived its volume"
    );
    let after = json(&ceph.ok(&["volume", "list", "-o", "json"])).to_string();
    assert!(
        !after.contains(&format!("{NS}/data")) && !after.contains("\"data\""),
        "{after}"
    );

    raw_block_and_read_write_once_pod(&kube);
    shared_file_volume(&kube);
    retained_volume(&ceph, &kube);
    expansion(&kube);
    snapshot_and_clone(&kube);
    plugin_restart_releases_a_gone_pods_volume(&kube);
    bench_runs_and_cleans_up(&ceph, &kube);

    // Nothing of it stays: no loop device over a volume the node plugins mapped (scripts/k8s/down.sh).
    drop(kube);
    let left: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("loop/backing_file")).ok())
        .filter(|b| b.contains("csi-vol-"))
        .collect();
    assert!(left.is_empty(), "loop devices left behind: {left:?}");
}

/// A pod force-deleted while its node's plugin is killed: once the plugin is back, the kubelet's
/// unstage of the dead pod's volume goes through and a new pod mounts it, with no step by hand.
fn plugin_restart_releases_a_gone_pods_volume(kube: &Kube) {
    kube.apply(&claim("sticky", "rookery-rbd", "ReadWriteOnce", "128Mi"));
    bound(kube, "sticky");
    kube.apply(&pod(
        "sticky-1",
        "sticky",
        "echo kept > /data/f; sync; exec sleep 3600",
    ));
    running(kube, "sticky-1");
    let plugin = |what: &str| {
        kube.jsonpath(
            &[
                "get",
                "pods",
                "-n",
                "rookery-csi",
                "-l",
                "app=rookery-csi-rbd-node",
            ],
            what,
        )
    };
    let old_plugin = plugin("{.items[0].metadata.name}");
    kube.kubectl(&[
        "delete",
        "pod",
        old_plugin.trim(),
        "-n",
        "rookery-csi",
        "--grace-period=0",
        "--force",
        "--wait=false",
    ]);
    kube.kubectl(&[
        "delete",
        "pod",
        "sticky-1",
        "-n",
        NS,
        "--grace-period=0",
        "--force",
    ]);
    kube.wait_for(
        "a new RBD node plugin running",
        Duration::from_secs(120),
        || {
            let now = plugin("{.items[*].metadata.name} {.items[*].status.phase}");
            (!now.contains(old_plugin.trim()) && now.ends_with("Running")).then_some(())
        },
    );
    kube.apply(&pod("sticky-2", "sticky", "cat /data/f"));
    prints(kube, "sticky-2", "kept");
    delete_pod(kube, "sticky-2");
    kube.kubectl(&["delete", "pvc", "sticky", "-n", NS, "--wait=true"]);
}

/// VolumeSnapshot -> a claim from it holds the data of the moment it was taken; a claim cloned from a
/// claim holds the data of now.
fn snapshot_and_clone(kube: &Kube) {
    let classes = common::k8s::repo().join("deploy/csi/snapshots/snapshotclass.yaml");
    kube.apply(&std::fs::read_to_string(classes).unwrap());
    kube.apply(&claim("origin", "rookery-rbd", "ReadWriteOnce", "256Mi"));
    bound(kube, "origin");
    kube.apply(&pod(
        "origin-1",
        "origin",
        "echo first > /data/v; sync; cat /data/v",
    ));
    prints(kube, "origin-1", "first");
    delete_pod(kube, "origin-1");
    kube.apply(&format!(
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {{name: snap, namespace: {NS}}}\n\
         spec: {{volumeSnapshotClassName: rookery-rbd, source: {{persistentVolumeClaimName: origin}}}}\n"
    ));
    kube.wait_for("the snapshot ready", Duration::from_secs(120), || {
        let ready = kube.jsonpath(
            &["get", "volumesnapshot", "snap", "-n", NS],
            "{.status.readyToUse}",
        );
        (ready == "true").then_some(())
    });
    kube.apply(&pod(
        "origin-2",
        "origin",
        "echo second > /data/v; sync; cat /data/v",
    ));
    prints(kube, "origin-2", "second");
    delete_pod(kube, "origin-2");
    kube.apply(&claim_with(
        "restored",
        "rookery-rbd",
        "ReadWriteOnce",
        "256Mi",
        "dataSource: {name: snap, kind: VolumeSnapshot, apiGroup: snapshot.storage.k8s.io}",
    ));
    kube.apply(&claim_with(
        "cloned",
        "rookery-rbd",
        "ReadWriteOnce",
        "256Mi",
        "dataSource: {name: origin, kind: PersistentVolumeClaim}",
    ));
    bound(kube, "restored");
    bound(kube, "cloned");
    kube.apply(&pod("restored-reader", "restored", "cat /data/v"));
    kube.apply(&pod("cloned-reader", "cloned", "cat /data/v"));
    prints(kube, "restored-reader", "first");
    prints(kube, "cloned-reader", "second");
    for p in ["restored-reader", "cloned-reader"] {
        delete_pod(kube, p);
    }
    kube.kubectl(&[
        "delete",
        "pvc",
        "restored",
        "cloned",
        "-n",
        NS,
        "--wait=true",
    ]);
    kube.kubectl(&["delete", "volumesnapshot", "snap", "-n", NS, "--wait=true"]);
    kube.kubectl(&["delete", "pvc", "origin", "-n", NS, "--wait=true"]);
}

/// A raw block claim: the pod reads back what it wrote on the device; a second pod on the same
/// ReadWriteOncePod claim is not scheduled while the first runs.
fn raw_block_and_read_write_once_pod(kube: &Kube) {
    kube.apply(&claim_with(
        "raw",
        "rookery-rbd",
        "ReadWriteOncePod",
        "256Mi",
        "volumeMode: Block",
    ));
    bound(kube, "raw");
    kube.apply(&pod_with(
        "raw-writer",
        "raw",
        "head -c 4194304 /dev/urandom > /tmp/blob; dd if=/tmp/blob of=/dev/vol bs=1M oflag=direct status=none; \
         dd if=/dev/vol of=/tmp/back bs=1M count=4 iflag=direct status=none; cmp /tmp/blob /tmp/back; \
         sha256sum < /tmp/blob; exec sleep 3600",
        true,
    ));
    running(kube, "raw-writer");
    kube.apply(&pod_with("raw-second", "raw", "true", true));
    let reason = kube.wait_for(
        "the second pod on a ReadWriteOncePod claim refused by the scheduler",
        Duration::from_secs(60),
        || {
            let events = kube.jsonpath(
                &[
                    "get",
                    "events",
                    "-n",
                    NS,
                    "--field-selector",
                    "involvedObject.name=raw-second",
                ],
                "{.items[*].message}",
            );
            events.contains("ReadWriteOncePod").then_some(events)
        },
    );
    assert_eq!(
        kube.pod_phase(NS, "raw-second").as_deref(),
        Some("Pending"),
        "{reason}"
    );
    delete_pod(kube, "raw-second");
    delete_pod(kube, "raw-writer");
    // What was written stays on the device for the next pod.
    kube.apply(&pod_with(
        "raw-reader",
        "raw",
        "dd if=/dev/vol bs=1M count=4 iflag=direct status=none | sha256sum",
        true,
    ));
    let again = kube.pod_succeeds(NS, "raw-reader", Duration::from_secs(180));
    assert_eq!(again.lines().count(), 1, "{again}");
    delete_pod(kube, "raw-reader");
    kube.kubectl(&["delete", "pvc", "raw", "-n", NS, "--wait=true"]);
}

/// A CephFS ReadWriteMany claim used by two pods at once, each seeing the other's writes.
fn shared_file_volume(kube: &Kube) {
    kube.apply(&claim("shared", "rookery-cephfs", "ReadWriteMany", "256Mi"));
    bound(kube, "shared");
    let both = |me: &str, other: &str| {
        format!(
            "echo {me} > /data/{me}; i=0; until [ -f /data/{other} ]; do i=$((i+1)); [ $i -lt 600 ]; sleep 0.2; done; \
             cat /data/{other}; sleep 2"
        )
    };
    kube.apply(&pod("left", "shared", &both("left", "right")));
    kube.apply(&pod("right", "shared", &both("right", "left")));
    prints(kube, "left", "right");
    prints(kube, "right", "left");
    delete_pod(kube, "left");
    delete_pod(kube, "right");
    kube.kubectl(&["delete", "pvc", "shared", "-n", NS, "--wait=true"]);
}

/// reclaimPolicy Retain: the PV outlives its claim, and so does the image behind it.
fn retained_volume(ceph: &TestCluster, kube: &Kube) {
    kube.apply(&claim(
        "kept",
        "rookery-rbd-retain",
        "ReadWriteOnce",
        "128Mi",
    ));
    bound(kube, "kept");
    let pv = kube.jsonpath(&["get", "pvc", "kept", "-n", NS], "{.spec.volumeName}");
    let handle = kube.jsonpath(&["get", "pv", pv.trim()], "{.spec.csi.volumeHandle}");
    let image = handle.rsplit('/').next().unwrap().to_string();
    kube.kubectl(&["delete", "pvc", "kept", "-n", NS, "--wait=true"]);
    kube.wait_for("the retained PV released", Duration::from_secs(60), || {
        let phase = kube.jsonpath(&["get", "pv", pv.trim()], "{.status.phase}");
        (phase == "Released").then_some(())
    });
    let listed = json(&ceph.ok(&["volume", "list", "-o", "json"])).to_string();
    assert!(
        listed.contains(&image),
        "the retained volume {image} must stay:\n{listed}"
    );
    kube.kubectl(&["delete", "pv", pv.trim(), "--wait=true"]);
    let listed = json(&ceph.ok(&["volume", "list", "-o", "json"])).to_string();
    assert!(
        listed.contains(&image),
        "deleting a retained PV keeps the volume:\n{listed}"
    );
}

/// A claim grown while no pod uses it: the next pod sees the larger filesystem (online ext4 growth needs
/// CAP_SYS_RESOURCE, which no process has on this kind of host, so the growth is proven at the next stage).
fn expansion(kube: &Kube) {
    kube.apply(&claim("grow", "rookery-rbd", "ReadWriteOnce", "256Mi"));
    bound(kube, "grow");
    let size_of = |pod_name: &str| -> u64 {
        kube.apply(&pod(
            pod_name,
            "grow",
            "df -k /data | tail -1 | awk '{print $2}'",
        ));
        let out = kube.pod_succeeds(NS, pod_name, Duration::from_secs(180));
        delete_pod(kube, pod_name);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("df said {out:?}"))
    };
    let before = size_of("grow-before");
    kube.kubectl(&[
        "patch",
        "pvc",
        "grow",
        "-n",
        NS,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"resources":{"requests":{"storage":"512Mi"}}}}"#,
    ]);
    // The image grows at once; the filesystem when a node next stages it (FileSystemResizePending).
    kube.wait_for("the claim's volume grown", Duration::from_secs(120), || {
        let status = kube.jsonpath(&["get", "pvc", "grow", "-n", NS], "{.status}");
        (status.contains("FileSystemResizePending") || status.contains("\"storage\":\"512Mi\""))
            .then_some(())
    });
    let after = size_of("grow-after");
    assert!(
        after > before + 200 * 1024,
        "the filesystem did not grow: {before} KiB, then {after} KiB"
    );
    kube.kubectl(&["delete", "pvc", "grow", "-n", NS, "--wait=true"]);
}

/// `rookery bench k8s` at a small scale: every figure is measured on both sides, and the run leaves no
/// namespace, claim, volume, class or folder of its own behind (rookery's volumes go with their claims).
fn bench_runs_and_cleans_up(ceph: &TestCluster, kube: &Kube) {
    let floor = kube.dir.join("bench-floor");
    let kubeconfig = kube.dir.join("kubeconfig");
    let out = ceph.ok(&[
        "bench",
        "k8s",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--count",
        "3",
        "--burst",
        "4",
        "--pods",
        "2",
        "--floor-dir",
        floor.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let report = json(&out);
    for side in ["floor", "rookery"] {
        for figure in [
            "claim_bound_p50_ms",
            "claim_bound_p99_ms",
            "burst_all_bound_ms",
            "pod_running_p50_ms",
            "dd_mb_per_s",
        ] {
            let v = report[side][figure].as_f64().unwrap_or(0.0);
            assert!(v > 0.0, "{side} {figure} = {v}:\n{report:#}");
        }
    }
    assert_eq!(report["driver"], "rbd.csi.rookery.io", "{report:#}");
    let left = kube.kubectl(&["get", "namespaces,pv,storageclass", "-o", "name"]);
    assert!(!left.contains("rookery-bench"), "the bench left: {left}");
    assert!(
        !floor.exists(),
        "the floor's folder stayed: {}",
        floor.display()
    );
    // Its claims' volumes are named by their namespace, rookery-bench-<run>.
    let volumes = json(&ceph.ok(&["volume", "list", "-o", "json"])).to_string();
    assert!(
        !volumes.contains("rookery-bench"),
        "the bench's volumes stayed: {volumes}"
    );
}
