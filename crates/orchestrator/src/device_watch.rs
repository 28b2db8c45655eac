//! The home host's devices, read every few seconds while the spec selects devices or the cluster has OSDs
//! on them, with how long each has looked blank and unused (a device is taken only once it has settled:
//! one attached a moment ago may be about to get a filesystem from whoever attached it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rookery_platform::devices::Device;

/// How often the devices are read again (each read opens every device and reads its first 68 KiB).
pub const READ_EVERY: Duration = Duration::from_secs(2);
/// How long a device must look blank and unused before it is taken.
pub const SETTLE: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
pub struct DeviceWatch {
    read_at: Option<Instant>,
    devices: Vec<Device>,
    /// Device path -> since when it has looked blank and unused, with its size then.
    quiet_since: BTreeMap<PathBuf, (Instant, u64)>,
}

/// Nothing on it, nobody using it: what a device must look like, for a while, to be taken.
fn quiet(d: &Device) -> bool {
    d.signature.is_none()
        && d.probe_error.is_none()
        && !d.busy
        && d.mounts.is_empty()
        && d.holders.is_empty()
        && d.partitions.is_empty()
}

impl DeviceWatch {
    /// Whether the devices are due to be read again at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.read_at
            .is_none_or(|t| now.duration_since(t) >= READ_EVERY)
    }

    /// Takes a fresh read of the devices, made at `now`.
    pub fn update(&mut self, devices: Vec<Device>, now: Instant) {
        let mut since = BTreeMap::new();
        for d in devices.iter().filter(|d| quiet(d)) {
            let kept = self
                .quiet_since
                .get(&d.path)
                .filter(|(_, size)| *size == d.size_bytes)
                .map_or(now, |(t, _)| *t);
            since.insert(d.path.clone(), (kept, d.size_bytes));
        }
        self.quiet_since = since;
        self.devices = devices;
        self.read_at = Some(now);
    }

    /// Forgets what was read, so the next pass reads again (after the cluster changed a device).
    pub fn invalidate(&mut self) {
        self.read_at = None;
    }

    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The devices that have looked blank and unused for `SETTLE` at `now`.
    pub fn settled(&self, now: Instant) -> BTreeSet<PathBuf> {
        self.quiet_since
            .iter()
            .filter(|(_, (t, _))| now.duration_since(*t) >= SETTLE)
            .map(|(p, _)| p.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rookery_platform::devices::{DeviceKind, Signature};

    fn loop_device(name: &str) -> Device {
        crate::disks::tests::device(name, DeviceKind::Loop, 6)
    }

    #[test]
    fn a_device_settles_only_after_looking_blank_for_a_while() {
        let t0 = Instant::now();
        let mut w = DeviceWatch::default();
        assert!(w.due(t0));
        w.update(vec![loop_device("loop7")], t0);
        assert!(!w.due(t0 + Duration::from_secs(1)));
        assert!(w.settled(t0 + Duration::from_secs(1)).is_empty());
        w.update(vec![loop_device("loop7")], t0 + Duration::from_secs(2));
        assert_eq!(w.settled(t0 + SETTLE), [PathBuf::from("/dev/loop7")].into());

        // Formatted meanwhile, then wiped again: the clock starts over.
        let mut formatted = loop_device("loop7");
        formatted.signature = Some(Signature::Filesystem {
            fstype: "ext4".into(),
        });
        w.update(vec![formatted], t0 + Duration::from_secs(4));
        assert!(w.settled(t0 + Duration::from_secs(4)).is_empty());
        w.update(vec![loop_device("loop7")], t0 + Duration::from_secs(6));
        assert!(w.settled(t0 + Duration::from_secs(8)).is_empty());
        assert_eq!(w.settled(t0 + Duration::from_secs(9)).len(), 1);

        // Re-attached to a file of another size: a new device as far as settling goes.
        let mut bigger = loop_device("loop7");
        bigger.size_bytes = 8 << 30;
        w.update(vec![bigger], t0 + Duration::from_secs(10));
        assert!(w.settled(t0 + Duration::from_secs(10)).is_empty());
        w.invalidate();
        assert!(w.due(t0 + Duration::from_secs(10)));
    }
}
