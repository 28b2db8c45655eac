//! Whether a volume being mounted gets a filesystem made on it: a pure decision over facts gathered by the
//! attach code, because formatting the wrong device destroys data and every way to be wrong must be tested.

/// What `blkid -p` said about the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// Nothing found, and nothing said on stderr.
    Blank,
    /// "Nothing found", but with complaints: it may not have read the device at all.
    Unclear(String),
    /// A filesystem type (`ext4`), partition table (`dos`) or other signature.
    Found(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatFacts<'a> {
    pub volume: &'a str,
    /// Map-only (raw block) use: the workload owns the device.
    pub raw: bool,
    pub read_only: bool,
    pub signature: Signature,
    /// Bytes librbd reports allocated in the image itself (not its parent's). Only read for a blank
    /// signature: they are not needed otherwise and cost a diff of the whole image.
    pub allocated: u64,
    /// The image is a clone still linked to its parent. Read only for a blank signature, as `allocated`.
    pub clone: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatDecision {
    /// Raw block: no filesystem is looked for, made or mounted.
    MapOnly,
    /// Blank by every account: make the image's filesystem.
    Format,
    /// Mount the filesystem that is there.
    Mount(String),
    /// Leave the device untouched; the text says why (a bad request: nothing was changed).
    Refuse(String),
}

/// Filesystems rookery mounts.
const MOUNTABLE: &[&str] = &["ext4", "xfs"];

/// Formats only when three answers agree the device is blank: blkid finds nothing and complains about
/// nothing, librbd reports no data written, and the image inherits none from a parent.
pub fn decide_format(f: &FormatFacts) -> FormatDecision {
    if f.raw {
        return FormatDecision::MapOnly;
    }
    match &f.signature {
        Signature::Found(fs) if MOUNTABLE.contains(&fs.as_str()) => FormatDecision::Mount(fs.clone()),
        Signature::Found(other) => FormatDecision::Refuse(format!(
            "volume {} carries {other}, not a filesystem rookery mounts (ext4, xfs); it was left untouched",
            f.volume
        )),
        Signature::Unclear(stderr) => FormatDecision::Refuse(format!(
            "blkid could not tell what volume {} holds ({stderr}); it was left untouched",
            f.volume
        )),
        Signature::Blank if f.read_only => FormatDecision::Refuse(format!(
            "volume {} is blank; mount it read-write once so it gets a filesystem",
            f.volume
        )),
        Signature::Blank if f.allocated > 0 => FormatDecision::Refuse(format!(
            "volume {} holds data ({} allocated bytes) but no filesystem rookery recognises; it was left untouched",
            f.volume, f.allocated
        )),
        Signature::Blank if f.clone => FormatDecision::Refuse(format!(
            "volume {} holds data (0 allocated, inherited from its parent) but no filesystem rookery recognises; it was left untouched",
            f.volume
        )),
        Signature::Blank => FormatDecision::Format,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank() -> FormatFacts<'static> {
        FormatFacts {
            volume: "v",
            raw: false,
            read_only: false,
            signature: Signature::Blank,
            allocated: 0,
            clone: false,
        }
    }

    fn refused(f: &FormatFacts) -> bool {
        matches!(decide_format(f), FormatDecision::Refuse(_))
    }

    #[test]
    fn formats_only_a_device_blank_by_every_account() {
        assert_eq!(decide_format(&blank()), FormatDecision::Format);
        assert!(refused(&FormatFacts {
            allocated: 4096,
            ..blank()
        }));
        assert!(refused(&FormatFacts {
            clone: true,
            ..blank()
        }));
        assert!(refused(&FormatFacts {
            read_only: true,
            ..blank()
        }));
        assert!(refused(&FormatFacts {
            signature: Signature::Unclear("cannot read".into()),
            ..blank()
        }));
    }

    #[test]
    fn mounts_known_filesystems_and_leaves_everything_else() {
        for fs in ["ext4", "xfs"] {
            let f = FormatFacts {
                signature: Signature::Found(fs.into()),
                // Data is what a filesystem has: it does not stop the mount.
                allocated: 1 << 20,
                clone: true,
                ..blank()
            };
            assert_eq!(decide_format(&f), FormatDecision::Mount(fs.into()));
            let ro = FormatFacts {
                read_only: true,
                ..f.clone()
            };
            assert_eq!(decide_format(&ro), FormatDecision::Mount(fs.into()));
        }
        for other in ["dos", "gpt", "btrfs", "unknown signature"] {
            let f = FormatFacts {
                signature: Signature::Found(other.into()),
                ..blank()
            };
            match decide_format(&f) {
                FormatDecision::Refuse(why) => assert!(why.contains(other), "{why}"),
                d => panic!("{other}: {d:?}"),
            }
        }
    }

    #[test]
    fn a_raw_block_volume_is_never_formatted() {
        for signature in [
            Signature::Blank,
            Signature::Found("ext4".into()),
            Signature::Unclear("x".into()),
        ] {
            let f = FormatFacts {
                raw: true,
                signature,
                ..blank()
            };
            assert_eq!(decide_format(&f), FormatDecision::MapOnly);
        }
    }
}
