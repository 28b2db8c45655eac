//! The few pieces of Ceph's binary encoding we read from object-class calls and notify replies
//! (little-endian integers, u32-length-prefixed strings and lists). `None` for a short or malformed buffer.

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?) as usize)
}

/// A string: u32 length, then the bytes.
pub(crate) fn string(b: &[u8]) -> Option<String> {
    let len = u32_at(b, 0)?;
    String::from_utf8(b.get(4..4 + len)?.to_vec()).ok()
}

/// The number of snapshots in a SnapContext: u64 sequence, u32 count, then the ids.
pub(crate) fn snapshot_count(b: &[u8]) -> Option<usize> {
    let n = u32_at(b, 8)?;
    (b.len() >= 12 + 8 * n).then_some(n)
}

/// The watchers in a notify reply: a map of (watcher, cookie) -> answer, then the list of (watcher,
/// cookie) pairs that did not answer. An empty reply has none.
pub(crate) fn notify_watchers(b: &[u8]) -> Option<usize> {
    if b.is_empty() {
        return Some(0);
    }
    let answered = u32_at(b, 0)?;
    let mut at = 4usize;
    for _ in 0..answered {
        at += 16; // watcher id, cookie
        at += 4 + u32_at(b, at)?; // the answer's payload
    }
    let silent = u32_at(b, at)?;
    (b.len() >= at + 4 + 16 * silent).then_some(answered + silent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_ids_and_snapshot_counts() {
        let mut id = 12u32.to_le_bytes().to_vec();
        id.extend_from_slice(b"134953111c5a");
        assert_eq!(string(&id).as_deref(), Some("134953111c5a"));
        assert_eq!(string(&id[..10]), None);
        let mut snapc = 7u64.to_le_bytes().to_vec();
        snapc.extend_from_slice(&2u32.to_le_bytes());
        snapc.extend_from_slice(&5u64.to_le_bytes());
        snapc.extend_from_slice(&6u64.to_le_bytes());
        assert_eq!(snapshot_count(&snapc), Some(2));
        assert_eq!(snapshot_count(&snapc[..20]), None);
        let mut empty = 0u64.to_le_bytes().to_vec();
        empty.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(snapshot_count(&empty), Some(0));
    }

    #[test]
    fn counts_answered_and_silent_watchers() {
        assert_eq!(notify_watchers(&[]), Some(0));
        let mut b = 2u32.to_le_bytes().to_vec();
        for (gid, payload) in [(1u64, &b"ok"[..]), (2, &b""[..])] {
            b.extend_from_slice(&gid.to_le_bytes());
            b.extend_from_slice(&9u64.to_le_bytes());
            b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            b.extend_from_slice(payload);
        }
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&3u64.to_le_bytes());
        b.extend_from_slice(&9u64.to_le_bytes());
        assert_eq!(notify_watchers(&b), Some(3));
        assert_eq!(notify_watchers(&b[..b.len() - 1]), None);
    }
}
