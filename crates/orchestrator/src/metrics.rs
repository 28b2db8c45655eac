//! Prometheus metrics of the reconciler, the daemons and the cluster, as prometheus-client registry
//! pieces the supervisor registers and serves.
//!
//! Only the reconciler's own counts are kept here. Daemon and cluster facts are read when scraped
//! ([`DaemonCollector`], [`CephCollector`]): the platform and Ceph already hold them, and a copy kept
//! in between would only be older.

use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use rookery_platform::{DaemonState, DaemonStatus};

use crate::report::CephReport;
use crate::OrchestratorError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// Reconcile passes, their durations, and failed passes by [`OrchestratorError::kind`]. Clones share
/// the same counts (the supervisor registers a clone of the reconciler's).
#[derive(Clone, Debug)]
pub struct ReconcileMetrics {
    runs: Counter,
    failures: Family<KindLabel, Counter>,
    duration: Histogram,
}

impl Default for ReconcileMetrics {
    fn default() -> Self {
        ReconcileMetrics {
            runs: Counter::default(),
            failures: Family::default(),
            // 5 ms (a converged pass: a few native calls) to ~80 s (OSD stores made in the pass).
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 15)),
        }
    }
}

impl ReconcileMetrics {
    /// Adds `reconcile_runs_total`, `reconcile_failures_total{kind}` and `reconcile_duration_seconds`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "reconcile_runs",
            "Reconcile passes (observe, plan, execute) finished",
            self.runs.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconcile passes whose execution failed, by kind of error",
            self.failures.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Time one reconcile pass took",
            Unit::Seconds,
            self.duration.clone(),
        );
    }

    /// Times one pass: counted, with its duration, when the returned value is dropped, so every way
    /// out of the pass (early returns included) is measured once.
    pub fn reconcile_timer(&self) -> ReconcileTimer {
        ReconcileTimer {
            started: Instant::now(),
            runs: self.runs.clone(),
            duration: self.duration.clone(),
        }
    }

    pub fn failed(&self, error: &OrchestratorError) {
        self.failures
            .get_or_create(&KindLabel {
                kind: error.kind().to_string(),
            })
            .inc();
    }

    pub fn runs(&self) -> u64 {
        self.runs.get()
    }

    pub fn failures(&self, kind: &str) -> u64 {
        self.failures
            .get(&KindLabel {
                kind: kind.to_string(),
            })
            .map(|c| c.get())
            .unwrap_or(0)
    }
}

/// See [`ReconcileMetrics::reconcile_timer`].
#[must_use = "the pass is measured when this is dropped"]
pub struct ReconcileTimer {
    started: Instant,
    runs: Counter,
    duration: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.runs.inc();
        self.duration.observe(self.started.elapsed().as_secs_f64());
    }
}

impl OrchestratorError {
    /// A short, stable label for metrics: which part failed, never the message (unbounded values would
    /// make a new time series per message).
    pub fn kind(&self) -> &'static str {
        use rookery_ceph::tools::ToolError;
        use rookery_ceph::CephError;
        let tool = |t: &ToolError| match t {
            ToolError::NotInstalled { .. } => "tool_missing",
            ToolError::Failed { .. } | ToolError::Spawn { .. } => "tool_failed",
        };
        let ceph = |c: &CephError| match c {
            CephError::LibraryMissing { .. } => "ceph_library_missing",
            CephError::Call { code, .. } if *code == -libc::ETIMEDOUT => "ceph_timeout",
            CephError::Call { .. } => "ceph_call",
            CephError::Reply { .. } => "ceph_reply",
            CephError::InvalidArgument(_) => "ceph_invalid_argument",
            CephError::Tool(t) => tool(t),
            CephError::Io { .. } => "io",
        };
        match self {
            OrchestratorError::Ceph(c) => ceph(c),
            OrchestratorError::Tool(t) => tool(t),
            OrchestratorError::Platform(p) => match p {
                rookery_platform::PlatformError::Start { .. } => "daemon_start",
                rookery_platform::PlatformError::NotInstalled { .. } => "tool_missing",
                rookery_platform::PlatformError::Io { .. } => "io",
                rookery_platform::PlatformError::UnknownHost(_) => "unknown_host",
                rookery_platform::PlatformError::UnknownDaemon(_) => "unknown_daemon",
                rookery_platform::PlatformError::Tool(t) => tool(t),
                rookery_platform::PlatformError::Ceph(c) => ceph(c),
                rookery_platform::PlatformError::NoStore(_) => "no_store",
                rookery_platform::PlatformError::Claim(_) => "device_not_free",
            },
            OrchestratorError::Io { .. } => "io",
            OrchestratorError::Corrupt { .. } => "corrupt",
            OrchestratorError::Other(_) => "other",
        }
    }
}

