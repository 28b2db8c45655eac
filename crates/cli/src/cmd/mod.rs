//! One module per command.

pub mod bench;
pub mod bench_csi;
pub mod bench_dashboard;
pub mod bench_files;
pub mod bench_k8s;
pub mod bench_objects;
pub mod bench_operator;
pub mod bench_scale;
pub mod bench_volumes;
pub mod csi;
pub mod daemon;
pub mod dashboard;
pub mod disk;
pub mod doctor;
pub mod down;
pub mod fs;
pub mod host;
pub mod join;
pub mod k8s;
pub mod object;
pub mod operator;
pub mod osd;
pub mod purge;
pub mod resources;
pub mod smoke;
pub mod status;
pub mod up;
pub mod volume;

use std::path::Path;

use rookery_orchestrator::{Desired, Layout};
use rookery_spec::Resources;

use crate::Failure;

/// The embedded default spec (1 mon, 1 mgr, 3 OSD files, `replicapool`).
pub const DEFAULT_SPEC: &str = rookery_spec::DEFAULT_YAML;

/// The spec to use: the file given, else the one saved in the data dir, else the embedded default.
pub fn load_spec(
    file: Option<&Path>,
    layout: &Layout,
) -> Result<(String, Resources, Desired), Failure> {
    let (text, origin) = match file {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| {
                Failure::bad_input(format!(
                    "cannot read {}: {e}; give the path of a CephCluster YAML file",
                    f.display()
                ))
            })?;
            (text, f.display().to_string())
        }
        None => match std::fs::read_to_string(layout.spec()) {
            Ok(t) => (t, layout.spec().display().to_string()),
            Err(_) => (DEFAULT_SPEC.to_string(), "the default spec".to_string()),
        },
    };
    let res = load_spec_text(&text, &origin, true)?;
    let desired = Desired::from_resources(&res).ok_or_else(|| {
        Failure::bad_input(format!(
            "{origin} has no CephCluster; add one (kind: CephCluster, apiVersion: ceph.rook.io/v1)"
        ))
    })?;
    Ok((text, res, desired))
}

/// Validates resources; every problem is listed with its field and fix (exit code 2).
pub fn load_spec_text(text: &str, origin: &str, need_cluster: bool) -> Result<Resources, Failure> {
    rookery_orchestrator::resources::validate(text, origin, need_cluster)
        .map_err(resources::resource_failure)
}

/// An admin connection to the cluster in `layout`; a data dir without a cluster is bad input.
pub fn connect(layout: &Layout) -> Result<rookery_ceph::Rados, Failure> {
    if !layout.conf().exists() {
        return Err(Failure::bad_input(format!(
            "{} holds no cluster; run `rookery up` first",
            layout.root.display()
        )));
    }
    rookery_ceph::Rados::connect(
        &layout.conf(),
        &rookery_orchestrator::ceph_user(layout),
        std::time::Duration::from_secs(10),
    )
    .map_err(|e| {
        Failure::from(anyhow::anyhow!(
            "connecting to the cluster (is it up? `rookery status`): {e}"
        ))
    })
}
