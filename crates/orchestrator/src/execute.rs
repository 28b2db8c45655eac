//! Carrying out plan steps. Each step is idempotent: repeating it after a crash converges.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::Duration;

use rookery_ceph::commands::{auth, fs, mgr, osd, pool};
use rookery_ceph::keyring::{self, KeyringEntry};
use rookery_ceph::tools;
use rookery_platform::{DaemonKind, DaemonSpec, Resources, StoreRequest};

use crate::layout::Layout;
use crate::plan::Step;
use crate::state::OsdRecord;
use crate::{OrchestratorError, Reconciler};

const ADMIN_CAPS: &[(&str, &str)] = &[
    ("mds", "allow *"),
    ("mgr", "allow *"),
    ("mon", "allow *"),
    ("osd", "allow *"),
];

fn mkdir_private(path: &Path) -> Result<(), OrchestratorError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| OrchestratorError::io(path, e))
}

/// glibc malloc settings for the OSDs (the distro's ceph-osd here uses glibc malloc; where it is built
/// with tcmalloc they change nothing). By default glibc hands freed buffers of a few MiB back to the
/// kernel, so each large write an OSD receives lands in fresh pages the kernel must fault in and zero.
/// Measured with perf, 2 GiB written as 4 MiB operations to 3 OSDs: 11.5 s of OSD CPU against 9.7 s as
/// ~2 MiB operations, the difference nearly all page faults and `clear_page` under the socket read. Kept in
/// the heap (allocations up to 32 MiB, up to 256 MiB of free heap), 4 MiB operations are the cheaper ones,
/// and a mounted volume's 1 MiB writes reach 0.95-1.02x of `rbd bench` instead of 0.85-0.93x. Costs
/// 50-90 MiB more resident per OSD after a write burst (~520 MiB against ~430-490), under the memory target.
const OSD_MALLOC: &str =
    "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456";

/// How daemon `name` (`mon.a`, `mgr.a`, `osd.3`, `rgw.<store>`) runs on `host`.
pub fn daemon_spec(host: &str, name: &str) -> Result<DaemonSpec, OrchestratorError> {
    let (kind, id) = rookery_platform::parse_daemon_name(name)
        .ok_or_else(|| OrchestratorError::Other(format!("not a daemon name: {name}")))?;
    let args = match kind {
        // RGW is a client of the cluster; its section in ceph.conf is `client.rgw.<store>`.
        DaemonKind::Rgw => vec!["-n".to_string(), format!("client.rgw.{id}")],
        _ => vec!["-i".to_string(), id.to_string()],
    };
    let env = match kind {
        DaemonKind::Osd => vec![("GLIBC_TUNABLES".to_string(), OSD_MALLOC.to_string())],
        _ => vec![],
    };
    Ok(DaemonSpec {
        host: host.to_string(),
        kind,
        id: id.to_string(),
        image: None,
        args,
        env,
        ports: vec![],
        resources: Resources::default(),
        persistent_store: matches!(kind, DaemonKind::Mon | DaemonKind::Osd),
    })
}

