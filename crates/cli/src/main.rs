//! `rookery`: one binary for the CLI, the standalone supervisor and the benchmarks.

mod api;
mod cmd;
mod control;
mod dashboard;
mod hosts_api;
mod join_channel;
mod metrics;
mod render;
mod supervisor;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "rookery",
    version,
    about = "Ceph storage, orchestrated: a standalone cluster on this host from a Rook-style spec"
)]
struct Cli {
    /// The cluster's folder: config, keys, daemon data, OSD files, logs and the control socket.
    #[arg(long, global = true, env = "ROOKERY_DATA_DIR", default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Bring the cluster up (create it the first time) and wait until it is healthy.
    ///
    /// With no file: 1 mon, 1 mgr, 3 OSDs on sparse 10 GiB files and a replicated pool `replicapool`.
    /// On a running cluster it only applies a changed spec; on a stopped one it restarts the same cluster.
    ///
    /// Example: rookery up --data-dir /tmp/c1 -f cluster.yaml
    Up(cmd::up::UpArgs),
    /// Join the cluster a member's `rookery host add NAME` printed TOKEN for: this host gets its own Ceph
    /// key over TLS pinned by the token, and runs its own OSDs (the spec's files or selected devices).
    ///
    /// Example: rookery join rookery-join-eyJ2Ijox... --address 10.0.0.2 --host-name node2
    Join(cmd::join::JoinArgs),
    /// The hosts of a cluster over several hosts: a join token for a new one, the members.
    ///
    /// Example: rookery host add node2
    Host(cmd::host::HostArgs),
    /// Health (explained), mons, mgr, OSDs, pools, capacity, PGs and the supervisor's daemons.
    ///
    /// Works when the supervisor or Ceph is down, and says what it can.
    ///
    /// Example: rookery status -o json
    Status,
    /// Stop every daemon (data kept), or with --purge destroy the cluster.
    ///
    /// Example: rookery down --purge --yes-really-destroy-data
    Down(cmd::down::DownArgs),
    /// Check this host (packages, disk, memory, ports, data dir) and explain the cluster's health.
    ///
    /// Example: rookery doctor -f cluster.yaml
    Doctor(cmd::doctor::DoctorArgs),
    /// Create or change resources (CephBlockPool, CephFilesystem, CephObjectStore, CephObjectStoreUser, or
    /// the CephCluster) on the cluster and wait until done.
    ///
    /// Example: rookery apply -f pool.yaml
    Apply(cmd::resources::FileArgs),
    /// Delete the resources in a file (refused while a pool holds volumes, a filesystem has subvolumes or
    /// mounts, or a store or user has buckets without --yes-delete-buckets).
    ///
    /// Example: rookery delete -f pool.yaml
    Delete(cmd::resources::DeleteArgs),
    /// List resources of a kind.
    ///
    /// Example: rookery get pools -o json
    Get(cmd::resources::GetArgs),
    /// Daemons: start again one the supervisor gave up on after it kept dying at start.
    ///
    /// Example: rookery daemon retry osd.1
    Daemon(cmd::daemon::DaemonArgs),
    /// The web dashboard (`rookery up --dashboard-port PORT` serves it): a new access key.
    ///
    /// Example: rookery dashboard rotate-key
    Dashboard(cmd::dashboard::DashboardArgs),
    /// OSDs: remove one for good, or move one to a new device under its id, once its data has moved.
    ///
    /// Example: rookery osd rm 3
    Osd(cmd::osd::OsdArgs),
    /// This host's block devices, and which of them would become OSDs (with the reason for the others).
    ///
    /// Example: rookery disk plan --use-all-devices
    Disk(cmd::disk::DiskArgs),
    /// Block volumes: create, list, resize, snapshot, clone, mount, unmount, remove.
    ///
    /// Example: rookery volume create data1 --size 10Gi && rookery volume mount data1 /mnt/data1
    Volume(cmd::volume::VolumeArgs),
    /// CephFS: subvolumes (quota-bounded directories) and mounts on this host.
    ///
    /// Example: rookery fs subvolume create myfs app1 --size 10Gi && rookery fs mount myfs:app1 /mnt/app1
    Fs(cmd::fs::FsArgs),
    /// Object storage: S3 users (keys kept in the data dir) and buckets.
    ///
    /// Example: rookery object user create alice && rookery object bucket create photos --user alice
    Object(cmd::object::ObjectArgs),
    /// Serve the CSI driver (gRPC on a unix socket) for this cluster's RBD volumes.
    ///
    /// Example: rookery csi --endpoint unix:///run/rookery/csi.sock --node-id node1
    Csi(cmd::csi::CsiArgs),
    /// Use this cluster from Kubernetes: export the ConfigMap and Secrets that deploy/csi/ references.
    ///
    /// Example: rookery k8s export | kubectl apply -f -
    K8s(cmd::k8s::K8sArgs),
    /// Run the Kubernetes operator: Rook's CephCluster, CephBlockPool, CephFilesystem, CephObjectStore
    /// and CephObjectStoreUser of a namespace reconciled into Ceph pods (deploy/operator/ runs it).
    ///
    /// Example: rookery operator --namespace rook-ceph
    Operator(cmd::operator::OperatorArgs),
    /// Run the per-node agent of the operator: the node's devices, stores and keyrings.
    ///
    /// Example: NODE_NAME=node1 rookery agent --namespace rook-ceph
    Agent(cmd::operator::AgentArgs),
    /// Print the CustomResourceDefinitions of the ceph.rook.io kinds rookery reconciles.
    ///
    /// Example: rookery crds | kubectl apply -f -
    Crds,
    /// Write objects with checksums through librados, read them back, compare, remove them.
    ///
    /// Example: rookery smoke-test --count 100
    SmokeTest(cmd::smoke::SmokeArgs),
    /// Benchmarks that print our figure next to a baseline measured in the same run.
    ///
    /// Example: rookery bench control-plane --count 50
    Bench(cmd::bench::BenchArgs),
    /// Run the supervisor in the foreground (what `up` starts in the background).
    #[command(hide = true)]
    Supervise(SuperviseArgs),
    /// Delete the data of removed volumes from the RBD trash (the supervisor runs it every minute).
    #[command(hide = true)]
    PurgeTrash,
    /// Serve one RBD image as a file over FUSE until the mount goes away (what `volume mount` starts).
    #[command(hide = true)]
    FuseServe(FuseServeArgs),
}

