//! The planner: desired + observed -> the steps to take now, each with its reason. Pure: it knows nothing of
//! processes, files or Ceph connections, so every decision is unit-tested here.
//!
//! A plan only holds steps whose preconditions hold in what was observed; the reconciler executes them,
//! observes again and plans again until nothing is left. So ordering lives in one place (here) and a
//! crash at any point is followed by a plan that picks up where things stand.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::desired::Desired;
use crate::planners::{self, Partial};

/// What the reconciler saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// mon. and client.admin keyrings exist.
    pub keys: bool,
    /// ceph.conf on disk is the one the spec renders to.
    pub conf_current: bool,
    /// Mons whose store was made (mkfs finished).
    pub mon_stores: BTreeSet<String>,
    /// Daemons (`mon.a`, `osd.0`) whose process is up.
    pub running: BTreeSet<String>,
    pub mgr_keyrings: BTreeSet<String>,
    /// OSDs recorded in the state, in creation order.
    pub osds: Vec<ObservedOsd>,
    /// What Ceph says, when a mon answered.
    pub ceph: Option<CephView>,
    /// MDS ids with a keyring.
    pub mds_keyrings: BTreeSet<String>,
    /// Object stores whose gateway has a keyring; whose realm, zonegroup and zone are set up; whose
    /// admin-API user is recorded.
    pub rgw_keyrings: BTreeSet<String>,
    pub rgw_realms: BTreeSet<String>,
    pub rgw_admins: BTreeSet<String>,
    /// (store, user) -> fingerprint of the settings last applied.
    pub object_users: BTreeMap<(String, String), String>,
    /// A desired gateway port held by some other process: port -> who.
    pub busy_ports: BTreeMap<u16, String>,
    /// The home host's devices, when they were read this pass.
    pub devices: Option<HostDevices>,
    /// OSDs asked to leave or move, and devices freed that way.
    pub osd_requests: crate::osd_requests::OsdRequests,
    /// What rookery set in the config database, and the digest of it every daemon was seen running.
    pub config_applied: BTreeMap<String, BTreeMap<String, String>>,
    pub config_settled: Option<String>,
    /// This host's name, and the mons the state records: id -> the host it runs on.
    pub home: String,
    pub mon_hosts: BTreeMap<String, String>,
    /// The mons the state records, as they are (for [`Step::RecordMons`]).
    pub mon_records: Vec<crate::state::MonRecord>,
    /// This joined host was removed from the cluster (`host rm`).
    pub removed: bool,
    /// Mons out of quorum, and for how long this reconciler has seen them so.
    pub mons_out_for: BTreeMap<String, std::time::Duration>,
    /// The spec this host keeps (`spec.yaml`), read when the cluster spans several hosts.
    pub spec_text: Option<String>,
    /// This host joined the cluster (it did not make it).
    pub joined: bool,
    /// The cluster serves on addresses other hosts reach: membership, placements and the lead are
    /// read from Ceph.
    pub several_hosts: bool,
    /// How long this host has read the lead's record (`CephView.leader`) as it is now.
    pub lead_unchanged_for: std::time::Duration,
    /// Members that have not run (no OSD up) since this long, as this host has seen them.
    pub hosts_down_for: BTreeMap<String, std::time::Duration>,
}

/// One host's block devices and what the cluster knows of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostDevices {
    pub host: String,
    pub devices: Vec<rookery_platform::devices::Device>,
    pub known: crate::disks::Known,
    /// The host lets `useAllDevices` take loop devices (`rookery up --allow-loop-devices`).
    pub allow_loop_devices: bool,
    /// Devices that have looked blank and unused for a few seconds: only those are taken, so a device
    /// somebody is setting up at this moment (attached, about to be formatted) is left alone.
    pub settled: BTreeSet<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedOsd {
    pub uuid: String,
    pub id: Option<u32>,
    /// Its store was made (mkfs finished).
    pub store_ready: bool,
    pub block: OsdBlock,
}

/// Where an OSD's data is.
#[derive(Debug, Clone, PartialEq)]
pub enum OsdBlock {
    /// A file in the data dir.
    File,
    /// A device: as recorded at creation, where its BlueStore label is now (None: on no device of
    /// the host), and where its store's `block` link points.
    Device {
        recorded: PathBuf,
        found: Option<PathBuf>,
        linked: Option<PathBuf>,
    },
    /// On a device, but the devices were not read this pass.
    Unknown,
}

/// Daemons spread over joined hosts (standby mgrs, MDS daemons, gateways): daemon -> hosts.
pub type Placements = BTreeMap<String, BTreeSet<String>>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CephView {
    pub pools: BTreeMap<String, PoolView>,
    pub mgr_available: bool,
    pub modules_enabled: BTreeSet<String>,
    /// CRUSH rules by name.
    pub rules: BTreeMap<String, i64>,
    /// Device classes the OSDs have (hdd, ssd, ...).
    pub device_classes: BTreeSet<String>,
    /// CRUSH's host buckets that hold OSDs, with their OSDs.
    pub crush_hosts: BTreeMap<String, Vec<u32>>,
    /// The monmap: id -> (v2, v1) addresses.
    pub monmap: BTreeMap<String, (std::net::SocketAddr, std::net::SocketAddr)>,
    /// The cluster's hosts, as recorded in Ceph (`rookery/hosts/`).
    pub members: Vec<String>,
    /// Mons placed on joined hosts and not made yet, or made there: id -> host (`rookery/mons/`).
    pub mon_placements: BTreeMap<String, String>,
    /// Daemons spread over joined hosts: daemon -> the hosts that run it (`rookery/daemons/`).
    pub placements: Placements,
    /// The host that leads (`rookery/leader`), as recorded.
    pub leader: Option<crate::leadership::LeaderRecord>,
    /// Mons in quorum.
    pub quorum: BTreeSet<String>,
    /// Hosts being removed (`host rm`).
    pub removals: BTreeMap<String, crate::join::HostRemoval>,
    /// The spec the host that made the cluster published for the others (`rookery/spec`).
    pub published_spec: Option<String>,
    pub filesystems: BTreeMap<String, FsView>,
    /// Every OSD in the OSD map.
    pub osds: BTreeMap<u32, OsdView>,
    /// The mons' config database.
    pub config_db: planners::config_db::Database,
    /// What running daemons run with, read only while the spec's options are not known to be everywhere.
    pub rollout: Option<planners::config_db::Rollout>,
}