/// One gauge family: a descriptor and its labelled values.
fn gauges<L: EncodeLabelSet, V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    values: impl IntoIterator<Item = (L, V)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, value) in values {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One unlabelled gauge.
fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: V,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

type DaemonSource = Box<dyn Fn() -> Vec<DaemonStatus> + Send + Sync>;

/// The platform's daemons as it reports them at scrape time: `daemon_state{daemon,state}` (1 for the
/// current state, 0 for the others), `daemon_restarts_total{daemon}`, `daemon_crash_looping{daemon}`.
pub struct DaemonCollector {
    status: DaemonSource,
}

impl DaemonCollector {
    pub fn new(status: impl Fn() -> Vec<DaemonStatus> + Send + Sync + 'static) -> DaemonCollector {
        DaemonCollector {
            status: Box::new(status),
        }
    }
}

impl std::fmt::Debug for DaemonCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DaemonCollector")
    }
}

pub fn state_label(state: DaemonState) -> &'static str {
    match state {
        DaemonState::Running => "running",
        DaemonState::Restarting => "restarting",
        DaemonState::GaveUp => "gave-up",
        DaemonState::Stopped => "stopped",
    }
}

const STATES: [DaemonState; 4] = [
    DaemonState::Running,
    DaemonState::Restarting,
    DaemonState::GaveUp,
    DaemonState::Stopped,
];

impl Collector for DaemonCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let daemons = (self.status)();
        gauges(
            &mut encoder,
            "daemon_state",
            "1 for the state each daemon is in now (running, restarting after a death, stopped), 0 for the others",
            None,
            daemons.iter().flat_map(|d| {
                STATES.iter().map(move |s| {
                    (
                        [("daemon", d.name.as_str()), ("state", state_label(*s))],
                        i64::from(d.state == *s),
                    )
                })
            }),
        )?;
        counters(
            &mut encoder,
            "daemon_restarts",
            "Times the supervisor restarted each daemon after it died, since the supervisor started",
            None,
            daemons
                .iter()
                .map(|d| ([("daemon", d.name.as_str())], u64::from(d.restarts))),
        )?;
        gauges(
            &mut encoder,
            "daemon_crash_looping",
            "1 while a daemon keeps dying within a minute of each start (restarts alone will not fix it)",
            None,
            daemons
                .iter()
                .map(|d| ([("daemon", d.name.as_str())], i64::from(d.crash_looping))),
        )
    }
}

type ReportSource = Box<dyn Fn() -> Result<CephReport, String> + Send + Sync>;

/// Cluster facts from [`crate::report::ceph_report`] (native calls), asked for at scrape time. When Ceph
/// does not answer only `ceph_up 0` is given: absent series say "unknown", zeros would lie.
pub struct CephCollector {
    report: ReportSource,
}

impl CephCollector {
    pub fn new(
        report: impl Fn() -> Result<CephReport, String> + Send + Sync + 'static,
    ) -> CephCollector {
        CephCollector {
            report: Box::new(report),
        }
    }
}

impl std::fmt::Debug for CephCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CephCollector")
    }
}

const HEALTH: [&str; 3] = ["HEALTH_OK", "HEALTH_WARN", "HEALTH_ERR"];

