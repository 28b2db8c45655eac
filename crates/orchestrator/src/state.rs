//! The cluster's persistent identity: what was generated once and must never change (fsid, mon ports,
//! OSD uuids). Written atomically after each change so a crash at any point leaves a state to resume from.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{layout::Layout, OrchestratorError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    /// metadata.name of the CephCluster; a data dir holds one cluster.
    pub name: String,
    pub fsid: String,
    pub mons: Vec<MonRecord>,
    pub osds: Vec<OsdRecord>,
    pub created_unix: u64,
    /// The Ceph release the cluster was made with (older data dirs have none): never go back from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceph_version: Option<rookery_ceph::tools::CephVersion>,
    /// What rookery set in the mons' config database: section -> option -> value (so an option dropped
    /// from the spec is removed, and nobody else's settings are touched).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_applied: BTreeMap<String, BTreeMap<String, String>>,
    /// The fingerprint of the config database's contents every running daemon was seen to run with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_settled: Option<String>,
    /// Set on a host that joined the cluster (`rookery join`): the Ceph user it acts as (its own, made
    /// when it joined and removed with `host rm`). Such a host runs its own daemons only; the host that
    /// made the cluster acts as client.admin and runs the cluster-wide work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_user: Option<String>,
    /// A joined host that was removed (`host rm`): it runs and makes nothing more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonRecord {
    pub id: String,
    /// The host it runs on, and its address there: fixed in the monmap, so chosen once.
    #[serde(default)]
    pub host: Option<String>,
    /// Clusters made before mons had an address of their own ran on this host's loopback.
    #[serde(default = "standalone_address")]
    pub address: IpAddr,
    pub v2_port: u16,
    pub v1_port: u16,
}

fn standalone_address() -> IpAddr {
    rookery_platform::local::THIS_HOST_ADDRESS
}

impl MonRecord {
    pub fn addrvec(&self) -> String {
        let a = match self.address {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        format!("[v2:{a}:{},v1:{a}:{}]", self.v2_port, self.v1_port)
    }
}

/// An OSD from the moment its uuid is chosen. `id` is known once the mons registered it (`osd new`),
/// which is idempotent for the same uuid and secret, so a crash between the two steps converges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OsdRecord {
    pub uuid: String,
    pub id: Option<u32>,
    /// The backing file, or the device as it was named when the OSD was made.
    pub block: Option<PathBuf>,
    pub size_bytes: u64,
    /// Made on a device the spec selected (found again by its BlueStore label, whatever its name now);
    /// None for an OSD file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<PathBuf>,
    /// The device class the spec gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_class: Option<String>,
}

impl ClusterState {
    pub fn load(layout: &Layout) -> Result<Option<ClusterState>, OrchestratorError> {
        let path = layout.state();
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| OrchestratorError::Corrupt {
                        path: path.display().to_string(),
                        detail: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(OrchestratorError::io(&path, e)),
        }
    }

    pub fn save(&self, layout: &Layout) -> Result<(), OrchestratorError> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| OrchestratorError::Corrupt {
            path: layout.state().display().to_string(),
            detail: e.to_string(),
        })?;
        rookery_ceph::conf::write_atomic(&layout.state(), &text, 0o600)?;
        Ok(())
    }

    /// The Ceph user (without `client.`) this host's orchestrator connects as.
    pub fn ceph_user(&self) -> &str {
        self.member_user.as_deref().unwrap_or("admin")
    }

    /// True on a host that joined: it runs only its own daemons.
    pub fn joined(&self) -> bool {
        self.member_user.is_some()
    }

    pub fn mon_host(&self) -> String {
        self.mons
            .iter()
            .map(MonRecord::addrvec)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What the person running this host allows, apart from the spec (Rook keeps these in the operator's
/// settings): `rookery up` writes it from its flags each time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPolicy {
    /// `useAllDevices` may take blank loop devices (Rook's ROOK_CEPH_ALLOW_LOOP_DEVICES).
    #[serde(default)]
    pub allow_loop_devices: bool,
    /// This host's name and address in a cluster over several hosts (`up --address`, `join`); None: a
    /// host alone, on its loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberAddress>,
}

/// Where a host of a cluster over several hosts serves, as `up --address` or `join` set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddress {
    /// Its name in the cluster (CRUSH's host bucket, `rookery host rm NAME`).
    pub name: String,
    /// Where its daemons bind.
    pub address: IpAddr,
    /// The network the cluster's hosts reach each other on (CIDR), Ceph's `public_network`.
    pub network: String,
    /// The port members answer joining hosts on (TLS).
    pub join_port: u16,
}

impl HostPolicy {
    /// The platform this host runs its daemons on: processes here, as the member it is (or alone, on
    /// loopback).
    pub fn platform(&self, layout: &Layout) -> rookery_platform::local::LocalPlatform {
        use rookery_platform::local::{host_at, LocalPlatform};
        match &self.member {
            Some(m) => LocalPlatform::on(&layout.root, host_at(&m.name, m.address, &m.network)),
            None => LocalPlatform::new(&layout.root),
        }
    }
}

impl HostPolicy {
    /// The saved policy; the default (nothing allowed) when there is none or it cannot be read.
    pub fn load(layout: &Layout) -> HostPolicy {
        std::fs::read(layout.host_policy())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, layout: &Layout) -> Result<(), OrchestratorError> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| OrchestratorError::Corrupt {
            path: layout.host_policy().display().to_string(),
            detail: e.to_string(),
        })?;
        rookery_ceph::conf::write_atomic(&layout.host_policy(), &text, 0o600)?;
        Ok(())
    }
}
