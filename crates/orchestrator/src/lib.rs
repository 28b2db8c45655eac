//! The standalone orchestrator: one pass is observe -> [`plan::plan`] (pure) -> execute -> observe again,
//! repeated until the plan is empty. [`Reconciler`] owns the cluster's state, its daemons (through the
//! platform) and its librados connection.

pub mod config;
pub mod desired;
mod device_watch;
pub mod disks;
mod execute;
pub mod external;
pub mod history;
pub mod join;
pub mod join_token;
pub mod layout;
pub mod leadership;
pub mod metrics;
pub mod objects;
pub mod objectstore;
pub mod osd_requests;
pub mod plan;
pub mod planners;
pub mod preflight;
pub mod reconcile_loop;
pub mod report;
pub mod resources;
pub mod state;
pub mod teardown;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::os::unix::fs::DirBuilderExt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rookery_ceph::commands::{fs, mgr, osd, pool};
use rookery_ceph::Rados;
use rookery_platform::{DaemonKind, Host, Platform, Stores};

pub use desired::Desired;
pub use execute::daemon_spec;
pub use layout::Layout;
pub use plan::{Observed, Plan, Step};
pub use state::ClusterState;

#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    #[error(transparent)]
    Ceph(#[from] rookery_ceph::CephError),
    #[error(transparent)]
    Tool(#[from] rookery_ceph::tools::ToolError),
    #[error(transparent)]
    Platform(#[from] rookery_platform::PlatformError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is damaged ({detail}); restore it from a backup or purge the cluster")]
    Corrupt { path: String, detail: String },
    #[error("{0}")]
    Other(String),
}

impl OrchestratorError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> OrchestratorError {
        OrchestratorError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// How long a librados call may take before we treat Ceph as unreachable.
pub const CEPH_TIMEOUT: Duration = Duration::from_secs(10);

/// A short fingerprint of a spec's text, so a client can tell when the supervisor reconciles to it.
pub fn spec_digest(text: &str) -> String {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The Ceph user this host acts as (`admin`, or a joined host's own), from its saved state.
pub fn ceph_user(layout: &Layout) -> String {
    ClusterState::load(layout)
        .ok()
        .flatten()
        .map(|s| s.ceph_user().to_string())
        .unwrap_or_else(|| "admin".to_string())
}

/// The data dir's folders, 0700.
fn make_dirs(layout: &Layout) -> Result<(), OrchestratorError> {
    for dir in layout.dirs() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| OrchestratorError::io(&dir, e))?;
    }
    Ok(())
}

/// Creates the data dir (0700) and the state of a new cluster. Nothing else is made here: keys, config
/// and stores are steps of the plan, so an interrupted creation is finished by the next reconcile.
pub fn create_cluster(
    layout: &Layout,
    name: &str,
    mon_ids: &[String],
    mon_ports: &[(u16, u16)],
    host: &Host,
) -> Result<ClusterState, OrchestratorError> {
    make_dirs(layout)?;
    let state = ClusterState {
        name: name.to_string(),
        fsid: uuid::Uuid::new_v4().to_string(),
        mons: mon_ids
            .iter()
            .zip(mon_ports)
            .map(|(id, (v2, v1))| state::MonRecord {
                id: id.clone(),
                host: Some(host.name.clone()),
                address: host.address,
                v2_port: *v2,
                v1_port: *v1,
            })
            .collect(),
        osds: vec![],
        created_unix: now_unix(),
        ceph_version: rookery_ceph::tools::program_version("ceph-mon").ok(),
        config_applied: Default::default(),
        config_settled: None,
        member_user: None,
        removed: false,
    };
    state.save(layout)?;
    Ok(state)
}

/// Makes the data dir of a host that joined a cluster (`rookery join`): the state the member that
/// admitted it gave (the cluster's name, fsid and mons), the key of the user it acts as, and the spec.
/// Its OSDs and the rest are made by its own reconciler.
pub fn create_joined(
    layout: &Layout,
    grant: &join::Grant,
) -> Result<ClusterState, OrchestratorError> {
    make_dirs(layout)?;
    let entry = rookery_ceph::keyring::KeyringEntry::new(
        &format!("client.{}", grant.user),
        &grant.key,
        &[],
    );
    rookery_ceph::keyring::write(&layout.user_keyring(&grant.user), &[entry])?;
    rookery_ceph::conf::write_atomic(&layout.spec(), grant.spec.as_bytes(), 0o600)?;
    let state = ClusterState {
        name: grant.name.clone(),
        fsid: grant.fsid.clone(),
        mons: grant.mons.clone(),
        osds: vec![],
        created_unix: now_unix(),
        ceph_version: rookery_ceph::tools::program_version("ceph-mon").ok(),
        config_applied: Default::default(),
        config_settled: None,
        member_user: Some(grant.user.clone()),
        removed: false,
    };
    state.save(layout)?;
    Ok(state)
}

/// Destroys a stopped cluster: its data dir goes, with every store, key and log in it. Only ever called
/// for a confirmed purge (`down --purge --yes-really-destroy-data`).
pub fn purge(layout: &Layout) -> Result<(), OrchestratorError> {
    match std::fs::remove_dir_all(&layout.root) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(OrchestratorError::io(&layout.root, e))
        }
        _ => Ok(()),
    }
}

/// Every daemon the cluster has made, stopped or not: its mons and OSDs (from the state), and the mgrs,
/// MDS daemons and gateways that have a keyring.
pub fn known_daemons(state: &ClusterState, stores: &dyn Stores) -> Vec<String> {
    let mut names: Vec<String> = state.mons.iter().map(|m| format!("mon.{}", m.id)).collect();
    let with_keys = stores.with_keyrings();
    let of = |kind: DaemonKind| {
        with_keys
            .iter()
            .filter(move |n| rookery_platform::parse_daemon_name(n).is_some_and(|(k, _)| k == kind))
            .cloned()
    };
    names.extend(of(DaemonKind::Mgr));
    names.extend(
        state
            .osds
            .iter()
            .filter_map(|o| o.id)
            .map(|id| format!("osd.{id}")),
    );
    names.extend(of(DaemonKind::Mds));
    names.extend(of(DaemonKind::Rgw));
    names
}

/// One line of what the reconciler did, for progress displays and `status`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// When it happened, in seconds since the Unix epoch.
    pub unix: u64,
    pub message: String,
    /// What kind of thing was done, in one word (`CreateMonStore`, `AddDeviceOsd`, `OsdRemoved`): a
    /// Kubernetes Event's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// The platform as the reconciler and the supervisor's watcher share it.
pub type SharedPlatform = Arc<Mutex<dyn Platform>>;

pub struct Reconciler {
    pub layout: Layout,
    pub state: ClusterState,
    pub desired: Desired,
    pub platform: SharedPlatform,
    /// The platform's daemon stores and keyrings, used without its lock.
    pub stores: Arc<dyn Stores>,
    rados: Option<Arc<Rados>>,
    pub last_plan: Plan,
    pub last_error: Option<String>,
    pub events: VecDeque<Event>,
    pub metrics: metrics::ReconcileMetrics,
    device_watch: device_watch::DeviceWatch,
    /// Daemons restarted for their config, and when.
    restarted: BTreeMap<String, std::time::Instant>,
    /// Since when each mon has been out of quorum, as this reconciler saw it.
    mon_out_since: BTreeMap<String, std::time::Instant>,
    /// Members seen not running (no OSD up), since when.
    host_down_since: BTreeMap<String, std::time::Instant>,
    /// The lead's record as last read, and since when it has read so.
    lease_seen: Option<(Option<leadership::LeaderRecord>, std::time::Instant)>,
}

impl Reconciler {
    pub fn new(
        layout: Layout,
        desired: Desired,
        platform: SharedPlatform,
    ) -> Result<Reconciler, OrchestratorError> {
        let state = ClusterState::load(&layout)?.ok_or_else(|| {
            OrchestratorError::Other(format!(
                "{} holds no cluster; run `rookery up` first",
                layout.root.display()
            ))
        })?;
        let stores = platform.lock().unwrap_or_else(|p| p.into_inner()).stores();
        Ok(Reconciler {
            layout,
            state,
            desired,
            platform,
            stores,
            rados: None,
            last_plan: Plan::default(),
            last_error: None,
            events: VecDeque::new(),
            metrics: metrics::ReconcileMetrics::default(),
            device_watch: device_watch::DeviceWatch::default(),
            restarted: BTreeMap::new(),
            mon_out_since: BTreeMap::new(),
            lease_seen: None,
            host_down_since: BTreeMap::new(),
        })
    }

    pub fn platform(&self) -> MutexGuard<'_, dyn Platform + 'static> {
        // A panic while holding the lock cannot leave the platform half-updated in a way that matters more
        // than losing supervision, so recover the guard.
        self.platform.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// ceph.conf for the daemons on `host`, with the platform's placement of their files.
    pub(crate) fn render_conf(&self, host: &Host) -> String {
        config::render(
            &self.state,
            &self.desired.conf,
            host,
            &self.stores.conf_settings(&host.name),
        )
    }

    /// The host this orchestrator runs on, where a standalone cluster's daemons run.
    pub fn home_host(&self) -> Result<Host, OrchestratorError> {
        self.platform()
            .hosts()
            .into_iter()
            .next()
            .ok_or_else(|| OrchestratorError::Other("the platform offers no host".into()))
    }

    pub(crate) fn event(&mut self, action: &str, message: String) {
        tracing::info!(%action, %message, "reconcile");
        self.events.push_back(Event {
            unix: now_unix(),
            message,
            action: Some(action.to_string()),
        });
        while self.events.len() > 200 {
            self.events.pop_front();
        }
    }

    /// The connection, made when first needed and dropped after a failure so the next call reconnects.
    pub fn rados(&mut self) -> Option<Arc<Rados>> {
        if self.rados.is_none() {
            // The host that made the cluster runs its mons itself; a joined host reaches the mons
            // of others.
            let any_mon = self.state.joined()
                || self
                    .state
                    .mons
                    .iter()
                    .any(|m| self.platform().is_running(&format!("mon.{}", m.id)));
            let user = self.state.ceph_user().to_string();
            if !any_mon || !self.layout.user_keyring(&user).exists() {
                return None;
            }
            match Rados::connect(&self.layout.conf(), &user, CEPH_TIMEOUT) {
                Ok(r) => self.rados = Some(Arc::new(r)),
                Err(e) => {
                    tracing::debug!(error = %e, "ceph not reachable yet");
                    return None;
                }
            }
        }
        self.rados.clone()
    }

    pub(crate) fn drop_connection(&mut self) {
        self.rados = None;
    }

    /// The home host's devices, read again every few seconds, when the spec selects devices or the
    /// cluster has OSDs on devices (None otherwise, or when this cluster's volume records cannot be read:
    /// without them a volume's loop device could not be told apart from a spare one).
    fn observe_devices(&mut self, host: &Host) -> Option<plan::HostDevices> {
        let wanted = !self.desired.devices.for_host(&host.name).is_empty()
            || self.state.osds.iter().any(|o| o.device.is_some());
        if !wanted {
            return None;
        }
        let known = match disks::Known::of(&self.layout, Some(&self.state)) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "volume mount records unreadable; no device is taken");
                return None;
            }
        };
        let now = std::time::Instant::now();
        if self.device_watch.due(now) {
            let devices = self.platform().devices(&host.name);
            self.device_watch.update(devices, now);
        }
        Some(plan::HostDevices {
            host: host.name.clone(),
            devices: self.device_watch.devices().to_vec(),
            known,
            allow_loop_devices: state::HostPolicy::load(&self.layout).allow_loop_devices,
            settled: self.device_watch.settled(now),
        })
    }

    /// What the running daemons run with, while the spec's options are in the database but not yet seen
    /// in every daemon (None: nothing to check, or the mgr cannot tell now).
    fn observe_rollout(
        &self,
        r: &Rados,
        running: &BTreeSet<String>,
        ceph: &plan::CephView,
    ) -> Option<planners::config_db::Rollout> {
        use planners::config_db::{expected_for, Rollout, StaleDaemon};
        let want = config::database(&self.desired.conf);
        let digest = planners::config_db::digest(&want);
        let in_db = want.iter().all(|(k, v)| {
            ceph.config_db
                .get(k)
                .is_some_and(|(have, _)| plan::same_setting(v, have))
        });
        // What each daemon runs with is asked only while the spec's options are in the database but
        // not yet known to be in every daemon (the mgr answers, one call per daemon).
        let check_config = in_db
            && ceph.mgr_available
            && self.state.config_settled.as_deref() != Some(digest.as_str());
        let upgraded: BTreeSet<&String> = {
            let p = self.platform();
            running
                .iter()
                .filter(|d| p.runs_installed_program(d) == Some(false))
                .collect()
        };
        let mut stale = Vec::new();
        for kind in DaemonKind::START_ORDER {
            for daemon in running
                .iter()
                .filter(|d| rookery_platform::parse_daemon_name(d).is_some_and(|(k, _)| k == kind))
            {
                let ceph_name = match kind {
                    DaemonKind::Rgw => format!("client.{daemon}"),
                    _ => daemon.clone(),
                };
                let restarted_lately = self
                    .restarted
                    .get(daemon)
                    .is_some_and(|t| t.elapsed() < RESTART_SETTLE);
                let upgraded = upgraded.contains(daemon);
                let expected = if check_config {
                    expected_for(&ceph_name, &want)
                } else {
                    BTreeMap::new()
                };
                let shown = if expected.is_empty() {
                    Vec::new()
                } else {
                    rookery_ceph::commands::config::show(r, &ceph_name).ok()?
                };
                let mut options = Vec::new();
                let mut needs_restart = upgraded;
                for (option, value) in expected {
                    let now = shown.iter().find(|o| o.name == option);
                    if now.is_some_and(|o| plan::same_setting(&value, &o.value)) {
                        continue;
                    }
                    let runtime = ceph
                        .config_db
                        .iter()
                        .find(|((_, o), _)| *o == option)
                        .is_some_and(|(_, (_, runtime))| *runtime);
                    // A value from its config file or command line hides the mons' until it restarts.
                    let pinned = now.is_some_and(|o| {
                        matches!(o.source.as_str(), "file" | "cmdline" | "override")
                    });
                    needs_restart |= (!runtime || pinned) && !restarted_lately;
                    options.push(option);
                }
                if upgraded || !options.is_empty() {
                    stale.push(StaleDaemon {
                        daemon: daemon.clone(),
                        options,
                        needs_restart,
                        upgraded,
                    });
                }
            }
        }
        let gate = stale.iter().find(|s| s.needs_restart).map(|s| {
            let (kind, id) =
                rookery_platform::parse_daemon_name(&s.daemon).unwrap_or((DaemonKind::Mgr, ""));
            match kind {
                // The only mon cannot hand over: clients wait the few seconds it takes to come back.
                DaemonKind::Mon if self.state.mons.len() == 1 => Ok(()),
                DaemonKind::Mon | DaemonKind::Osd | DaemonKind::Mds => {
                    rookery_ceph::commands::config::ok_to_stop(r, &kind.to_string(), id)
                        .unwrap_or_else(|e| Err(e.to_string()))
                }
                DaemonKind::Mgr | DaemonKind::Rgw => Ok(()),
            }
        });
        Some(Rollout {
            stale,
            gate,
            all_osds_up: ceph.osds.values().all(|o| o.up),
            config_checked: check_config,
        })
    }

    /// The devices are read again on the next pass (a device just became an OSD or was freed).
    pub(crate) fn devices_changed(&mut self) {
        self.device_watch.invalidate();
    }

    pub fn observe(&mut self) -> Observed {
        let host = self.home_host().ok();
        let home = host.as_ref().map(|h| h.name.clone()).unwrap_or_default();
        let devices = host.as_ref().and_then(|h| self.observe_devices(h));
        let l = &self.layout;
        let running: BTreeSet<String> = {
            let p = self.platform();
            p.names().into_iter().filter(|n| p.is_running(n)).collect()
        };
        let conf_current = host.as_ref().is_some_and(|h| {
            std::fs::read_to_string(l.conf()).is_ok_and(|c| c == self.render_conf(h))
        });
        let st = self.stores.clone();
        let mon_stores = self
            .state
            .mons
            .iter()
            .filter(|m| st.is_ready(&format!("mon.{}", m.id)))
            .map(|m| m.id.clone())
            .collect();
        let mgr_keyrings = self
            .desired
            .mgr_ids
            .iter()
            .filter(|id| st.has_keyring(&format!("mgr.{id}")))
            .cloned()
            .collect();
        let osds = self
            .state
            .osds
            .iter()
            .map(|o| plan::ObservedOsd {
                uuid: o.uuid.clone(),
                id: o.id,
                store_ready: o.id.is_some_and(|id| st.is_ready(&format!("osd.{id}"))),
                block: match (&o.device, &devices) {
                    (None, _) => plan::OsdBlock::File,
                    (Some(_), None) => plan::OsdBlock::Unknown,
                    (Some(recorded), Some(seen)) => {
                        let found = rookery_platform::devices::find_osd(&seen.devices, &o.uuid);
                        // A device that could not be read may be the one (unless it is mounted or
                        // split, which an OSD's device never is): not known to be gone.
                        let unreadable = seen.devices.iter().any(|d| {
                            d.probe_error.is_some()
                                && d.mounts.is_empty()
                                && d.partitions.is_empty()
                                && d.holders.is_empty()
                        });
                        if found.is_none() && unreadable {
                            plan::OsdBlock::Unknown
                        } else {
                            plan::OsdBlock::Device {
                                recorded: recorded.clone(),
                                found,
                                linked: o.id.and_then(|id| st.osd_block(id)),
                            }
                        }
                    }
                },
            })
            .collect();
        let keys = if self.state.joined() {
            l.user_keyring(self.state.ceph_user()).exists()
        } else {
            l.admin_keyring().exists() && l.mon_keyring().exists()
        };
        let d = &self.desired;
        let mds_keyrings = d
            .filesystems
            .iter()
            .flat_map(|f| f.mds_ids.iter())
            .filter(|id| st.has_keyring(&format!("mds.{id}")))
            .cloned()
            .collect();
        let stores = || d.object_stores.iter().map(|s| s.name.clone());
        let rgw_keyrings = stores()
            .filter(|s| st.has_keyring(&format!("rgw.{s}")))
            .collect();
        let rgw_realms = stores()
            .filter(|s| Layout::ready_marker(&l.rgw_dir(s)).exists())
            .collect();
        let rgw_admins = stores().filter(|s| l.rgw_admin(s).exists()).collect();
        let object_users = d
            .object_users
            .iter()
            .filter_map(|u| {
                let record = objectstore::read(&l.rgw_user(&u.store, &u.settings.uid)).ok()??;
                Some(((u.store.clone(), u.settings.uid.clone()), record.applied))
            })
            .collect();
        let busy_ports = match &host {
            Some(h) => {
                let p = self.platform();
                d.object_stores
                    .iter()
                    .filter(|s| !running.contains(&format!("rgw.{}", s.name)))
                    .filter_map(|s| p.port_holder(&h.name, s.port).map(|who| (s.port, who)))
                    .collect()
            }
            None => BTreeMap::new(),
        };
        let mut observed = Observed {
            keys,
            conf_current,
            mon_stores,
            running,
            mgr_keyrings,
            osds,
            ceph: None,
            mds_keyrings,
            rgw_keyrings,
            rgw_realms,
            rgw_admins,
            object_users,
            busy_ports,
            devices,
            osd_requests: osd_requests::OsdRequests::load(l),
            config_applied: self.state.config_applied.clone(),
            config_settled: self.state.config_settled.clone(),
            mon_hosts: self
                .state
                .mons
                .iter()
                .map(|m| (m.id.clone(), m.host.clone().unwrap_or_else(|| home.clone())))
                .collect(),
            mon_records: self.state.mons.clone(),
            removed: self.state.removed,
            mons_out_for: BTreeMap::new(),
            spec_text: None,
            joined: self.state.joined(),
            several_hosts: false,
            lead_unchanged_for: std::time::Duration::ZERO,
            hosts_down_for: BTreeMap::new(),
            home,
        };
        if (observed.mon_stores.is_empty() && !self.state.joined()) || !conf_current {
            return observed;
        }
        if let Some(r) = self.rados() {
            let retiring: Vec<u32> = observed
                .osd_requests
                .requests
                .iter()
                .map(|q| q.id)
                .collect();
            // Membership, placements and the published spec exist only for a cluster whose hosts
            // serve on an address others reach.
            let several_hosts = host.as_ref().is_some_and(|h| !h.address.is_loopback());
            if several_hosts {
                observed.spec_text = std::fs::read_to_string(self.layout.spec()).ok();
                observed.several_hosts = true;
            }
            match observe_ceph(&r, &self.desired, &retiring, several_hosts) {
                Ok(mut view) => {
                    // Up in the map is not enough: after a restart the map shows the old instance
                    // up until the mons hear otherwise.
                    {
                        let p = self.platform();
                        for (id, v) in view.osds.iter_mut() {
                            let stale = v.nonce.is_some_and(|n| {
                                p.is_current_instance(&format!("osd.{id}"), n) == Some(false)
                            });
                            v.up = v.up && !stale;
                        }
                    }
                    view.rollout = self.observe_rollout(&r, &observed.running, &view);
                    let now = std::time::Instant::now();
                    self.mon_out_since
                        .retain(|id, _| view.monmap.contains_key(id) && !view.quorum.contains(id));
                    for id in view.monmap.keys().filter(|id| !view.quorum.contains(*id)) {
                        self.mon_out_since.entry(id.clone()).or_insert(now);
                    }
                    observed.mons_out_for = self
                        .mon_out_since
                        .iter()
                        .map(|(id, since)| (id.clone(), now.duration_since(*since)))
                        .collect();
                    self.host_down_since
                        .retain(|h, _| view.members.contains(h) && !view.runs(h));
                    for h in view.members.iter().filter(|h| !view.runs(h)) {
                        self.host_down_since.entry(h.clone()).or_insert(now);
                    }
                    observed.hosts_down_for = self
                        .host_down_since
                        .iter()
                        .map(|(h, since)| (h.clone(), now.duration_since(*since)))
                        .collect();
                    // The lead's record is judged by how long this host has seen it unchanged.
                    if self.lease_seen.as_ref().map(|(r, _)| r) != Some(&view.leader) {
                        self.lease_seen = Some((view.leader.clone(), now));
                    }
                    observed.lead_unchanged_for = self
                        .lease_seen
                        .as_ref()
                        .map_or(std::time::Duration::ZERO, |(_, since)| {
                            now.duration_since(*since)
                        });
                    observed.ceph = Some(view);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "ceph observation failed");
                    self.drop_connection();
                }
            }
        }
        observed
    }

    /// One observe -> plan -> execute pass. Returns the plan that was executed (empty when converged).
    pub fn reconcile_once(&mut self) -> Plan {
        let _timer = self.metrics.reconcile_timer();
        let observed = self.observe();
        let plan = plan::plan_host(&self.desired, &observed);
        let before = observed
            .ceph
            .as_ref()
            .and_then(|c| c.leader.as_ref())
            .map(|r| r.host.clone());
        let leads =
            observed.several_hosts && plan.leader.as_deref() == Some(observed.home.as_str());
        let result = match &plan.lead_write {
            Some(record) => self.write_lead(record, before.as_deref()),
            None => Ok(()),
        }
        .and_then(
            |()| match self.rados().filter(|_| leads && !plan.steps.is_empty()) {
                Some(rados) => {
                    let done = std::sync::atomic::AtomicBool::new(false);
                    std::thread::scope(|s| {
                        s.spawn(|| keep_lead(&rados, &observed.home, &done));
                        let result = self.execute(&plan.steps);
                        done.store(true, std::sync::atomic::Ordering::SeqCst);
                        result
                    })
                }
                None => self.execute(&plan.steps),
            },
        );
        if let Err(e) = &result {
            self.metrics.failed(e);
        }
        self.last_error = result.err().map(|e| e.to_string());
        if let Some(e) = &self.last_error {
            tracing::warn!(error = %e, "reconcile step failed; will retry");
        }
        self.last_plan = plan.clone();
        plan
    }

    /// Stops every daemon, a kind at a time in [`DaemonKind::STOP_ORDER`], so no daemon outlives the mons
    /// it reports to.
    pub fn stop_all(&mut self) {
        self.drop_connection();
        stop_every_daemon(&mut *self.platform());
    }
}

