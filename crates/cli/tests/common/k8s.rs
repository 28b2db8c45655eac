//! A real single-node Kubernetes for end-to-end tests (scripts/k8s/up.sh in a temporary folder: etcd,
//! kube-apiserver, controller-manager, scheduler, containerd and a kubelet on 127.0.0.1), the images
//! pods run (scripts/image/build.sh, with the rookery binary under test), and kubectl. Dropping it runs
//! scripts/k8s/down.sh: no process, container, mount or loop device of it is left.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_yaml::Value;

use super::text;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn script(name: &str) -> PathBuf {
    repo().join("scripts").join(name)
}

pub struct Kube {
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
    _parent: tempfile::TempDir,
}

/// Runs a script and panics with its output when it fails.
fn run_script(cmd: &mut Command, what: &str) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(o.status.success(), "{what} failed:\n{}", text(&o));
}

impl Kube {
    /// Builds the images with the binary under test, then starts Kubernetes and imports them.
    pub fn start() -> Kube {
        run_script(
            Command::new(script("image/build.sh"))
                .env("ROOKERY_BINARY", env!("CARGO_BIN_EXE_rookery")),
            "building the images (scripts/image/build.sh)",
        );
        let parent = tempfile::Builder::new()
            .prefix("rookery-k8s-")
            .tempdir()
            .unwrap();
        let dir = parent.path().join("k8s");
        let mut kube = Kube {
            dir: dir.clone(),
            env: HashMap::new(),
            _parent: parent,
        };
        // From here on Drop cleans up, whatever up.sh got to.
        run_script(
            Command::new(script("k8s/up.sh")).arg(&dir),
            "starting Kubernetes (scripts/k8s/up.sh)",
        );
        let env = std::fs::read_to_string(dir.join("env")).unwrap();
        kube.env = env
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        kube
    }

