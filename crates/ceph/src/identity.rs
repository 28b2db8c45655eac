//! Who a client acts as: a cephx user, with its key in the keyring that ceph.conf names (a standalone
//! cluster's data dir) or in a file of its own (a Kubernetes Secret mounted into a pod).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{CephError, Rados};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user without its `client.` prefix.
    pub user: String,
    /// A file holding only the base64 key; `None`: the keyring that ceph.conf names.
    pub key_file: Option<PathBuf>,
}

impl Identity {
    /// The cluster's admin, keyed by the data dir's keyring (standalone clusters).
    pub fn admin() -> Identity {
        Identity {
            user: "admin".into(),
            key_file: None,
        }
    }

    /// The key from `key_file`, trimmed; `None` when the keyring is used.
    pub fn key(&self) -> Result<Option<String>, CephError> {
        let Some(path) = &self.key_file else {
            return Ok(None);
        };
        let key = std::fs::read_to_string(path).map_err(|e| {
            CephError::InvalidArgument(format!(
                "cannot read the key of client.{} from {}: {e}",
                self.user,
                path.display()
            ))
        })?;
        let key = key.trim().to_string();
        if key.is_empty() {
            return Err(CephError::InvalidArgument(format!(
                "{} holds no key for client.{}",
                path.display(),
                self.user
            )));
        }
        Ok(Some(key))
    }

    /// librados options that carry the key, to set after ceph.conf is read (none for the keyring).
    pub fn options(&self) -> Result<Vec<(String, String)>, CephError> {
        Ok(match self.key()? {
            Some(key) => vec![("key".into(), key), ("keyring".into(), String::new())],
            None => Vec::new(),
        })
    }

    /// Connects as this identity; see [`Rados::connect`].
    pub fn connect(&self, conf: &Path, timeout: Duration) -> Result<Rados, CephError> {
        match self.key()? {
            Some(key) => Rados::connect_with_key(conf, &self.user, &key, timeout),
            None => Rados::connect(conf, &self.user, timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_read_trimmed_and_an_empty_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("userKey");
        std::fs::write(&file, "QUJD\n").unwrap();
        let id = Identity {
            user: "csi".into(),
            key_file: Some(file.clone()),
        };
        assert_eq!(id.key().unwrap().as_deref(), Some("QUJD"));
        assert_eq!(id.options().unwrap()[0], ("key".into(), "QUJD".into()));
        std::fs::write(&file, " \n").unwrap();
        let err = id.key().unwrap_err().to_string();
        assert!(err.contains("holds no key for client.csi"), "{err}");
        assert!(Identity::admin().options().unwrap().is_empty());
    }
}
