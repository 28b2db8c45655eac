//! The standalone supervisor: owns the cluster's daemons, reconciles the spec in a loop, and serves the
//! control API on the cluster's unix socket.
//!
//! Four threads: the orchestrator's reconcile loop (`reconcile_loop::run`: observe -> plan -> execute,
//! may block on Ceph for a few seconds), the trash purger (a child process a minute), the
//! ticker (notices dead daemons and restarts them, never blocked by Ceph), and the API (a single-threaded
//! tokio runtime; librados calls run on its blocking pool). The API also serves `/metrics`, and so does
//! a TCP listener on 127.0.0.1 when asked for (`--metrics-port`).

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use rookery_orchestrator::reconcile_loop::{self, LoopView, SpecFile};
use rookery_orchestrator::report::{self, ClusterReport, ReconcileInfo, SupervisorInfo};
use rookery_orchestrator::{Layout, Reconciler, SharedPlatform};
use tokio::sync::watch;

use crate::{api, control, metrics};

/// How this supervisor serves, from `rookery supervise`'s flags.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve `/metrics` on 127.0.0.1:PORT (0: a free port).
    pub metrics_port: Option<u16>,
    /// Serve the web dashboard on 127.0.0.1:PORT (0: a free port).
    pub dashboard_port: Option<u16>,
}

/// What the reconciler last saw and did, for the API.
type Snapshot = LoopView;

pub(crate) struct Shared {
    pub(crate) layout: Layout,
    pub(crate) platform: SharedPlatform,
    /// One edit of the spec at a time through the API.
    pub(crate) edits: tokio::sync::Mutex<()>,
    snapshot: Arc<Mutex<Snapshot>>,
    metrics: Arc<Registry>,
    /// Where the TCP metrics listener is bound, once it is.
    metrics_address: Mutex<Option<SocketAddr>>,
    /// Where the dashboard listens, once it does.
    dashboard_address: Mutex<Option<SocketAddr>>,
    /// The last hour of capacity and I/O, for the dashboard's charts.
    pub(crate) history: Mutex<rookery_orchestrator::history::Recorder>,
    shutdown: AtomicBool,
    /// The shutdown leaves the daemons running for a new supervisor (an upgrade of rookery itself).
    hand_over: AtomicBool,
    /// Becomes true once every daemon is stopped after a shutdown request.
    stopped: watch::Sender<bool>,
    started: Instant,
}

impl Shared {
    /// The reconciler's librados connection, once a mon answers.
    pub(crate) fn rados(&self) -> Option<Arc<rookery_ceph::Rados>> {
        lock(&self.snapshot).rados.clone()
    }

    /// Everything the reconciler kept of what it did, oldest first.
    pub(crate) fn events(&self) -> Vec<rookery_orchestrator::Event> {
        lock(&self.snapshot).events.clone()
    }

    /// What the reconciler last did, as `status` reports it.
    pub(crate) fn reconcile_info(&self) -> ReconcileInfo {
        let s = lock(&self.snapshot);
        ReconcileInfo {
            spec_digest: s.spec_digest.clone(),
            converged: s.plan.steps.is_empty()
                && s.plan.waiting.is_none()
                && s.last_error.is_none(),
            pending: s.plan.steps.iter().map(|st| st.reason()).collect(),
            waiting: s.plan.waiting.clone(),
            blocked: s.plan.blocked.clone(),
            last_error: s.last_error.clone(),
            notices: s.notices.clone(),
            recent: s.events.iter().rev().take(10).rev().cloned().collect(),
            devices: s.plan.devices.clone(),
            retiring: s.plan.retiring.clone(),
            leaving: s.plan.leaving.clone(),
            leader: s.plan.leader.clone(),
            problems: s.plan.problems.clone(),
        }
    }
}

pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Holds an exclusive lock for the life of the supervisor: two supervisors of one cluster would fight.
fn single_instance(layout: &Layout) -> Result<File> {
    let path = layout.run_dir().join("supervisor.lock");
    let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let pid = std::fs::read_to_string(layout.supervisor_pid()).unwrap_or_default();
        bail!(
            "another supervisor already runs this cluster (pid {})",
            pid.trim()
        );
    }
    Ok(f)
}