    pub fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in up.sh's env file"))
    }

    pub fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(repo().join("target/k8s/bin/kubectl"));
        cmd.arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// kubectl ARGS, asserted to succeed; its stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let o = self.kubectl_output(args, None);
        assert!(o.status.success(), "kubectl {args:?} failed:\n{}", text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// `kubectl get ARGS -o jsonpath=PATH`, asserted to succeed: what it printed.
    pub fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let query = format!("jsonpath={path}");
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-o", query.as_str()]);
        self.kubectl(&all)
    }

    /// `kubectl apply -f -` of `yaml`.
    pub fn apply(&self, yaml: &str) {
        let o = self.kubectl_output(&["apply", "-f", "-"], Some(yaml));
        assert!(
            o.status.success(),
            "kubectl apply failed:\n{}\n{yaml}",
            text(&o)
        );
    }

    /// Waits until `check` answers Some, up to `limit`; panics with `what` and the cluster's events.
    pub fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        self.wait_until(what, limit, || check().ok_or_else(String::new))
    }

    /// Waits until `check` answers Ok, up to `limit`; panics with `what`, the last state `check`
    /// described (its last Err), and the cluster's pods and events.
    pub fn wait_until<T>(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut() -> Result<T, String>,
    ) -> T {
        let start = Instant::now();
        loop {
            let last = match check() {
                Ok(v) => return v,
                Err(state) => state,
            };
            if start.elapsed() > limit {
                let events =
                    self.kubectl_output(&["get", "events", "-A", "--sort-by=.lastTimestamp"], None);
                let pods = self.kubectl_output(&["get", "pods", "-A", "-o", "wide"], None);
                panic!(
                    "{what}: not within {limit:?}\nlast seen: {last}\npods:\n{}\nevents:\n{}",
                    String::from_utf8_lossy(&pods.stdout),
                    String::from_utf8_lossy(&events.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A pod's phase, or None while it has none.
    pub fn pod_phase(&self, ns: &str, pod: &str) -> Option<String> {
        let o = self.kubectl_output(
            &[
                "get",
                "pod",
                pod,
                "-n",
                ns,
                "-o",
                "jsonpath={.status.phase}",
            ],
            None,
        );
        let phase = String::from_utf8_lossy(&o.stdout).trim().to_string();
        (o.status.success() && !phase.is_empty()).then_some(phase)
    }

    /// Waits for a pod to end and asserts it Succeeded; its log.
    pub fn pod_succeeds(&self, ns: &str, pod: &str, limit: Duration) -> String {
        let phase = self.wait_for(&format!("pod {ns}/{pod} to finish"), limit, || {
            self.pod_phase(ns, pod)
                .filter(|p| p == "Succeeded" || p == "Failed")
        });
        let log = self.kubectl_output(&["logs", "-n", ns, pod], None);
        let log = String::from_utf8_lossy(&log.stdout).to_string();
        assert_eq!(phase, "Succeeded", "pod {ns}/{pod} failed; its log:\n{log}");
        log
    }

    /// deploy/csi/ as this test cluster needs it: the kubelet's and the node plugins' folders inside
    /// the test folder, and free ports for the drivers' health and metrics.
    pub fn deploy_csi(&self) -> String {
        let replace = self.csi_replacements();
        let mut out = String::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/csi"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let mut doc = serde::Deserialize::deserialize(doc).unwrap();
                self.adapt(&mut doc, &replace);
                out.push_str("---\n");
                out.push_str(&serde_yaml::to_string(&doc).unwrap());
            }
        }
        out
    }

    /// The CSI drivers' host folders inside the test folder, and free ports for their health and metrics.
    fn csi_replacements(&self) -> Vec<(String, String)> {
        let kubelet_root = self.var("K8S_KUBELET_ROOT").to_string();
        let data = self.dir.join("rookery-csi").display().to_string();
        let mut replace: Vec<(String, String)> = vec![
            ("/var/lib/kubelet".into(), kubelet_root),
            ("/var/lib/rookery-csi".into(), data),
        ];
        for port in ["9811", "9812", "9813", "9814"] {
            replace.push((
                format!("127.0.0.1:{port}"),
                format!("127.0.0.1:{}", super::free_port()),
            ));
        }
        replace
    }

    /// deploy/operator/ as this test cluster needs it: the nodes' data dir (every CephCluster's
    /// dataDirHostPath) at `host_path`, the mon on a free port, loop devices allowed (`useAllDevices`
    /// takes the ones the test attaches).
    pub fn deploy_operator(&self, host_path: &Path, mon_port: u16) -> String {
        let mut replace = self.csi_replacements();
        replace.push(("/var/lib/rook".to_string(), host_path.display().to_string()));
        let mut out = String::new();
        for name in ["common.yaml", "crds.yaml", "operator.yaml"] {
            let text = std::fs::read_to_string(repo().join("deploy/operator").join(name)).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let mut doc: Value = serde::Deserialize::deserialize(doc).unwrap();
                if doc.is_null() {
                    continue;
                }
                self.adapt(&mut doc, &replace);
                if doc["kind"] == "Deployment" && doc["metadata"]["name"] == "rookery-operator" {
                    let env = doc["spec"]["template"]["spec"]["containers"][0]["env"]
                        .as_sequence_mut()
                        .unwrap();
                    env.retain(|e| e["name"] != "ROOK_CEPH_ALLOW_LOOP_DEVICES");
                    for (k, v) in [
                        ("ROOK_CEPH_ALLOW_LOOP_DEVICES", "true".to_string()),
                        (
                            "ROOKERY_DATA_DIR_HOST_PATH",
                            host_path.display().to_string(),
                        ),
                        ("ROOKERY_MON_PORT", mon_port.to_string()),
                        ("RUST_LOG", "info,rookery_k8s=debug".to_string()),
                    ] {
                        let mut m = serde_yaml::Mapping::new();
                        m.insert("name".into(), k.into());
                        m.insert("value".into(), v.into());
                        env.push(Value::Mapping(m));
                    }
                }
                out.push_str("---\n");
                out.push_str(&serde_yaml::to_string(&doc).unwrap());
            }
        }
        out
    }

    fn adapt(&self, doc: &mut Value, replace: &[(String, String)]) {
        fn walk(v: &mut Value, replace: &[(String, String)]) {
            match v {
                Value::String(s) => {
                    for (from, to) in replace {
                        if s.contains(from.as_str()) {
                            *s = s.replace(from.as_str(), to);
                        }
                    }
                    // A probe's port is a number in the manifests.
                }
                Value::Sequence(items) => items.iter_mut().for_each(|i| walk(i, replace)),
                Value::Mapping(m) => m.iter_mut().for_each(|(_, i)| walk(i, replace)),
                _ => {}
            }
        }
        walk(doc, replace);
        let ports: Vec<(u64, u64)> = replace
            .iter()
            .filter_map(|(f, t)| {
                Some((
                    f.strip_prefix("127.0.0.1:")?.parse().ok()?,
                    t.strip_prefix("127.0.0.1:")?.parse().ok()?,
                ))
            })
            .collect();
        if let Some(containers) = doc
            .get_mut("spec")
            .and_then(|s| s.get_mut("template"))
            .and_then(|t| t.get_mut("spec"))
            .and_then(|s| s.get_mut("containers"))
            .and_then(Value::as_sequence_mut)
        {
            for c in containers {
                for probe in ["startupProbe", "livenessProbe"] {
                    if let Some(port) = c
                        .get_mut(probe)
                        .and_then(|p| p.get_mut("httpGet"))
                        .and_then(|h| h.get_mut("port"))
                    {
                        if let Some((_, to)) = ports.iter().find(|(f, _)| port.as_u64() == Some(*f))
                        {
                            *port = Value::from(*to);
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Kube {
    fn drop(&mut self) {
        let keep = if std::thread::panicking() {
            "--keep"
        } else {
            ""
        };
        let o = Command::new(script("k8s/down.sh"))
            .arg(&self.dir)
            .arg(keep)
            .output();
        if let Ok(o) = o {
            if !o.status.success() {
                eprintln!("scripts/k8s/down.sh failed:\n{}", text(&o));
            }
        }
        if std::thread::panicking() {
            // The logs stay for a look; the test's temporary folder would take them with it.
            let keep_at =
                std::env::temp_dir().join(format!("rookery-k8s-failed-{}", std::process::id()));
            let _ = std::fs::rename(&self.dir, &keep_at);
            eprintln!("Kubernetes logs kept in {}", keep_at.display());
        }
    }
}
