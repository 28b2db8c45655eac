//! Which of an image's objects may hold writes that are still only in librbd's write-back cache.
//!
//! The FUSE server reads an object straight from RADOS (see `rookery_ceph::rbd_aio::DataObjects`) only
//! when everything written to it is there: every write to it completed before a flush that has since
//! completed. Anything else is read through librbd, whose cache holds the newer data. Pure bookkeeping:
//! the server calls it around each librbd request.

use std::collections::{BTreeSet, HashMap};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// Changes wider than this many objects (a discard of a whole large volume) mark everything unflushed
/// instead of each object, so the map stays small.
const WIDEST_TRACKED: u64 = 4096;
/// Objects tracked one by one at most (~2 MiB of map); past that, everything counts as unflushed until a
/// flush covers it (a writer that never flushes keeps writing through librbd's cache anyway).
const MOST_TRACKED: usize = 65536;

/// How long writes must have paused before the server flushes on its own, so reads of what was written
/// can skip the cache again.
pub const IDLE_BEFORE_FLUSH: Duration = Duration::from_secs(1);

/// A change handed to librbd; give it back to [`Unflushed::change_ended`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change(u64);

/// A flush handed to librbd; give it back to [`Unflushed::flush_ended`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flush {
    /// Every change numbered up to this one had completed when the flush was sent.
    covers: u64,
}

#[derive(Debug, Default)]
pub struct Unflushed {
    /// The number of the last change started (changes are numbered from 1).
    last: u64,
    /// Changes started and not yet completed.
    in_flight: BTreeSet<u64>,
    /// Objects changed since the last flush that covers them, with the number of their latest change.
    objects: HashMap<u64, u64>,
    /// The latest change too wide to track per object: every object counts as changed until a flush
    /// covers it.
    everything: Option<u64>,
    flushes_in_flight: usize,
    /// Whether the kernel has sent a flush: until then librbd's cache writes through (its
    /// `rbd_cache_writethrough_until_flush`), and a flush of the server's own would end that.
    user_flushes: bool,
    last_change_at: Option<Instant>,
}

impl Unflushed {
    /// Records a change (write, zeroing) of `objects`, before it is handed to librbd.
    pub fn change_started(&mut self, objects: RangeInclusive<u64>, now: Instant) -> Change {
        self.last += 1;
        let n = self.last;
        self.in_flight.insert(n);
        self.last_change_at = Some(now);
        let (first, last) = (*objects.start(), *objects.end());
        if last.saturating_sub(first) >= WIDEST_TRACKED || self.objects.len() >= MOST_TRACKED {
            // `n` is the newest change: a flush that covers it covers every object dropped here.
            self.everything = Some(n);
            self.objects.clear();
        } else {
            for object in objects {
                self.objects.insert(object, n);
            }
        }
        Change(n)
    }

    /// The change was answered by librbd (done or failed: either way it is no longer in flight).
    pub fn change_ended(&mut self, change: Change) {
        self.in_flight.remove(&change.0);
    }

    /// Records a flush about to be handed to librbd; `from_user`: the kernel asked for it.
    pub fn flush_started(&mut self, from_user: bool) -> Flush {
        self.user_flushes |= from_user;
        self.flushes_in_flight += 1;
        let covers = match self.in_flight.first() {
            Some(oldest) => oldest - 1,
            None => self.last,
        };
        Flush { covers }
    }

    /// The flush was answered; if it `succeeded`, what it covers is in RADOS.
    pub fn flush_ended(&mut self, flush: Flush, succeeded: bool) {
        self.flushes_in_flight = self.flushes_in_flight.saturating_sub(1);
        if succeeded {
            self.objects.retain(|_, n| *n > flush.covers);
            self.everything = self.everything.filter(|n| *n > flush.covers);
        }
    }

    /// Whether `object` holds everything written to it.
    pub fn is_flushed(&self, object: u64) -> bool {
        self.everything.is_none() && !self.objects.contains_key(&object)
    }

    /// Whether the server should flush on its own now: something is unflushed, writes have paused, no
    /// flush is under way, and the user flushes (so the cache is in write-back already).
    pub fn wants_flush(&self, now: Instant) -> bool {
        self.user_flushes
            && self.flushes_in_flight == 0
            && self.in_flight.is_empty()
            && (self.everything.is_some() || !self.objects.is_empty())
            && self
                .last_change_at
                .is_some_and(|at| now.saturating_duration_since(at) >= IDLE_BEFORE_FLUSH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_covers_only_changes_completed_before_it() {
        let now = Instant::now();
        let mut u = Unflushed::default();
        assert!(u.is_flushed(3));
        let a = u.change_started(3..=3, now);
        let b = u.change_started(5..=6, now);
        u.change_ended(b);
        // `a` is still in flight: a flush sent now does not cover it, nor `b`, numbered after it.
        let f = u.flush_started(true);
        u.change_ended(a);
        u.flush_ended(f, true);
        assert!(!u.is_flushed(3) && !u.is_flushed(5) && !u.is_flushed(6));
        let f = u.flush_started(true);
        let c = u.change_started(6..=6, now);
        u.flush_ended(f, true);
        assert!(u.is_flushed(3) && u.is_flushed(5));
        assert!(!u.is_flushed(6), "written again after the flush was sent");
        u.change_ended(c);
        assert!(u.is_flushed(7));
    }

    #[test]
    fn a_failed_flush_clears_nothing() {
        let now = Instant::now();
        let mut u = Unflushed::default();
        let a = u.change_started(1..=1, now);
        u.change_ended(a);
        let f = u.flush_started(true);
        u.flush_ended(f, false);
        assert!(!u.is_flushed(1));
    }

    #[test]
    fn wide_changes_mark_everything() {
        let now = Instant::now();
        let mut u = Unflushed::default();
        let a = u.change_started(0..=1 << 20, now);
        assert!(!u.is_flushed(u64::MAX));
        assert!(u.objects.is_empty());
        u.change_ended(a);
        let f = u.flush_started(true);
        u.flush_ended(f, true);
        assert!(u.is_flushed(12));
    }

    #[test]
    fn many_objects_fold_into_everything() {
        let now = Instant::now();
        let mut u = Unflushed::default();
        for object in 0..=MOST_TRACKED as u64 {
            let c = u.change_started(object..=object, now);
            u.change_ended(c);
        }
        assert!(u.objects.len() <= MOST_TRACKED);
        assert!(!u.is_flushed(0) && !u.is_flushed(MOST_TRACKED as u64 * 2));
        let f = u.flush_started(true);
        u.flush_ended(f, true);
        assert!(u.is_flushed(0) && u.is_flushed(MOST_TRACKED as u64));
    }

    #[test]
    fn the_server_flushes_only_idle_writers_that_flush_themselves() {
        let t0 = Instant::now();
        let later = t0 + IDLE_BEFORE_FLUSH;
        let mut u = Unflushed::default();
        let a = u.change_started(2..=2, t0);
        u.change_ended(a);
        assert!(
            !u.wants_flush(later),
            "the user never flushed: the cache writes through"
        );
        let f = u.flush_started(true);
        u.flush_ended(f, true);
        assert!(!u.wants_flush(later), "nothing unflushed");
        let b = u.change_started(2..=2, t0);
        assert!(!u.wants_flush(later), "a change in flight");
        u.change_ended(b);
        assert!(!u.wants_flush(t0), "writes have not paused");
        assert!(u.wants_flush(later));
        let f = u.flush_started(false);
        assert!(!u.wants_flush(later), "a flush under way");
        u.flush_ended(f, true);
        assert!(!u.wants_flush(later));
    }
}