/// Runs until a shutdown request (API or SIGTERM/SIGINT) has stopped every daemon.
pub fn run(layout: Layout, options: Options) -> Result<()> {
    let _lock = single_instance(&layout)?;
    // Before any daemon is touched: a port that cannot be had fails the start, changing nothing.
    let metrics_listener = options
        .metrics_port
        .map(|p| bind_loopback("--metrics-port", p))
        .transpose()?;
    let dashboard_listener = options
        .dashboard_port
        .map(|p| bind_loopback("--dashboard-port", p))
        .transpose()?;
    // A member of a cluster over several hosts answers joining hosts on its address.
    let join_listener = match rookery_orchestrator::state::HostPolicy::load(&layout).member {
        Some(m) => Some((
            crate::join_channel::bind(SocketAddr::new(m.address, m.join_port))?,
            crate::join_channel::identity(&layout, m.address)?,
        )),
        None => None,
    };
    std::fs::write(layout.supervisor_pid(), format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", layout.supervisor_pid().display()))?;
    let (spec_text, desired) = reconcile_loop::load_spec_file(&layout)?;
    let platform: SharedPlatform = Arc::new(Mutex::new(
        rookery_orchestrator::state::HostPolicy::load(&layout).platform(&layout),
    ));
    let reconciler = Reconciler::new(layout.clone(), desired, platform.clone())?;
    let (stopped, _) = watch::channel(false);
    let snapshot = Arc::new(Mutex::new(Snapshot::default()));
    let registry = metrics_registry(&reconciler, &platform, &snapshot);
    let shared = Arc::new(Shared {
        layout: layout.clone(),
        platform: platform.clone(),
        edits: tokio::sync::Mutex::new(()),
        snapshot,
        metrics: Arc::new(registry),
        metrics_address: Mutex::new(None),
        dashboard_address: Mutex::new(None),
        history: Mutex::new(Default::default()),
        shutdown: AtomicBool::new(false),
        hand_over: AtomicBool::new(false),
        stopped,
        started: Instant::now(),
    });

    if let Some((listener, identity)) = join_listener {
        let layout = layout.clone();
        crate::join_channel::serve(
            listener,
            &identity,
            Arc::new(move |request| crate::hosts_api::admit(&layout, request)),
        )?;
    }

    let ticker = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("ticker".into())
            .spawn(move || {
                while !shared.shutdown.load(Ordering::SeqCst) {
                    lock(&shared.platform).watch();
                    std::thread::sleep(Duration::from_millis(200));
                }
            })?
    };

    // Deletes the data of removed volumes (they leave the list at once by a trash move), off the path of
    // the `volume rm` that asked, one image at a time so it never crowds out the user's requests.
    let purger = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("trash-purger".into())
            .spawn(move || purge_loop(&shared))?
    };

    // Keeps the pools' volume indexes fresh, so `volume list` reads one object instead of every image.
    let indexer = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("volume-index".into())
            .spawn(move || index_loop(&shared))?
    };

    // Samples capacity and I/O for the dashboard's charts.
    let historian = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("history".into())
            .spawn(move || history_loop(&shared))?
    };

    let reconcile = {
        let shared = shared.clone();
        let source = SpecFile::new(layout.clone(), spec_text.clone());
        std::thread::Builder::new()
            .name("reconcile".into())
            .spawn(move || {
                reconcile_loop::run(
                    reconciler,
                    source,
                    spec_text,
                    &shared.shutdown,
                    &shared.hand_over,
                    |view| {
                        *lock(&shared.snapshot) = view;
                    },
                );
                shared.stopped.send_replace(true);
            })?
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let served = rt.block_on(serve(shared.clone(), metrics_listener, dashboard_listener));
    shared.shutdown.store(true, Ordering::SeqCst);
    let _ = reconcile.join();
    let _ = ticker.join();
    let _ = purger.join();
    let _ = indexer.join();
    let _ = historian.join();
    let _ = std::fs::remove_file(layout.socket());
    let _ = std::fs::remove_file(layout.supervisor_pid());
    tracing::info!("supervisor stopped");
    served
}

