//! `rookery up`: preflight, create or restart the cluster, start (or adopt) the supervisor, wait for health.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use clap::Args;
use rookery_orchestrator::preflight::{self, DataDir, Severity};
use rookery_orchestrator::report::ClusterReport;
use rookery_orchestrator::state::{HostPolicy, MemberAddress};
use rookery_orchestrator::Layout;

use crate::api::{self, CallError};
use crate::{render, CmdResult, Failure, Output};

#[derive(Args)]
pub struct UpArgs {
    /// The cluster spec (ceph.rook.io/v1 CephCluster, optionally with CephBlockPools). Default: the spec
    /// saved in the data dir, or the built-in default for a new cluster.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Run the supervisor attached to this terminal (Ctrl-C stops the cluster, data kept).
    #[arg(long)]
    pub foreground: bool,
    /// The mon's msgr2 port for a new cluster (its v1 port is the next one); 0 picks free ports.
    /// Default: Ceph's 3300/6789 if free, else free ports.
    #[arg(long)]
    pub mon_port: Option<u16>,
    /// Give up waiting for HEALTH_OK after this many seconds (the cluster keeps converging).
    #[arg(long, default_value_t = 300)]
    pub wait_secs: u64,
    /// Have the supervisor this starts serve Prometheus metrics at http://127.0.0.1:PORT/metrics (0 picks
    /// a free port; `status` shows where). Off by default; the control socket serves /metrics either way.
    /// A supervisor already running keeps how it serves.
    #[arg(long, value_name = "PORT")]
    pub metrics_port: Option<u16>,
    /// Have the supervisor this starts serve the web dashboard at http://127.0.0.1:PORT (0 picks a free
    /// port; `status` shows where). The first time, an access key is made and printed (only then;
    /// `rookery dashboard rotate-key` makes a new one). A supervisor already running keeps how it serves.
    #[arg(long, value_name = "PORT")]
    pub dashboard_port: Option<u16>,
    /// Let spec.storage.useAllDevices take blank, unused loop devices too (Rook's
    /// ROOK_CEPH_ALLOW_LOOP_DEVICES; for test hosts). Kept in the data dir until the next `up`.
    #[arg(long)]
    pub allow_loop_devices: bool,
    #[command(flatten)]
    pub member: MemberArgs,
}

/// Where this host serves in a cluster over several hosts.
#[derive(Args, Clone)]
pub struct MemberArgs {
    /// This host's address in a cluster over several hosts: its daemons bind here and other hosts join
    /// through it. Default: loopback only, a cluster of this host alone. Kept in the data dir.
    #[arg(long, value_name = "IP")]
    pub address: Option<std::net::IpAddr>,
    /// The network the hosts reach each other on (CIDR). Default: the address's /24.
    #[arg(long, value_name = "CIDR", requires = "address")]
    pub network: Option<String>,
    /// This host's name in the cluster (CRUSH's host bucket). Default: the machine's host name.
    #[arg(long, value_name = "NAME", requires = "address")]
    pub host_name: Option<String>,
    /// The TLS port joining hosts reach this host on.
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 7443,
        requires = "address"
    )]
    pub join_port: u16,
}

impl MemberArgs {
    /// The member address these flags give, checked; None without `--address`.
    pub fn member(&self) -> Result<Option<MemberAddress>, Failure> {
        let Some(address) = self.address else {
            return Ok(None);
        };
        if address.is_loopback() || address.is_unspecified() {
            return Err(Failure::bad_input(format!(
                "--address {address}: other hosts cannot reach it; give an address of this host on the network the hosts share (without --address the cluster is this host alone, on loopback)"
            )));
        }
        let network = match &self.network {
            Some(n) => n.clone(),
            None => match address {
                std::net::IpAddr::V4(v4) => {
                    let o = v4.octets();
                    format!("{}.{}.{}.0/24", o[0], o[1], o[2])
                }
                std::net::IpAddr::V6(_) => {
                    return Err(Failure::bad_input(
                        "--network is needed with an IPv6 --address (e.g. --network fd00::/64)",
                    ))
                }
            },
        };
        let name = self
            .host_name
            .clone()
            .unwrap_or_else(rookery_platform::local::host_name);
        rookery_orchestrator::join_token::check_host_name(&name)
            .map_err(|e| Failure::bad_input(format!("--host-name: {e}")))?;
        Ok(Some(MemberAddress {
            name,
            address,
            network,
            join_port: self.join_port,
        }))
    }
}

