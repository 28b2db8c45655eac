//! `rookery bench operator`: what a Rook user waits for, a CephCluster applied until it is Ready with
//! HEALTH_OK, every OSD up and every placement group active+clean, and what the operator and its agents cost in memory while they build it and at rest; next
//! to the same spec brought up by `rookery up` on this host (its OSDs on files instead of devices), the
//! floor without Kubernetes, measured in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{json, Value};

use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct OperatorBenchArgs {
    /// The kubeconfig of the cluster; without it, $KUBECONFIG or ~/.kube/config as kubectl finds them.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The CephCluster (and any pools, filesystems, stores) to apply; deploy/operator/ must be applied.
    #[arg(short = 'f', long)]
    pub file: PathBuf,
    /// Seconds to wait for Ready and HEALTH_OK.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// OSD files of the standalone floor (the cluster on Kubernetes takes the devices its spec selects).
    #[arg(long, default_value_t = 1)]
    pub floor_osds: u32,
}

/// Rook's operator, as its users report it: 105 to 208 MB.
const ROOK_OPERATOR_MB: (u64, u64) = (105, 208);

struct Report {
    cluster: String,
    namespace: String,
    ready_secs: f64,
    floor_secs: f64,
    operator_busy_mib: u64,
    operator_rest_mib: u64,
    agent_busy_mib: u64,
    agent_rest_mib: u64,
}

pub fn run(args: &OperatorBenchArgs, output: Output) -> CmdResult {
    let text = std::fs::read_to_string(&args.file).map_err(|e| {
        Failure::bad_input(format!("-f {}: cannot read it: {e}", args.file.display()))
    })?;
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).map_err(|e| anyhow!("{e}")))
        .collect::<Result<Vec<Value>>>()
        .map_err(|e| Failure::bad_input(format!("-f {}: {e}", args.file.display())))?;
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let cluster = docs
        .iter()
        .find(|d| d["kind"] == "CephCluster")
        .ok_or_else(|| {
            Failure::bad_input(format!(
                "-f {}: it holds no CephCluster",
                args.file.display()
            ))
        })?
        .clone();
    let floor = floor_secs(&docs, args.floor_osds.max(1)).map_err(Failure::from)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::from(anyhow!(e)))?;
    let report = rt
        .block_on(on_kubernetes(args, &docs, &cluster, floor))
        .map_err(Failure::from)?;
    match output {
        Output::Json => println!("{}", report.json()),
        Output::Text => print!("{}", report.text()),
    }
    Ok(())
}

/// `rookery up` of the same resources in a temporary data dir, OSD files in place of the selected
/// devices, until ready; then the floor's cluster is purged.
fn floor_secs(docs: &[Value], osds: u32) -> Result<f64> {
    let dir = tempfile::Builder::new()
        .prefix("rookery-bench-floor-")
        .tempdir()?;
    let mut spec = String::new();
    for d in docs {
        let mut d = d.clone();
        if d["kind"] == "CephCluster" {
            d["spec"]["storage"] = json!({"osdFiles": {"count": osds, "size": "10Gi"}});
        }
        spec.push_str("---\n");
        spec.push_str(&serde_yaml::to_string(&d)?);
    }
    let file = dir.path().join("spec.yaml");
    std::fs::write(&file, spec)?;
    let data = dir.path().join("data");
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let up = Command::new(&exe)
        .arg("--data-dir")
        .arg(&data)
        .args(["up", "--mon-port", "0", "-f"])
        .arg(&file)
        .output()?;
    let secs = started.elapsed().as_secs_f64();
    let down = Command::new(&exe)
        .arg("--data-dir")
        .arg(&data)
        .args(["down", "--purge", "--yes-really-destroy-data"])
        .output();
    if !up.status.success() {
        bail!(
            "the floor (`rookery up` of the same spec) failed: {}",
            String::from_utf8_lossy(&up.stderr)
        );
    }
    if let Ok(d) = down {
        if !d.status.success() {
            bail!(
                "purging the floor's cluster failed: {}",
                String::from_utf8_lossy(&d.stderr)
            );
        }
    }
    Ok(secs)
}

fn plural(kind: &str) -> String {
    format!("{}s", kind.to_lowercase())
}

async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