/// The reconciler's counts, and the daemons and cluster facts read at each scrape: the platform's
/// status, and the report's native calls over the reconciler's connection (none while it has none).
fn metrics_registry(
    reconciler: &Reconciler,
    platform: &SharedPlatform,
    snapshot: &Arc<Mutex<Snapshot>>,
) -> Registry {
    use rookery_orchestrator::metrics::{
        CephCollector, DaemonCollector, OsdIoCollector, VolumeIoCollector,
    };
    let mut registry = Registry::with_prefix("rookery");
    reconciler.metrics.register(&mut registry);
    let platform = platform.clone();
    registry.register_collector(Box::new(DaemonCollector::new(move || {
        lock(&platform).status()
    })));
    let of_ceph = snapshot.clone();
    registry.register_collector(Box::new(CephCollector::new(move || {
        let (rados, state) = {
            let s = lock(&of_ceph);
            (s.rados.clone(), s.state.clone())
        };
        match (rados, state) {
            (Some(r), Some(state)) => report::ceph_report(&r, &state).map_err(|e| e.to_string()),
            _ => Err("no mon answers yet".into()),
        }
    })));
    registry.register_collector(Box::new(OsdIoCollector::new(on_rados(
        snapshot,
        report::osd_io,
    ))));
    registry.register_collector(Box::new(VolumeIoCollector::new(on_rados(
        snapshot,
        report::volume_io,
    ))));
    registry
}

/// A scrape-time source that asks Ceph over the reconciler's connection (none while no mon answers).
fn on_rados<T: 'static>(
    snapshot: &Arc<Mutex<Snapshot>>,
    ask: fn(&rookery_ceph::Rados) -> Result<T, rookery_ceph::CephError>,
) -> impl Fn() -> Result<T, String> + Send + Sync + 'static {
    let snapshot = snapshot.clone();
    move || {
        let rados = lock(&snapshot).rados.clone();
        match rados {
            Some(r) => ask(&r).map_err(|e| e.to_string()),
            None => Err("no mon answers yet".into()),
        }
    }
}

/// 127.0.0.1 only: /metrics has no authentication, and the dashboard is for this host's people.
fn bind_loopback(flag: &str, port: u16) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).with_context(|| {
        format!("{flag} {port}: cannot listen on 127.0.0.1:{port}; choose a free port, or 0 to pick one")
    })?;
    // tokio takes it over as it is.
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn render_metrics(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::warn!(error = %e, "encoding the metrics failed");
        out.clear();
    }
    out
}

/// Runs `rookery purge-trash` for this cluster every minute while the cluster is up (and soon after start),
/// one run at a time. A child process, so the supervisor holds no second librados client (its threads and
/// caches) while nothing is to be purged, which is nearly always.
fn purge_loop(shared: &Shared) {
    let mut next = Instant::now() + Duration::from_secs(5);
    let mut child: Option<std::process::Child> = None;
    while !shared.shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(c) = child.as_mut() {
            if !matches!(c.try_wait(), Ok(None)) {
                child = None;
            }
            continue;
        }
        // The reconciler's connection says the cluster is reachable.
        if Instant::now() < next || lock(&shared.snapshot).rados.is_none() {
            continue;
        }
        next = Instant::now() + Duration::from_secs(60);
        let log = shared.layout.log_dir().join("purge-trash.log");
        let spawned = rookery_platform::proc::own_program().and_then(|mut cmd| {
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)?;
            let err = out.try_clone()?;
            cmd.arg("--data-dir")
                .arg(&shared.layout.root)
                .arg("purge-trash")
                .stdin(std::process::Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
        });
        match spawned {
            Ok(c) => child = Some(c),
            Err(e) => tracing::warn!(error = %e, "cannot start the trash purge"),
        }
    }
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Every 30 s, re-reads the image entries of each RBD pool's volume index that are getting old
/// (`volumes::index::REFRESH_AFTER`), so a listing finds them fresh; a pass at rest costs two reads per
/// pool.
/// One sample every `history::INTERVAL` while a mon answers: `df detail` and `status`, two native calls.
fn history_loop(shared: &Shared) {
    use rookery_orchestrator::history::{Sample, INTERVAL};
    let mut next = Instant::now();
    while !shared.shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        if Instant::now() < next {
            continue;
        }
        next += INTERVAL;
        let Some(rados) = lock(&shared.snapshot).rados.clone() else {
            continue;
        };
        let (Ok(df), Ok(status)) = (
            rookery_ceph::commands::cluster::df(&rados),
            rookery_ceph::commands::cluster::status(&rados),
        ) else {
            continue;
        };
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        lock(&shared.history).record(Sample::from_ceph(unix, &df, &status));
    }
}

