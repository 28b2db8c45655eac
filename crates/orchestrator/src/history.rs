//! The last hour of the cluster's capacity and client I/O, sampled by the supervisor every
//! [`INTERVAL`] for the dashboard's charts (Prometheus keeps longer histories from `/metrics`; this is
//! for a person who has none).

use std::collections::VecDeque;
use std::time::Duration;

use rookery_ceph::types::{Df, Status};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const INTERVAL: Duration = Duration::from_secs(10);
/// One hour of samples.
pub const KEPT: usize = 360;

/// One sample: capacity now, and client I/O as counters since the pools were made (rates are the
/// differences between samples; a removed pool can make a counter drop).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sample {
    pub unix: u64,
    pub raw_capacity_bytes: u64,
    pub raw_used_bytes: u64,
    pub stored_bytes: u64,
    pub read_ops: u64,
    pub write_ops: u64,
    pub read_bytes: u64,
    pub written_bytes: u64,
    pub degraded_objects: u64,
}

impl Sample {
    pub fn from_ceph(unix: u64, df: &Df, status: &Status) -> Sample {
        let sum = |f: fn(&rookery_ceph::types::DfPoolStats) -> u64| {
            df.pools.iter().map(|p| f(&p.stats)).sum()
        };
        Sample {
            unix,
            raw_capacity_bytes: df.stats.total_bytes,
            raw_used_bytes: df.stats.total_used_raw_bytes,
            stored_bytes: sum(|s| s.stored),
            read_ops: sum(|s| s.rd),
            write_ops: sum(|s| s.wr),
            read_bytes: sum(|s| s.rd_bytes),
            written_bytes: sum(|s| s.wr_bytes),
            degraded_objects: status.pgmap.degraded_objects,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct History {
    pub interval_secs: u64,
    /// Oldest first, at most an hour.
    pub samples: Vec<Sample>,
}

/// The samples of the last hour, oldest dropped first.
#[derive(Debug, Default)]
pub struct Recorder {
    samples: VecDeque<Sample>,
}

impl Recorder {
    pub fn record(&mut self, sample: Sample) {
        if self.samples.len() == KEPT {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub fn history(&self) -> History {
        History {
            interval_secs: INTERVAL.as_secs(),
            samples: self.samples.iter().copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_is_kept_oldest_first() {
        let mut r = Recorder::default();
        for unix in 0..(KEPT as u64 + 5) {
            r.record(Sample {
                unix,
                ..Default::default()
            });
        }
        let h = r.history();
        assert_eq!(h.samples.len(), KEPT);
        assert_eq!(h.samples[0].unix, 5);
        assert_eq!(h.samples[KEPT - 1].unix, KEPT as u64 + 4);
        assert_eq!(h.interval_secs, 10);
    }

    #[test]
    fn a_sample_adds_up_the_pools() {
        let df: Df = serde_json::from_value(serde_json::json!({
            "stats": {"total_bytes": 100, "total_used_raw_bytes": 30, "total_avail_bytes": 70},
            "pools": [
                {"name": "a", "stats": {"stored": 5, "rd": 1, "wr": 2, "rd_bytes": 10, "wr_bytes": 20}},
                {"name": "b", "stats": {"stored": 6, "rd": 3, "wr": 4, "rd_bytes": 30, "wr_bytes": 40}}
            ]
        }))
        .unwrap();
        let status: Status =
            serde_json::from_value(serde_json::json!({"pgmap": {"degraded_objects": 7}})).unwrap();
        let s = Sample::from_ceph(9, &df, &status);
        assert_eq!(
            s,
            Sample {
                unix: 9,
                raw_capacity_bytes: 100,
                raw_used_bytes: 30,
                stored_bytes: 11,
                read_ops: 4,
                write_ops: 6,
                read_bytes: 40,
                written_bytes: 60,
                degraded_objects: 7,
            }
        );
    }
}
