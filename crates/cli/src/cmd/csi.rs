//! `rookery csi`: the CSI driver (RBD or CephFS volumes), served over gRPC on a unix socket until SIGTERM
//! or Ctrl-C, with its per-RPC metrics and a health check on 127.0.0.1 when asked for. The cluster is the
//! standalone one of the data dir, or (in Kubernetes) one named by a ceph.conf and a Secret's credentials;
//! the node service can register itself with the kubelet.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::anyhow;
use clap::Args;
use rookery_orchestrator::{ClusterState, Layout};

use crate::{CmdResult, Failure};

#[derive(Args)]
pub struct CsiArgs {
    /// Where to serve: unix:///PATH/csi.sock (or a plain path).
    #[arg(long)]
    pub endpoint: String,
    /// This node's name, as the CO knows it.
    #[arg(long)]
    pub node_id: String,
    /// Serve the controller service (with --node: both; with neither: both).
    #[arg(long)]
    pub controller: bool,
    /// Serve the node service.
    #[arg(long)]
    pub node: bool,
    /// The driver: rbd.csi.rookery.io (block volumes) or cephfs.csi.rookery.io (shared file volumes).
    #[arg(long, default_value = rookery_csi::RBD_DRIVER)]
    pub driver: String,
    /// Serve Prometheus metrics (requests and latency per RPC) at http://ADDRESS/metrics; 127.0.0.1:PORT
    /// only (0 picks a free port, printed at start).
    #[arg(long, value_name = "127.0.0.1:PORT")]
    pub metrics_address: Option<String>,
    /// The cluster's ceph.conf (its fsid and mon_host; in Kubernetes the ConfigMap that `rookery k8s
    /// export` writes), instead of the standalone cluster in the data dir.
    #[arg(long, value_name = "FILE", requires = "credentials")]
    pub ceph_conf: Option<PathBuf>,
    /// With --ceph-conf: a folder holding the files `userID` and `userKey` (a mounted Secret): the Ceph
    /// user the driver acts as when a request carries no secrets of its own.
    #[arg(long, value_name = "DIR", requires = "ceph_conf")]
    pub credentials: Option<PathBuf>,
    /// With --ceph-conf: wait for it and the credentials to be written (by the agent of the same pod,
    /// once the cluster exists) instead of stopping because they are not there yet.
    #[arg(long, requires = "ceph_conf")]
    pub wait_for_config: bool,
    /// Register the node service with the kubelet through a socket in DIR (the kubelet's
    /// plugins_registry folder, as mounted here), as node-driver-registrar does.
    #[arg(long, value_name = "DIR", requires = "kubelet_endpoint")]
    pub kubelet_registration_dir: Option<PathBuf>,
    /// With --kubelet-registration-dir: --endpoint's socket as the kubelet sees it on the host.
    #[arg(long, value_name = "PATH", requires = "kubelet_registration_dir")]
    pub kubelet_endpoint: Option<PathBuf>,
}

/// Where the driver finds its cluster and who it acts as.
struct ClusterAccess {
    conf: PathBuf,
    identity: rookery_ceph::Identity,
    cluster_ids: Vec<String>,
}

/// The standalone cluster of the data dir, acting as its admin.
fn standalone(layout: &Layout) -> Result<ClusterAccess, Failure> {
    let state = ClusterState::load(layout)
        .map_err(|e| Failure::from(anyhow!(e)))?
        .ok_or_else(|| {
            Failure::bad_input(format!(
                "{} holds no cluster; run `rookery up` first, or name an external cluster with --ceph-conf and --credentials",
                layout.root.display()
            ))
        })?;
    Ok(ClusterAccess {
        conf: layout.conf(),
        identity: rookery_ceph::Identity::admin(),
        cluster_ids: vec![state.fsid, state.name],
    })
}

