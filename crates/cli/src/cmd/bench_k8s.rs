//! `rookery bench k8s`: what a Kubernetes user waits for with a rookery StorageClass (a claim until it
//! is Bound, one by one and many at once; a pod with a new claim until it runs; `dd` inside a pod) next
//! to the floor that Kubernetes itself costs, measured in the same run on the same node: claims bound to
//! hostPath PersistentVolumes made beforehand, so that no provisioner and no storage system is involved.
//!
//! Everything the bench makes lives in a namespace of its own plus a StorageClass and volumes labelled
//! with the run's stamp, and is deleted at the end, also when a step fails.

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use k8s_openapi::api::core::v1::{
    Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::storage::v1::{CSINode, StorageClass};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct K8sBenchArgs {
    /// The kubeconfig of the cluster; without it, $KUBECONFIG or ~/.kube/config as kubectl finds them.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The rookery StorageClass measured (reclaimPolicy Delete, volumeBindingMode Immediate).
    #[arg(long, default_value = "rookery-rbd")]
    pub storage_class: String,
    /// Claims made one after the other on each side, for the p50 and p99 until Bound.
    #[arg(long, default_value_t = 50)]
    pub count: usize,
    /// Claims made at once on each side.
    #[arg(long, default_value_t = 100)]
    pub burst: usize,
    /// Pods, each with a new claim, started one after the other on each side.
    #[arg(long, default_value_t = 10)]
    pub pods: usize,
    /// The image of the bench's pods (it needs sh, sleep and dd).
    #[arg(long, default_value = concat!("rookery.local/rookery:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// The node the pods run on; by default the first ready node where the class's driver is registered.
    #[arg(long)]
    pub node: Option<String>,
    /// The folder on the node under which the floor's hostPath volumes are made (a sub-folder per run,
    /// removed at the end, and the folder too when nothing else is in it).
    #[arg(long, default_value = "/var/lib/rookery-bench")]
    pub floor_dir: PathBuf,
}

/// How long one claim or pod may take before the bench gives up on it.
const PATIENCE: Duration = Duration::from_secs(180);
/// Each claim's size: both sides' volumes hold the 200 MiB of the dd step.
const CLAIM_SIZE: &str = "1Gi";

pub fn run(args: &K8sBenchArgs, output: Output) -> CmdResult {
    if args.count == 0 || args.burst == 0 || args.pods == 0 {
        return Err(Failure::bad_input(
            "--count, --burst and --pods must each be at least 1",
        ));
    }
    if !args.floor_dir.is_absolute()
        || args.floor_dir.file_name().is_none()
        || args
            .floor_dir
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(Failure::bad_input(format!(
            "--floor-dir {} must be an absolute path on the node below /, without `..`",
            args.floor_dir.display()
        )));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::from(anyhow!(e)))?;
    let report = rt.block_on(bench(args))?;
    match output {
        Output::Json => println!("{}", report.json()),
        Output::Text => print!("{}", report.text()),
    }
    Ok(())
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .with_context(|| format!("using the kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer().await.context(
            "finding a kubeconfig (give --kubeconfig, set KUBECONFIG or write ~/.kube/config)",
        )?,
    };
    Ok(Client::try_from(config)?)
}

/// A bad input found before anything is made: exit code 2 and a message saying what to do.
fn refuse(message: String) -> Failure {
    Failure::bad_input(message)
}