impl CephView {
    /// Whether `host` runs as far as Ceph can tell: some of its OSDs are up, or it has none yet.
    pub fn runs(&self, host: &str) -> bool {
        self.crush_hosts.get(host).is_none_or(|osds| {
            osds.iter()
                .any(|id| self.osds.get(id).is_some_and(|v| v.up))
        })
    }

    /// Hosts with OSDs that are not being removed: what copies can be spread over.
    pub fn hosts_staying(&self) -> usize {
        self.crush_hosts
            .keys()
            .filter(|h| !self.removals.contains_key(*h))
            .count()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OsdView {
    /// Up in the OSD map, as the instance that runs now.
    pub up: bool,
    /// The map's instance of it (its address nonce).
    pub nonce: Option<u64>,
    pub in_: bool,
    /// Asked only of OSDs being retired: no data would lose a copy without it.
    pub safe_to_destroy: bool,
    /// PGs mapped to it (asked only of OSDs being retired).
    pub pgs: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FsView {
    pub max_mds: u32,
    pub standby_replay: bool,
    pub data_pools: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolView {
    pub size: u32,
    pub applications: BTreeSet<String>,
    pub quota_bytes: u64,
    pub quota_objects: u64,
    pub crush_rule: i64,
    /// Current values of the settings the spec names (None: not set on the pool).
    pub parameters: BTreeMap<String, Option<String>>,
    /// rookery's over-commit mark in the pool's `rbd` application metadata.
    pub over_commit: bool,
}

/// The CRUSH rule rookery makes for pools limited to one device class. Replicas go to different OSDs: a
/// standalone cluster is one host.
pub fn class_rule(class: &str) -> String {
    format!("rookery-replicated-{class}")
}

/// Ceph's own replicated rule, made with the cluster (copies on different OSDs here).
pub const DEFAULT_RULE: &str = "replicated_rule";
/// Copies on different hosts, any device class.
pub const HOST_RULE: &str = "rookery-host";

/// The CRUSH rule a replicated pool uses: of its device class (if any), across hosts or OSDs.
pub fn pool_rule(class: Option<&str>, by_host: bool) -> String {
    match (class, by_host) {
        (None, false) => DEFAULT_RULE.to_string(),
        (None, true) => HOST_RULE.to_string(),
        (Some(c), false) => class_rule(c),
        (Some(c), true) => format!("{}-host", class_rule(c)),
    }
}

/// Whether a pool's copies go to different hosts: it asks for that (Rook's `failureDomain: host`,
/// the default) and the cluster has at least as many hosts with OSDs as it has copies. Until then
/// they go to different OSDs, so a cluster that is growing host by host stays writable.
pub fn spreads_over_hosts(wants_hosts: bool, size: u32, hosts_with_osds: usize) -> bool {
    wants_hosts && size > 1 && hosts_with_osds >= size as usize
}

/// Ceph prints settings back in its own form (`true` for `1`, `0.2` for `.2`): compare meanings.
pub fn same_setting(want: &str, have: &str) -> bool {
    let norm = |v: &str| match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => "1".to_string(),
        "false" | "no" | "off" => "0".to_string(),
        other => other.to_string(),
    };
    let (w, h) = (norm(want), norm(have));
    match (w.parse::<f64>(), h.parse::<f64>()) {
        (Ok(a), Ok(b)) => (a - b).abs() < 1e-9,
        _ => w == h,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    CreateKeys,
    WriteConfig,
    /// Records that mon `id` is to run on `host` (a host that joined), which makes it there.
    PlaceMon {
        id: String,
        host: String,
    },
    /// Mon `id` of `host` was out of quorum longer than the spec allows: it leaves the monmap and its
    /// placement, so that it is placed again on a host that runs.
    FailoverMon {
        id: String,
        host: String,
    },
    /// Records that `daemon` (a standby mgr, an MDS, a gateway) is to run on `host`, a host that joined.
    PlaceDaemon {
        daemon: String,
        host: String,
    },
    /// Takes `daemon` off `host`, which stops it.
    UnplaceDaemon {
        daemon: String,
        host: String,
    },
    /// Makes the store of mon `id`, placed on this host, from the running cluster's monmap.
    JoinMonStore {
        id: String,
    },
    /// Purges a removed host's OSD that is down (its data safe elsewhere, or `force`).
    PurgeOsd {
        id: u32,
        force: bool,
    },
    /// Takes a removed host's mon, out of quorum, out of the monmap.
    RemoveMon {
        id: String,
    },
    /// A removed host holds nothing more: its records, CRUSH bucket and Ceph user go.
    FinishHostRemoval {
        host: String,
    },
    /// This joined host's removal is done: it records that it was removed and makes nothing more.
    MarkRemoved,
    /// The spec applied here becomes the one joined hosts follow.
    PublishSpec {
        text: String,
    },
    /// A joined host takes the spec the cluster applies (its OSD files, its devices' selection).
    AdoptSpec {
        text: String,
    },
    /// The state's mons become those of the monmap (and those placed here, still joining), so ceph.conf
    /// names every mon there is.
    RecordMons {
        mons: Vec<crate::state::MonRecord>,
    },
    CreateMonStore {
        id: String,
    },
    Start {
        daemon: String,
    },
    CreateMgrKey {
        id: String,
    },
    /// Register a new OSD (choose uuid and key, `osd new`) and make its store.
    AddOsd,
    /// The same on a blank device the spec selects, with the device class the spec gives it.
    AddDeviceOsd {
        device: PathBuf,
        class: Option<String>,
    },
    /// `config set` in the mons' config database.
    SetConfig {
        section: String,
        option: String,
        value: String,
    },
    /// `config rm` of an option rookery set and the spec no longer has.
    RemoveConfig {
        section: String,
        option: String,
    },
    /// Restart a daemon that runs with an old value of options Ceph cannot change at run time, or an
    /// old program (`upgrade`).
    RestartForConfig {
        daemon: String,
        options: Vec<String>,
        upgrade: bool,
    },
    /// Every running daemon runs with the database's options (`digest`).
    MarkConfigSettled {
        digest: String,
    },
    /// Take a retiring OSD out of data placement (`osd out`).
    MarkOsdOut {
        id: u32,
    },
    /// Stop a drained OSD, purge it (or destroy it, keeping its id for `replace_with`), free its device
    /// (`device`: where its label is now) or file, and record its successor.
    RetireOsd {
        id: u32,
        uuid: String,
        device: Option<PathBuf>,
        on_device: bool,
        replace_with: Option<PathBuf>,
    },
    /// A retirement request whose OSD is gone: done.
    ForgetOsdRequest {
        uuid: String,
    },
    /// Point an OSD's store at the device its BlueStore label is on now.
    LinkOsdBlock {
        id: u32,
        device: PathBuf,
    },
    /// Finish an OSD whose creation was interrupted (`osd new` is idempotent for the same uuid and key).
    FinishOsd {
        uuid: String,
    },
    CreatePool {
        name: String,
        size: u32,
    },
    SetPoolSize {
        name: String,
        size: u32,
    },
    EnablePoolApplication {
        name: String,
        application: String,
    },
    EnableMgrModule {
        name: String,
    },
    SetPoolQuota {
        name: String,
        field: String,
        value: u64,
    },
    SetPoolParameter {
        name: String,
        key: String,
        value: String,
    },
    /// Marks (or unmarks) an RBD pool as one whose volumes may be larger than its quota.
    SetPoolOverCommit {
        name: String,
        allowed: bool,
    },
    /// A replicated CRUSH rule: copies on different OSDs or hosts (`domain`), of one device class or
    /// any.
    CreateRule {
        rule: String,
        class: Option<String>,
        domain: String,
    },
    SetPoolRule {
        name: String,
        rule: String,
    },
    /// An erasure-coded pool (its profile, the pool, and overwrites on so RBD can use it).
    CreateErasurePool {
        name: String,
        data_chunks: u32,
        coding_chunks: u32,
    },
    CreateFilesystem {
        name: String,
        metadata_pool: String,
        data_pool: String,
    },
    AddFsDataPool {
        name: String,
        pool: String,
    },
    SetFsOption {
        name: String,
        var: String,
        value: String,
    },
    CreateMdsKey {
        id: String,
    },
    /// Realm, zonegroup and zone named after the store.
    SetupObjectStore {
        store: String,
        port: u16,
    },
    CreateRgwKey {
        store: String,
    },
    /// The user rookery signs admin-API requests with.
    CreateRgwAdmin {
        store: String,
    },
    ApplyObjectUser {
        store: String,
        uid: String,
    },
    /// A daemon the spec no longer asks for (its filesystem or object store was deleted).
    Stop {
        daemon: String,
    },
}

impl Step {
    pub fn reason(&self) -> String {
        match self {
            Step::CreateKeys => "the cluster has no keys yet (cephx is always on)".into(),
            Step::WriteConfig => "ceph.conf does not match the spec".into(),
            Step::PlaceMon { id, host } => {
                format!("mon.{id} is to run on {host}, which Ceph does not record yet")
            }
            Step::JoinMonStore { id } => format!("mon.{id} is placed on this host"),
            Step::PlaceDaemon { daemon, host } => {
                format!("{daemon} is to run on a host of its own; {host} runs and has none of its kind")
            }
            Step::UnplaceDaemon { daemon, host } => {
                format!("the spec asks for fewer of {daemon} than run, and {host} runs one")
            }
            Step::FailoverMon { id, host } => format!(
                "mon.{id} on {host} is out of quorum for longer than spec.healthCheck.daemonHealth.mon.timeout"
            ),
            Step::RecordMons { .. } => "the monmap changed".into(),
            Step::PurgeOsd { id, force: false } => {
                format!("osd.{id} of a host being removed is down and its data is safe elsewhere")
            }
            Step::PurgeOsd { id, force: true } => {
                format!("osd.{id} of a host removed with --force is down")
            }
            Step::RemoveMon { id } => format!("mon.{id} of a host being removed is out of quorum"),
            Step::FinishHostRemoval { host } => format!("{host} holds no OSD and no mon any more"),
            Step::MarkRemoved => "the cluster removed this host".into(),
            Step::PublishSpec { .. } => "the joined hosts follow an older spec".into(),
            Step::AdoptSpec { .. } => "the cluster applies another spec".into(),
            Step::CreateMonStore { id } => format!("mon.{id} has no store yet"),
            Step::Start { daemon } => format!("{daemon} is not running"),
            Step::CreateMgrKey { id } => format!("mgr.{id} has no key yet"),
            Step::AddOsd => "the spec asks for more OSD files than exist".into(),
            Step::AddDeviceOsd { device, .. } => format!(
                "{} is blank, unused and selected by spec.storage",
                device.display()
            ),
            Step::SetConfig {
                section, option, ..
            } => {
                format!("spec.cephConfig.{section}.{option} differs from the mons' config database")
            }
            Step::RemoveConfig { section, option } => {
                format!("spec.cephConfig.{section}.{option} was removed from the spec")
            }
            Step::RestartForConfig {
                daemon,
                upgrade: true,
                ..
            } => format!("{daemon} runs a Ceph program that was upgraded on disk"),
            Step::RestartForConfig {
                daemon, options, ..
            } => format!(
                "{daemon} runs with an old {}, which Ceph cannot change while it runs",
                options.join(", ")
            ),
            Step::MarkConfigSettled { .. } => {
                "every running daemon runs with the spec's cephConfig".into()
            }
            Step::MarkOsdOut { id } => format!("osd.{id} is to be removed (rookery osd rm)"),
            Step::RetireOsd {
                id, replace_with, ..
            } => match replace_with {
                Some(d) => format!(
                    "osd.{id}'s data has moved; its place goes to {}",
                    d.display()
                ),
                None => format!("osd.{id}'s data has moved to the other OSDs"),
            },
            Step::ForgetOsdRequest { .. } => "the OSD it names is gone".into(),
            Step::LinkOsdBlock { id, device } => format!(
                "osd.{id}'s device is now {} (devices were renamed)",
                device.display()
            ),
            Step::FinishOsd { uuid } => format!("the creation of OSD {uuid} was interrupted"),
            Step::CreatePool { name, .. } => format!("pool {name} does not exist"),
            Step::SetPoolSize { name, size } => format!("pool {name} should keep {size} copies"),
            Step::EnablePoolApplication { name, application } => {
                format!("pool {name} is not tagged for {application}")
            }
            Step::EnableMgrModule { name } => format!("mgr module {name} is not enabled"),
            Step::SetPoolQuota { name, field, value } => {
                format!("pool {name} should have {field} = {value}")
            }
            Step::SetPoolParameter { name, key, value } => {
                format!("pool {name} should have {key} = {value}")
            }
            Step::SetPoolOverCommit {
                name,
                allowed: true,
            } => {
                format!("pool {name} should allow volumes larger than its quota")
            }
            Step::SetPoolOverCommit {
                name,
                allowed: false,
            } => format!("pool {name} should keep volumes within its quota"),
            Step::CreateRule {
                class: Some(class),
                domain,
                ..
            } => {
                format!("no CRUSH rule places copies on {class} devices of different {domain}s yet")
            }
            Step::CreateRule { domain, .. } => {
                format!("no CRUSH rule places copies on different {domain}s yet")
            }
            Step::SetPoolRule { name, rule } => format!("pool {name} should use CRUSH rule {rule}"),
            Step::CreateErasurePool { name, .. } => {
                format!("erasure-coded pool {name} does not exist")
            }
            Step::CreateFilesystem { name, .. } => format!("filesystem {name} does not exist"),
            Step::AddFsDataPool { name, pool } => {
                format!("pool {pool} is not a data pool of filesystem {name}")
            }
            Step::SetFsOption { name, var, value } => {
                format!("filesystem {name} should have {var} = {value}")
            }
            Step::CreateMdsKey { id } => format!("mds.{id} has no key yet"),
            Step::SetupObjectStore { store, .. } => {
                format!("object store {store} has no zone yet")
            }
            Step::CreateRgwKey { store } => format!("the gateway of {store} has no key yet"),
            Step::CreateRgwAdmin { store } => {
                format!("object store {store} has no admin API user yet")
            }
            Step::ApplyObjectUser { store, uid } => {
                format!("user {uid} of object store {store} differs from the spec")
            }
            Step::Stop { daemon } => format!("{daemon} is no longer in the spec"),
        }
    }

    /// Slow steps that may run side by side.
    pub fn parallel(&self) -> bool {
        matches!(
            self,
            Step::AddOsd | Step::AddDeviceOsd { .. } | Step::FinishOsd { .. }
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Why nothing more can happen yet (e.g. waiting for quorum).
    pub waiting: Option<String>,
    /// Differences the planner will not act on, with the reason; shown to the user.
    pub blocked: Vec<String>,
    /// Every device of the home host with what the spec's selection makes of it (empty when the spec
    /// selects no devices).
    pub devices: Vec<crate::disks::DevicePlan>,
    /// OSDs on their way out.
    pub retiring: Vec<planners::retire::Retiring>,
    /// Hosts on their way out (`host rm`).
    #[serde(default)]
    pub leaving: Vec<planners::hosts::Leaving>,
    /// The host that carries out the cluster-wide work, when the cluster spans several hosts.
    pub leader: Option<String>,
    /// The lead's record to write before the steps: a renewal (not a change, so not a step), a
    /// takeover or a handover.
    #[serde(skip)]
    pub lead_write: Option<crate::leadership::LeaderRecord>,
    /// What is wrong with the cluster and needs a person, not a spec change (a dead OSD): shown, but it
    /// does not hold up applying a spec.
    pub problems: Vec<String>,
}

impl Plan {
    fn absorb<E: std::fmt::Display>(&mut self, part: Partial<E>) {
        self.steps.extend(part.steps);
        self.blocked
            .extend(part.refused.into_iter().map(|e| e.to_string()));
    }
}

/// Runs the planners in the order a cluster is built in: mons (with keys and config) -> quorum -> mgrs,
/// pools (before OSDs, so their PGs peer as soon as the OSDs boot), filesystems, object stores and their
/// users, OSDs, mgr modules.
pub fn plan(desired: &Desired, observed: &Observed) -> Plan {
    let mut p = Plan::default();
    let (mons, bootstrapping) = planners::mons::plan(desired, observed);
    p.absorb(mons);
    if bootstrapping {
        return p;
    }
    let Some(ceph) = &observed.ceph else {
        p.waiting = Some("waiting for the mons to form a quorum".into());
        return p;
    };
    // The spec's options reach the database before the daemons that read it at start do.
    let (config, waiting) = planners::config_db::plan(
        &crate::config::database(&desired.conf),
        &observed.config_applied,
        &ceph.config_db,
        observed.config_settled.as_deref(),
        ceph.rollout.as_ref(),
    );
    p.steps.extend(config);
    p.waiting = p.waiting.take().or(waiting);
    if let Some(text) = observed
        .spec_text
        .as_ref()
        .filter(|t| ceph.published_spec.as_ref() != Some(*t))
    {
        p.steps.push(Step::PublishSpec { text: text.clone() });
    }
    p.absorb(planners::mons::place(desired, observed, ceph));
    let (leaving_steps, leaving) = planners::hosts::plan(observed, ceph);
    p.steps.extend(leaving_steps);
    p.leaving = leaving;
    p.absorb(planners::mgr::plan_daemons(desired, observed));
    p.absorb(planners::pools::plan(desired, ceph));
    let osds_running = planners::osds::all_running(desired, observed);
    let (stores, ready) = planners::object_stores::plan(desired, observed, ceph, osds_running);
    // An MDS placed on a joined host in this pass is not also started here.
    let spread = planners::spread::place(desired, observed, ceph, &ready);
    let placing: BTreeSet<&String> = spread
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::PlaceDaemon { daemon, .. } => Some(daemon),
            _ => None,
        })
        .collect();
    p.absorb(planners::filesystems::plan(
        desired, observed, ceph, &placing,
    ));
    p.absorb(stores);
    p.absorb(spread);
    // A leader that joined runs what was placed on it before it led, too.
    if observed.joined {
        p.steps.extend(planners::mons::join_placed(observed, ceph));
    }
    p.steps.extend(planners::spread::run_placed(observed, ceph));
    p.absorb(planners::users::plan(desired, observed, &ready));
    plan_own_osds(desired, observed, ceph, &mut p);
    if let (None, Some(host)) = (&p.waiting, &observed.devices) {
        let settling: Vec<&str> = p
            .devices
            .iter()
            .filter(|d| {
                d.verdict == crate::disks::Verdict::Take
                    && !host.settled.contains(std::path::Path::new(&d.path))
            })
            .map(|d| d.path.as_str())
            .collect();
        if !settling.is_empty() {
            p.waiting = Some(format!(
                "{} looks blank and unused; it becomes an OSD once it has stayed so for {} s",
                settling.join(", "),
                crate::device_watch::SETTLE.as_secs()
            ));
        }
    }
    let (modules, waiting) = planners::mgr::plan_modules(desired, ceph);
    p.absorb(modules);
    if p.steps.is_empty() {
        p.waiting = p.waiting.or(waiting);
    }
    // A daemon the leader runs as the first of its group may be placed on it as well: its key is
    // made and it is started once.
    let mut seen: Vec<Step> = Vec::new();
    p.steps.retain(|s| {
        let once = matches!(
            s,
            Step::Start { .. }
                | Step::CreateMgrKey { .. }
                | Step::CreateMdsKey { .. }
                | Step::CreateRgwKey { .. }
        );
        if once && seen.contains(s) {
            return false;
        }
        if once {
            seen.push(s.clone());
        }
        true
    });
    p
}

/// This host's plan. A cluster over several hosts has one host that leads (see
/// [`crate::leadership`]): it plans the cluster-wide work and the others their own part. A cluster of
/// one host is led by it, and until the mons answer, the host that made the cluster starts its own.
pub fn plan_host(desired: &Desired, observed: &Observed) -> Plan {
    let Some(ceph) = observed.ceph.as_ref().filter(|_| observed.several_hosts) else {
        return if observed.joined {
            plan_member(desired, observed)
        } else {
            plan(desired, observed)
        };
    };
    let candidates: Vec<String> = ceph
        .members
        .iter()
        .filter(|h| !ceph.removals.contains_key(*h) && ceph.runs(h))
        .cloned()
        .collect();
    let lead = crate::leadership::decide(
        ceph.leader.as_ref(),
        observed.lead_unchanged_for,
        crate::leadership::LeadFacts {
            home: &observed.home,
            made_here: !observed.joined,
            candidates: &candidates,
            leaving: ceph.removals.get(&observed.home).is_some_and(|r| !r.done),
        },
    );
    let mut p = if lead.leads {
        plan(desired, observed)
    } else {
        plan_member(desired, observed)
    };
    // Who leads as far as anyone can act on it: a takeover or handover being written is not yet
    // leadership (a change applied here before the record reads back would be undone by the spec
    // this host still follows).
    p.leader = if lead.leads {
        Some(observed.home.clone())
    } else {
        ceph.leader.as_ref().map(|r| r.host.clone())
    };
    p.lead_write = lead.write;
    p
}

/// The plan of a host that joined: its own OSDs (files, or the devices the spec selects for it) and
/// their retirement. The mons, managers and everything cluster-wide are the work of the host that made
/// the cluster.
pub fn plan_member(desired: &Desired, observed: &Observed) -> Plan {
    let mut p = Plan::default();
    if observed.removed {
        p.problems.push(
            "this host was removed from the cluster (`rookery host rm`); `rookery down --purge --yes-really-destroy-data` clears its data dir, and a new token lets it join again".into(),
        );
        return p;
    }
    if !observed.keys {
        p.problems.push(
            "this host's Ceph key is missing from its data dir; join the cluster again with a new token".into(),
        );
        return p;
    }
    if !observed.conf_current {
        p.steps.push(Step::WriteConfig);
        return p;
    }
    let Some(ceph) = &observed.ceph else {
        p.waiting = Some("waiting to reach the cluster's mons".into());
        return p;
    };
    if let Some(text) = ceph
        .published_spec
        .as_ref()
        .filter(|t| observed.spec_text.as_ref() != Some(*t))
    {
        p.steps.push(Step::AdoptSpec { text: text.clone() });
        return p;
    }
    match ceph.removals.get(&observed.home) {
        Some(r) if r.done => {
            p.steps
                .extend(observed.running.iter().map(|daemon| Step::Stop {
                    daemon: daemon.clone(),
                }));
            p.steps.push(Step::MarkRemoved);
            return p;
        }
        Some(_) => return leave(observed, ceph, p),
        None => {}
    }
    p.steps.extend(planners::mons::plan_joined(observed, ceph));
    p.steps.extend(planners::spread::run_placed(observed, ceph));
    p.steps
        .extend(planners::spread::stop_unplaced(observed, ceph));
    plan_own_osds(desired, observed, ceph, &mut p);
    p
}

/// This host's OSDs: retirements asked for, new or unfinished ones, dead ones (a problem, not a
/// refusal), and the devices' plan.
fn plan_own_osds(desired: &Desired, observed: &Observed, ceph: &CephView, p: &mut Plan) {
    let (retire, retiring) = planners::retire::plan(&observed.osd_requests, &observed.osds, ceph);
    p.steps.extend(retire);
    p.retiring = retiring;
    let mut osds = planners::osds::plan(desired, observed);
    let (dead, refused): (Vec<_>, Vec<_>) = osds
        .refused
        .into_iter()
        .partition(|e| matches!(e, planners::osds::OsdError::DeviceGone { .. }));
    osds.refused = refused;
    p.problems.extend(dead.iter().map(ToString::to_string));
    p.absorb(osds);
    p.devices = planners::osds::device_plan(desired, observed);
}

/// A joined host being removed: its OSDs retire as `osd rm` would have them (out, drained, stopped,
/// purged, their files freed), then its mons stop so the host that made the cluster can take them out
/// of the monmap. Nothing new is made.
fn leave(observed: &Observed, ceph: &CephView, mut p: Plan) -> Plan {
    let mut requests = observed.osd_requests.clone();
    for osd in &observed.osds {
        if let Some(id) = osd.id {
            if !requests.requests.iter().any(|q| q.uuid == osd.uuid) {
                requests.requests.push(crate::osd_requests::OsdRequest {
                    id,
                    uuid: osd.uuid.clone(),
                    replace_with: None,
                    requested_unix: 0,
                });
            }
        }
    }
    let (retire, retiring) = planners::retire::plan(&requests, &observed.osds, ceph);
    p.steps.extend(retire);
    p.retiring = retiring;
    // Its mons stop once the leading host took them out of the map (never before: quorum may need
    // them until then).
    for (id, host) in &observed.mon_hosts {
        let name = format!("mon.{id}");
        if *host == observed.home
            && !ceph.monmap.contains_key(id)
            && observed.running.contains(&name)
        {
            p.steps.push(Step::Stop { daemon: name });
        }
    }
    for daemon in observed
        .running
        .iter()
        .filter(|d| planners::spread::is_spread(d))
    {
        p.steps.push(Step::Stop {
            daemon: daemon.clone(),
        });
    }
    p.waiting = Some("this host is being removed from the cluster (`rookery host rm`)".into());
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planners::tests::{desired, set};

    #[test]
    fn the_first_host_publishes_its_spec_and_joined_hosts_take_it() {
        let d = desired();
        let mut leader = mon_up();
        leader.spec_text = Some("v2".into());
        leader.ceph.as_mut().unwrap().published_spec = Some("v1".into());
        assert!(plan(&d, &leader)
            .steps
            .contains(&Step::PublishSpec { text: "v2".into() }));
        leader.ceph.as_mut().unwrap().published_spec = Some("v2".into());
        assert!(!plan(&d, &leader)
            .steps
            .iter()
            .any(|s| matches!(s, Step::PublishSpec { .. })));
        let member = Observed {
            keys: true,
            conf_current: true,
            spec_text: Some("v1".into()),
            ceph: Some(CephView {
                published_spec: Some("v2".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            plan_member(&d, &member).steps,
            [Step::AdoptSpec { text: "v2".into() }]
        );
    }

    #[test]
    fn the_host_that_leads_plans_for_the_cluster_and_the_first_host_follows_once_it_no_longer_leads(
    ) {
        let d = desired();
        // host1 made the cluster, with mon.a and mgr.a, and leads.
        let mut first = mon_up();
        first.home = "h1".into();
        first.several_hosts = true;
        first.mon_hosts.insert("a".into(), "h1".into());
        first.running = set(&["mon.a", "mgr.a"]);
        first.mgr_keyrings = set(&["a"]);
        let ceph = first.ceph.as_mut().unwrap();
        ceph.members = vec!["h1".into(), "h2".into()];
        ceph.mon_placements.insert("a".into(), "h1".into());
        ceph.leader = Some(crate::leadership::LeaderRecord {
            host: "h1".into(),
            beat: 3,
        });
        let p = plan_host(&d, &first);
        assert_eq!(p.leader.as_deref(), Some("h1"));
        assert!(p
            .steps
            .iter()
            .any(|s| matches!(s, Step::CreatePool { name, .. } if name == "replicapool")));
        // h2 took over while h1 was away: back, h1 keeps its mon, stops mgr.a (h2 runs it now) and
        // plans nothing cluster-wide, only its own OSDs.
        first.ceph.as_mut().unwrap().leader = Some(crate::leadership::LeaderRecord {
            host: "h2".into(),
            beat: 4,
        });
        let p = plan_host(&d, &first);
        assert_eq!(p.leader.as_deref(), Some("h2"));
        assert_eq!(
            p.steps,
            [
                Step::Stop {
                    daemon: "mgr.a".into()
                },
                Step::AddOsd,
                Step::AddOsd,
                Step::AddOsd
            ]
        );
        // h2, a joined host, takes over from a silent h1: until the record reads back as h2's, h1
        // is the one reported as leading (so nothing is applied on h2 that it would still undo).
        let mut second = first.clone();
        second.home = "h2".into();
        second.joined = true;
        second.mon_stores = BTreeSet::new();
        second.running = BTreeSet::new();
        second.mgr_keyrings = BTreeSet::new();
        second.ceph.as_mut().unwrap().leader = Some(crate::leadership::LeaderRecord {
            host: "h1".into(),
            beat: 4,
        });
        second.lead_unchanged_for = crate::leadership::LEASE;
        let p = plan_host(&d, &second);
        assert_eq!(p.leader.as_deref(), Some("h1"));
        assert_eq!(p.lead_write.as_ref().map(|r| r.host.as_str()), Some("h2"));
        assert!(!p.steps.iter().any(|s| matches!(s, Step::CreatePool { .. })));
        // Read back: h2 leads, plans for the cluster and runs the first mgr.
        second.ceph.as_mut().unwrap().leader = Some(crate::leadership::LeaderRecord {
            host: "h2".into(),
            beat: 5,
        });
        second.lead_unchanged_for = std::time::Duration::ZERO;
        let p = plan_host(&d, &second);
        assert_eq!(p.leader.as_deref(), Some("h2"));
        assert!(p
            .steps
            .iter()
            .any(|s| matches!(s, Step::CreatePool { name, .. } if name == "replicapool")));
        assert!(p.steps.contains(&Step::CreateMgrKey { id: "a".into() }));
        // It never makes a new mon store of its own: mons of a running cluster are joined.
        assert!(!p
            .steps
            .iter()
            .any(|s| matches!(s, Step::CreateMonStore { .. })));
    }

    #[test]
    fn a_joined_host_makes_its_own_osds_and_nothing_cluster_wide() {
        let d = desired();
        let mut o = Observed {
            keys: true,
            conf_current: true,
            ..Default::default()
        };
        assert_eq!(
            plan_member(&d, &o).waiting.as_deref(),
            Some("waiting to reach the cluster's mons")
        );
        o.ceph = Some(Default::default());
        let steps = plan_member(&d, &o).steps;
        assert!(!steps.is_empty());
        assert!(steps.iter().all(|s| matches!(s, Step::AddOsd)), "{steps:?}");
        o.keys = false;
        let p = plan_member(&d, &o);
        assert!(p.steps.is_empty() && !p.problems.is_empty());
    }

    /// A healthy cluster (mon, mgr, 3 OSDs running, `replicapool` made) with a filesystem or a store wanted.
    fn running_cluster(d: &Desired) -> Observed {
        let mut o = mon_up();
        o.mgr_keyrings = set(&["a"]);
        o.running = set(&["mon.a", "mgr.a", "osd.0", "osd.1", "osd.2"]);
        o.osds = (0..3)
            .map(|id| ObservedOsd {
                uuid: format!("u{id}"),
                id: Some(id),
                store_ready: true,
                block: OsdBlock::File,
            })
            .collect();
        let ceph = o.ceph.get_or_insert_with(Default::default);
        ceph.mgr_available = true;
        ceph.modules_enabled = set(&["pg_autoscaler"]);
        for pool in &d.pools {
            ceph.pools.insert(
                pool.name.clone(),
                PoolView {
                    size: pool.size,
                    applications: set(&[pool.application.as_str()]),
                    ..Default::default()
                },
            );
        }
        o
    }

    fn with_fs_and_store() -> Desired {
        let text = format!(
            "{}---\n{}---\n{}---\n{}",
            rookery_spec::DEFAULT_YAML,
            "apiVersion: ceph.rook.io/v1\nkind: CephFilesystem\nmetadata: {name: fs1}\nspec: {dataPools: [{}], metadataServer: {activeCount: 1}}\n",
            "apiVersion: ceph.rook.io/v1\nkind: CephObjectStore\nmetadata: {name: s3}\nspec: {gateway: {port: 8080}}\n",
            "apiVersion: ceph.rook.io/v1\nkind: CephObjectStoreUser\nmetadata: {name: alice}\nspec: {store: s3}\n"
        );
        Desired::from_resources(&rookery_spec::load(&text).unwrap()).unwrap()
    }

    #[test]
    fn a_filesystem_gets_its_mds_daemons_then_is_made_and_tuned() {
        let d = with_fs_and_store();
        assert_eq!(d.filesystems[0].mds_ids, vec!["fs1-a", "fs1-b"]);
        assert_eq!(d.filesystems[0].data_pools, vec!["fs1-data0"]);
        let mut o = running_cluster(&d);
        let steps = plan(&d, &o).steps;
        assert!(
            steps.contains(&Step::CreateMdsKey { id: "fs1-a".into() }),
            "{steps:?}"
        );
        assert!(steps.contains(&Step::CreateFilesystem {
            name: "fs1".into(),
            metadata_pool: "fs1-metadata".into(),
            data_pool: "fs1-data0".into()
        }));
        o.mds_keyrings = set(&["fs1-a", "fs1-b"]);
        o.running.extend(set(&["mds.fs1-a", "mds.fs1-b"]));
        o.ceph.as_mut().unwrap().filesystems.insert(
            "fs1".into(),
            FsView {
                max_mds: 1,
                standby_replay: false,
                data_pools: set(&["fs1-data0"]),
            },
        );
        let steps: Vec<Step> = plan(&d, &o)
            .steps
            .into_iter()
            .filter(|s| !matches!(s, Step::SetupObjectStore { .. }))
            .collect();
        assert_eq!(
            steps,
            vec![Step::SetFsOption {
                name: "fs1".into(),
                var: "allow_standby_replay".into(),
                value: "true".into()
            }]
        );
    }

    #[test]
    fn an_object_store_is_set_up_started_then_given_users() {
        let d = with_fs_and_store();
        let mut o = running_cluster(&d);
        o.mds_keyrings = set(&["fs1-a", "fs1-b"]);
        o.running.extend(set(&["mds.fs1-a", "mds.fs1-b"]));
        let only_store = |o: &Observed| -> Vec<Step> {
            plan(&d, o)
                .steps
                .into_iter()
                .filter(|s| !matches!(s, Step::CreateFilesystem { .. }))
                .collect()
        };
        assert_eq!(
            only_store(&o),
            vec![Step::SetupObjectStore {
                store: "s3".into(),
                port: 8080
            }]
        );
        o.rgw_realms = set(&["s3"]);
        assert_eq!(
            only_store(&o),
            vec![
                Step::CreateRgwKey { store: "s3".into() },
                Step::Start {
                    daemon: "rgw.s3".into()
                }
            ]
        );
        o.rgw_keyrings = set(&["s3"]);
        o.busy_ports.insert(8080, "pid 1 (nginx)".into());
        let p = plan(&d, &o);
        assert!(
            p.blocked
                .iter()
                .any(|b| b.contains("port 8080 is in use by pid 1")),
            "{p:?}"
        );
        o.busy_ports.clear();
        o.running.insert("rgw.s3".into());
        assert_eq!(
            only_store(&o),
            vec![Step::CreateRgwAdmin { store: "s3".into() }]
        );
        o.rgw_admins = set(&["s3"]);
        let apply = Step::ApplyObjectUser {
            store: "s3".into(),
            uid: "alice".into(),
        };
        assert_eq!(only_store(&o), vec![apply.clone()]);
        o.object_users
            .insert(("s3".into(), "alice".into()), d.object_users[0].digest());
        assert!(only_store(&o).is_empty());
        // A gateway whose store left the spec is stopped.
        o.running.insert("rgw.old".into());
        assert_eq!(
            only_store(&o),
            vec![Step::Stop {
                daemon: "rgw.old".into()
            }]
        );
    }

    /// A fresh cluster with keys, conf and a running mon in quorum.
    /// A new cluster's first observation: mon `a` recorded on this host.
    fn fresh() -> Observed {
        Observed {
            home: "h1".into(),
            mon_hosts: [("a".to_string(), "h1".to_string())].into(),
            ..Default::default()
        }
    }

    fn mon_up() -> Observed {
        Observed {
            keys: true,
            conf_current: true,
            mon_stores: set(&["a"]),
            running: set(&["mon.a"]),
            ceph: Some(CephView::default()),
            ..fresh()
        }
    }

    #[test]
    fn a_new_cluster_starts_with_keys_then_config_then_the_mon() {
        let mut o = fresh();
        assert_eq!(plan(&desired(), &o).steps, vec![Step::CreateKeys]);
        o.keys = true;
        assert_eq!(plan(&desired(), &o).steps, vec![Step::WriteConfig]);
        o.conf_current = true;
        assert_eq!(
            plan(&desired(), &o).steps,
            vec![Step::CreateMonStore { id: "a".into() }]
        );
        o.mon_stores = set(&["a"]);
        let p = plan(&desired(), &o);
        assert_eq!(
            p.steps,
            vec![Step::Start {
                daemon: "mon.a".into()
            }]
        );
        assert!(p.waiting.is_some());
    }

    #[test]
    fn with_quorum_everything_else_is_planned_at_once() {
        let p = plan(&desired(), &mon_up());
        assert_eq!(
            p.steps,
            vec![
                Step::CreateMgrKey { id: "a".into() },
                Step::Start {
                    daemon: "mgr.a".into()
                },
                Step::CreatePool {
                    name: "replicapool".into(),
                    size: 3
                },
                Step::EnablePoolApplication {
                    name: "replicapool".into(),
                    application: "rbd".into()
                },
                Step::AddOsd,
                Step::AddOsd,
                Step::AddOsd,
            ]
        );
    }

    #[test]
    fn interrupted_osds_are_finished_not_duplicated() {
        let mut o = mon_up();
        o.osds = vec![
            ObservedOsd {
                uuid: "u0".into(),
                id: Some(0),
                store_ready: true,
                block: OsdBlock::File,
            },
            ObservedOsd {
                uuid: "u1".into(),
                id: None,
                store_ready: false,
                block: OsdBlock::File,
            },
        ];
        let p = plan(&desired(), &o);
        assert!(p.steps.contains(&Step::Start {
            daemon: "osd.0".into()
        }));
        assert!(p.steps.contains(&Step::FinishOsd { uuid: "u1".into() }));
        assert_eq!(p.steps.iter().filter(|s| **s == Step::AddOsd).count(), 1);
    }

    #[test]
    fn a_converged_cluster_plans_nothing() {
        let mut o = mon_up();
        o.running = set(&["mon.a", "mgr.a", "osd.0", "osd.1", "osd.2"]);
        o.mgr_keyrings = set(&["a"]);
        o.osds = (0..3)
            .map(|i| ObservedOsd {
                uuid: format!("u{i}"),
                id: Some(i),
                store_ready: true,
                block: OsdBlock::File,
            })
            .collect();
        o.ceph = Some(CephView {
            pools: BTreeMap::from([(
                "replicapool".into(),
                PoolView {
                    size: 3,
                    applications: set(&["rbd"]),
                    ..Default::default()
                },
            )]),
            mgr_available: true,
            modules_enabled: set(&["pg_autoscaler"]),
            ..Default::default()
        });
        // Every daemon was seen running with the (empty) cephConfig.
        o.config_settled = Some(planners::config_db::digest(&crate::config::database(
            &desired().conf,
        )));
        assert_eq!(plan(&desired(), &o), Plan::default());
        // A changed pool size and a dead OSD are both corrected.
        o.ceph
            .as_mut()
            .unwrap()
            .pools
            .get_mut("replicapool")
            .unwrap()
            .size = 2;
        o.running.remove("osd.1");
        let p = plan(&desired(), &o);
        assert_eq!(
            p.steps,
            vec![
                Step::SetPoolSize {
                    name: "replicapool".into(),
                    size: 3
                },
                Step::Start {
                    daemon: "osd.1".into()
                },
            ]
        );
    }

    #[test]
    fn pool_settings_are_converged() {
        let mut d = desired();
        d.pools[0].quota_bytes = 1 << 30;
        d.pools[0]
            .parameters
            .insert("compression_mode".into(), "aggressive".into());
        d.pools[0]
            .parameters
            .insert("noscrub".into(), "true".into());
        d.pools[0].device_class = Some("hdd".into());
        let mut o = mon_up();
        let view = PoolView {
            size: 3,
            applications: set(&["rbd"]),
            parameters: BTreeMap::from([
                ("compression_mode".into(), None),
                ("noscrub".into(), Some("1".into())),
            ]),
            ..Default::default()
        };
        o.ceph = Some(CephView {
            pools: BTreeMap::from([("replicapool".into(), view)]),
            device_classes: set(&["hdd"]),
            ..Default::default()
        });
        let p = plan(&d, &o);
        let pool_steps: Vec<&Step> = p
            .steps
            .iter()
            .filter(|s| {
                !matches!(
                    s,
                    Step::AddOsd | Step::CreateMgrKey { .. } | Step::Start { .. }
                )
            })
            .collect();
        assert_eq!(
            pool_steps,
            vec![
                &Step::SetPoolQuota {
                    name: "replicapool".into(),
                    field: "max_bytes".into(),
                    value: 1 << 30
                },
                &Step::SetPoolParameter {
                    name: "replicapool".into(),
                    key: "compression_mode".into(),
                    value: "aggressive".into()
                },
                &Step::CreateRule {
                    rule: class_rule("hdd"),
                    class: Some("hdd".into()),
                    domain: "osd".into(),
                },
                &Step::SetPoolRule {
                    name: "replicapool".into(),
                    rule: class_rule("hdd")
                },
            ]
        );
        // A class no OSD has is reported, not attempted.
        d.pools[0].device_class = Some("nvme".into());
        assert!(plan(&d, &o).blocked.iter().any(|b| b.contains("nvme")));
        assert!(
            same_setting("0.2", ".2")
                && same_setting("true", "1")
                && !same_setting("none", "aggressive")
        );
    }

    #[test]
    fn shrinking_is_reported_not_done() {
        let mut o = mon_up();
        o.osds = (0..4)
            .map(|i| ObservedOsd {
                uuid: format!("u{i}"),
                id: Some(i),
                store_ready: true,
                block: OsdBlock::File,
            })
            .collect();
        let p = plan(&desired(), &o);
        assert!(!p.steps.iter().any(|s| matches!(s, Step::AddOsd)));
        assert_eq!(p.blocked.len(), 1);
        let mut d = desired();
        d.mon_ids = vec!["a".into(), "b".into(), "c".into()];
        let p = plan(&d, &mon_up());
        assert!(p.blocked.iter().any(|b| b.contains("mon.b")));
    }
}