/// Keeps this host's lead record fresh while a pass's steps run, every [`leadership::RENEW`], for at
/// most [`leadership::LONGEST_PASS`]; stops when `done` is set or another host holds the record.
fn keep_lead(r: &rookery_ceph::Rados, home: &str, done: &std::sync::atomic::AtomicBool) {
    let started = std::time::Instant::now();
    let mut last = started;
    while !done.load(std::sync::atomic::Ordering::SeqCst)
        && started.elapsed() < leadership::LONGEST_PASS
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if last.elapsed() < leadership::RENEW {
            continue;
        }
        last = std::time::Instant::now();
        let read = match join::leader(r) {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, "reading the lead's record while steps run");
                continue;
            }
        };
        let Some(record) = leadership::renewal(read.as_ref(), home) else {
            return;
        };
        if let Err(e) = join::write_leader(r, &record) {
            tracing::warn!(error = %e, "renewing the lead while steps run");
        }
    }
}

/// Stops every daemon the platform runs, a kind at a time in `DaemonKind::STOP_ORDER` (clients of the
/// cluster first, the mons last).
pub fn stop_every_daemon(p: &mut dyn Platform) {
    let names = p.names();
    for kind in DaemonKind::STOP_ORDER {
        let group: Vec<String> = names
            .iter()
            .filter(|n| rookery_platform::parse_daemon_name(n).is_some_and(|(k, _)| k == kind))
            .cloned()
            .collect();
        p.stop(&group, Duration::from_secs(20));
    }
}

