//! Local copies of the API objects the operator reads on every pass (Nodes, its Deployments and Pods,
//! the agents' reports, the CephCluster and its resources), kept current by watches, so a pass reads
//! memory instead of calling the API server for each daemon.

use std::fmt::Debug;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use serde::de::DeserializeOwned;

/// A store of `api`'s objects matching `config`, filled by a watch that runs for as long as the
/// runtime does (it backs off and resumes after errors).
pub fn follow<K>(api: Api<K>, config: watcher::Config) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    follow_typed(api, config, Default::default())
}

/// [`follow`] for objects whose type is known only at run time (the ceph.rook.io resources).
pub fn follow_typed<K>(api: Api<K>, config: watcher::Config, dyntype: K::DynamicType) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let writer = reflector::store::Writer::new(dyntype);
    let reader = writer.as_reader();
    let stream = reflector::reflector(writer, watcher(api, config))
        .default_backoff()
        .applied_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                tracing::debug!(error = %e, "watch interrupted; resuming");
            }
        }
    });
    reader
}

/// Waits until every store has had its first full list (or `limit` passed).
pub async fn ready<K>(store: &Store<K>, limit: Duration) -> bool
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    tokio::time::timeout(limit, store.wait_until_ready())
        .await
        .is_ok_and(|r| r.is_ok())
}