async fn on_kubernetes(
    args: &OperatorBenchArgs,
    docs: &[Value],
    cluster: &Value,
    floor: f64,
) -> Result<Report> {
    let client = client(args.kubeconfig.as_deref()).await?;
    let ns = cluster["metadata"]["namespace"]
        .as_str()
        .unwrap_or("rook-ceph")
        .to_string();
    let name = cluster["metadata"]["name"]
        .as_str()
        .context("the CephCluster has no name")?
        .to_string();
    let ar = |kind: &str| rookery_k8s::resources::api_resource(kind, &plural(kind));
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &ar("CephCluster"));
    if clusters.get_opt(&name).await?.is_some() {
        bail!("CephCluster {ns}/{name} exists already; the bench measures a new one (delete it, or use another namespace)");
    }
    let started = Instant::now();
    for d in docs {
        let kind = d["kind"].as_str().unwrap_or_default();
        let doc_name = d["metadata"]["name"].as_str().unwrap_or_default();
        let doc_ns = d["metadata"]["namespace"].as_str().unwrap_or(&ns);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), doc_ns, &ar(kind));
        api.patch(
            doc_name,
            &PatchParams::apply("rookery-bench"),
            &Patch::Apply(d),
        )
        .await
        .with_context(|| {
            format!("applying {kind} {doc_name}; is deploy/operator/crds.yaml applied?")
        })?;
    }
    let limit = Duration::from_secs(args.timeout);
    let (mut operator_busy, mut agent_busy) = (0u64, 0u64);
    let ready_secs = loop {
        let c = clusters.get(&name).await?;
        let status = &c.data["status"];
        let memory = &status["rookery"]["memoryMiB"];
        operator_busy = operator_busy.max(memory["operator"].as_u64().unwrap_or(0));
        agent_busy = agent_busy.max(max_agent(memory));
        let osds = &status["rookery"]["osds"];
        let pgs = &status["rookery"]["pgs"];
        let settled = osds["total"].as_u64().is_some_and(|t| t > 0)
            && osds["up"] == osds["total"]
            && pgs["activeClean"] == pgs["total"];
        if status["phase"] == "Ready" && status["ceph"]["health"] == "HEALTH_OK" && settled {
            break started.elapsed().as_secs_f64();
        }
        if started.elapsed() > limit {
            bail!(
                "CephCluster {ns}/{name} not Ready with HEALTH_OK, every OSD up and every PG active+clean within {} s: phase {}, {}",
                args.timeout,
                status["phase"],
                status["message"]
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // At rest: the converged cluster, a few status periods later.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let c = clusters.get(&name).await?;
    let memory = &c.data["status"]["rookery"]["memoryMiB"];
    Ok(Report {
        cluster: name,
        namespace: ns,
        ready_secs,
        floor_secs: floor,
        operator_busy_mib: operator_busy,
        operator_rest_mib: memory["operator"].as_u64().unwrap_or(0),
        agent_busy_mib: agent_busy,
        agent_rest_mib: max_agent(memory),
    })
}

fn max_agent(memory: &Value) -> u64 {
    memory["agents"]
        .as_object()
        .map(|a| a.values().filter_map(Value::as_u64).max().unwrap_or(0))
        .unwrap_or(0)
}

impl Report {
    fn ratio(&self) -> f64 {
        if self.floor_secs > 0.0 {
            self.ready_secs / self.floor_secs
        } else {
            0.0
        }
    }

    fn json(&self) -> Value {
        json!({
            "bench": "operator",
            "cluster": format!("{}/{}", self.namespace, self.cluster),
            "readySecs": self.ready_secs,
            "floorSecs": self.floor_secs,
            "readyOverFloor": self.ratio(),
            "operatorMiB": {"reconciling": self.operator_busy_mib, "atRest": self.operator_rest_mib},
            "agentMiB": {"reconciling": self.agent_busy_mib, "atRest": self.agent_rest_mib},
            "rookOperatorMB": [ROOK_OPERATOR_MB.0, ROOK_OPERATOR_MB.1],
        })
    }

    fn text(&self) -> String {
        format!(
            "operator: CephCluster {}/{} applied until Ready with HEALTH_OK, next to the floor: `rookery up` of the same spec on this host (OSD files)\n\
             {:<34} {:>10} {:>10} {:>8}\n\
             {:<34} {:>10.1} {:>10.1} {:>8.2}\n\
             {:<34} {:>10} {:>10}\n\
             {:<34} {:>10} {:>10}\n\
             (Rook's operator, as its users report it: {}-{} MB)\n",
            self.namespace,
            self.cluster,
            "",
            "floor",
            "operator",
            "ratio",
            "applied -> HEALTH_OK (s)",
            self.floor_secs,
            self.ready_secs,
            self.ratio(),
            "operator RSS reconciling/rest (MiB)",
            self.operator_busy_mib,
            self.operator_rest_mib,
            "agent RSS reconciling/rest (MiB)",
            self.agent_busy_mib,
            self.agent_rest_mib,
            ROOK_OPERATOR_MB.0,
            ROOK_OPERATOR_MB.1,
        )
    }
}