fn index_loop(shared: &Shared) {
    let mut next = Instant::now() + Duration::from_secs(10);
    while !shared.shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        if Instant::now() < next {
            continue;
        }
        next = Instant::now() + Duration::from_secs(30);
        let Some(rados) = lock(&shared.snapshot).rados.clone() else {
            continue;
        };
        let Ok(dump) = rookery_ceph::commands::osd::dump(&rados) else {
            continue;
        };
        for pool in dump
            .pools
            .iter()
            .filter(|p| p.application_metadata.contains_key("rbd"))
        {
            if shared.shutdown.load(Ordering::SeqCst) {
                return;
            }
            match rookery_volumes::manage::refresh_index(&rados, &pool.pool_name) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(pool = %pool.pool_name, images = n, "volume index refreshed")
                }
                Err(e) => {
                    tracing::debug!(pool = %pool.pool_name, error = %e, "volume index not refreshed")
                }
            }
        }
    }
}

async fn serve(
    shared: Arc<Shared>,
    metrics_listener: Option<std::net::TcpListener>,
    dashboard_listener: Option<std::net::TcpListener>,
) -> Result<()> {
    let socket = shared.layout.socket();
    if socket.exists() {
        if api::supervisor_alive(&socket).await {
            bail!("a supervisor already answers on {}", socket.display());
        }
        // Left behind by a supervisor that was killed.
        std::fs::remove_file(&socket)
            .with_context(|| format!("removing stale {}", socket.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(&socket)
        .with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    let registry = shared.metrics.clone();
    let render: metrics::Render = Arc::new(move || render_metrics(&registry));
    let app = Router::new()
        .route(api::PING, get(ping))
        .route(api::STATUS, get(status))
        .route(api::SHUTDOWN, post(shutdown))
        .merge(control::routes())
        .with_state(shared.clone())
        .merge(metrics::router(render.clone()));
    if let Some(listener) = dashboard_listener {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        *lock(&shared.dashboard_address) = Some(addr);
        tracing::info!(%addr, "dashboard listening");
        let dashboard = crate::dashboard::Dashboard::new(
            crate::dashboard::key_file(&shared.layout),
            app.clone(),
        );
        let mut stopped = shared.stopped.subscribe();
        tokio::spawn(async move {
            let served = axum::serve(listener, crate::dashboard::router(dashboard))
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "the dashboard listener stopped");
            }
        });
    }
    if let Some(listener) = metrics_listener {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        *lock(&shared.metrics_address) = Some(addr);
        tracing::info!(%addr, "metrics listening");
        let mut stopped = shared.stopped.subscribe();
        tokio::spawn(async move {
            let served = axum::serve(listener, metrics::router(render))
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let mut stopped = shared.stopped.subscribe();
    let signals = shared.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        tracing::info!("signal received; stopping the cluster");
        signals.shutdown.store(true, Ordering::SeqCst);
    });
    tracing::info!(socket = %socket.display(), "control API listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
            // Let the shutdown request's reply go out first.
            tokio::time::sleep(Duration::from_millis(100)).await;
        })
        .await?;
    Ok(())
}

/// Whether a supervisor answers, and its pid.
#[utoipa::path(get, path = "/v1/ping", tag = "meta", responses((status = 200, body = control::Pong)))]
pub(crate) async fn ping() -> Json<control::Pong> {
    Json(control::Pong {
        pid: std::process::id(),
    })
}

/// Stops every daemon and the supervisor; answers once they are stopped.
/// `POST /v1/shutdown?handOver=true`: the supervisor exits and leaves the daemons running.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ShutdownQuery {
    /// Leave every daemon running for the next supervisor (`rookery up` with a new rookery binary).
    hand_over: bool,
}