impl Collector for CephCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let report = (self.report)();
        if let Err(e) = &report {
            tracing::debug!(error = %e, "no cluster facts for this scrape");
        }
        gauge(
            &mut encoder,
            "ceph_up",
            "1 when Ceph answered this scrape's queries (the ceph_ series are given only then)",
            None,
            i64::from(report.is_ok()),
        )?;
        let Ok(c) = report else {
            return Ok(());
        };
        let mut statuses: Vec<&str> = HEALTH.to_vec();
        if !statuses.contains(&c.health.as_str()) {
            statuses.push(&c.health);
        }
        gauges(
            &mut encoder,
            "ceph_health_status",
            "1 for Ceph's overall health status now, 0 for the other statuses",
            None,
            statuses
                .iter()
                .map(|s| ([("status", *s)], i64::from(*s == c.health))),
        )?;
        gauges(
            &mut encoder,
            "ceph_health_check",
            "1 for each health check raised now (its code and severity)",
            None,
            c.checks.iter().map(|k| {
                (
                    [("code", k.code.as_str()), ("severity", k.severity.as_str())],
                    1i64,
                )
            }),
        )?;
        let bytes = Some(&Unit::Bytes);
        gauge(
            &mut encoder,
            "ceph_raw_capacity",
            "Raw capacity of all OSDs",
            bytes,
            c.capacity.total_bytes,
        )?;
        gauge(
            &mut encoder,
            "ceph_raw_used",
            "Raw capacity used (all copies, metadata included)",
            bytes,
            c.capacity.used_bytes,
        )?;
        gauge(
            &mut encoder,
            "ceph_raw_avail",
            "Raw capacity still free",
            bytes,
            c.capacity.avail_bytes,
        )?;
        let count = |f: fn(&crate::report::OsdReport) -> bool| {
            c.osds.iter().filter(|o| f(o)).count() as u64
        };
        gauge(
            &mut encoder,
            "ceph_osds",
            "OSDs in the OSD map",
            None,
            c.osds.len() as u64,
        )?;
        gauge(
            &mut encoder,
            "ceph_osds_up",
            "OSDs the map has up",
            None,
            count(|o| o.up),
        )?;
        gauge(
            &mut encoder,
            "ceph_osds_in",
            "OSDs the map has in (holding data)",
            None,
            count(|o| o.in_),
        )?;
        gauge(
            &mut encoder,
            "ceph_mons",
            "Mons in the mon map",
            None,
            c.mons.len() as u64,
        )?;
        gauge(
            &mut encoder,
            "ceph_mons_in_quorum",
            "Mons in quorum",
            None,
            c.mons.iter().filter(|m| m.in_quorum).count() as u64,
        )?;
        gauge(
            &mut encoder,
            "ceph_mgr_available",
            "1 when a mgr is active",
            None,
            i64::from(c.mgr.available),
        )?;
        gauges(
            &mut encoder,
            "ceph_pgs",
            "Placement groups by state (active+clean when all is well)",
            None,
            c.pgs
                .by_state
                .iter()
                .map(|(state, n)| ([("state", state.as_str())], u64::from(*n))),
        )?;
        let pool = |p: &crate::report::PoolReport| [("pool", p.name.clone())];
        gauges(
            &mut encoder,
            "ceph_pool_stored",
            "Bytes stored in each pool (one copy, as clients wrote them)",
            bytes,
            c.pools.iter().map(|p| (pool(p), p.stored_bytes)),
        )?;
        gauges(
            &mut encoder,
            "ceph_pool_objects",
            "Objects in each pool",
            None,
            c.pools.iter().map(|p| (pool(p), p.objects)),
        )?;
        gauges(
            &mut encoder,
            "ceph_pool_max_avail",
            "Bytes each pool can still take (after its copies), as Ceph estimates it",
            bytes,
            c.pools.iter().map(|p| (pool(p), p.max_avail_bytes)),
        )?;
        gauges(
            &mut encoder,
            "ceph_pool_used_ratio",
            "How full each pool is, 0 to 1: of its quota when that is the nearer limit, else of what its OSDs can hold",
            None,
            c.pools.iter().map(|p| (pool(p), p.used_ratio)),
        )?;
        gauges(
            &mut encoder,
            "ceph_pool_quota",
            "Each pool's quota (0: none)",
            bytes,
            c.pools.iter().map(|p| (pool(p), p.quota_bytes)),
        )?;
        counters(
            &mut encoder,
            "ceph_pool_read_ops",
            "Client read operations on each pool since it was made",
            None,
            c.pools.iter().map(|p| (pool(p), p.io.read_ops)),
        )?;
        counters(
            &mut encoder,
            "ceph_pool_read",
            "Bytes clients read from each pool since it was made",
            bytes,
            c.pools.iter().map(|p| (pool(p), p.io.read_bytes)),
        )?;
        counters(
            &mut encoder,
            "ceph_pool_write_ops",
            "Client write operations on each pool since it was made",
            None,
            c.pools.iter().map(|p| (pool(p), p.io.write_ops)),
        )?;
        counters(
            &mut encoder,
            "ceph_pool_written",
            "Bytes clients wrote to each pool since it was made",
            bytes,
            c.pools.iter().map(|p| (pool(p), p.io.write_bytes)),
        )?;
        let osd = |o: &crate::report::OsdReport| {
            [
                ("daemon", format!("osd.{}", o.id)),
                ("host", o.host.clone()),
            ]
        };
        gauges(
            &mut encoder,
            "ceph_osd_up",
            "1 when the OSD map has the OSD up (answering its peers)",
            None,
            c.osds.iter().map(|o| (osd(o), i64::from(o.up))),
        )?;
        gauges(
            &mut encoder,
            "ceph_osd_in",
            "1 when the OSD map has the OSD in (given data to hold)",
            None,
            c.osds.iter().map(|o| (osd(o), i64::from(o.in_))),
        )?;
        gauges(
            &mut encoder,
            "ceph_osd_size",
            "Each OSD's capacity",
            bytes,
            c.osds.iter().map(|o| (osd(o), o.size_bytes)),
        )?;
        gauges(
            &mut encoder,
            "ceph_osd_used",
            "Bytes used on each OSD",
            bytes,
            c.osds.iter().map(|o| (osd(o), o.used_bytes)),
        )?;
        let a = &c.activity;
        for (name, help, unit, value) in [
            (
                "ceph_client_read_bytes_per_second",
                "Bytes clients read per second, over the mgr's last few seconds",
                None,
                a.read_bytes_per_sec,
            ),
            (
                "ceph_client_written_bytes_per_second",
                "Bytes clients wrote per second, over the mgr's last few seconds",
                None,
                a.write_bytes_per_sec,
            ),
            (
                "ceph_client_read_ops_per_second",
                "Client read operations per second, over the mgr's last few seconds",
                None,
                a.read_ops_per_sec,
            ),
            (
                "ceph_client_write_ops_per_second",
                "Client write operations per second, over the mgr's last few seconds",
                None,
                a.write_ops_per_sec,
            ),
            (
                "ceph_objects_degraded",
                "Object copies missing (fewer copies than the pool wants); 0 when all is clean",
                None,
                a.degraded_objects,
            ),
            (
                "ceph_objects_misplaced",
                "Object copies on OSDs other than where they belong; 0 when all is clean",
                None,
                a.misplaced_objects,
            ),
            (
                "ceph_recovery_objects_per_second",
                "Objects recovered per second while the cluster heals",
                None,
                a.recovering_objects_per_sec,
            ),
            (
                "ceph_recovery_bytes_per_second",
                "Bytes recovered per second while the cluster heals",
                None,
                a.recovering_bytes_per_sec,
            ),
        ] {
            gauge(&mut encoder, name, help, unit, value)?;
        }
        Ok(())
    }
}

