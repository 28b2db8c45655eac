//! Object stores: the zone set up once the pools and OSDs are there, the gateway's key, the gateway
//! started on its port, the admin-API user made; gateways no longer wanted stopped.

use std::collections::BTreeSet;

use crate::desired::Desired;
use crate::plan::{CephView, Observed, Step};
use crate::planners::Partial;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("object store {store}: port {port} is in use by {holder}; stop it or change spec.gateway.port")]
    PortInUse {
        store: String,
        port: u16,
        holder: String,
    },
}

/// The steps, and the stores ready for their users (gateway serving, admin-API user made).
pub fn plan(
    desired: &Desired,
    observed: &Observed,
    ceph: &CephView,
    osds_running: bool,
) -> (Partial<StoreError>, BTreeSet<String>) {
    let mut p = Partial::default();
    let mut ready = BTreeSet::new();
    for store in &desired.object_stores {
        let name = &store.name;
        let daemon = format!("rgw.{name}");
        let running = observed.running.contains(&daemon);
        if !running {
            if let Some(who) = observed.busy_ports.get(&store.port) {
                p.refuse(StoreError::PortInUse {
                    store: name.clone(),
                    port: store.port,
                    holder: who.clone(),
                });
                continue;
            }
        }
        // The zone set-up writes into `.rgw.root` and blocks until its PGs are active.
        if !store.pools.iter().all(|pool| ceph.pools.contains_key(pool)) || !osds_running {
            continue;
        }
        if !observed.rgw_realms.contains(name) {
            p.step(Step::SetupObjectStore {
                store: name.clone(),
                port: store.port,
            });
            continue;
        }
        if !observed.rgw_keyrings.contains(name) {
            p.step(Step::CreateRgwKey {
                store: name.clone(),
            });
        }
        if !running {
            p.step(Step::Start { daemon });
            continue;
        }
        if !observed.rgw_admins.contains(name) {
            p.step(Step::CreateRgwAdmin {
                store: name.clone(),
            });
            continue;
        }
        ready.insert(name.clone());
    }
    let wanted: BTreeSet<String> = desired
        .object_stores
        .iter()
        .map(|s| format!("rgw.{}", s.name))
        .collect();
    for daemon in &observed.running {
        if daemon.starts_with("rgw.") && !wanted.contains(daemon) {
            p.step(Step::Stop {
                daemon: daemon.clone(),
            });
        }
    }
    (p, ready)
}