#[derive(clap::Args)]
struct SuperviseArgs {
    /// Also serve Prometheus metrics at http://127.0.0.1:PORT/metrics (0 picks a free port; the
    /// control socket serves /metrics either way).
    #[arg(long, value_name = "PORT")]
    metrics_port: Option<u16>,
    /// Also serve the web dashboard at http://127.0.0.1:PORT (0 picks a free port).
    #[arg(long, value_name = "PORT")]
    dashboard_port: Option<u16>,
}

#[derive(clap::Args)]
struct FuseServeArgs {
    #[arg(long)]
    conf: PathBuf,
    /// The cephx user, without `client.`.
    #[arg(long, default_value = "admin")]
    user: String,
    /// A file holding the user's key (else the keyring that ceph.conf names).
    #[arg(long)]
    key_file: Option<PathBuf>,
    #[arg(long)]
    pool: String,
    #[arg(long)]
    image: String,
    #[arg(long)]
    read_only: bool,
    /// The FUSE mount point; the image appears in it as a file of its name.
    dir: PathBuf,
}

fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/rookery");
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("rookery")
}

/// An error with the exit code it deserves: 2 for bad input, 1 for a failure.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn bad_input(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure {
            code: 1,
            message: format!("{e:#}"),
        }
    }
}

pub type CmdResult = Result<(), Failure>;

fn main() -> ExitCode {
    rookery_platform::proc::name_this_process("rookery");
    let cli = Cli::parse();
    // Long-running helpers log what they do (into log/); commands a user runs only warn.
    let supervise = matches!(
        cli.command,
        Command::Supervise(_)
            | Command::FuseServe(_)
            | Command::PurgeTrash
            | Command::Operator(_)
            | Command::Agent(_)
    ) || matches!(&cli.command, Command::Up(a) if a.foreground);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(if supervise { "info" } else { "warn" })
            }),
        )
        .with_writer(std::io::stderr)
        // Helpers write into log files, where colour codes are noise.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let layout = rookery_orchestrator::Layout::new(absolute(&cli.data_dir));
    let result = match cli.command {
        Command::Up(args) => cmd::up::run(&layout, &args, cli.output),
        Command::Status => cmd::status::run(&layout, cli.output),
        Command::Down(args) => cmd::down::run(&layout, &args, cli.output),
        Command::Doctor(args) => cmd::doctor::run(&layout, &args, cli.output),
        Command::Apply(args) => cmd::resources::apply(&layout, &args, cli.output),
        Command::Delete(args) => cmd::resources::delete(&layout, &args, cli.output),
        Command::Get(args) => cmd::resources::get(&layout, &args, cli.output),
        Command::Daemon(args) => cmd::daemon::run(&layout, &args, cli.output),
        Command::Dashboard(args) => cmd::dashboard::run(&layout, &args, cli.output),
        Command::Osd(args) => cmd::osd::run(&layout, &args, cli.output),
        Command::Join(args) => cmd::join::run(&layout, &args, cli.output),
        Command::Host(args) => cmd::host::run(&layout, &args, cli.output),
        Command::Disk(args) => cmd::disk::run(&layout, &args, cli.output),
        Command::Volume(args) => cmd::volume::run(&layout, &args, cli.output),
        Command::Fs(args) => cmd::fs::run(&layout, &args, cli.output),
        Command::Csi(args) => cmd::csi::run(&layout, &args),
        Command::K8s(args) => cmd::k8s::run(&layout, &args, cli.output),
        Command::Object(args) => cmd::object::run(&layout, &args, cli.output),
        Command::Operator(args) => cmd::operator::operator(&args),
        Command::Agent(args) => cmd::operator::agent(&args),
        Command::Crds => cmd::operator::crds(),
        Command::SmokeTest(args) => cmd::smoke::run(&layout, &args, cli.output),
        Command::Bench(args) => cmd::bench::run(&layout, &args, cli.output),
        Command::Supervise(a) => supervisor::run(
            layout,
            supervisor::Options {
                metrics_port: a.metrics_port,
                dashboard_port: a.dashboard_port,
            },
        )
        .map_err(Failure::from),
        Command::PurgeTrash => cmd::purge::run(&layout),
        Command::FuseServe(a) => rookery_volumes::fuse::serve(&rookery_volumes::fuse::ServeArgs {
            conf: a.conf,
            identity: rookery_ceph::Identity {
                user: a.user,
                key_file: a.key_file,
            },
            pool: a.pool,
            image: a.image,
            dir: a.dir,
            read_only: a.read_only,
        })
        .map_err(|e| Failure::from(anyhow::anyhow!(e))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn absolute(p: &std::path::Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// The host a standalone cluster runs on: this one.
pub fn home_host(
    platform: &dyn rookery_platform::Platform,
) -> Result<rookery_platform::Host, Failure> {
    platform
        .hosts()
        .into_iter()
        .next()
        .ok_or_else(|| Failure::from(anyhow::anyhow!("the platform offers no host")))
}

/// A runtime for the CLI's few async calls (the control API client).
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::from(anyhow::Error::from(e)))
}
