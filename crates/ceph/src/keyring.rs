//! cephx secrets and keyring files, made natively (no `ceph-authtool` exec).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::CephError;

/// A new cephx secret in Ceph's encoding: base64 of {u16 type = 1 (AES), u32 sec, u32 nsec, u16 len = 16,
/// 16 random bytes}, all little-endian, which is what `ceph-authtool --gen-print-key` prints.
pub fn generate_secret() -> Result<String, CephError> {
    let mut secret = [0u8; 16];
    getrandom::getrandom(&mut secret)
        .map_err(|e| CephError::InvalidArgument(format!("no randomness: {e}")))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut raw = Vec::with_capacity(28);
    raw.extend_from_slice(&1u16.to_le_bytes());
    raw.extend_from_slice(&(now.as_secs() as u32).to_le_bytes());
    raw.extend_from_slice(&now.subsec_nanos().to_le_bytes());
    raw.extend_from_slice(&16u16.to_le_bytes());
    raw.extend_from_slice(&secret);
    Ok(base64::engine::general_purpose::STANDARD.encode(raw))
}

/// One entity of a keyring: its name (`mon.`, `client.admin`, `osd.0`), secret and capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringEntry {
    pub entity: String,
    pub key: String,
    pub caps: Vec<(String, String)>,
}

impl KeyringEntry {
    pub fn new(entity: &str, key: &str, caps: &[(&str, &str)]) -> KeyringEntry {
        KeyringEntry {
            entity: entity.to_string(),
            key: key.to_string(),
            caps: caps
                .iter()
                .map(|(s, c)| (s.to_string(), c.to_string()))
                .collect(),
        }
    }
}

/// The text of a keyring file.
pub fn render(entries: &[KeyringEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        let _ = writeln!(out, "[{}]", e.entity);
        let _ = writeln!(out, "\tkey = {}", e.key);
        for (svc, cap) in &e.caps {
            let _ = writeln!(out, "\tcaps {svc} = \"{cap}\"");
        }
    }
    out
}

/// Writes a keyring readable by its owner only.
pub fn write(path: &Path, entries: &[KeyringEntry]) -> Result<(), CephError> {
    crate::conf::write_atomic(path, render(entries).as_bytes(), 0o600)
}

/// The secret of `entity` in a keyring file's text.
pub fn find_key(text: &str, entity: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name == entity;
        } else if in_section {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == "key" {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_cephs_encoding_and_differ() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("AQ"), "{a}");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&a)
            .unwrap();
        assert_eq!(raw.len(), 28);
        assert_eq!(&raw[10..12], &16u16.to_le_bytes());
    }

    #[test]
    fn render_and_find_round_trip() {
        let text = render(&[
            KeyringEntry::new("mon.", "K1", &[("mon", "allow *")]),
            KeyringEntry::new(
                "client.admin",
                "K2",
                &[("mon", "allow *"), ("osd", "allow *")],
            ),
        ]);
        assert!(text.contains("[client.admin]\n\tkey = K2\n\tcaps mon = \"allow *\"\n"));
        assert_eq!(find_key(&text, "client.admin").as_deref(), Some("K2"));
        assert_eq!(find_key(&text, "mon.").as_deref(), Some("K1"));
        assert_eq!(find_key(&text, "osd.0"), None);
    }
}