/// A cluster named by its ceph.conf, acting as the user in `credentials` (userID, userKey).
/// Until ceph.conf and the user's key are there, saying every half minute what it waits for.
fn wait_for_config(conf: &Path, credentials: &Path) {
    let key = credentials.join("userKey");
    let started = std::time::Instant::now();
    let mut said = None::<std::time::Instant>;
    while !(conf.exists() && key.exists()) {
        if said.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(30)) {
            eprintln!(
                "waiting for {} and {} (written once the cluster's mons answer; {} s so far)",
                conf.display(),
                key.display(),
                started.elapsed().as_secs()
            );
            said = Some(std::time::Instant::now());
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn external(conf: &Path, credentials: &Path) -> Result<ClusterAccess, Failure> {
    let text = std::fs::read_to_string(conf).map_err(|e| {
        Failure::bad_input(format!(
            "--ceph-conf {}: cannot read it: {e}",
            conf.display()
        ))
    })?;
    let parsed = rookery_ceph::conf::CephConf::parse(&text);
    let fsid = parsed.get("global", "fsid").ok_or_else(|| {
        Failure::bad_input(format!(
            "--ceph-conf {}: it names no fsid; write it with `rookery k8s export`",
            conf.display()
        ))
    })?;
    if parsed.get("global", "mon_host").is_none() {
        return Err(Failure::bad_input(format!(
            "--ceph-conf {}: it names no mon_host; write it with `rookery k8s export`",
            conf.display()
        )));
    }
    let user_file = credentials.join("userID");
    let user = std::fs::read_to_string(&user_file).map_err(|e| {
        Failure::bad_input(format!(
            "--credentials {}: cannot read userID: {e}",
            credentials.display()
        ))
    })?;
    let user = user.trim();
    let user = user.strip_prefix("client.").unwrap_or(user).to_string();
    let identity = rookery_ceph::Identity {
        user,
        key_file: Some(credentials.join("userKey")),
    };
    identity
        .key()
        .map_err(|e| Failure::bad_input(format!("--credentials: {e}")))?;
    // The ConfigMap's clusterID (mounted beside ceph.conf): the name StorageClasses use, e.g. the
    // CephCluster's namespace as with Rook.
    let mut cluster_ids = vec![fsid.to_string()];
    if let Some(id) = conf
        .parent()
        .and_then(|dir| std::fs::read_to_string(dir.join("clusterID")).ok())
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty() && id != fsid)
    {
        cluster_ids.push(id);
    }
    Ok(ClusterAccess {
        conf: conf.to_path_buf(),
        identity,
        cluster_ids,
    })
}

fn socket_path(endpoint: &str) -> Result<PathBuf, Failure> {
    let path = endpoint
        .strip_prefix("unix://")
        .unwrap_or(endpoint)
        .to_string();
    if path.is_empty() || endpoint.starts_with("tcp://") || !path.starts_with('/') {
        return Err(Failure::bad_input(format!(
            "--endpoint {endpoint:?}: use unix:///ABSOLUTE/PATH/csi.sock (the driver serves on a unix socket only)"
        )));
    }
    Ok(PathBuf::from(path))
}

pub fn run(layout: &Layout, args: &CsiArgs) -> CmdResult {
    let path = socket_path(&args.endpoint)?;
    let kind = rookery_csi::Kind::from_name(&args.driver).ok_or_else(|| {
        Failure::bad_input(format!(
            "--driver {}: use {} or {}",
            args.driver,
            rookery_csi::RBD_DRIVER,
            rookery_csi::CEPHFS_DRIVER
        ))
    })?;
    if args.node_id.trim().is_empty() {
        return Err(Failure::bad_input("--node-id must not be empty"));
    }
    let metrics_address = args
        .metrics_address
        .as_deref()
        .map(|a| crate::metrics::loopback_address("--metrics-address", a))
        .transpose()
        .map_err(Failure::bad_input)?;
    let access = match (&args.ceph_conf, &args.credentials) {
        (Some(conf), Some(credentials)) => {
            if args.wait_for_config {
                wait_for_config(conf, credentials);
            }
            external(conf, credentials)?
        }
        _ => standalone(layout)?,
    };
    let registration =
        match (&args.kubelet_registration_dir, &args.kubelet_endpoint) {
            (Some(dir), Some(endpoint)) if args.node || !args.controller => {
                Some((dir.clone(), endpoint.clone()))
            }
            (Some(_), _) => return Err(Failure::bad_input(
                "--kubelet-registration-dir registers the node service: drop it, or serve --node",
            )),
            _ => None,
        };
    let both = !args.controller && !args.node;
    let driver = rookery_csi::Driver::new(rookery_csi::Config {
        kind,
        node_id: args.node_id.clone(),
        controller: args.controller || both,
        node: args.node || both,
        data_dir: layout.root.clone(),
        conf: access.conf,
        identity: access.identity,
        cluster_ids: access.cluster_ids,
    })
    .map_err(|e| Failure::from(anyhow!("cannot reach the cluster: {e}")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::from(anyhow!(e)))?;
    // Only with a data dir of its own: a standalone cluster's holds `rookery volume mount`s too, which
    // `rookery up` restores.
    if (args.node || both) && args.ceph_conf.is_some() {
        for line in driver.restore_staged() {
            eprintln!("{line}");
        }
    }
    eprintln!("serving {} on {}", args.driver, path.display());
    rt.block_on(async {
        if let Some(addr) = metrics_address {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                Failure::from(anyhow!(
                    "--metrics-address {addr}: cannot listen there ({e}); choose a free port, or 0 to pick one"
                ))
            })?;
            let bound = listener
                .local_addr()
                .map_err(|e| Failure::from(anyhow!(e)))?;
            eprintln!("metrics on http://{bound}/metrics");
            let metrics_of = Arc::clone(&driver);
            let render: crate::metrics::Render = Arc::new(move || metrics_of.metrics.render());
            let health_of = Arc::clone(&driver);
            let app = crate::metrics::router(render).route(
                "/healthz",
                axum::routing::get(move || {
                    let driver = Arc::clone(&health_of);
                    async move { health(driver).await }
                }),
            );
            // Ends with the runtime, when the driver has stopped.
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::warn!(error = %e, "the metrics listener stopped");
                }
            });
        }
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let registered = registration.map(|(dir, endpoint)| {
            let registration = rookery_csi::registration::Registration {
                driver: args.driver.clone(),
                endpoint,
            };
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let until = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                if let Err(e) = rookery_csi::registration::serve(registration, &dir, until).await {
                    tracing::error!(error = %e, "the kubelet registration socket stopped");
                }
            })
        });
        let served = rookery_csi::serve(driver, &path, shutdown)
            .await
            .map_err(|e| Failure::from(anyhow!("{e}")));
        let _ = stop_tx.send(true);
        // The registration removes its socket as it stops, so the kubelet unregisters the driver.
        if let Some(task) = registered {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
        served
    })
}

/// `GET /healthz`: 200 while the driver reaches its cluster (what the CSI livenessprobe sidecar checks
/// through Probe), 503 with the reason otherwise.
async fn health(driver: Arc<rookery_csi::Driver>) -> (axum::http::StatusCode, String) {
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::task::spawn_blocking(move || driver.probe_cluster()),
    )
    .await;
    match answer {
        Ok(Ok(Ok(()))) => (axum::http::StatusCode::OK, "ok\n".into()),
        Ok(Ok(Err(e))) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("{e}\n"),
        ),
        Ok(Err(e)) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("{e}\n"),
        ),
        Err(_) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Ceph did not answer within 10 s\n".into(),
        ),
    }
}
