//! rookery's CSI drivers under a real Kubernetes (its own etcd, API server, controller-manager,
//! scheduler, containerd and kubelet, on 127.0.0.1): deploy/csi/ as a user applies it, with the
//! ConfigMap and Secrets of `rookery k8s export` for a standalone rookery cluster on this host; then
//! claims used by pods, all through kubectl.

mod common;

use std::time::Duration;

use common::k8s::Kube;
use common::{json, TestCluster};

const NS: &str = "e2e";

/// A pod on `claim` running `script` once (restartPolicy Never).
fn pod(name: &str, claim: &str, script: &str) -> String {
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
      volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
    - name: data
      persistentVolumeClaim: {{claimName: {claim}}}
"#
    )
}

fn claim(name: &str, class: &str, mode: &str, size: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  accessModes: [{mode}]\n  storageClassName: {class}\n  resources: {{requests: {{storage: {size}}}}}\n"
    )
}

#[test]
fn csi_under_kubernetes() {
    let ceph = TestCluster::new_dir();
    ceph.ok(&["up", "--mon-port", "0"]);
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
        "the RBD node plugin registered with the kubelet",
        Duration::from_secs(120),
        || {
            let drivers = kube.kubectl(&[
                "get",
                "csinode",
                kube.var("K8S_NODE"),
                "-o",
                "jsonpath={.spec.drivers[*].name}",
            ]);
            drivers.contains("rbd.csi.rookery.io").then_some(())
        },
    );
    kube.kubectl(&["create", "namespace", NS]);

    // A filesystem claim: a pod writes files with checksums, is deleted; a new pod finds them intact.
    kube.apply(&claim("data", "rookery-rbd", "ReadWriteOnce", "1Gi"));
    kube.wait_for("claim data bound", Duration::from_secs(120), || {
        let phase = kube.kubectl(&[
            "get",
            "pvc",
            "data",
            "-n",
            NS,
            "-o",
            "jsonpath={.status.phase}",
        ]);
        (phase == "Bound").then_some(())
    });
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
    let pv = kube.kubectl(&[
        "get",
        "pvc",
        "data",
        "-n",
        NS,
        "-o",
        "jsonpath={.spec.volumeName}",
    ]);
    let volumes = json(&ceph.ok(&["volume", "list", "-o", "json"]));
    let listed = volumes.to_string();
    assert!(
        listed.contains(NS) && listed.contains("\"data\"")
            || listed.contains(&format!("{NS}/data")),
        "volume list must name the claim {NS}/data (PV {pv}):\n{volumes:#}"
    );

    // reclaimPolicy Delete: deleting the claim removes the volume.
    kube.kubectl(&["delete", "pvc", "data", "-n", NS, "--wait=true"]);
    kube.wait_for(
        "the PV of claim data deleted",
        Duration::from_secs(120),
        || {
            let o = kube.kubectl_output(&["get", "pv", pv.trim()], None);
            (!o.status.success()).then_some(())
        },
    );
    let after = json(&ceph.ok(&["volume", "list", "-o", "json"])).to_string();
    assert!(
        !after.contains(&format!("{NS}/data")) && !after.contains("\"data\""),
        "{after}"
    );
}
