//! `rookery csi`: the CSI driver for this cluster's RBD volumes, served over gRPC on a unix socket until
//! SIGTERM or Ctrl-C.

use std::path::PathBuf;

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
        rookery_csi::serve(driver, &path, shutdown).await
    })
    .map_err(|e| Failure::from(anyhow!("{e}")))
}
