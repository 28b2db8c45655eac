//! `rookery csi`: the CSI driver for this cluster's RBD volumes, served over gRPC on a unix socket until
//! SIGTERM or Ctrl-C, with its per-RPC metrics on 127.0.0.1 when asked for.

use std::path::PathBuf;
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
    let state = ClusterState::load(layout)
        .map_err(|e| Failure::from(anyhow!(e)))?
        .ok_or_else(|| {
            Failure::bad_input(format!(
                "{} holds no cluster; run `rookery up` first",
                layout.root.display()
            ))
        })?;
    let both = !args.controller && !args.node;
    let driver = rookery_csi::Driver::new(rookery_csi::Config {
        kind,
        node_id: args.node_id.clone(),
        controller: args.controller || both,
        node: args.node || both,
        data_dir: layout.root.clone(),
        cluster_ids: vec![state.fsid.clone(), state.name.clone()],
    })
    .map_err(|e| Failure::from(anyhow!("cannot reach the cluster: {e}")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::from(anyhow!(e)))?;
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
            // Ends with the runtime, when the driver has stopped.
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, crate::metrics::router(render)).await {
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
        rookery_csi::serve(driver, &path, shutdown)
            .await
            .map_err(|e| Failure::from(anyhow!("{e}")))
    })
}
