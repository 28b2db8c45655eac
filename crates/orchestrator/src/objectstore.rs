//! The files an object store keeps in the data dir (0600, never logged): the admin-API user's keys and
//! each user's keys with the fingerprint of the settings last applied to it.

use std::path::Path;

use rookery_objects::Credentials;
use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use crate::OrchestratorError;

/// The RGW user rookery signs admin-API requests with.
pub const ADMIN_UID: &str = "rookery-admin";

#[derive(Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub access_key: String,
    pub secret_key: String,
    /// The settings' fingerprint when they were last applied (users only).
    #[serde(default)]
    pub applied: String,
}

impl KeyRecord {
    pub fn credentials(&self) -> Credentials {
        Credentials {
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
        }
    }
}

pub fn read(path: &Path) -> Result<Option<KeyRecord>, OrchestratorError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| OrchestratorError::Corrupt {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(OrchestratorError::io(path, e)),
    }
}

pub fn write(path: &Path, record: &KeyRecord) -> Result<(), OrchestratorError> {
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| OrchestratorError::io(dir, e))?;
    }
    let text =
        serde_json::to_vec_pretty(record).map_err(|e| OrchestratorError::Other(e.to_string()))?;
    rookery_ceph::conf::write_atomic(path, &text, 0o600)?;
    Ok(())
}

/// `ADDRESS:PORT` of a store's gateway running at `address`.
pub fn endpoint(address: std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(address, port).to_string()
}

/// The admin-API client of a store whose gateway serves at `address`, when its admin user exists.
pub fn admin(
    layout: &Layout,
    store: &str,
    address: std::net::IpAddr,
    port: u16,
) -> Result<Option<rookery_objects::admin::Admin>, OrchestratorError> {
    Ok(read(&layout.rgw_admin(store))?
        .map(|k| rookery_objects::admin::Admin::new(endpoint(address, port), k.credentials())))
}