/// What Ceph says; `retiring` are the ids of OSDs asked to leave.
fn observe_ceph(
    r: &Rados,
    desired: &Desired,
    retiring: &[u32],
    several_hosts: bool,
) -> Result<plan::CephView, rookery_ceph::CephError> {
    let dump = osd::dump(r)?;
    let mut pools = BTreeMap::new();
    for p in &dump.pools {
        let mut parameters = BTreeMap::new();
        if let Some(want) = desired.pools.iter().find(|d| d.name == p.pool_name) {
            for key in want.parameters.keys() {
                // Unset settings answer ENOENT.
                let value = pool::get(r, &p.pool_name, key).ok();
                parameters.insert(key.clone(), value);
            }
        }
        pools.insert(
            p.pool_name.clone(),
            plan::PoolView {
                size: p.size,
                applications: p.application_metadata.keys().cloned().collect(),
                quota_bytes: p.quota_max_bytes,
                quota_objects: p.quota_max_objects,
                crush_rule: p.crush_rule,
                parameters,
                over_commit: p.allows_over_commit(),
            },
        );
    }
    let stat = mgr::stat(r)?;
    let mut modules_enabled = BTreeSet::new();
    if !desired.mgr_modules.is_empty() && stat.available {
        let ls = mgr::module_ls(r)?;
        modules_enabled.extend(ls.running().map(String::from));
    }
    // A cluster of one host (on loopback) asks only what it always asked: its copies stay on OSDs
    // and its mons never move.
    let (mut rules, mut device_classes) = (BTreeMap::new(), BTreeSet::new());
    if several_hosts || desired.pools.iter().any(|p| p.device_class.is_some()) {
        rules = osd::crush_rule_dump(r)?
            .into_iter()
            .map(|r| (r.rule_name, r.rule_id))
            .collect();
    }
    if desired.pools.iter().any(|p| p.device_class.is_some()) {
        device_classes = osd::crush_class_ls(r)?.into_iter().collect();
    }
    let (mut crush_hosts, mut monmap, mut quorum) = (
        BTreeMap::<String, Vec<u32>>::new(),
        BTreeMap::new(),
        BTreeSet::new(),
    );
    if several_hosts {
        crush_hosts = osd::tree(r)?.hosts().into_iter().collect();
        monmap = rookery_ceph::commands::cluster::mon_dump(r)?
            .mons
            .into_iter()
            .filter_map(|m| {
                let v2 = m.public_addrs.of("v2")?;
                let v1 = m.public_addrs.of("v1")?;
                Some((m.name, (v2, v1)))
            })
            .collect();
        quorum = rookery_ceph::commands::cluster::mon_stat(r)?
            .quorum
            .into_iter()
            .map(|m| m.name)
            .collect();
    }
    let joined_error = |e: join::JoinError| match e {
        join::JoinError::Ceph(c) => c,
        other => rookery_ceph::CephError::Reply {
            command: "config-key dump".into(),
            detail: other.to_string(),
        },
    };
    let (mut members, mut mon_placements, mut placements, mut removals, mut published_spec) = (
        Vec::new(),
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
        None,
    );
    let mut leader = None;
    if several_hosts {
        members = join::members(r)
            .map_err(joined_error)?
            .into_iter()
            .map(|m| m.name)
            .collect();
        mon_placements = join::mon_placements(r).map_err(joined_error)?;
        placements = join::daemon_placements(r).map_err(joined_error)?;
        removals = join::removals(r).map_err(joined_error)?;
        published_spec = join::published_spec(r).map_err(joined_error)?;
        leader = join::leader(r).map_err(joined_error)?;
    }

    let mut filesystems = BTreeMap::new();
    if !desired.filesystems.is_empty() {
        let fs_dump = fs::dump(r)?;
        let pool_name = |id: &i64| {
            dump.pools
                .iter()
                .find(|p| p.pool == *id)
                .map(|p| p.pool_name.clone())
        };
        for fs in &fs_dump.filesystems {
            let map = &fs.mdsmap;
            if map.fs_name.is_empty() {
                continue;
            }
            filesystems.insert(
                map.fs_name.clone(),
                plan::FsView {
                    max_mds: map.max_mds,
                    standby_replay: map.allows_standby_replay(),
                    data_pools: map.data_pools.iter().filter_map(pool_name).collect(),
                },
            );
        }
    }
    let mut osds: BTreeMap<u32, plan::OsdView> = dump
        .osds
        .iter()
        .map(|o| {
            (
                o.osd,
                plan::OsdView {
                    up: o.up == 1,
                    in_: o.in_ == 1,
                    nonce: o.instance_nonce(),
                    ..Default::default()
                },
            )
        })
        .collect();
    // Only what retiring OSDs need (asked to leave, or on a host being removed), and only once they
    // are out: both are mgr calls.
    let leaving_hosts = removals
        .values()
        .filter(|r| !r.done)
        .filter_map(|r| crush_hosts.get(&r.host))
        .flatten();
    let draining: Vec<u32> = retiring
        .iter()
        .chain(leaving_hosts)
        .copied()
        .filter(|id| osds.get(id).is_some_and(|o| !o.in_))
        .collect();
    // A failure here only delays the retirement: it must not keep the rest of the cluster (OSDs to
    // start) from being reconciled.
    if !draining.is_empty() && stat.available {
        let df = osd::df(r).unwrap_or_default();
        for id in draining {
            let safe = osd::safe_to_destroy(r, id);
            if let Err(e) = &safe {
                tracing::debug!(error = %e, osd = id, "safe-to-destroy not answered");
            }
            if let Some(v) = osds.get_mut(&id) {
                v.safe_to_destroy = safe.is_ok_and(|s| s.safe_to_destroy.contains(&id));
                v.pgs = df
                    .nodes
                    .iter()
                    .find(|n| n.id == i64::from(id))
                    .map_or(0, |n| n.pgs);
            }
        }
    }
    let config_db = rookery_ceph::commands::config::dump(r)?
        .into_iter()
        .map(|e| ((e.section, e.name), (e.value, e.can_update_at_runtime)))
        .collect();
    Ok(plan::CephView {
        pools,
        mgr_available: stat.available,
        modules_enabled,
        rules,
        device_classes,
        crush_hosts,
        monmap,
        members,
        mon_placements,
        placements,
        leader,
        quorum,
        removals,
        published_spec,
        filesystems,
        osds,
        config_db,
        rollout: None,
    })
}

/// How long a restarted daemon is given to report its new config to the mgr before it is judged again.
const RESTART_SETTLE: Duration = Duration::from_secs(15);