type VolumeIoSource = Box<dyn Fn() -> Result<Vec<crate::report::VolumeIo>, String> + Send + Sync>;

/// Each busy volume's I/O (the mgr's `rbd perf image stats`, asked at scrape time, which also keeps
/// the mgr's query alive): `volume_{read,write}_ops_per_second`, `volume_{read,written}_bytes_per_second`
/// and `volume_{read,write}_latency_seconds`, labelled `pool`, `volume` and `claim` (the Kubernetes
/// claim, empty for a volume made otherwise). Idle volumes have no series (Ceph leaves them out).
pub struct VolumeIoCollector {
    source: VolumeIoSource,
}

impl VolumeIoCollector {
    pub fn new(
        source: impl Fn() -> Result<Vec<crate::report::VolumeIo>, String> + Send + Sync + 'static,
    ) -> VolumeIoCollector {
        VolumeIoCollector {
            source: Box::new(source),
        }
    }
}

impl std::fmt::Debug for VolumeIoCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VolumeIoCollector")
    }
}

impl Collector for VolumeIoCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Without an answer the families are described with no samples: "no busy volume known".
        let volumes = (self.source)().unwrap_or_else(|e| {
            tracing::debug!(error = %e, "no volume I/O for this scrape");
            Vec::new()
        });
        let labels = |v: &crate::report::VolumeIo| {
            [
                ("pool", v.io.pool.clone()),
                ("volume", v.io.image.clone()),
                ("claim", v.claim.clone()),
            ]
        };
        type Figure = fn(&rookery_ceph::types::ImageIo) -> f64;
        let families: [(&str, &str, Figure); 6] = [
            (
                "volume_read_ops_per_second",
                "Read operations per second on each busy volume",
                |i| i.read_ops_per_sec,
            ),
            (
                "volume_write_ops_per_second",
                "Write operations per second on each busy volume",
                |i| i.write_ops_per_sec,
            ),
            (
                "volume_read_bytes_per_second",
                "Bytes read per second from each busy volume",
                |i| i.read_bytes_per_sec,
            ),
            (
                "volume_written_bytes_per_second",
                "Bytes written per second to each busy volume",
                |i| i.write_bytes_per_sec,
            ),
            (
                "volume_read_latency_seconds",
                "Mean time a read of each busy volume took",
                |i| i.read_latency_secs,
            ),
            (
                "volume_write_latency_seconds",
                "Mean time a write to each busy volume took",
                |i| i.write_latency_secs,
            ),
        ];
        for (name, help, figure) in families {
            gauges(
                &mut encoder,
                name,
                help,
                None,
                volumes.iter().map(|v| (labels(v), figure(&v.io))),
            )?;
        }
        Ok(())
    }
}

