//! `rookery purge-trash` (hidden; the supervisor runs it every minute): deletes the data of removed volumes
//! from the RBD trash, one image at a time, once deletions have settled: while new entries keep arriving
//! (a burst of `volume rm`), purging would compete with them for the same OSDs, so it waits until a 2 s look
//! finds nothing new. It stops when the trash is empty, when only failed entries are left, or after 5
//! minutes (the next run goes on).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rookery_orchestrator::Layout;
use rookery_volumes::manage::{self, Trashed};

use crate::{CmdResult, Failure};

pub fn run(layout: &Layout) -> CmdResult {
    let rados = super::connect(layout)?;
    let started = Instant::now();
    let mut purged = 0usize;
    let mut failed: HashSet<Trashed> = HashSet::new();
    let result = purge_settled(&rados, &mut purged, &mut failed);
    // One line per run that did something: the supervisor starts a run every minute.
    if purged > 0 || !failed.is_empty() {
        tracing::info!(
            purged,
            failed = failed.len(),
            secs = format_args!("{:.1}", started.elapsed().as_secs_f64()),
            "trash purge run done"
        );
    }
    result
}

fn purge_settled(
    rados: &rookery_ceph::Rados,
    purged: &mut usize,
    failed: &mut HashSet<Trashed>,
) -> CmdResult {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen: HashSet<Trashed> = HashSet::new();
    while Instant::now() < deadline {
        let found: HashSet<Trashed> = manage::trashed(rados)
            .map_err(|e| Failure::from(anyhow!(e)))?
            .into_iter()
            .collect();
        let settled = found.is_subset(&seen);
        seen = found;
        if !settled {
            std::thread::sleep(Duration::from_secs(2));
            continue;
        }
        let todo: Vec<Trashed> = seen.difference(failed).cloned().collect();
        if todo.is_empty() {
            return Ok(());
        }
        // One listing serves a batch: listing after every image would cost O(n) per purge. The next look
        // comes after LOOK_AGAIN, to notice a new burst of removals.
        let listed = Instant::now();
        for next in todo {
            if listed.elapsed() > LOOK_AGAIN || Instant::now() >= deadline {
                break;
            }
            match manage::purge(rados, &next) {
                Ok(()) => {
                    *purged += 1;
                    tracing::debug!(volume = %next, "purged a removed volume's data");
                }
                Err(e) => {
                    tracing::warn!(volume = %next, error = %e, "could not purge a removed volume; the next run retries");
                    failed.insert(next.clone());
                }
            }
        }
    }
    Ok(())
}

/// How long one trash listing is trusted before looking for new removals.
const LOOK_AGAIN: Duration = Duration::from_secs(2);