/// A step's kind in one word (`Start`, `AddDeviceOsd`), for events.
fn step_action(step: &Step) -> String {
    format!("{step:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// An OSD registered with the mons, whose store is to be made.
struct OsdToMake {
    id: u32,
    uuid: String,
    key: String,
    device: Option<std::path::PathBuf>,
}

impl Reconciler {
    /// Writes the lead's record; a change of host (not a renewal) is an event.
    pub(crate) fn write_lead(
        &mut self,
        record: &crate::leadership::LeaderRecord,
        before: Option<&str>,
    ) -> Result<(), OrchestratorError> {
        let r = self.connection()?;
        crate::join::write_leader(&r, record)
            .map_err(|e| OrchestratorError::Other(e.to_string()))?;
        if before != Some(record.host.as_str()) {
            let message = match before {
                Some(old) => format!("{} leads the cluster-wide work, after {old}", record.host),
                None => format!("{} leads the cluster-wide work", record.host),
            };
            self.event("LeadChanged", message);
        }
        Ok(())
    }

    pub(crate) fn execute(&mut self, steps: &[Step]) -> Result<(), OrchestratorError> {
        let (parallel, serial): (Vec<&Step>, Vec<&Step>) = steps.iter().partition(|s| s.parallel());
        for step in serial {
            self.event(
                &step_action(step),
                format!("{} ({})", describe(step), step.reason()),
            );
            self.execute_one(step)?;
        }
        if !parallel.is_empty() {
            self.make_osds(&parallel)?;
        }
        Ok(())
    }

    fn execute_one(&mut self, step: &Step) -> Result<(), OrchestratorError> {
        let l = self.layout.clone();
        match step {
            Step::CreateKeys => {
                let mon = keyring::generate_secret()?;
                let admin = keyring::generate_secret()?;
                let admin_entry = KeyringEntry::new("client.admin", &admin, ADMIN_CAPS);
                keyring::write(&l.admin_keyring(), std::slice::from_ref(&admin_entry))?;
                keyring::write(
                    &l.mon_keyring(),
                    &[
                        KeyringEntry::new("mon.", &mon, &[("mon", "allow *")]),
                        admin_entry,
                    ],
                )?;
            }
            Step::WriteConfig => {
                let host = self.home_host()?;
                let text = self.render_conf(&host);
                rookery_ceph::conf::write_atomic(&l.conf(), text.as_bytes(), 0o644)?;
            }
            Step::PlaceMon { id, host } => {
                let r = self.connection()?;
                crate::join::place_mon(&r, id, host)
                    .map_err(|e| OrchestratorError::Other(e.to_string()))?;
            }
            Step::JoinMonStore { id } => self.join_mon_store(id)?,
            Step::PlaceDaemon { daemon, host } => {
                let r = self.connection()?;
                crate::join::place_daemon(&r, daemon, host)
                    .map_err(|e| OrchestratorError::Other(e.to_string()))?;
            }
            Step::UnplaceDaemon { daemon, host } => {
                let r = self.connection()?;
                crate::join::unplace_daemon(&r, daemon, host)
                    .map_err(|e| OrchestratorError::Other(e.to_string()))?;
            }
            Step::PublishSpec { text } => {
                let r = self.connection()?;
                crate::join::publish_spec(&r, text)
                    .map_err(|e| OrchestratorError::Other(e.to_string()))?;
            }
            Step::AdoptSpec { text } => {
                rookery_ceph::conf::write_atomic(&l.spec(), text.as_bytes(), 0o600)?;
            }
            Step::MarkRemoved => {
                self.state.removed = true;
                self.state.save(&l)?;
            }
            Step::PurgeOsd { id, force } => {
                let r = self.connection()?;
                if *force {
                    osd::purge_forced(&r, *id)?;
                } else {
                    osd::purge(&r, *id)?;
                }
            }
            Step::FailoverMon { id, .. } => {
                let r = self.connection()?;
                rookery_ceph::commands::cluster::mon_remove(&r, id)?;
                crate::join::unplace_mon(&r, id)
                    .map_err(|e| OrchestratorError::Other(e.to_string()))?;
            }
            Step::RemoveMon { id } => {
                let r = self.connection()?;
                rookery_ceph::commands::cluster::mon_remove(&r, id)?;
            }
            Step::FinishHostRemoval { host } => {
                let r = self.connection()?;
                crate::join::finish_removal(&r, host)
                    .map_err(|e| OrchestratorError::Other(e.to_string()))?;
            }
            Step::RecordMons { mons } => {
                self.state.mons = mons.clone();
                self.state.save(&l)?;
            }
            Step::CreateMonStore { id } => {
                let members = self
                    .state
                    .mons
                    .iter()
                    .map(|m| (m.id.clone(), m.addrvec()))
                    .collect();
                self.stores.prepare(&StoreRequest::Mon {
                    id: id.clone(),
                    fsid: self.state.fsid.clone(),
                    members,
                    seed: seed_keys(&l)?,
                })?;
            }
            Step::Start { daemon } => {
                let spec = daemon_spec(&self.home_host()?.name, daemon)?;
                self.platform().ensure(spec)?;
                if let Some(store) = daemon.strip_prefix("rgw.") {
                    self.wait_for_gateway(store)?;
                }
            }
            Step::CreateMgrKey { id } => {
                let r = self.connection()?;
                let entity = format!("mgr.{id}");
                let key = auth::get_or_create(
                    &r,
                    &entity,
                    &[
                        ("mon", "allow profile mgr"),
                        ("osd", "allow *"),
                        ("mds", "allow *"),
                    ],
                )?;
                self.stores
                    .put_keyring(&entity, &KeyringEntry::new(&entity, &key, &[]))?;
            }
            Step::CreatePool { name, size } => {
                let r = self.connection()?;
                pool::create_replicated(&r, name, *size)?;
            }
            Step::SetPoolSize { name, size } => {
                let r = self.connection()?;
                pool::set_size(&r, name, *size)?;
                rookery_volumes::manage::forget_pool_ceilings();
            }
            Step::EnablePoolApplication { name, application } => {
                let r = self.connection()?;
                pool::application_enable(&r, name, application)?;
            }
            Step::EnableMgrModule { name } => {
                let r = self.connection()?;
                mgr::module_enable(&r, name)?;
            }
            Step::SetPoolQuota { name, field, value } => {
                let r = self.connection()?;
                pool::set_quota(&r, name, field, *value)?;
                rookery_volumes::manage::forget_pool_ceilings();
            }
            Step::SetPoolParameter { name, key, value } => {
                let r = self.connection()?;
                pool::set(&r, name, key, value)?;
            }
            Step::SetPoolOverCommit { name, allowed } => {
                let r = self.connection()?;
                if *allowed {
                    pool::application_set(&r, name, "rbd", pool::OVER_COMMIT_KEY, "true")?;
                } else {
                    pool::application_rm(&r, name, "rbd", pool::OVER_COMMIT_KEY)?;
                }
                rookery_volumes::manage::forget_pool_ceilings();
            }
            Step::CreateRule {
                rule,
                class,
                domain,
            } => {
                let r = self.connection()?;
                let class = class.as_deref().unwrap_or("");
                osd::crush_rule_create_replicated(&r, rule, "default", domain, class)?;
            }
            Step::SetPoolRule { name, rule } => {
                let r = self.connection()?;
                pool::set_crush_rule(&r, name, rule)?;
            }
            Step::CreateErasurePool {
                name,
                data_chunks,
                coding_chunks,
            } => {
                let r = self.connection()?;
                let profile = format!("rookery-{name}");
                let spec = osd::ErasureCodeProfile {
                    data_chunks: *data_chunks,
                    coding_chunks: *coding_chunks,
                    // One host: chunks go to different OSDs.
                    failure_domain: "osd",
                };
                osd::erasure_code_profile_set(&r, &profile, &spec)?;
                pool::create_erasure(&r, name, &profile)?;
                // RBD writes in place, which an EC pool allows only with overwrites on.
                pool::allow_ec_overwrites(&r, name)?;
            }
            Step::AddOsd | Step::AddDeviceOsd { .. } | Step::FinishOsd { .. } => {
                self.make_osds(&[step])?
            }
            Step::SetConfig {
                section,
                option,
                value,
            } => {
                rookery_ceph::commands::config::set(&*self.connection()?, section, option, value)?;
                self.state
                    .config_applied
                    .entry(section.clone())
                    .or_default()
                    .insert(option.clone(), value.clone());
                self.state.config_settled = None;
                self.state.save(&l)?;
            }
            Step::RemoveConfig { section, option } => {
                rookery_ceph::commands::config::rm(&*self.connection()?, section, option)?;
                if let Some(options) = self.state.config_applied.get_mut(section) {
                    options.remove(option);
                    if options.is_empty() {
                        self.state.config_applied.remove(section);
                    }
                }
                self.state.config_settled = None;
                self.state.save(&l)?;
            }
            Step::RestartForConfig {
                daemon, upgrade, ..
            } => {
                let spec = daemon_spec(&self.home_host()?.name, daemon)?;
                let mut p = self.platform();
                p.stop(std::slice::from_ref(daemon), Duration::from_secs(20));
                p.ensure(spec)?;
                drop(p);
                self.restarted
                    .insert(daemon.clone(), std::time::Instant::now());
                // From the first daemon on the new release the cluster cannot go back (a mon converts
                // its store): the new release is the floor `preflight` holds `up` to.
                if *upgrade {
                    if let Ok(v) = rookery_ceph::tools::program_version("ceph-mon") {
                        if self.state.ceph_version.as_ref() != Some(&v) {
                            self.event("CephUpgraded", format!("the cluster now runs Ceph {v}"));
                            self.state.ceph_version = Some(v);
                            self.state.save(&l)?;
                        }
                    }
                }
            }
            Step::MarkConfigSettled { digest } => {
                self.state.config_settled = Some(digest.clone());
                self.state.save(&l)?;
            }
            Step::MarkOsdOut { id } => osd::out(&*self.connection()?, *id)?,
            Step::RetireOsd {
                id,
                uuid,
                device,
                on_device,
                replace_with,
            } => self.retire_osd(*id, uuid, device.as_deref(), *on_device, replace_with)?,
            Step::ForgetOsdRequest { uuid } => {
                crate::osd_requests::OsdRequests::update(&l, |q| {
                    q.requests.retain(|r| &r.uuid != uuid)
                })?;
            }
            Step::LinkOsdBlock { id, device } => {
                self.stores.link_osd_block(*id, device)?;
                if let Some(rec) = self.state.osds.iter_mut().find(|o| o.id == Some(*id)) {
                    rec.block = Some(device.clone());
                }
                self.state.save(&l)?;
            }
            Step::CreateFilesystem {
                name,
                metadata_pool,
                data_pool,
            } => {
                let r = self.connection()?;
                // The pools were made for this filesystem (and tagged cephfs), so `force` only skips
                // the check that they are empty, which the mgr's stats may not confirm yet.
                fs::new(&r, name, metadata_pool, data_pool, true)?;
            }
            Step::AddFsDataPool { name, pool } => {
                let r = self.connection()?;
                fs::add_data_pool(&r, name, pool)?;
            }
            Step::SetFsOption { name, var, value } => {
                let r = self.connection()?;
                fs::set(&r, name, var, value)?;
            }
            Step::CreateMdsKey { id } => {
                let r = self.connection()?;
                let entity = format!("mds.{id}");
                let key = auth::get_or_create(
                    &r,
                    &entity,
                    &[
                        ("mon", "allow profile mds"),
                        ("mgr", "allow profile mds"),
                        ("mds", "allow *"),
                        ("osd", "allow *"),
                    ],
                )?;
                self.stores
                    .put_keyring(&entity, &KeyringEntry::new(&entity, &key, &[]))?;
            }
            Step::SetupObjectStore { store, port } => {
                mkdir_private(&l.rgw_dir(store))?;
                let log = l.log_dir().join(format!("rgw.{store}.setup.log"));
                tools::rgw_realm_setup(&l.conf(), self.state.ceph_user(), store, *port, &log)?;
                let marker = Layout::ready_marker(&l.rgw_dir(store));
                std::fs::write(&marker, b"").map_err(|e| OrchestratorError::io(&marker, e))?;
            }
            Step::CreateRgwKey { store } => {
                let r = self.connection()?;
                let entity = format!("client.rgw.{store}");
                let key = auth::get_or_create(
                    &r,
                    &entity,
                    &[
                        ("mon", "allow rw"),
                        ("osd", "allow rwx"),
                        ("mgr", "allow rw"),
                    ],
                )?;
                self.stores.put_keyring(
                    &format!("rgw.{store}"),
                    &KeyringEntry::new(&entity, &key, &[]),
                )?;
            }
            Step::CreateRgwAdmin { store } => {
                let log = l.log_dir().join(format!("rgw.{store}.setup.log"));
                let (access_key, secret_key) = tools::rgw_admin_user(
                    &l.conf(),
                    self.state.ceph_user(),
                    store,
                    crate::objectstore::ADMIN_UID,
                    &log,
                )?;
                crate::objectstore::write(
                    &l.rgw_admin(store),
                    &crate::objectstore::KeyRecord {
                        access_key,
                        secret_key,
                        applied: String::new(),
                    },
                )?;
            }
            Step::ApplyObjectUser { store, uid } => {
                let user = self
                    .desired
                    .object_users
                    .iter()
                    .find(|u| &u.store == store && &u.settings.uid == uid)
                    .cloned()
                    .ok_or_else(|| OrchestratorError::Other(format!("user {uid} left the spec")))?;
                let port = self
                    .desired
                    .object_stores
                    .iter()
                    .find(|s| &s.name == store)
                    .map(|s| s.port)
                    .unwrap_or(0);
                let address = self.home_host()?.address;
                let admin =
                    crate::objectstore::admin(&l, store, address, port)?.ok_or_else(|| {
                        OrchestratorError::Other(format!(
                            "object store {store} has no admin user yet"
                        ))
                    })?;
                let path = l.rgw_user(store, uid);
                // Keys are made once, here, and kept: the user sees them with `object user show`. A
                // host that took over the lead keeps the keys the user already has.
                let mut record = match crate::objectstore::read(&path)? {
                    Some(r) => r,
                    None => {
                        let existing = admin
                            .user(uid)
                            .map_err(|e| OrchestratorError::Other(e.to_string()))?
                            .and_then(|u| u.keys.into_iter().find(|k| k.user == *uid));
                        let (access_key, secret_key) = match existing {
                            Some(k) => (k.access_key, k.secret_key),
                            None => {
                                let keys = rookery_objects::keys::generate().map_err(|e| {
                                    OrchestratorError::Other(format!("no randomness: {e}"))
                                })?;
                                (keys.access_key, keys.secret_key)
                            }
                        };
                        let record = crate::objectstore::KeyRecord {
                            access_key,
                            secret_key,
                            applied: String::new(),
                        };
                        crate::objectstore::write(&path, &record)?;
                        record
                    }
                };
                admin
                    .apply_user(&user.settings, &record.credentials())
                    .map_err(|e| OrchestratorError::Other(e.to_string()))?;
                record.applied = user.digest();
                crate::objectstore::write(&path, &record)?;
            }
            Step::Stop { daemon } => {
                self.platform()
                    .stop(std::slice::from_ref(daemon), Duration::from_secs(20));
            }
        }
        Ok(())
    }

    /// A gateway serves S3 a moment after its process starts (0.2 s with its pools made); until then
    /// users cannot be made and clients would be refused.
    fn wait_for_gateway(&self, store: &str) -> Result<(), OrchestratorError> {
        let address = self.home_host()?.address;
        let port = self
            .desired
            .object_stores
            .iter()
            .find(|s| s.name == store)
            .map(|s| s.port)
            .unwrap_or(0);
        let addr = std::net::SocketAddr::new(address, port);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if !self.platform().is_running(&format!("rgw.{store}")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(OrchestratorError::Other(format!(
            "the gateway of {store} does not answer on {addr}; see {}",
            self.platform().log_location(&format!("rgw.{store}"))
        )))
    }

    /// Makes the store of mon `id`, placed on this host: its address and ports recorded (Ceph's own
    /// ports when free here), ceph.conf written with them, the store made from the current monmap and
    /// the mons' key. Started, the mon adds itself to the map.
    fn join_mon_store(&mut self, id: &str) -> Result<(), OrchestratorError> {
        let l = self.layout.clone();
        let home = self.home_host()?;
        // A record of this id on another host is of a mon that was replaced (failover).
        self.state
            .mons
            .retain(|m| m.id != id || m.host.as_deref() == Some(home.name.as_str()));
        if !self.state.mons.iter().any(|m| m.id == id) {
            let (ports, _) =
                crate::preflight::choose_mon_ports(&*self.platform(), &home.name, 1, None);
            let Some((v2, v1)) = ports.first().copied() else {
                return Err(OrchestratorError::Other(format!(
                    "no two free ports for mon.{id} on {}",
                    home.name
                )));
            };
            self.state.mons.push(crate::state::MonRecord {
                id: id.to_string(),
                host: Some(home.name.clone()),
                address: home.address,
                v2_port: v2,
                v1_port: v1,
            });
            self.state.mons.sort_by(|a, b| a.id.cmp(&b.id));
            self.state.save(&l)?;
        }
        let text = self.render_conf(&home);
        rookery_ceph::conf::write_atomic(&l.conf(), text.as_bytes(), 0o644)?;
        let r = self.connection()?;
        let monmap = rookery_ceph::commands::cluster::mon_getmap(&r)?;
        let mon_key = auth::get(&r, "mon.")?;
        self.stores.prepare(&StoreRequest::JoiningMon {
            id: id.to_string(),
            monmap,
            mon_key,
        })?;
        Ok(())
    }

    fn connection(&mut self) -> Result<std::sync::Arc<rookery_ceph::Rados>, OrchestratorError> {
        self.rados()
            .ok_or_else(|| OrchestratorError::Other("no mon answered".into()))
    }

    /// Registers new or unfinished OSDs one by one (fast mon calls), makes their stores side by side (the
    /// slow part, about 2 s each), then starts them.
    fn make_osds(&mut self, steps: &[&Step]) -> Result<(), OrchestratorError> {
        let l = self.layout.clone();
        let mut to_make = Vec::new();
        for step in steps {
            self.event(
                &step_action(step),
                format!("{} ({})", describe(step), step.reason()),
            );
            let uuid = match step {
                Step::FinishOsd { uuid } => uuid.clone(),
                _ => {
                    let uuid = uuid::Uuid::new_v4().to_string();
                    let secret = keyring::generate_secret()?;
                    rookery_ceph::conf::write_atomic(
                        &l.pending_osd_secret(&uuid),
                        secret.as_bytes(),
                        0o600,
                    )?;
                    let (device, device_class) = match step {
                        Step::AddDeviceOsd { device, class } => {
                            (Some(device.clone()), class.clone())
                        }
                        _ => (None, None),
                    };
                    self.state.osds.push(OsdRecord {
                        uuid: uuid.clone(),
                        id: None,
                        block: device.clone(),
                        size_bytes: match &device {
                            Some(_) => 0,
                            None => self.desired.osd_size,
                        },
                        device,
                        device_class,
                    });
                    self.state.save(&l)?;
                    uuid
                }
            };
            let (id, key) = self.register_osd(&uuid)?;
            let record = self.state.osds.iter().find(|o| o.uuid == uuid);
            let device = record.and_then(|o| o.device.clone());
            if let Some(class) = record.and_then(|o| o.device_class.clone()) {
                osd::crush_set_device_class(&*self.connection()?, id, &class)?;
            }
            to_make.push(OsdToMake {
                id,
                uuid,
                key,
                device,
            });
        }
        if to_make.iter().any(|o| o.device.is_some()) {
            self.devices_changed();
        }
        // mkfs runs without the mons: it gets the database's options for each OSD on its command line.
        let database = crate::config::database(&self.desired.conf);
        let options_of = |id: u32| -> Vec<(String, String)> {
            crate::planners::config_db::expected_for(&format!("osd.{id}"), &database)
                .into_iter()
                .collect()
        };
        // Side by side, without the platform's lock: an OSD's store takes about 2 s to make.
        let stores = self.stores.clone();
        let results: Vec<Result<(), OrchestratorError>> = std::thread::scope(|s| {
            let handles: Vec<_> = to_make
                .iter()
                .map(|o| {
                    let stores = &stores;
                    s.spawn(move || -> Result<(), OrchestratorError> {
                        Ok(stores.prepare(&StoreRequest::Osd {
                            id: o.id,
                            uuid: o.uuid.clone(),
                            key: o.key.clone(),
                            device: o.device.clone(),
                            options: options_of(o.id),
                        })?)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(OrchestratorError::Other(
                            "OSD creation thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });
        let mut first_error = None;
        for (o, result) in to_make.iter().zip(results) {
            match result {
                Ok(()) => {
                    let _ = std::fs::remove_file(l.pending_osd_secret(&o.uuid));
                    let spec = daemon_spec(&self.home_host()?.name, &format!("osd.{}", o.id))?;
                    self.platform().ensure(spec)?;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The end of `osd rm|replace` once the OSD's data has moved: stop it, purge it (or destroy it so its
    /// successor keeps the id), free its device or file, and record what took its place. Each part may
    /// be repeated after a crash.
    fn retire_osd(
        &mut self,
        id: u32,
        uuid: &str,
        device: Option<&std::path::Path>,
        on_device: bool,
        replace_with: &Option<std::path::PathBuf>,
    ) -> Result<(), OrchestratorError> {
        let l = self.layout.clone();
        let name = format!("osd.{id}");
        self.platform()
            .stop(std::slice::from_ref(&name), Duration::from_secs(20));
        let r = self.connection()?;
        let in_map = osd::dump(&r)?.osds.iter().any(|o| o.osd == id);
        if in_map {
            match replace_with {
                Some(_) => osd::destroy(&r, id)?,
                None => osd::purge(&r, id)?,
            }
        }
        // A destroyed OSD keeps its CRUSH weight, which its successor would inherit: it follows the new
        // device's size instead.
        if let Some(size) = replace_with.as_deref().and_then(device_size) {
            osd::crush_reweight(&r, id, size)?;
        }
        self.stores.release_osd(id, uuid, device)?;
        let Some(index) = self.state.osds.iter().position(|o| o.uuid == uuid) else {
            return Ok(());
        };
        let old = self.state.osds.remove(index);
        if let Some(new_device) = replace_with {
            let successor = uuid::Uuid::new_v4().to_string();
            let secret = keyring::generate_secret()?;
            rookery_ceph::conf::write_atomic(
                &l.pending_osd_secret(&successor),
                secret.as_bytes(),
                0o600,
            )?;
            self.state.osds.insert(
                index,
                OsdRecord {
                    uuid: successor,
                    id: Some(id),
                    block: Some(new_device.clone()),
                    size_bytes: 0,
                    device: Some(new_device.clone()),
                    device_class: old.device_class.clone(),
                },
            );
        }
        self.state.save(&l)?;
        let freed = device.map(std::path::Path::to_path_buf);
        crate::osd_requests::OsdRequests::update(&l, |q| {
            q.requests.retain(|r| r.uuid != uuid);
            if let Some(d) = freed {
                q.released.retain(|p| p != &d);
                q.released.push(d);
            }
        })?;
        self.devices_changed();
        self.event(
            "OsdRemoved",
            format!(
                "osd.{id} removed{}",
                match (on_device, device) {
                    (true, Some(d)) => format!("; {} is blank again", d.display()),
                    (true, None) => "; its device was gone".into(),
                    (false, _) => "; its file deleted".into(),
                }
            ),
        );
        Ok(())
    }

    /// `osd new` with the OSD's uuid and key: its id and key. Safe to repeat: the mons return the same id
    /// for the same uuid and key.
    fn register_osd(&mut self, uuid: &str) -> Result<(u32, String), OrchestratorError> {
        let l = self.layout.clone();
        let secret_path = l.pending_osd_secret(uuid);
        let secret = std::fs::read_to_string(&secret_path).map_err(|e| {
            OrchestratorError::Other(format!(
                "the key of unfinished OSD {uuid} is gone ({}: {e}); remove that OSD from {} and re-run `rookery up`",
                secret_path.display(),
                l.state().display()
            ))
        })?;
        let secret = secret.trim().to_string();
        let r = self.connection()?;
        // A replacement keeps the id of the OSD it replaces (destroyed, not purged).
        let id = match self
            .state
            .osds
            .iter()
            .find(|o| o.uuid == uuid)
            .and_then(|o| o.id)
        {
            Some(id) => osd::new_with_id(&r, uuid, id, &secret)?,
            None => osd::new(&r, uuid, &secret)?,
        };
        let block = self.stores.data_location(&format!("osd.{id}"));
        if let Some(rec) = self.state.osds.iter_mut().find(|o| o.uuid == uuid) {
            rec.id = Some(id);
            if rec.device.is_none() {
                rec.block = block;
            }
        }
        self.state.save(&l)?;
        Ok((id, secret))
    }
}

/// A block device's size in bytes (its end), None when it cannot be opened.
fn device_size(path: &std::path::Path) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    std::fs::File::open(path)
        .and_then(|mut f| f.seek(SeekFrom::End(0)))
        .ok()
}

/// The keys that seed a new cluster's auth database: the mons' own and the admin's, as `CreateKeys`
/// made them.
fn seed_keys(l: &Layout) -> Result<Vec<KeyringEntry>, OrchestratorError> {
    let path = l.mon_keyring();
    let text = std::fs::read_to_string(&path).map_err(|e| OrchestratorError::io(&path, e))?;
    let key = |entity: &str| {
        keyring::find_key(&text, entity).ok_or_else(|| OrchestratorError::Corrupt {
            path: path.display().to_string(),
            detail: format!("no key for {entity}"),
        })
    };
    Ok(vec![
        KeyringEntry::new("mon.", &key("mon.")?, &[("mon", "allow *")]),
        KeyringEntry::new("client.admin", &key("client.admin")?, ADMIN_CAPS),
    ])
}

fn describe(step: &Step) -> String {
    match step {
        Step::CreateKeys => "creating cephx keys".into(),
        Step::WriteConfig => "writing ceph.conf".into(),
        Step::PlaceMon { id, host } => format!("placing mon.{id} on {host}"),
        Step::JoinMonStore { id } => format!("creating mon.{id}, joining the running mons"),
        Step::PlaceDaemon { daemon, host } => format!("placing {daemon} on {host}"),
        Step::UnplaceDaemon { daemon, host } => format!("taking {daemon} off {host}"),
        Step::MarkRemoved => "recording that this host was removed from the cluster".into(),
        Step::PublishSpec { .. } => "publishing the spec for the joined hosts".into(),
        Step::AdoptSpec { .. } => "taking the cluster's spec".into(),
        Step::PurgeOsd { id, force: false } => format!("purging osd.{id}"),
        Step::PurgeOsd { id, force: true } => {
            format!("purging osd.{id} without waiting for its data (--force)")
        }
        Step::RemoveMon { id } => format!("removing mon.{id} from the monmap"),
        Step::FailoverMon { id, host } => {
            format!("replacing mon.{id} of {host}: out of the monmap, to be placed on another host")
        }
        Step::FinishHostRemoval { host } => {
            format!("removing {host}'s records, CRUSH bucket and Ceph user")
        }
        Step::RecordMons { mons } => format!(
            "recording the mons: {}",
            mons.iter()
                .map(|m| format!("mon.{} on {}", m.id, m.address))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Step::CreateMonStore { id } => format!("creating mon.{id}"),
        Step::Start { daemon } => format!("starting {daemon}"),
        Step::CreateMgrKey { id } => format!("creating the key of mgr.{id}"),
        Step::AddOsd => "creating an OSD".into(),
        Step::AddDeviceOsd { device, .. } => format!("creating an OSD on {}", device.display()),
        Step::LinkOsdBlock { id, device } => {
            format!("pointing osd.{id} at {}", device.display())
        }
        Step::SetConfig {
            section,
            option,
            value,
        } => format!("setting {option} = {value} for {section}"),
        Step::RemoveConfig { section, option } => format!("removing {option} of {section}"),
        Step::RestartForConfig { daemon, .. } => format!("restarting {daemon}"),
        Step::MarkConfigSettled { .. } => "every daemon runs with the spec's config".into(),
        Step::MarkOsdOut { id } => format!("marking osd.{id} out"),
        Step::RetireOsd { id, .. } => format!("removing osd.{id}"),
        Step::ForgetOsdRequest { uuid } => format!("dropping the finished request for OSD {uuid}"),
        Step::FinishOsd { uuid } => format!("finishing OSD {uuid}"),
        Step::CreatePool { name, size } => format!("creating pool {name} ({size} copies)"),
        Step::SetPoolSize { name, size } => format!("setting pool {name} to {size} copies"),
        Step::EnablePoolApplication { name, application } => {
            format!("tagging pool {name} for {application}")
        }
        Step::EnableMgrModule { name } => format!("enabling mgr module {name}"),
        Step::SetPoolQuota { name, field, value } => {
            format!("setting {field} = {value} on pool {name}")
        }
        Step::SetPoolParameter { name, key, value } => {
            format!("setting {key} = {value} on pool {name}")
        }
        Step::SetPoolOverCommit { name, allowed } => format!(
            "{} volumes larger than the quota of pool {name}",
            if *allowed { "allowing" } else { "refusing" }
        ),
        Step::CreateRule {
            rule,
            class: Some(class),
            domain,
        } => {
            format!("creating CRUSH rule {rule}: {class} devices, copies on different {domain}s")
        }
        Step::CreateRule { rule, domain, .. } => {
            format!("creating CRUSH rule {rule}: copies on different {domain}s")
        }
        Step::SetPoolRule { name, rule } => format!("moving pool {name} to CRUSH rule {rule}"),
        Step::CreateErasurePool {
            name,
            data_chunks,
            coding_chunks,
        } => {
            format!("creating erasure-coded pool {name} ({data_chunks}+{coding_chunks})")
        }
        Step::CreateFilesystem { name, .. } => format!("creating filesystem {name}"),
        Step::AddFsDataPool { name, pool } => format!("adding data pool {pool} to {name}"),
        Step::SetFsOption { name, var, value } => format!("setting {var} = {value} on {name}"),
        Step::CreateMdsKey { id } => format!("creating the key of mds.{id}"),
        Step::SetupObjectStore { store, .. } => {
            format!("setting up realm, zonegroup and zone {store}")
        }
        Step::CreateRgwKey { store } => format!("creating the key of the gateway of {store}"),
        Step::CreateRgwAdmin { store } => format!("creating the admin API user of {store}"),
        Step::ApplyObjectUser { store, uid } => format!("applying user {uid} of {store}"),
        Step::Stop { daemon } => format!("stopping {daemon}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steps_action_is_its_kind() {
        assert_eq!(step_action(&Step::WriteConfig), "WriteConfig");
        assert_eq!(
            step_action(&Step::Start {
                daemon: "mon.a".into()
            }),
            "Start"
        );
    }
}