/// Stops the supervisor: every daemon first, unless `handOver` (then they keep running and serving, and
/// the next supervisor adopts them).
#[utoipa::path(post, path = "/v1/shutdown", tag = "meta", params(ShutdownQuery),
    responses((status = 200, body = control::Stopped)))]
pub(crate) async fn shutdown(
    State(shared): State<Arc<Shared>>,
    axum::extract::Query(query): axum::extract::Query<ShutdownQuery>,
) -> Json<control::Stopped> {
    if query.hand_over {
        shared.hand_over.store(true, Ordering::SeqCst);
    }
    shared.shutdown.store(true, Ordering::SeqCst);
    let mut stopped = shared.stopped.subscribe();
    let _ = stopped.wait_for(|s| *s).await;
    Json(control::Stopped { stopped: true })
}

/// The cluster's health, daemons, OSDs, pools, filesystems, object stores and reconcile state (what
/// `rookery status -o json` prints).
#[utoipa::path(get, path = "/v1/status", tag = "meta",
    responses((status = 200, description = "the cluster report", body = ClusterReport)))]
pub(crate) async fn status(State(shared): State<Arc<Shared>>) -> Json<ClusterReport> {
    let report = tokio::task::spawn_blocking(move || build_report(&shared))
        .await
        .unwrap_or_default();
    Json(report)
}

fn build_report(shared: &Shared) -> ClusterReport {
    let info = shared.reconcile_info();
    let (state, rados, expected_osds) = {
        let s = lock(&shared.snapshot);
        (s.state.clone(), s.rados.clone(), s.expected_osds)
    };
    let pid = std::process::id();
    let mut report = ClusterReport {
        data_dir: shared.layout.root.display().to_string(),
        supervisor: Some(SupervisorInfo {
            pid,
            rss_bytes: rookery_platform::proc::rss_bytes(pid).unwrap_or(0),
            uptime_secs: shared.started.elapsed().as_secs(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            metrics_address: lock(&shared.metrics_address).map(|a| a.to_string()),
            dashboard_address: lock(&shared.dashboard_address).map(|a| a.to_string()),
        }),
        daemons: lock(&shared.platform).status(),
        reconcile: Some(info),
        ..Default::default()
    };
    if let Some(state) = &state {
        report.name = state.name.clone();
        report.fsid = state.fsid.clone();
    }
    match (rados, state) {
        (Some(r), Some(state)) => match report::ceph_report(&r, &state) {
            Ok(c) => {
                let stale = {
                    let platform = lock(&shared.platform);
                    report::stale_in_map(&c, |name, nonce| {
                        platform.is_current_instance(name, nonce)
                    })
                };
                report.not_ready = report::not_ready(&c, expected_osds, &stale);
                report.ceph = Some(c);
            }
            Err(e) => {
                report.ceph_error = Some(e.to_string());
                report.not_ready = vec![format!("Ceph does not answer: {e}")];
            }
        },
        _ => {
            report.ceph_error = Some("no mon answers yet".into());
            report.not_ready = vec!["the mons are not up yet".into()];
        }
    }
    // Filesystems, gateways and users are made after Ceph itself is healthy; ready means those too.
    if let Some(info) = &report.reconcile {
        if report.not_ready.is_empty() && !info.converged {
            let doing = info
                .pending
                .first()
                .cloned()
                .or_else(|| info.waiting.clone())
                .or_else(|| info.last_error.clone())
                .unwrap_or_else(|| "reconciling".into());
            report.not_ready.push(format!("still setting up: {doing}"));
        }
    }
    report.ready = report.not_ready.is_empty();
    report
}
