//! `rookery operator`, `rookery agent` and `rookery crds`: rookery on Kubernetes (crates/k8s). The
//! operator and the agent run in pods (deploy/operator/); `crds` prints the CustomResourceDefinitions.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::{CmdResult, Failure};

#[derive(Args)]
pub struct OperatorArgs {
    /// The namespace whose CephCluster (and pools, filesystems, object stores, users) it runs.
    #[arg(long, env = "POD_NAMESPACE", default_value = "rook-ceph")]
    pub namespace: String,
    /// The image the Ceph daemons' pods run (rookery's own, which carries Ceph).
    #[arg(long, env = "ROOKERY_IMAGE", default_value = concat!("rookery.local/rookery:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// This replica's name in the leader Lease.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// The node it runs on (its daemons prefer it while the cluster has one home node).
    #[arg(long, env = "NODE_NAME")]
    pub node: Option<String>,
    /// Use this folder on the nodes instead of each CephCluster's dataDirHostPath.
    #[arg(long, env = "ROOKERY_DATA_DIR_HOST_PATH")]
    pub data_dir_host_path: Option<String>,
    /// The first mon's msgr2 port (msgr1 is the next); Rook's 3300 and 6789 when unset.
    #[arg(long, env = "ROOKERY_MON_PORT")]
    pub mon_port: Option<u16>,
    /// Let useAllDevices take loop devices (Rook's ROOK_CEPH_ALLOW_LOOP_DEVICES).
    #[arg(long, env = "ROOK_CEPH_ALLOW_LOOP_DEVICES", default_value_t = false)]
    pub allow_loop_devices: bool,
    /// The namespace of the CSI drivers, where their ConfigMap and Secrets are written: the cluster's
    /// own (deploy/operator/ runs them there, as Rook does) unless set, e.g. to rookery-csi for the
    /// drivers of deploy/csi/.
    #[arg(long, env = "ROOKERY_CSI_NAMESPACE")]
    pub csi_namespace: Option<String>,
}

#[derive(Args)]
pub struct AgentArgs {
    /// The namespace of the cluster whose node work it does.
    #[arg(long, env = "POD_NAMESPACE", default_value = "rook-ceph")]
    pub namespace: String,
    /// The node it runs on.
    #[arg(long, env = "NODE_NAME")]
    pub node: String,
    /// A folder shared with the pod's CSI node plugins, where it writes the cluster's ceph.conf and
    /// the drivers' Ceph users for them to read (`rookery csi --wait-for-config`).
    #[arg(long, env = "ROOKERY_CSI_CONFIG_DIR", value_name = "DIR")]
    pub csi_config_dir: Option<PathBuf>,
}

pub fn operator(args: &OperatorArgs) -> CmdResult {
    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("rookery-operator-{}", std::process::id()));
    rookery_k8s::operator::run(rookery_k8s::operator::Options {
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        identity,
        node: args.node.clone(),
        data_dir_host_path: args.data_dir_host_path.clone(),
        mon_port: args.mon_port,
        allow_loop_devices: args.allow_loop_devices,
        csi_namespace: args
            .csi_namespace
            .clone()
            .unwrap_or_else(|| args.namespace.clone()),
    })
    .map_err(Failure::from)
}

pub fn agent(args: &AgentArgs) -> CmdResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
        rookery_k8s::agent::run(
            client,
            rookery_k8s::agent::Options {
                namespace: args.namespace.clone(),
                node: args.node.clone(),
                csi_config_dir: args.csi_config_dir.clone(),
            },
        )
        .await
    })
    .map_err(Failure::from)
}

pub fn crds() -> CmdResult {
    print!("{}", rookery_k8s::crd::yaml());
    Ok(())
}
