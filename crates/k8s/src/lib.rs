//! rookery on Kubernetes: the operator (`operator`: Rook's ceph.rook.io resources reconciled by the same
//! orchestrator as the standalone product, through the Kubernetes `platform`), the per-node `agent`
//! (devices, stores and keyrings on its node, asked through the API server: `node`; the files of the CSI
//! node plugins beside it: `csi_files`), and the CRDs (`crd`).

pub mod agent;
pub mod apply;
pub mod cache;
pub mod crd;
pub mod csi_files;
pub mod csi_wiring;
pub mod deletion;
pub mod mirror;
pub mod node;
pub mod operator;
pub mod platform;
pub mod resources;
pub mod rook_objects;
pub mod status;