pub fn run(layout: &Layout, args: &UpArgs, output: Output) -> CmdResult {
    let started = Instant::now();
    let (text, _res, desired) = super::load_spec(args.file.as_deref(), layout)?;
    let dir = preflight::inspect(layout).map_err(|e| Failure::from(anyhow!(e)))?;
    let rt = crate::runtime()?;
    let socket = layout.socket();

    let mut policy = HostPolicy::load(layout);
    policy.allow_loop_devices = args.allow_loop_devices;
    if let Some(member) = args.member.member()? {
        if let DataDir::Cluster(state) = &dir {
            keeps_mon_addresses(state, &member)?;
        }
        policy.member = Some(member);
    }
    let platform = policy.platform(layout);
    let host = crate::home_host(&platform)?;
    let findings = preflight::check(layout, &desired, &dir, &platform, &host.name);
    let errors: Vec<_> = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    if !errors.is_empty() {
        let msg = errors
            .iter()
            .map(|f| {
                format!(
                    "{}: {}\n  fix: {}",
                    f.check,
                    f.message,
                    f.fix.clone().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let code = if errors.iter().any(|f| f.bad_input) {
            2
        } else {
            1
        };
        return Err(Failure {
            code,
            message: format!("nothing was changed:\n{msg}"),
        });
    }
    let mut running = matches!(&dir, DataDir::Cluster(state) if state.name == desired.name)
        && rt.block_on(api::supervisor_alive(&socket));
    if running {
        if let Some(pid) = rookery_platform::proc::read_pid_file(&layout.supervisor_pid())
            .filter(|pid| rookery_platform::proc::runs_this_program(*pid) == Some(false))
        {
            hand_over(&rt, layout, pid)?;
            eprintln!(
                "the supervisor (pid {pid}) ran an older rookery binary; replaced, with every daemon left running"
            );
            running = false;
        }
    }
    if !running {
        port_free("--metrics-port", args.metrics_port)?;
        port_free("--dashboard-port", args.dashboard_port)?;
    }
    if running {
        policy.save(layout).map_err(|e| Failure::from(anyhow!(e)))?;
        let unchanged = std::fs::read_to_string(layout.spec()).is_ok_and(|t| t == text);
        if unchanged {
            if output == Output::Text {
                eprintln!(
                    "cluster {:?} is already running; nothing to do",
                    desired.name
                );
            }
            let report = wait_ready(&rt, layout, Duration::from_secs(args.wait_secs), output)?;
            metrics_note(&report, args.metrics_port);
            dashboard_note(&report, args.dashboard_port);
            let key = dashboard_key(layout, args.dashboard_port)?;
            return finish(&report, started, output, false, key.as_deref());
        }
        eprintln!(
            "cluster {:?} is running; applying the changed spec",
            desired.name
        );
    }

    for n in &desired.notices {
        eprintln!("note: {n}");
    }

    let fresh = !matches!(dir, DataDir::Cluster(_));
    if fresh {
        // One mon per host unless several may share one: the others are placed on hosts as they join.
        let first_mons = if desired.mon_allow_multiple {
            &desired.mon_ids[..]
        } else {
            &desired.mon_ids[..desired.mon_ids.len().min(1)]
        };
        let (ports, note) =
            preflight::choose_mon_ports(&platform, &host.name, first_mons.len(), args.mon_port);
        if let Some(n) = note {
            eprintln!("note: {n}");
        }
        rookery_orchestrator::create_cluster(layout, &desired.name, first_mons, &ports, &host)
            .map_err(|e| Failure::from(anyhow!(e)))?;
    }
    policy.save(layout).map_err(|e| Failure::from(anyhow!(e)))?;
    rookery_ceph::conf::write_atomic(&layout.spec(), text.as_bytes(), 0o600)
        .map_err(|e| Failure::from(anyhow!(e)))?;

    if args.foreground {
        eprintln!(
            "supervising {} in the foreground; Ctrl-C stops the cluster (data kept)",
            layout.root.display()
        );
        dashboard_key(layout, args.dashboard_port)?;
        let options = crate::supervisor::Options {
            metrics_port: args.metrics_port,
            dashboard_port: args.dashboard_port,
        };
        return crate::supervisor::run(layout.clone(), options).map_err(Failure::from);
    }
    let key = dashboard_key(layout, args.dashboard_port)?;
    start_supervisor(&rt, layout, args.metrics_port, args.dashboard_port)?;
    let report = wait_ready(&rt, layout, Duration::from_secs(args.wait_secs), output)?;
    metrics_note(&report, args.metrics_port);
    dashboard_note(&report, args.dashboard_port);
    if report.ready {
        remount_volumes(layout);
        remount_files(layout);
    }
    finish(&report, started, output, fresh, key.as_deref())
}

/// A mon's address is in every monmap: a host whose mons run cannot move.
fn keeps_mon_addresses(
    state: &rookery_orchestrator::state::ClusterState,
    member: &MemberAddress,
) -> Result<(), Failure> {
    let moved = state.mons.iter().find(|m| {
        m.host.as_deref().is_none_or(|h| h == member.name) && m.address != member.address
    });
    match moved {
        Some(m) => Err(Failure::bad_input(format!(
            "mon.{} of this cluster listens on {}, and a mon's address cannot change; run `rookery up` \
             with --address {} (nothing was changed)",
            m.id, m.address, m.address
        ))),
        None => Ok(()),
    }
}

/// The dashboard's first access key, made when the dashboard is asked for and none exists yet.
fn dashboard_key(layout: &Layout, port: Option<u16>) -> Result<Option<String>, Failure> {
    if port.is_none() {
        return Ok(None);
    }
    crate::dashboard::access::ensure_key(&crate::dashboard::key_file(layout))
        .map_err(|e| Failure::from(anyhow!(e)))
}

/// Asks the running supervisor to exit and leave the daemons running, and waits until it has.
fn hand_over(rt: &tokio::runtime::Runtime, layout: &Layout, pid: u32) -> Result<(), Failure> {
    rt.block_on(api::call::<serde_json::Value>(
        &layout.socket(),
        "POST",
        &format!("{}?handOver=true", api::SHUTDOWN),
        Duration::from_secs(60),
    ))
    .map_err(|e| Failure::from(anyhow!("asking the old supervisor to hand over: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while rookery_platform::proc::is_alive(pid) {
        if Instant::now() > deadline {
            return Err(Failure::from(anyhow!(
                "the old supervisor (pid {pid}) did not exit within 30 s; see {}",
                layout.supervisor_log().display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A taken port is refused before anything changes (the supervisor would fail on it later).
fn port_free(flag: &str, port: Option<u16>) -> Result<(), Failure> {
    let Some(port) = port.filter(|p| *p != 0) else {
        return Ok(());
    };
    if std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port)).is_ok() {
        return Ok(());
    }
    let holder = rookery_platform::proc::tcp_listener(port)
        .map(|(pid, cmd)| format!(" by pid {pid} ({cmd})"))
        .unwrap_or_default();
    Err(Failure::bad_input(format!(
        "nothing was changed: {flag} {port}: 127.0.0.1:{port} is taken{holder}; choose another port, or 0 to pick a free one"
    )))
}

/// Says so when `--metrics-port` or `--dashboard-port` asked for other than what the running
/// supervisor serves (it was started earlier, with other flags).
fn metrics_note(report: &ClusterReport, asked: Option<u16>) {
    let serving = report
        .supervisor
        .as_ref()
        .and_then(|s| s.metrics_address.as_deref());
    not_applied_note("--metrics-port", asked, serving, "/metrics");
}

fn dashboard_note(report: &ClusterReport, asked: Option<u16>) {
    let serving = report
        .supervisor
        .as_ref()
        .and_then(|s| s.dashboard_address.as_deref());
    not_applied_note("--dashboard-port", asked, serving, "/");
}

fn not_applied_note(flag: &str, asked: Option<u16>, serving: Option<&str>, path: &str) {
    let Some(port) = asked else { return };
    let serving = serving.and_then(|a| a.parse::<std::net::SocketAddr>().ok());
    let same = serving.is_some_and(|a| port == 0 || a.port() == port);
    if !same {
        eprintln!(
            "note: {flag} {port} was not applied: the supervisor was already running ({}); `rookery down` and `rookery up {flag} {port}` restart it with it",
            serving.map_or(format!("without {flag}"), |a| format!("serving http://{a}{path}"))
        );
    }
}

/// Mounts again the volumes `rookery down` unmounted.
/// Mounts again the CephFS mounts `rookery down` (or a host restart) took away.
fn remount_files(layout: &Layout) {
    if !layout.root.join("files").join("mounts.json").exists() {
        return;
    }
    match rookery_files::mount::resume_all(
        &layout.conf(),
        &rookery_ceph::Identity::admin(),
        &layout.root,
    ) {
        Ok(results) => {
            for (m, result) in results {
                match result {
                    Ok(()) => eprintln!("mounted {} again at {}", m.source(), m.path.display()),
                    Err(e) => eprintln!(
                        "warning: {} was not mounted again at {}: {e}; `rookery fs mount {} {}` retries",
                        m.source(),
                        m.path.display(),
                        m.source(),
                        m.path.display()
                    ),
                }
            }
        }
        Err(e) => eprintln!("warning: could not read the CephFS mounts to restore: {e}"),
    }
}

fn remount_volumes(layout: &Layout) {
    let Ok(records) = rookery_volumes::records::Records::open(&layout.root) else {
        return;
    };
    if !records.list.iter().any(|r| r.remount || !r.alive()) {
        return;
    }
    drop(records);
    // Right after a host restart the OSDs are still peering: give their first requests time.
    let rados = match rookery_ceph::Rados::connect(
        &layout.conf(),
        &rookery_orchestrator::ceph_user(layout),
        Duration::from_secs(30),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warning: volumes to mount again were left unmounted: {e}");
            return;
        }
    };
    match rookery_volumes::resume_all(
        &rados,
        &layout.conf(),
        &rookery_ceph::Identity::admin(),
        &layout.root,
    ) {
        Ok(results) => {
            for (r, result) in results {
                match result {
                    Ok(()) => eprintln!("mounted {}/{} again at {}", r.pool, r.volume, r.path.display()),
                    Err(e) => eprintln!(
                        "warning: {}/{} was not mounted again at {}: {e}; `rookery volume mount {} {}` retries",
                        r.pool,
                        r.volume,
                        r.path.display(),
                        r.volume,
                        r.path.display()
                    ),
                }
            }
        }
        Err(e) => eprintln!("warning: could not read the volume mounts to restore: {e}"),
    }
}

pub(crate) fn finish(
    report: &ClusterReport,
    started: Instant,
    output: Output,
    fresh: bool,
    new_dashboard_key: Option<&str>,
) -> CmdResult {
    let secs = started.elapsed().as_secs_f64();
    let dashboard = report
        .supervisor
        .as_ref()
        .and_then(|s| s.dashboard_address.as_deref())
        .map(|a| format!("http://{a}/"));
    match output {
        Output::Json => {
            let mut v = serde_json::to_value(report).map_err(|e| Failure::from(anyhow!(e)))?;
            v["elapsed_secs"] = serde_json::json!(secs);
            if let Some(key) = new_dashboard_key {
                v["dashboard_access_key"] = serde_json::json!(key);
            }
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Output::Text => {
            print!("{}", render::status(report));
            println!(
                "\n{} {:?} is {} ({:.1} s).",
                if fresh { "Created cluster" } else { "Cluster" },
                report.name,
                if report.ready {
                    "ready: HEALTH_OK, all OSDs up and in, all PGs active+clean"
                } else {
                    "NOT ready yet"
                },
                secs
            );
            if let Some(url) = &dashboard {
                println!("Dashboard: {url}");
            }
            if let Some(key) = new_dashboard_key {
                println!(
                    "Dashboard access key: {key}\n  (shown only now; `rookery dashboard rotate-key` makes a new one)"
                );
            }
        }
    }
    if report.ready {
        Ok(())
    } else {
        Err(Failure::from(anyhow!(
            "the cluster did not become healthy in time: {}",
            report.not_ready.join("; ")
        )))
    }
}

/// Starts `rookery supervise` in its own session, detached from this terminal, and waits until it answers.
pub(crate) fn start_supervisor(
    rt: &tokio::runtime::Runtime,
    layout: &Layout,
    metrics_port: Option<u16>,
    dashboard_port: Option<u16>,
) -> Result<(), Failure> {
    if rt.block_on(api::supervisor_alive(&layout.socket())) {
        return Ok(());
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.supervisor_log())
        .with_context(|| format!("opening {}", layout.supervisor_log().display()))?;
    let log2 = log.try_clone().context("duplicating the log handle")?;
    let mut cmd = rookery_platform::proc::own_program().context("locating the rookery binary")?;
    cmd.arg("--data-dir")
        .arg(&layout.root)
        .arg("supervise")
        .args(metrics_port.map(|p| format!("--metrics-port={p}")))
        .args(dashboard_port.map(|p| format!("--dashboard-port={p}")))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    rookery_platform::proc::detach(&mut cmd);
    let mut child = cmd.spawn().context("starting the supervisor")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if rt.block_on(api::supervisor_alive(&layout.socket())) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Failure::from(anyhow!(
                "the supervisor exited ({status}):\n{}",
                tail(&layout.supervisor_log(), 15)
            )));
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    Err(Failure::from(anyhow!(
        "the supervisor did not answer within 15 s; see {}",
        layout.supervisor_log().display()
    )))
}

pub fn tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A reconcile error that persists this long will not fix itself: stop waiting and show it.
const PERSISTENT_ERROR: Duration = Duration::from_secs(60);

/// Polls the supervisor until the cluster is ready, showing progress.
pub(crate) fn wait_ready(
    rt: &tokio::runtime::Runtime,
    layout: &Layout,
    limit: Duration,
    output: Output,
) -> Result<ClusterReport, Failure> {
    let bar = (output == Output::Text).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(Duration::from_millis(120));
        b
    });
    let deadline = Instant::now() + limit;
    let mut last = ClusterReport::default();
    let mut failing: Option<(String, Instant)> = None;
    loop {
        match rt.block_on(api::call::<ClusterReport>(
            &layout.socket(),
            "GET",
            api::STATUS,
            Duration::from_secs(30),
        )) {
            Ok(r) => {
                if r.ready {
                    if let Some(b) = &bar {
                        b.finish_and_clear();
                    }
                    return Ok(r);
                }
                let error = r.reconcile.as_ref().and_then(|i| i.last_error.clone());
                match (&error, &failing) {
                    (Some(e), Some((same, since))) if e == same => {
                        if since.elapsed() > PERSISTENT_ERROR {
                            if let Some(b) = &bar {
                                b.finish_and_clear();
                            }
                            return Err(Failure::from(anyhow!(
                                "the cluster cannot converge; this keeps failing for {} s:\n{e}",
                                PERSISTENT_ERROR.as_secs()
                            )));
                        }
                    }
                    (Some(e), _) => failing = Some((e.clone(), Instant::now())),
                    (None, _) => failing = None,
                }
                if let Some(b) = &bar {
                    let doing = r
                        .reconcile
                        .as_ref()
                        .and_then(|i| i.recent.last().map(|e| e.message.clone()))
                        .unwrap_or_default();
                    let problem = error
                        .map(|e| format!(" | retrying after: {e}"))
                        .unwrap_or_default();
                    b.set_message(format!("{} | {doing}{problem}", r.not_ready.join("; ")));
                }
                last = r;
            }
            Err(CallError::NotRunning) => {
                return Err(Failure::from(anyhow!(
                    "the supervisor stopped:\n{}",
                    tail(&layout.supervisor_log(), 15)
                )))
            }
            Err(e) => tracing::debug!(error = %e, "status call failed"),
        }
        if Instant::now() > deadline {
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            return Ok(last);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
