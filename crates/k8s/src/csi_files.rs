//! The CSI node plugins run as containers of the agent's pod (one pod per node). They have no API
//! access of their own: the agent follows the ConfigMap and Secrets the operator's CSI wiring writes
//! ([`crate::csi_wiring`]) and writes their content as files into a folder the pod's containers share
//! (in memory), where the plugins read ceph.conf and their Ceph user. Following the objects (not
//! mounting them as volumes) lets the agent's pod start before the cluster exists, and hands a new
//! cluster's files to the plugins within a watch's latency.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::runtime::watcher;

use crate::csi_wiring::{driver_secret_name, CONFIG_MAP, DRIVERS};

/// A file to write: its path under the shared folder, content and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsiFile {
    pub path: PathBuf,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// The files the plugins read, from the objects as last seen (None: not there yet). Only complete
/// sets are written: a plugin never sees a ceph.conf without its clusterID, or a user without its key.
pub fn files(config: Option<&ConfigMap>, secrets: &BTreeMap<String, Secret>) -> Vec<CsiFile> {
    let mut out = Vec::new();
    let data = config.and_then(|c| c.data.as_ref());
    if let Some((conf, id)) = data.and_then(|d| Some((d.get("ceph.conf")?, d.get("clusterID")?))) {
        out.push(file("ceph/clusterID", id.as_bytes(), 0o644));
        out.push(file("ceph/ceph.conf", conf.as_bytes(), 0o644));
    }
    for short in DRIVERS {
        let secret = secrets.get(short).and_then(|s| s.data.as_ref());
        let Some((user, key)) = secret.and_then(|d| Some((d.get("userID")?, d.get("userKey")?)))
        else {
            continue;
        };
        out.push(file(&format!("{short}/userID"), &user.0, 0o600));
        // The key last: a plugin waits for it.
        out.push(file(&format!("{short}/userKey"), &key.0, 0o600));
    }
    out
}

fn file(path: &str, content: &[u8], mode: u32) -> CsiFile {
    CsiFile {
        path: PathBuf::from(path),
        content: content.to_vec(),
        mode,
    }
}

/// Writes the files that differ from what the folder holds, each whole (a temporary file renamed).
pub fn write(dir: &Path, files: &[CsiFile]) -> std::io::Result<usize> {
    let mut written = 0;
    for f in files {
        let path = dir.join(&f.path);
        if std::fs::read(&path).is_ok_and(|c| c == f.content) {
            continue;
        }
        let parent = path.parent().unwrap_or(dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
        let temporary = parent.join(format!(
            ".{}.new",
            f.path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("file")
        ));
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(f.mode)
            .open(&temporary)?;
        out.write_all(&f.content)?;
        out.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        written += 1;
    }
    Ok(written)
}

/// What a watch saw last.
enum Seen {
    Config(Option<ConfigMap>),
    Secret(&'static str, Option<Secret>),
}

/// Follows the objects and keeps the folder current; runs until the process stops.
pub async fn follow(client: kube::Client, namespace: String, dir: PathBuf) {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(client, &namespace);
    let mut streams = vec![watcher::watch_object(config_maps, CONFIG_MAP)
        .map(|e| e.map(Seen::Config))
        .boxed()];
    for short in DRIVERS {
        streams.push(
            watcher::watch_object(secrets.clone(), &driver_secret_name(short))
                .map(move |e| e.map(|s| Seen::Secret(short, s)))
                .boxed(),
        );
    }
    let mut events = futures::stream::select_all(streams);
    let mut config: Option<ConfigMap> = None;
    let mut seen: BTreeMap<String, Secret> = BTreeMap::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(Seen::Config(c)) => config = c,
            Ok(Seen::Secret(short, Some(s))) => {
                seen.insert(short.to_string(), s);
            }
            Ok(Seen::Secret(short, None)) => {
                seen.remove(short);
            }
            Err(e) => {
                tracing::warn!(error = %e, "following the CSI drivers' configuration");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        let wanted = files(config.as_ref(), &seen);
        let dir = dir.clone();
        match tokio::task::spawn_blocking(move || write(&dir, &wanted)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(files = n, "CSI node plugins' configuration written"),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "writing the CSI node plugins' configuration")
            }
            Err(e) => tracing::error!(error = %e, "writing the CSI node plugins' configuration"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::os::unix::fs::PermissionsExt;

    fn secret(user: &str, key: &str) -> Secret {
        Secret {
            data: Some(BTreeMap::from([
                ("userID".to_string(), ByteString(user.as_bytes().to_vec())),
                ("userKey".to_string(), ByteString(key.as_bytes().to_vec())),
            ])),
            ..Default::default()
        }
    }

    #[test]
    fn only_complete_sets_are_written_with_keys_private() {
        let dir = tempfile::tempdir().unwrap();
        let mut secrets = BTreeMap::from([("rbd".to_string(), secret("rookery-csi-rbd", "K1"))]);
        // No ConfigMap yet: the user alone.
        let first = files(None, &secrets);
        assert_eq!(
            first
                .iter()
                .map(|f| f.path.display().to_string())
                .collect::<Vec<_>>(),
            ["rbd/userID", "rbd/userKey"]
        );
        assert_eq!(write(dir.path(), &first).unwrap(), 2);
        let mode = std::fs::metadata(dir.path().join("rbd/userKey"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let config = ConfigMap {
            data: Some(BTreeMap::from([
                ("ceph.conf".to_string(), "[global]\nfsid = f\n".to_string()),
                ("clusterID".to_string(), "rook-ceph".to_string()),
            ])),
            ..Default::default()
        };
        secrets.insert("cephfs".into(), secret("rookery-csi-cephfs", "K2"));
        let all = files(Some(&config), &secrets);
        // What is already there is not written again.
        assert_eq!(write(dir.path(), &all).unwrap(), 4);
        assert_eq!(write(dir.path(), &all).unwrap(), 0);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("ceph/clusterID")).unwrap(),
            "rook-ceph"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cephfs/userKey")).unwrap(),
            "K2"
        );
        // A ConfigMap without its clusterID is not taken.
        let partial = ConfigMap {
            data: Some(BTreeMap::from([("ceph.conf".to_string(), "x".to_string())])),
            ..Default::default()
        };
        assert!(files(Some(&partial), &BTreeMap::new()).is_empty());
    }
}