async fn bench(args: &K8sBenchArgs) -> Result<Report, Failure> {
    let client = client(args.kubeconfig.as_ref()).await?;
    let classes: Api<StorageClass> = Api::all(client.clone());
    let class = classes
        .get_opt(&args.storage_class)
        .await
        .context("reading StorageClasses (is the API server reachable?)")?
        .ok_or_else(|| {
            refuse(format!(
                "there is no StorageClass {}: apply deploy/csi/ first (see deploy/csi/README.md)",
                args.storage_class
            ))
        })?;
    if class.reclaim_policy.as_deref() == Some("Retain") {
        return Err(refuse(format!(
            "StorageClass {} keeps its volumes (reclaimPolicy Retain) and the bench makes {} claims: \
             give a class with reclaimPolicy Delete, such as rookery-rbd",
            args.storage_class,
            args.count + args.burst + args.pods + 1
        )));
    }
    if class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer") {
        return Err(refuse(format!(
            "StorageClass {} binds claims only once a pod uses them (WaitForFirstConsumer); the bench \
             times claims alone: give a class with volumeBindingMode Immediate",
            args.storage_class
        )));
    }
    let driver = class.provisioner.clone();
    let (node, hostname) = pick_node(&client, &driver, args.node.as_deref()).await?;

    let stamp = format!("{:08x}", rand_u32());
    let run = Run {
        client: client.clone(),
        namespace: format!("rookery-bench-{stamp}"),
        floor_class: format!("rookery-bench-floor-{stamp}"),
        floor_path: args.floor_dir.join(&stamp),
        floor_dir: args.floor_dir.clone(),
        hostname,
        image: args.image.clone(),
        stamp,
    };
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let measured = measure(
        &run,
        args,
        &class.metadata.name.clone().unwrap_or_default(),
        &progress,
    )
    .await;
    progress.set_message("deleting what the bench made");
    let cleaned = run.clean_up().await;
    progress.finish_and_clear();
    let sides = measured?;
    cleaned.context("cleaning up after the bench")?;
    Ok(Report {
        storage_class: args.storage_class.clone(),
        driver,
        node,
        count: args.count,
        burst: args.burst,
        pods: args.pods,
        floor: sides.0,
        ours: sides.1,
    })
}

/// The node to run on: the one asked for, or the first ready one where `driver` is registered; with the
/// value of its hostname label, which pods select it by (through the scheduler, as a user's pod is).
async fn pick_node(
    client: &Client,
    driver: &str,
    asked: Option<&str>,
) -> Result<(String, String), Failure> {
    let csinodes: Api<CSINode> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let registered: Vec<String> = csinodes
        .list(&ListParams::default())
        .await
        .context("listing CSINodes")?
        .items
        .into_iter()
        .filter(|c| c.spec.drivers.iter().any(|d| d.name == driver))
        .filter_map(|c| c.metadata.name)
        .collect();
    let mut candidates = Vec::new();
    for name in &registered {
        if asked.is_some_and(|a| a != name) {
            continue;
        }
        if let Some(node) = nodes.get_opt(name).await.context("reading Nodes")? {
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready {
                let hostname = node
                    .labels()
                    .get("kubernetes.io/hostname")
                    .cloned()
                    .unwrap_or_else(|| name.clone());
                candidates.push((name.clone(), hostname));
            }
        }
    }
    candidates.into_iter().next().ok_or_else(|| {
        refuse(match asked {
            Some(a) => format!(
                "node {a} is not ready or its node plugin of {driver} is not registered \
                 (nodes with it: {registered:?}); check `kubectl get csinode {a}`"
            ),
            None => format!(
                "no ready node has the node plugin of {driver} registered: apply deploy/csi/ and \
                 check its DaemonSet with `kubectl get pods -n rookery-csi`"
            ),
        })
    })
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    // A clash only costs a refused create (the namespace exists); the clock is a fine fallback.
    if getrandom::getrandom(&mut b).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

/// What one run made, and how to reach it.
struct Run {
    client: Client,
    namespace: String,
    floor_class: String,
    /// The run's folder on the node, holding the floor's volumes.
    floor_path: PathBuf,
    floor_dir: PathBuf,
    hostname: String,
    image: String,
    stamp: String,
}

/// The figures of one side: the floor or rookery.
#[derive(Default)]
struct Side {
    bound: Vec<Duration>,
    burst_all_bound: Duration,
    pod_running: Vec<Duration>,
    dd_mb_per_s: f64,
}

/// The first time each object was seen in each phase, from one watch over the namespace.
type Seen = HashMap<(String, String), Instant>;

/// Records, from a watch on `api`, when each object first showed each phase `phase_of` reads.
fn track<K>(
    api: Api<K>,
    phase_of: fn(&K) -> Option<String>,
) -> (watch::Receiver<Seen>, tokio::task::JoinHandle<()>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let (tx, rx) = watch::channel(Seen::new());
    let task = tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            let object = match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "the bench's watch restarts");
                    continue;
                }
            };
            let (Some(name), Some(phase)) = (object.meta().name.clone(), phase_of(&object)) else {
                continue;
            };
            let now = Instant::now();
            tx.send_if_modified(|seen| {
                let key = (name, phase);
                if seen.contains_key(&key) {
                    return false;
                }
                seen.insert(key, now);
                true
            });
        }
    });
    (rx, task)
}