type OsdIoSource =
    Box<dyn Fn() -> Result<Vec<(u32, rookery_ceph::types::OsdPerfCounters)>, String> + Send + Sync>;

/// Each up OSD's client I/O since it started, asked of the OSD at scrape time:
/// `ceph_osd_{read,write}_ops_total`, `ceph_osd_{read,written}_bytes_total` and
/// `ceph_osd_{read,write}_latency_seconds_total` (the time those operations took, so that
/// `rate(latency) / rate(ops)` is their mean latency), labelled `daemon`. The counters start again from
/// 0 when an OSD restarts, which `rate` understands.
pub struct OsdIoCollector {
    source: OsdIoSource,
}

impl OsdIoCollector {
    pub fn new(
        source: impl Fn() -> Result<Vec<(u32, rookery_ceph::types::OsdPerfCounters)>, String>
            + Send
            + Sync
            + 'static,
    ) -> OsdIoCollector {
        OsdIoCollector {
            source: Box::new(source),
        }
    }
}

impl std::fmt::Debug for OsdIoCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OsdIoCollector")
    }
}

impl Collector for OsdIoCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let osds = (self.source)().unwrap_or_else(|e| {
            tracing::debug!(error = %e, "no OSD I/O for this scrape");
            Vec::new()
        });
        type Count = fn(&rookery_ceph::types::OsdPerfCounters) -> u64;
        let counts: [(&str, &str, Option<&Unit>, Count); 4] = [
            (
                "ceph_osd_read_ops",
                "Client reads each OSD served since it started",
                None,
                |p| p.op_r,
            ),
            (
                "ceph_osd_write_ops",
                "Client writes each OSD served since it started",
                None,
                |p| p.op_w,
            ),
            (
                "ceph_osd_read",
                "Bytes each OSD returned to clients since it started",
                Some(&Unit::Bytes),
                |p| p.op_r_out_bytes,
            ),
            (
                "ceph_osd_written",
                "Bytes clients wrote to each OSD since it started",
                Some(&Unit::Bytes),
                |p| p.op_w_in_bytes,
            ),
        ];
        let label = |id: u32| [("daemon", format!("osd.{id}"))];
        for (name, help, unit, count) in counts {
            counters(
                &mut encoder,
                name,
                help,
                unit,
                osds.iter().map(|(id, p)| (label(*id), count(p))),
            )?;
        }
        type Took = fn(&rookery_ceph::types::OsdPerfCounters) -> f64;
        let times: [(&str, &str, Took); 2] = [
            (
                "ceph_osd_read_latency",
                "Time each OSD's client reads took, in all, since it started",
                |p| p.op_r_latency.sum,
            ),
            (
                "ceph_osd_write_latency",
                "Time each OSD's client writes took, in all, since it started",
                |p| p.op_w_latency.sum,
            ),
        ];
        for (name, help, took) in times {
            counters(
                &mut encoder,
                name,
                help,
                Some(&Unit::Seconds),
                osds.iter().map(|(id, p)| (label(*id), took(p))),
            )?;
        }
        Ok(())
    }
}

