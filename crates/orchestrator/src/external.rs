//! What another platform needs to use this cluster as an "external cluster" (Rook's term): rookery's CSI
//! drivers in a Kubernetes cluster get the cluster's fsid, its mons and one Ceph user per driver with
//! the narrowest caps that driver works with, never client.admin. Kubernetes objects are the caller's
//! business; this only makes the users and says what they are.

use rookery_ceph::commands::auth;
use rookery_ceph::{CephError, Rados};

use crate::ClusterState;

/// One driver's Ceph user and the caps it is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverUser {
    /// The CSI driver's name.
    pub driver: &'static str,
    /// The user, without `client.`.
    pub user: &'static str,
    pub caps: &'static [(&'static str, &'static str)],
}

/// RBD: images in any pool (the `rbd` profiles: map reads, image I/O, blocklisting a dead client's
/// watches); the mon's `df` and OSD map reads answer GetCapacity. CephFS: subvolumes through the mgr's
/// volumes module, and file I/O in the filesystems' pools under `/volumes`.
pub const DRIVER_USERS: [DriverUser; 2] = [
    DriverUser {
        driver: "rbd.csi.rookery.io",
        user: "rookery-csi-rbd",
        caps: &[
            ("mon", "profile rbd"),
            ("mgr", "profile rbd"),
            ("osd", "profile rbd"),
        ],
    },
    DriverUser {
        driver: "cephfs.csi.rookery.io",
        user: "rookery-csi-cephfs",
        caps: &[
            ("mon", "allow r"),
            ("mgr", "allow rw"),
            ("osd", "allow rw tag cephfs *=*"),
            ("mds", "allow rw path=/volumes"),
        ],
    },
];

/// A driver's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverCredentials {
    pub driver: &'static str,
    pub user: &'static str,
    pub key: String,
}

/// Everything a client elsewhere needs to reach this cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAccess {
    pub fsid: String,
    /// ceph.conf's `mon_host`: every mon's address vector.
    pub mon_host: String,
    pub drivers: Vec<DriverCredentials>,
}

impl ExternalAccess {
    /// The ceph.conf a client needs: the cluster's identity and its mons, no secret.
    pub fn ceph_conf(&self) -> String {
        let mut conf = rookery_ceph::conf::CephConf::default();
        conf.set("global", "fsid", self.fsid.clone());
        conf.set("global", "mon_host", self.mon_host.clone());
        conf.render()
    }
}

/// Makes (or finds) the drivers' users and answers with their keys. Idempotent: a second call answers the
/// same keys.
pub fn csi_access(rados: &Rados, state: &ClusterState) -> Result<ExternalAccess, CephError> {
    let drivers = DRIVER_USERS
        .iter()
        .map(|d| {
            let key = auth::get_or_create(rados, &format!("client.{}", d.user), d.caps)?;
            Ok(DriverCredentials {
                driver: d.driver,
                user: d.user,
                key,
            })
        })
        .collect::<Result<Vec<_>, CephError>>()?;
    Ok(ExternalAccess {
        fsid: state.fsid.clone(),
        mon_host: state.mon_host(),
        drivers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drivers_users_are_not_admin_and_name_the_drivers_we_serve() {
        let names: Vec<_> = DRIVER_USERS.iter().map(|d| d.driver).collect();
        assert_eq!(names, ["rbd.csi.rookery.io", "cephfs.csi.rookery.io"]);
        for d in DRIVER_USERS {
            assert_ne!(d.user, "admin");
            assert!(d.caps.iter().all(|(_, grant)| !grant.contains("allow *")));
        }
    }

    #[test]
    fn the_exported_conf_names_the_cluster_and_its_mons_only() {
        let access = ExternalAccess {
            fsid: "f-1".into(),
            mon_host: "[v2:10.0.0.5:3300,v1:10.0.0.5:6789]".into(),
            drivers: vec![DriverCredentials {
                driver: "rbd.csi.rookery.io",
                user: "rookery-csi-rbd",
                key: "SECRET".into(),
            }],
        };
        let conf = rookery_ceph::conf::CephConf::parse(&access.ceph_conf());
        assert_eq!(conf.get("global", "fsid"), Some("f-1"));
        assert!(conf.get("global", "mon_host").is_some());
        assert!(!access.ceph_conf().contains("SECRET"));
    }
}