fn claim_phase(c: &PersistentVolumeClaim) -> Option<String> {
    c.status.as_ref()?.phase.clone()
}

fn pod_phase(p: &Pod) -> Option<String> {
    p.status.as_ref()?.phase.clone()
}

/// Waits until `name` has shown one of `phases`; returns the phase and when it was first seen.
async fn reached(
    seen: &watch::Receiver<Seen>,
    name: &str,
    phases: &[&str],
    what: &str,
) -> Result<(String, Instant)> {
    let mut rx = seen.clone();
    let first = |s: &Seen| {
        phases.iter().find_map(|p| {
            s.get(&(name.to_string(), p.to_string()))
                .map(|t| (p.to_string(), *t))
        })
    };
    let waited = tokio::time::timeout(PATIENCE, rx.wait_for(|s| first(s).is_some())).await;
    match waited {
        Ok(Ok(s)) => first(&s).ok_or_else(|| anyhow!("{what} {name}: lost its phase")),
        Ok(Err(_)) => bail!("the watch of {what}s ended"),
        Err(_) => bail!(
            "{what} {name} did not reach {} within {} s",
            phases.join(" or "),
            PATIENCE.as_secs()
        ),
    }
}

fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(((v.len().saturating_sub(1)) as f64 * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

async fn measure(
    run: &Run,
    args: &K8sBenchArgs,
    class: &str,
    progress: &ProgressBar,
) -> Result<(Side, Side)> {
    progress.set_message("making the namespace and the floor's volumes");
    run.set_up(args.count + args.burst + args.pods + 1).await?;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(run.client.clone(), &run.namespace);
    let pods: Api<Pod> = Api::namespaced(run.client.clone(), &run.namespace);
    let (claim_seen, claim_task) = track(claims.clone(), claim_phase);
    let (pod_seen, pod_task) = track(pods.clone(), pod_phase);
    let result = async {
        let sides = [("floor", run.floor_class.as_str()), ("rbd", class)];
        let mut out = [Side::default(), Side::default()];

        // Claims one after the other, the two sides alternating so that both see the same background.
        for i in 0..args.count {
            progress.set_message(format!("claims one by one: {}/{}", i + 1, args.count));
            for (side, (prefix, class)) in out.iter_mut().zip(sides) {
                let name = format!("{prefix}-one-{i}");
                let start = Instant::now();
                claims
                    .create(&PostParams::default(), &claim(&name, class)?)
                    .await?;
                let (_, at) = run.bound(&claim_seen, &name).await?;
                side.bound.push(at - start);
            }
        }

        // Many claims at once.
        for (side, (prefix, class)) in out.iter_mut().zip(sides) {
            progress.set_message(format!("{} claims at once ({prefix})", args.burst));
            let names: Vec<String> = (0..args.burst)
                .map(|i| format!("{prefix}-burst-{i}"))
                .collect();
            let start = Instant::now();
            futures::stream::iter(names.iter().map(|n| {
                let claims = claims.clone();
                let object = claim(n, class);
                async move {
                    claims
                        .create(&PostParams::default(), &object?)
                        .await
                        .map_err(anyhow::Error::from)
                }
            }))
            .buffer_unordered(args.burst)
            .try_collect::<Vec<_>>()
            .await?;
            let mut last = start;
            for n in &names {
                let (_, at) = run.bound(&claim_seen, n).await?;
                last = last.max(at);
            }
            side.burst_all_bound = last - start;
        }

        // A pod with a claim made at the same moment, until the pod runs; then it goes, before the next.
        for i in 0..args.pods {
            progress.set_message(format!("pods with a new claim: {}/{}", i + 1, args.pods));
            for (side, (prefix, class)) in out.iter_mut().zip(sides) {
                let name = format!("{prefix}-pod-{i}");
                let start = Instant::now();
                claims
                    .create(&PostParams::default(), &claim(&name, class)?)
                    .await?;
                pods.create(
                    &PostParams::default(),
                    &run.pod(&name, &name, "exec sleep infinity")?,
                )
                .await?;
                let (phase, at) =
                    reached(&pod_seen, &name, &["Running", "Failed", "Succeeded"], "pod").await?;
                if phase != "Running" {
                    bail!(
                        "pod {name} ended ({phase}) instead of running: {}",
                        run.events(&name).await
                    );
                }
                side.pod_running.push(at - start);
                run.delete_pod(&name).await?;
            }
        }

        // dd's own figure, inside a pod, on a new claim of each side.
        for (side, (prefix, class)) in out.iter_mut().zip(sides) {
            progress.set_message(format!("dd in a pod ({prefix})"));
            let name = format!("{prefix}-dd");
            claims
                .create(&PostParams::default(), &claim(&name, class)?)
                .await?;
            pods.create(
                &PostParams::default(),
                &run.pod(
                    &name,
                    &name,
                    "dd if=/dev/zero of=/data/dd.bin bs=1M count=200 oflag=direct 2>&1",
                )?,
            )
            .await?;
            let (phase, _) = reached(&pod_seen, &name, &["Succeeded", "Failed"], "pod").await?;
            let log = pods
                .logs(&name, &LogParams::default())
                .await
                .unwrap_or_default();
            if phase != "Succeeded" {
                bail!("dd in pod {name} failed: {log}{}", run.events(&name).await);
            }
            side.dd_mb_per_s = super::bench_volumes::dd_rate(&log)
                .ok_or_else(|| anyhow!("could not read dd's figure in pod {name}'s log: {log}"))?;
        }
        Ok(out)
    }
    .await;
    claim_task.abort();
    pod_task.abort();
    let [floor, ours] = result?;
    Ok((floor, ours))
}

impl Run {
    fn labels(&self) -> Value {
        json!({"app.kubernetes.io/part-of": "rookery-bench", "rookery.io/bench-run": self.stamp})
    }

    fn selector(&self) -> String {
        format!("rookery.io/bench-run={}", self.stamp)
    }

    /// The namespace, the floor's StorageClass (no provisioner) and `volumes` hostPath volumes for it.
    async fn set_up(&self, volumes: usize) -> Result<()> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &from(json!({"metadata": {"name": self.namespace, "labels": self.labels()}}))?,
            )
            .await
            .with_context(|| format!("making the namespace {}", self.namespace))?;
        let classes: Api<StorageClass> = Api::all(self.client.clone());
        classes
            .create(
                &PostParams::default(),
                &from(json!({
                    "metadata": {"name": self.floor_class, "labels": self.labels()},
                    "provisioner": "kubernetes.io/no-provisioner",
                    "reclaimPolicy": "Retain",
                    "volumeBindingMode": "Immediate",
                }))?,
            )
            .await
            .context("making the floor's StorageClass")?;
        let volumes_api: Api<PersistentVolume> = Api::all(self.client.clone());
        futures::stream::iter((0..volumes).map(|i| {
            let api = volumes_api.clone();
            let object = from::<PersistentVolume>(json!({
                "metadata": {"name": format!("{}-{i}", self.floor_class), "labels": self.labels()},
                "spec": {
                    "storageClassName": self.floor_class,
                    "capacity": {"storage": CLAIM_SIZE},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": self.floor_path.join(i.to_string()), "type": "DirectoryOrCreate"},
                },
            }));
            async move { api.create(&PostParams::default(), &object?).await.map_err(anyhow::Error::from) }
        }))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .context("making the floor's volumes")?;
        // A claim made before the binder has seen the volumes waits for its next sync (15 s): the floor
        // starts once each volume is Available, which the binder itself writes.
        let selector = self.selector();
        wait_until("the floor's volumes are Available", || {
            let (api, selector) = (volumes_api.clone(), selector.clone());
            async move {
                let list = api
                    .list(&ListParams::default().labels(&selector))
                    .await?
                    .items;
                Ok(list.len() == volumes
                    && list.iter().all(|v| {
                        v.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Available")
                    }))
            }
        })
        .await?;
        Ok(())
    }

    async fn bound(&self, seen: &watch::Receiver<Seen>, name: &str) -> Result<(String, Instant)> {
        match reached(seen, name, &["Bound", "Lost"], "claim").await {
            Ok((phase, at)) if phase == "Bound" => Ok((phase, at)),
            Ok((phase, _)) => bail!("claim {name} is {phase}: {}", self.events(name).await),
            Err(e) => Err(anyhow!("{e}: {}", self.events(name).await)),
        }
    }

    /// A pod on this node running `script` with `claim` mounted at /data.
    fn pod(&self, name: &str, claim: &str, script: &str) -> Result<Pod> {
        from(json!({
            "metadata": {"name": name, "labels": self.labels()},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 0,
                "nodeSelector": {"kubernetes.io/hostname": self.hostname},
                "containers": [{
                    "name": "bench",
                    "image": self.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
            },
        }))
    }

    async fn delete_pod(&self, name: &str) -> Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        pods.delete(name, &DeleteParams::default().grace_period(0))
            .await?;
        wait_gone(&pods, name).await
    }

    /// The last events of an object in the namespace, as a hint for an error message.
    async fn events(&self, name: &str) -> String {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let list = events
            .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
            .await;
        let mut lines: Vec<String> = match list {
            Ok(l) => l
                .items
                .into_iter()
                .filter_map(|e| Some(format!("{}: {}", e.reason?, e.message?)))
                .collect(),
            Err(_) => Vec::new(),
        };
        if lines.is_empty() {
            return "no events".into();
        }
        let keep = lines.len().saturating_sub(3);
        lines.drain(..keep);
        format!("events: {}", lines.join("; "))
    }

    /// Removes what the run made, whatever it got to: pods first (so that volumes are released), the
    /// floor's folders on the node, the namespace (its claims; rookery's volumes go by reclaimPolicy
    /// Delete, which this waits for), the floor's volumes and class.
    async fn clean_up(&self) -> Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        if namespaces.get_opt(&self.namespace).await?.is_some() {
            let _ = pods
                .delete_collection(
                    &DeleteParams::default().grace_period(0),
                    &ListParams::default(),
                )
                .await;
            wait_until("the bench's pods are gone", || {
                let pods = pods.clone();
                async move { Ok(pods.list(&ListParams::default()).await?.items.is_empty()) }
            })
            .await?;
            self.remove_floor_folder(&pods).await?;
            namespaces
                .delete(&self.namespace, &DeleteParams::default())
                .await?;
            wait_gone(&namespaces, &self.namespace).await?;
        }
        let volumes: Api<PersistentVolume> = Api::all(self.client.clone());
        wait_until("rookery's volumes of the bench are deleted", || {
            let (volumes, ns) = (volumes.clone(), self.namespace.clone());
            async move {
                let left = volumes.list(&ListParams::default()).await?.items;
                Ok(!left.iter().any(|v| {
                    v.spec
                        .as_ref()
                        .and_then(|s| s.claim_ref.as_ref())
                        .is_some_and(|c| c.namespace.as_deref() == Some(ns.as_str()))
                        && !v.labels().contains_key("rookery.io/bench-run")
                }))
            }
        })
        .await?;
        volumes
            .delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels(&self.selector()),
            )
            .await?;
        let classes: Api<StorageClass> = Api::all(self.client.clone());
        if classes.get_opt(&self.floor_class).await?.is_some() {
            classes
                .delete(&self.floor_class, &DeleteParams::default())
                .await?;
        }
        Ok(())
    }

    /// The floor's folders are on the node, made by the kubelet: a pod there removes them.
    async fn remove_floor_folder(&self, pods: &Api<Pod>) -> Result<()> {
        let name = "floor-cleanup";
        // The floor folder itself goes too when nothing else is in it (rmdir removes only an empty one).
        let parent = self.floor_dir.parent().unwrap_or(&self.floor_dir);
        let folder = self
            .floor_dir
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let pod: Pod = from(json!({
            "metadata": {"name": name, "labels": self.labels()},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 0,
                "nodeSelector": {"kubernetes.io/hostname": self.hostname},
                "containers": [{
                    "name": "cleanup",
                    "image": self.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c",
                                "rm -rf -- \"/parent/$1/$2\" && { rmdir -- \"/parent/$1\" 2>/dev/null || true; }",
                                "sh", folder, self.stamp],
                    "volumeMounts": [{"name": "parent", "mountPath": "/parent"}],
                }],
                "volumes": [{"name": "parent", "hostPath": {"path": parent, "type": "Directory"}}],
            },
        }))?;
        pods.create(&PostParams::default(), &pod).await?;
        let deadline = Instant::now() + PATIENCE;
        let phase = loop {
            let phase = pods.get_opt(name).await?.as_ref().and_then(pod_phase);
            if matches!(phase.as_deref(), Some("Succeeded" | "Failed")) || Instant::now() > deadline
            {
                break phase;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        if phase.as_deref() != Some("Succeeded") {
            bail!(
                "could not remove {} on the node: {}",
                self.floor_path.display(),
                self.events(name).await
            );
        }
        pods.delete(name, &DeleteParams::default().grace_period(0))
            .await?;
        wait_gone(pods, name).await
    }
}

