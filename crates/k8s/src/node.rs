//! What the operator asks of one node and what that node's agent reports back, through the API server
//! (no listener on the node): the operator owns the Secret `rookery-node-<node>` (`desired.json`: the
//! node's ceph.conf, the keyrings its daemons read, the stores to make, OSD links and releases); the
//! agent converges the node's data dir to it and writes the ConfigMap `rookery-node-<node>` (`status.json`:
//! which stores are ready, where OSDs' blocks point, the node's devices, errors). Every change of the
//! desired state carries a higher `serial`; the status names the serial it has carried out, which is how
//! the operator knows a request was done.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use rookery_ceph::keyring::KeyringEntry;
use rookery_platform::devices::Device;
use rookery_platform::StoreRequest;
use serde::{Deserialize, Serialize};

/// The key of the desired state in the node's Secret, and of the status in its ConfigMap.
pub const DESIRED_KEY: &str = "desired.json";
pub const STATUS_KEY: &str = "status.json";
/// Labels of the node objects, so each side watches only its own kind.
pub const NODE_LABEL: &str = "rookery.io/node";
pub const ROLE_LABEL: &str = "rookery.io/role";

/// The name of both node objects (Secret and ConfigMap) of `node`: a DNS subdomain, as Kubernetes
/// object names must be.
pub fn object_name(node: &str) -> String {
    format!("rookery-node-{node}")
}

/// A keyring entry as it travels in the desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyring {
    pub entity: String,
    pub key: String,
    #[serde(default)]
    pub caps: Vec<(String, String)>,
}

impl From<&KeyringEntry> for Keyring {
    fn from(e: &KeyringEntry) -> Keyring {
        Keyring {
            entity: e.entity.clone(),
            key: e.key.clone(),
            caps: e.caps.clone(),
        }
    }
}

impl From<&Keyring> for KeyringEntry {
    fn from(k: &Keyring) -> KeyringEntry {
        KeyringEntry {
            entity: k.entity.clone(),
            key: k.key.clone(),
            caps: k.caps.clone(),
        }
    }
}

/// A store to make on the node ([`StoreRequest`] as it travels).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Store {
    Mon {
        id: String,
        fsid: String,
        members: Vec<(String, String)>,
        seed: Vec<Keyring>,
    },
    #[serde(rename = "joining-mon")]
    JoiningMon {
        id: String,
        monmap: Vec<u8>,
        mon_key: String,
    },
    Osd {
        id: u32,
        uuid: String,
        key: String,
        device: Option<PathBuf>,
        #[serde(default)]
        options: Vec<(String, String)>,
    },
}

impl From<&StoreRequest> for Store {
    fn from(r: &StoreRequest) -> Store {
        match r {
            StoreRequest::Mon {
                id,
                fsid,
                members,
                seed,
            } => Store::Mon {
                id: id.clone(),
                fsid: fsid.clone(),
                members: members.clone(),
                seed: seed.iter().map(Keyring::from).collect(),
            },
            StoreRequest::JoiningMon {
                id,
                monmap,
                mon_key,
            } => Store::JoiningMon {
                id: id.clone(),
                monmap: monmap.clone(),
                mon_key: mon_key.clone(),
            },
            StoreRequest::Osd {
                id,
                uuid,
                key,
                device,
                options,
            } => Store::Osd {
                id: *id,
                uuid: uuid.clone(),
                key: key.clone(),
                device: device.clone(),
                options: options.clone(),
            },
        }
    }
}

impl From<&Store> for StoreRequest {
    fn from(s: &Store) -> StoreRequest {
        match s {
            Store::Mon {
                id,
                fsid,
                members,
                seed,
            } => StoreRequest::Mon {
                id: id.clone(),
                fsid: fsid.clone(),
                members: members.clone(),
                seed: seed.iter().map(KeyringEntry::from).collect(),
            },
            Store::JoiningMon {
                id,
                monmap,
                mon_key,
            } => StoreRequest::JoiningMon {
                id: id.clone(),
                monmap: monmap.clone(),
                mon_key: mon_key.clone(),
            },
            Store::Osd {
                id,
                uuid,
                key,
                device,
                options,
            } => StoreRequest::Osd {
                id: *id,
                uuid: uuid.clone(),
                key: key.clone(),
                device: device.clone(),
                options: options.clone(),
            },
        }
    }
}

/// An OSD whose store and device label are to be freed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: u32,
    pub uuid: String,
    pub device: Option<PathBuf>,
}

/// What the operator wants of a node's data dir.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeDesired {
    pub serial: u64,
    /// The cluster's data dir on the node (`dataDirHostPath`/namespace): stores, keyrings, logs.
    pub data_dir: String,
    /// ceph.conf for the daemons of this node.
    pub conf: Option<String>,
    /// Keyrings by daemon (`mgr.a`, `osd.3`, `rgw.s`).
    pub keyrings: BTreeMap<String, Keyring>,
    /// Stores to make, by daemon; dropped once made (a mon's seed keys need not stay anywhere).
    pub stores: BTreeMap<String, Store>,
    /// OSD id -> the device its store's `block` must point at.
    pub osd_links: BTreeMap<u32, PathBuf>,
    pub releases: Vec<Release>,
    /// Daemons gone for good whose keyring and store are removed.
    pub forget: BTreeSet<String>,
    /// The cluster was deleted with Rook's `cleanupPolicy` confirmation: the whole data dir goes (its
    /// OSDs' devices were released first, so only their labels were wiped).
    pub purge: bool,
}

/// What a node's agent reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeStatus {
    /// The desired serial whose every request was carried out (or failed, see `errors`).
    pub serial: u64,
    /// Daemons whose store is made (`mon.a`, `osd.0`).
    pub ready: BTreeSet<String>,
    /// Daemons with a keyring on the node.
    pub keyrings: BTreeSet<String>,
    /// OSD id -> what its store's `block` points at.
    pub osd_blocks: BTreeMap<u32, PathBuf>,
    /// Daemon -> where its data lives on the node.
    pub data_locations: BTreeMap<String, PathBuf>,
    /// The node's block devices.
    pub devices: Vec<Device>,
    /// Daemon (or `conf`, `release.osd.N`) -> why the last attempt failed.
    pub errors: BTreeMap<String, String>,
    /// The node's data dir, as the agent sees it.
    pub data_dir: String,
    /// The fsid its ceph.conf names, if it has one (a new cluster finding one left by another).
    pub fsid: Option<String>,
    /// The agent's own resident memory, in MiB.
    pub agent_rss_mib: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_requests_travel_unchanged() {
        let requests = [
            StoreRequest::Mon {
                id: "a".into(),
                fsid: "f".into(),
                members: vec![("a".into(), "[v2:127.0.0.1:1/0]".into())],
                seed: vec![KeyringEntry::new("mon.", "AQ==", &[("mon", "allow *")])],
            },
            StoreRequest::Osd {
                id: 3,
                uuid: "u".into(),
                key: "k".into(),
                device: Some("/dev/loop3".into()),
                options: vec![("bluestore_min_alloc_size".into(), "4096".into())],
            },
        ];
        for r in requests {
            let json = serde_json::to_string(&Store::from(&r)).unwrap();
            let back: Store = serde_json::from_str(&json).unwrap();
            assert!(StoreRequest::from(&back) == r, "{json}");
        }
    }

    #[test]
    fn desired_state_reads_with_fields_missing() {
        let d: NodeDesired = serde_json::from_str(r#"{"serial": 4}"#).unwrap();
        assert_eq!(d.serial, 4);
        assert!(d.stores.is_empty() && d.conf.is_none());
    }
}
