//! The one reconcile loop: take the newest desired state from its source, run a pass (observe -> plan ->
//! execute), publish what was seen and done, pause (briefly while there is work, a second when
//! converged), until asked to stop; then stop every daemon. The standalone supervisor runs it with the
//! data dir's spec file as source; the operator will run it with its CRDs as source.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rookery_ceph::Rados;

use crate::{spec_digest, ClusterState, Desired, Event, Layout, Plan, Reconciler};

/// What the loop last saw and did, for whoever serves it (the control API, a resource's status).
#[derive(Default)]
pub struct LoopView {
    pub state: Option<ClusterState>,
    /// The reconciler's connection, shared so readers add no client of their own.
    pub rados: Option<Arc<Rados>>,
    pub plan: Plan,
    pub last_error: Option<String>,
    pub notices: Vec<String>,
    pub events: Vec<Event>,
    pub expected_osds: u32,
    /// Which spec text the last pass reconciled to ([`spec_digest`]).
    pub spec_digest: String,
}

/// Where the desired state comes from.
pub trait SpecSource: Send {
    /// The new spec (its text and what it asks for) when it changed since the last call.
    fn changed(&mut self) -> Option<(String, Desired)>;
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is invalid:\n{detail}")]
    Invalid { path: String, detail: String },
    #[error("{path} has no CephCluster")]
    NoCluster { path: String },
}

/// The resources saved in a standalone cluster's data dir.
pub fn load_spec_file(layout: &Layout) -> Result<(String, Desired), SpecError> {
    let path = layout.spec().display().to_string();
    let text = std::fs::read_to_string(layout.spec()).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    let res = rookery_spec::load(&text).map_err(|e| SpecError::Invalid {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    let desired = Desired::from_resources(&res).ok_or(SpecError::NoCluster { path })?;
    Ok((text, desired))
}

/// A standalone cluster's `spec.yaml`, re-read before every pass (`rookery apply` and `up -f` write it).
pub struct SpecFile {
    layout: Layout,
    text: String,
}

impl SpecFile {
    /// `text` is the spec the reconciler starts with.
    pub fn new(layout: Layout, text: String) -> SpecFile {
        SpecFile { layout, text }
    }
}

impl SpecSource for SpecFile {
    fn changed(&mut self) -> Option<(String, Desired)> {
        let text = std::fs::read_to_string(self.layout.spec()).ok()?;
        if text == self.text {
            return None;
        }
        match load_spec_file(&self.layout) {
            Ok((text, desired)) => {
                self.text = text.clone();
                Some((text, desired))
            }
            Err(e) => {
                tracing::error!(error = %e, "ignoring the new spec");
                // Not again until it changes.
                self.text = text;
                None
            }
        }
    }
}

/// Runs passes until `shutdown`, then stops every daemon, unless `hand_over` is set (a new supervisor
/// takes them over as they run). `publish` gets the view after each pass.
pub fn run(
    mut reconciler: Reconciler,
    mut source: impl SpecSource,
    mut spec_text: String,
    shutdown: &AtomicBool,
    hand_over: &AtomicBool,
    mut publish: impl FnMut(LoopView),
) {
    let mut last_steps = Vec::new();
    let mut repeats = 0u32;
    while !shutdown.load(Ordering::SeqCst) {
        if let Some((text, desired)) = source.changed() {
            reconciler.desired = desired;
            spec_text = text;
            tracing::info!("spec changed; reconciling to it");
        }
        let plan = reconciler.reconcile_once();
        let busy = !plan.steps.is_empty();
        repeats = if busy && plan.steps == last_steps {
            repeats.saturating_add(1)
        } else {
            0
        };
        last_steps.clone_from(&plan.steps);
        publish(LoopView {
            state: Some(reconciler.state.clone()),
            rados: reconciler.rados(),
            plan,
            last_error: reconciler.last_error.clone(),
            notices: reconciler.desired.notices.clone(),
            events: reconciler.events.iter().cloned().collect(),
            expected_osds: reconciler.desired.osd_count,
            spec_digest: spec_digest(&spec_text),
        });
        let pause = pause_after(busy, reconciler.last_error.is_some(), repeats);
        let until = Instant::now() + pause;
        while Instant::now() < until && !shutdown.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    publish(LoopView::default());
    if hand_over.load(Ordering::SeqCst) {
        tracing::info!("handing the running daemons over to a new supervisor");
        return;
    }
    tracing::info!("stopping all daemons");
    reconciler.stop_all();
}

/// Work left and the last pass went well: go on at once. Converged or failing: wait a second, so a
/// failing step is retried without spinning. The same steps pass after pass wait on something outside
/// (a pod being scheduled and pulled, data moving): the pause doubles with each repeat up to a second,
/// so the loop does not spin on the mons and the API server meanwhile.
fn pause_after(busy: bool, failed: bool, repeats: u32) -> Duration {
    const REST: Duration = Duration::from_secs(1);
    if busy && !failed {
        Duration::from_millis(50)
            .saturating_mul(1 << repeats.min(5))
            .min(REST)
    } else {
        REST
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_goes_on_at_once_failures_and_rest_wait() {
        assert_eq!(pause_after(true, false, 0), Duration::from_millis(50));
        assert_eq!(pause_after(true, true, 0), Duration::from_secs(1));
        assert_eq!(pause_after(false, false, 0), Duration::from_secs(1));
    }

    #[test]
    fn the_same_work_again_backs_off_to_a_second() {
        assert_eq!(pause_after(true, false, 1), Duration::from_millis(100));
        assert_eq!(pause_after(true, false, 3), Duration::from_millis(400));
        assert_eq!(pause_after(true, false, 5), Duration::from_secs(1));
        assert_eq!(pause_after(true, false, u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn the_spec_file_is_picked_up_when_it_changes_and_a_bad_one_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout::new(d.path());
        std::fs::write(layout.spec(), rookery_spec::DEFAULT_YAML).unwrap();
        let (text, _) = load_spec_file(&layout).unwrap();
        let mut source = SpecFile::new(layout.clone(), text.clone());
        assert!(source.changed().is_none());
        std::fs::write(layout.spec(), "kind: [").unwrap();
        assert!(source.changed().is_none());
        let renamed = rookery_spec::DEFAULT_YAML.replacen("count: 3", "count: 4", 1);
        std::fs::write(layout.spec(), &renamed).unwrap();
        let (new_text, _) = source.changed().expect("the changed spec");
        assert_eq!(new_text, renamed);
        assert!(source.changed().is_none());
    }
}
