//! `rookery k8s`: using this cluster from Kubernetes. `export` writes what `deploy/csi/` references for
//! an external cluster: a ConfigMap with the cluster's ceph.conf and clusterID, and one Secret per CSI
//! driver holding a Ceph user made for that driver alone (never client.admin).

use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use rookery_orchestrator::Layout;
use serde_json::json;

use crate::api::{self, Client};
use crate::control::CsiAccess;
use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct K8sArgs {
    #[command(subcommand)]
    pub command: K8sCommand,
}

#[derive(Subcommand)]
pub enum K8sCommand {
    /// Print the ConfigMap and Secrets that deploy/csi/ references (they hold keys: pipe them to kubectl
    /// rather than into a file others can read).
    ///
    /// Example: rookery k8s export | kubectl apply -f -
    Export {
        /// The namespace the CSI drivers run in.
        #[arg(long, default_value = "rookery-csi")]
        namespace: String,
    },
}

/// The ConfigMap's name, as deploy/csi/ mounts it.
pub const CONFIG_MAP: &str = "rookery-ceph-config";

/// The Secret of a driver's Ceph user: `rookery-csi-rbd`, `rookery-csi-cephfs`.
pub fn secret_name(driver: &str) -> String {
    let short = driver.split('.').next().unwrap_or(driver);
    format!("rookery-csi-{short}")
}

/// The Kubernetes objects for `access`, as one YAML stream.
pub fn manifests(access: &CsiAccess, namespace: &str) -> Result<String, serde_yaml::Error> {
    let mut docs = vec![json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": namespace,
                     "labels": {"app.kubernetes.io/part-of": "rookery"}},
        "data": {"ceph.conf": access.ceph_conf, "clusterID": access.cluster_id},
    })];
    for d in &access.drivers {
        docs.push(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name(&d.driver), "namespace": namespace,
                         "labels": {"app.kubernetes.io/part-of": "rookery"}},
            "type": "Opaque",
            "stringData": {"userID": d.user_id, "userKey": d.user_key},
        }));
    }
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&d)?);
    }
    Ok(out)
}

pub fn run(layout: &Layout, args: &K8sArgs, output: Output) -> CmdResult {
    match &args.command {
        K8sCommand::Export { namespace } => {
            if namespace.is_empty()
                || namespace.len() > 63
                || !namespace
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(Failure::bad_input(format!(
                    "--namespace {namespace:?} is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63)"
                )));
            }
            let access: CsiAccess = Client::new(layout)?
                .send("POST", "/v1/csi/access", None, Duration::from_secs(60))
                .map_err(|r| r.word(api::plain))?;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&access).map_err(|e| Failure::from(anyhow!(e)))?
                ),
                Output::Text => print!(
                    "{}",
                    manifests(&access, namespace).map_err(|e| Failure::from(anyhow!(e)))?
                ),
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::CsiDriverCredentials;
    use serde::Deserialize;

    #[test]
    fn export_writes_a_config_map_and_one_secret_per_driver() {
        let access = CsiAccess {
            cluster_id: "f-1".into(),
            ceph_conf: "[global]\nfsid = f-1\n".into(),
            drivers: vec![CsiDriverCredentials {
                driver: "rbd.csi.rookery.io".into(),
                user_id: "rookery-csi-rbd".into(),
                user_key: "K".into(),
            }],
        };
        let text = manifests(&access, "ns").unwrap();
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde_yaml::Value::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["kind"], "ConfigMap");
        assert_eq!(docs[0]["data"]["clusterID"], "f-1");
        assert_eq!(docs[1]["metadata"]["name"], "rookery-csi-rbd");
        assert_eq!(docs[1]["metadata"]["namespace"], "ns");
        assert_eq!(docs[1]["stringData"]["userID"], "rookery-csi-rbd");
    }
}