/// One counter family: a descriptor and its labelled totals (the counterpart of [`gauges`]).
fn counters<L: EncodeLabelSet, V: prometheus_client::encoding::EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    values: impl IntoIterator<Item = (L, V)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Counter)?;
    for (labels, value) in values {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Capacity, CheckReport, MonReport, OsdReport, PgReport, PoolReport};

    fn render(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    #[test]
    fn the_timer_counts_a_pass_when_dropped() {
        let m = ReconcileMetrics::default();
        let mut registry = Registry::with_prefix("rookery");
        m.clone().register(&mut registry);
        {
            let _t = m.reconcile_timer();
            assert_eq!(m.runs(), 0, "counted before the pass ended");
        }
        let pass = || -> Result<(), OrchestratorError> {
            let _t = m.reconcile_timer();
            Err(OrchestratorError::Other("no".into()))
        };
        if let Err(e) = pass() {
            m.failed(&e);
        }
        assert_eq!(m.runs(), 2);
        assert_eq!(m.failures("other"), 1);
        assert_eq!(m.failures("io"), 0);
        let text = render(&registry);
        assert!(text.contains("rookery_reconcile_runs_total 2\n"), "{text}");
        assert!(
            text.contains("rookery_reconcile_failures_total{kind=\"other\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("rookery_reconcile_duration_seconds_count 2\n"),
            "{text}"
        );
        assert!(text.contains("# UNIT rookery_reconcile_duration_seconds seconds"));
    }

    #[test]
    fn error_kinds_are_short_labels() {
        let call = |code| {
            OrchestratorError::Ceph(rookery_ceph::CephError::Call {
                op: "mon_command".into(),
                code,
                reason: String::new(),
                detail: String::new(),
            })
        };
        assert_eq!(call(-libc::ETIMEDOUT).kind(), "ceph_timeout");
        assert_eq!(call(-libc::EINVAL).kind(), "ceph_call");
        let tool = OrchestratorError::Tool(rookery_ceph::tools::ToolError::NotInstalled {
            program: "ceph-osd".into(),
            package: "ceph-osd".into(),
        });
        assert_eq!(tool.kind(), "tool_missing");
        let start = OrchestratorError::Platform(rookery_platform::PlatformError::Start {
            name: "osd.0".into(),
            program: "ceph-osd".into(),
            source: std::io::Error::other("x"),
        });
        assert_eq!(start.kind(), "daemon_start");
        let corrupt = OrchestratorError::Corrupt {
            path: "cluster.json".into(),
            detail: "x".into(),
        };
        assert_eq!(corrupt.kind(), "corrupt");
        for k in [call(0).kind(), tool.kind(), start.kind(), corrupt.kind()] {
            assert!(k.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'));
        }
    }

    fn daemon(name: &str, state: DaemonState, restarts: u32) -> DaemonStatus {
        DaemonStatus {
            name: name.into(),
            state,
            pid: None,
            restarts,
            last_exit: None,
            uptime_secs: None,
            adopted: false,
            crash_looping: restarts > 2,
            log_tail: Vec::new(),
        }
    }

    #[test]
    fn daemons_are_read_at_scrape_time() {
        let mut registry = Registry::with_prefix("rookery");
        let restarts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = restarts.clone();
        registry.register_collector(Box::new(DaemonCollector::new(move || {
            let n = seen.load(std::sync::atomic::Ordering::SeqCst);
            vec![
                daemon("mon.a", DaemonState::Running, 0),
                daemon("osd.1", DaemonState::Restarting, n),
            ]
        })));
        let text = render(&registry);
        for line in [
            "rookery_daemon_state{daemon=\"mon.a\",state=\"running\"} 1\n",
            "rookery_daemon_state{daemon=\"mon.a\",state=\"stopped\"} 0\n",
            "rookery_daemon_state{daemon=\"osd.1\",state=\"restarting\"} 1\n",
            "rookery_daemon_restarts_total{daemon=\"osd.1\"} 0\n",
            "rookery_daemon_crash_looping{daemon=\"osd.1\"} 0\n",
            "# TYPE rookery_daemon_restarts counter\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        restarts.store(3, std::sync::atomic::Ordering::SeqCst);
        let text = render(&registry);
        assert!(text.contains("rookery_daemon_restarts_total{daemon=\"osd.1\"} 3\n"));
        assert!(text.contains("rookery_daemon_crash_looping{daemon=\"osd.1\"} 1\n"));
    }

    #[test]
    fn cluster_facts_from_the_report() {
        let mut registry = Registry::with_prefix("rookery");
        registry.register_collector(Box::new(CephCollector::new(|| {
            let mut c = CephReport {
                health: "HEALTH_WARN".into(),
                checks: vec![CheckReport {
                    code: "OSD_DOWN".into(),
                    severity: "HEALTH_WARN".into(),
                    ..Default::default()
                }],
                capacity: Capacity {
                    total_bytes: 300,
                    used_bytes: 30,
                    avail_bytes: 270,
                },
                pgs: PgReport {
                    total: 9,
                    by_state: [("active+clean".to_string(), 8), ("peering".to_string(), 1)]
                        .into_iter()
                        .collect(),
                },
                ..Default::default()
            };
            c.osds = (0..3)
                .map(|id| OsdReport {
                    id,
                    up: id != 1,
                    in_: true,
                    host: "h".into(),
                    size_bytes: 100,
                    ..Default::default()
                })
                .collect();
            c.mons = vec![MonReport {
                name: "a".into(),
                address: String::new(),
                in_quorum: true,
            }];
            c.pools = vec![PoolReport {
                name: "replicapool".into(),
                stored_bytes: 10,
                objects: 2,
                max_avail_bytes: 90,
                used_ratio: 0.1,
                quota_bytes: 100,
                io: crate::report::IoCounts {
                    read_ops: 3,
                    read_bytes: 4096,
                    write_ops: 5,
                    write_bytes: 8192,
                },
                ..Default::default()
            }];
            c.activity.degraded_objects = 7;
            Ok(c)
        })));
        let text = render(&registry);
        for line in [
            "rookery_ceph_up 1\n",
            "rookery_ceph_health_status{status=\"HEALTH_OK\"} 0\n",
            "rookery_ceph_health_status{status=\"HEALTH_WARN\"} 1\n",
            "rookery_ceph_health_check{code=\"OSD_DOWN\",severity=\"HEALTH_WARN\"} 1\n",
            "rookery_ceph_raw_capacity_bytes 300\n",
            "rookery_ceph_raw_used_bytes 30\n",
            "rookery_ceph_raw_avail_bytes 270\n",
            "rookery_ceph_osds 3\n",
            "rookery_ceph_osds_up 2\n",
            "rookery_ceph_osds_in 3\n",
            "rookery_ceph_mons_in_quorum 1\n",
            "rookery_ceph_pgs{state=\"active+clean\"} 8\n",
            "rookery_ceph_pgs{state=\"peering\"} 1\n",
            "rookery_ceph_pool_stored_bytes{pool=\"replicapool\"} 10\n",
            "rookery_ceph_pool_objects{pool=\"replicapool\"} 2\n",
            "rookery_ceph_pool_max_avail_bytes{pool=\"replicapool\"} 90\n",
            "rookery_ceph_pool_used_ratio{pool=\"replicapool\"} 0.1\n",
            "rookery_ceph_pool_quota_bytes{pool=\"replicapool\"} 100\n",
            "rookery_ceph_pool_read_ops_total{pool=\"replicapool\"} 3\n",
            "rookery_ceph_pool_read_bytes_total{pool=\"replicapool\"} 4096\n",
            "rookery_ceph_pool_write_ops_total{pool=\"replicapool\"} 5\n",
            "rookery_ceph_pool_written_bytes_total{pool=\"replicapool\"} 8192\n",
            "# TYPE rookery_ceph_pool_written_bytes counter\n",
            "rookery_ceph_osd_up{daemon=\"osd.1\",host=\"h\"} 0\n",
            "rookery_ceph_osd_up{daemon=\"osd.2\",host=\"h\"} 1\n",
            "rookery_ceph_osd_in{daemon=\"osd.1\",host=\"h\"} 1\n",
            "rookery_ceph_osd_size_bytes{daemon=\"osd.0\",host=\"h\"} 100\n",
            "rookery_ceph_objects_degraded 7\n",
            "rookery_ceph_recovery_bytes_per_second 0\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn busy_volumes_with_their_claims() {
        let mut registry = Registry::with_prefix("rookery");
        registry.register_collector(Box::new(VolumeIoCollector::new(|| {
            Ok(vec![crate::report::VolumeIo {
                claim: "default/data".into(),
                io: rookery_ceph::types::ImageIo {
                    pool: "replicapool".into(),
                    image: "csi-vol-1".into(),
                    write_ops_per_sec: 20.0,
                    write_bytes_per_sec: 1024.0,
                    write_latency_secs: 0.002,
                    ..Default::default()
                },
            }])
        })));
        let text = render(&registry);
        for line in [
            "rookery_volume_write_ops_per_second{pool=\"replicapool\",volume=\"csi-vol-1\",claim=\"default/data\"} 20.0\n",
            "rookery_volume_written_bytes_per_second{pool=\"replicapool\",volume=\"csi-vol-1\",claim=\"default/data\"} 1024.0\n",
            "rookery_volume_write_latency_seconds{pool=\"replicapool\",volume=\"csi-vol-1\",claim=\"default/data\"} 0.002\n",
            "rookery_volume_read_ops_per_second{pool=\"replicapool\",volume=\"csi-vol-1\",claim=\"default/data\"} 0.0\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        let mut registry = Registry::with_prefix("rookery");
        registry.register_collector(Box::new(VolumeIoCollector::new(|| Err("no mgr".into()))));
        let text = render(&registry);
        assert!(text.contains("# TYPE rookery_volume_write_ops_per_second gauge"));
        assert!(
            !text.contains("rookery_volume_write_ops_per_second{"),
            "{text}"
        );
    }

    #[test]
    fn osd_io_counters() {
        let mut registry = Registry::with_prefix("rookery");
        registry.register_collector(Box::new(OsdIoCollector::new(|| {
            let mut p = rookery_ceph::types::OsdPerfCounters {
                op_r: 3,
                op_w: 5,
                op_r_out_bytes: 4096,
                op_w_in_bytes: 8192,
                ..Default::default()
            };
            p.op_w_latency.sum = 1.5;
            Ok(vec![(2, p)])
        })));
        let text = render(&registry);
        for line in [
            "rookery_ceph_osd_read_ops_total{daemon=\"osd.2\"} 3\n",
            "rookery_ceph_osd_write_ops_total{daemon=\"osd.2\"} 5\n",
            "rookery_ceph_osd_read_bytes_total{daemon=\"osd.2\"} 4096\n",
            "rookery_ceph_osd_written_bytes_total{daemon=\"osd.2\"} 8192\n",
            "rookery_ceph_osd_write_latency_seconds_total{daemon=\"osd.2\"} 1.5\n",
            "# TYPE rookery_ceph_osd_read_latency_seconds counter\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn an_unreachable_cluster_gives_only_ceph_up() {
        let mut registry = Registry::with_prefix("rookery");
        registry.register_collector(Box::new(CephCollector::new(|| Err("down".into()))));
        let text = render(&registry);
        assert!(text.contains("rookery_ceph_up 0\n"), "{text}");
        assert!(!text.contains("rookery_ceph_osds"), "{text}");
    }
}
