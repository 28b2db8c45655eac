//! The operator's copy of the cluster's own state (cluster.json with the fsid and mons, the admin and
//! mon keyrings, OSD requests, object stores' admin users) lives in its container at the data dir's
//! path and is mirrored into the Secret `rookery-cluster-state`, so a restarted operator, on any node,
//! picks up where the last one stopped. Logs, sockets and ceph.conf (made again from the state) are
//! not mirrored.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::ByteString;
use kube::api::{Api, Patch, PatchParams};

pub const SECRET: &str = "rookery-cluster-state";
const KEY: &str = "files.json";
/// Folders of the data dir that hold nothing the next operator needs.
const SKIPPED: [&str; 3] = ["log", "run", "crash"];

/// Every file under `root` worth keeping, by relative path, base64-encoded.
pub fn collect(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let rel = rel.to_string_lossy().to_string();
            if SKIPPED.contains(&rel.as_str()) || rel == "ceph.conf" {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(root, &path, out),
                Ok(t) if t.is_file() => {
                    if let Ok(bytes) = std::fs::read(&path) {
                        out.insert(rel, base64::engine::general_purpose::STANDARD.encode(bytes));
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Writes the files back under `root` (folders 0700, files 0600).
pub fn restore(root: &Path, files: &BTreeMap<String, String>) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    for (rel, encoded) in files {
        if rel.split('/').any(|part| part == ".." || part.is_empty()) {
            anyhow::bail!("{SECRET} holds a path outside the data dir: {rel:?}");
        }
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .with_context(|| format!("{SECRET}: {rel} is not base64"))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        f.write_all(&bytes)?;
    }
    Ok(())
}

pub async fn load(api: &Api<Secret>) -> Result<Option<BTreeMap<String, String>>> {
    let Some(secret) = api.get_opt(SECRET).await? else {
        return Ok(None);
    };
    let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(KEY)) else {
        return Ok(None);
    };
    Ok(Some(
        serde_json::from_slice(&bytes.0).with_context(|| format!("{SECRET} is unreadable"))?,
    ))
}

pub async fn save(
    api: &Api<Secret>,
    files: &BTreeMap<String, String>,
    owner: &OwnerReference,
) -> Result<()> {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(SECRET.into()),
            labels: Some(BTreeMap::from([(
                crate::platform::MANAGED_BY.0.to_string(),
                crate::platform::MANAGED_BY.1.to_string(),
            )])),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            KEY.to_string(),
            ByteString(serde_json::to_vec(files)?),
        )])),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    let mut value = serde_json::to_value(&secret)?;
    value["apiVersion"] = "v1".into();
    value["kind"] = "Secret".into();
    api.patch(
        SECRET,
        &PatchParams::apply("rookery").force(),
        &Patch::Apply(&value),
    )
    .await
    .with_context(|| format!("writing Secret {SECRET}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_files_round_trip_without_logs_or_conf() {
        let a = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(a.path().join("keyring")).unwrap();
        std::fs::create_dir_all(a.path().join("log")).unwrap();
        std::fs::write(a.path().join("cluster.json"), b"{}").unwrap();
        std::fs::write(a.path().join("keyring/ceph.client.admin.keyring"), b"k").unwrap();
        std::fs::write(a.path().join("log/x.log"), b"noise").unwrap();
        std::fs::write(a.path().join("ceph.conf"), b"[global]").unwrap();
        let files = collect(a.path());
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            ["cluster.json", "keyring/ceph.client.admin.keyring"]
        );
        let b = tempfile::tempdir().unwrap();
        restore(b.path(), &files).unwrap();
        assert_eq!(collect(b.path()), files);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(b.path().join("keyring/ceph.client.admin.keyring"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_path_out_of_the_data_dir_is_refused() {
        let b = tempfile::tempdir().unwrap();
        let files = BTreeMap::from([("../x".to_string(), String::new())]);
        assert!(restore(b.path(), &files).is_err());
    }
}