fn claim(name: &str, class: &str) -> Result<PersistentVolumeClaim> {
    from(json!({
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": class,
            "resources": {"requests": {"storage": CLAIM_SIZE}},
        },
    }))
}

fn from<T: DeserializeOwned>(v: Value) -> Result<T> {
    Ok(serde_json::from_value(v)?)
}

async fn wait_gone<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    wait_until(&format!("{name} is gone"), || {
        let api = api.clone();
        let name = name.to_string();
        async move { Ok(api.get_opt(&name).await?.is_none()) }
    })
    .await
}

async fn wait_until<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if check().await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("waited 600 s until {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Report {
    storage_class: String,
    driver: String,
    node: String,
    count: usize,
    burst: usize,
    pods: usize,
    floor: Side,
    ours: Side,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Report {
    /// (label, floor, rookery, unit) of each figure; times in ms, dd in MB/s.
    fn rows(&self) -> Vec<(String, &'static str, f64, f64)> {
        let side = |s: &Side| {
            [
                ms(percentile(&s.bound, 0.5)),
                ms(percentile(&s.bound, 0.99)),
                ms(s.burst_all_bound),
                ms(percentile(&s.pod_running, 0.5)),
                s.dd_mb_per_s,
            ]
        };
        let (f, o) = (side(&self.floor), side(&self.ours));
        vec![
            (
                format!("claim → Bound, p50 of {}", self.count),
                "claim_bound_p50_ms",
                f[0],
                o[0],
            ),
            (
                format!("claim → Bound, p99 of {}", self.count),
                "claim_bound_p99_ms",
                f[1],
                o[1],
            ),
            (
                format!("{} claims at once → all Bound", self.burst),
                "burst_all_bound_ms",
                f[2],
                o[2],
            ),
            (
                format!("pod + new claim → Running, p50 of {}", self.pods),
                "pod_running_p50_ms",
                f[3],
                o[3],
            ),
            (
                "dd bs=1M count=200 oflag=direct".to_string(),
                "dd_mb_per_s",
                f[4],
                o[4],
            ),
        ]
    }

    fn json(&self) -> Value {
        let mut floor = serde_json::Map::new();
        let mut ours = serde_json::Map::new();
        let mut ratio = serde_json::Map::new();
        for (_, key, f, o) in self.rows() {
            floor.insert(key.into(), json!(f));
            ours.insert(key.into(), json!(o));
            ratio.insert(key.into(), json!(if f > 0.0 { o / f } else { 0.0 }));
        }
        json!({
            "bench": "k8s",
            "storage_class": self.storage_class,
            "driver": self.driver,
            "node": self.node,
            "count": self.count,
            "burst": self.burst,
            "pods": self.pods,
            "floor": floor,
            "rookery": ours,
            "rookery_over_floor": ratio,
        })
    }

    fn text(&self) -> String {
        let mut out = format!(
            "k8s: StorageClass {} ({}) on node {}, next to the floor: claims bound to hostPath volumes \
             made beforehand (Kubernetes alone: no provisioner, no storage system)\n",
            self.storage_class, self.driver, self.node
        );
        out.push_str(&format!(
            "{:<42} {:>12} {:>12} {:>14}\n",
            "", "floor", "rookery", "rookery/floor"
        ));
        for (label, key, f, o) in self.rows() {
            let (fs, os) = if key.ends_with("_ms") {
                (seconds_or_ms(f), seconds_or_ms(o))
            } else {
                (format!("{f:.0} MB/s"), format!("{o:.0} MB/s"))
            };
            let r = if f > 0.0 { o / f } else { 0.0 };
            out.push_str(&format!("{label:<42} {fs:>12} {os:>12} {:>13.2}x\n", r));
        }
        out
    }
}

fn seconds_or_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<Duration> = (1..=50).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(26));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(50));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn objects_deserialize() {
        let c = claim("a", "rookery-rbd").unwrap();
        assert_eq!(c.metadata.name.as_deref(), Some("a"));
        assert_eq!(
            c.spec.and_then(|s| s.storage_class_name).as_deref(),
            Some("rookery-rbd")
        );
    }
}
