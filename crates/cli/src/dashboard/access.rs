//! Who may use the dashboard: one access key (random, shown once when made, only its SHA-256 kept, in a
//! 0600 file), sessions that expire, and a CSRF token per session that every change must carry.
//!
//! The key is 192 random bits, so a fast hash is enough: nobody can guess it, and the digest on disk
//! cannot be turned back into it.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// A session ends after this long without a request...
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// ...and this long after the login in any case.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("no random numbers from the system: {0}")]
    Random(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} does not hold an access key digest; `rookery dashboard rotate-key` makes a new key"
    )]
    Corrupt { path: String },
}

fn random_text(bytes: usize) -> Result<String, AccessError> {
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).map_err(|e| AccessError::Random(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// The hex SHA-256 of `text`.
pub fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The digest of the key in force, or None when no key was ever made.
pub fn read_digest(path: &Path) -> Result<Option<String>, AccessError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let d = text.trim();
            if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(Some(d.to_ascii_lowercase()))
            } else {
                Err(AccessError::Corrupt {
                    path: path.display().to_string(),
                })
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AccessError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Makes a new key, keeps its digest (replacing any older one, which stops its sessions) and returns
/// the key: the only time it exists outside the person's hands.
pub fn new_key(path: &Path) -> Result<String, AccessError> {
    let key = random_text(24)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| AccessError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    rookery_ceph::conf::write_atomic(path, format!("{}\n", digest(&key)).as_bytes(), 0o600)
        .map_err(|e| AccessError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
    Ok(key)
}

/// A new key only when none exists: what `up` does, so the key is printed once, the first time.
pub fn ensure_key(path: &Path) -> Result<Option<String>, AccessError> {
    match read_digest(path)? {
        Some(_) => Ok(None),
        None => new_key(path).map(Some),
    }
}

/// Whether `offered` is the key whose digest is `expected`.
pub fn key_matches(offered: &str, expected: &str) -> bool {
    same(&digest(offered.trim()), expected)
}

/// Where keys made for programs on this host (`rookery bench dashboard`) are kept beside the person's
/// key, one `LABEL.sha256` each, for as long as the program runs.
pub fn extra_keys_dir(main: &Path) -> std::path::PathBuf {
    main.with_file_name("keys.d")
}

/// The digests of every key in force: the person's (when made) and the programs' of `extra_keys_dir`.
pub fn digests_in_force(main: &Path) -> Result<Vec<String>, AccessError> {
    let mut out: Vec<String> = read_digest(main)?.into_iter().collect();
    let dir = extra_keys_dir(main);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(AccessError::Io {
                path: dir.display().to_string(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "sha256") {
            out.extend(read_digest(&path)?);
        }
    }
    Ok(out)
}

/// The digest among `in_force` that `offered` is the key of.
pub fn matching<'a>(offered: &str, in_force: &'a [String]) -> Option<&'a String> {
    in_force.iter().find(|d| key_matches(offered, d))
}

/// A key for a program of this host, in force until its file goes: the key and the file.
pub fn add_extra_key(
    main: &Path,
    label: &str,
) -> Result<(String, std::path::PathBuf), AccessError> {
    let file = extra_keys_dir(main).join(format!("{label}.sha256"));
    let key = new_key(&file)?;
    Ok((key, file))
}

#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    /// The key in force at the login: a new key ends every older session.
    key_digest: String,
    started: Instant,
    last_seen: Instant,
}

impl Session {
    fn live(&self, now: Instant, in_force: &[String]) -> bool {
        in_force.iter().any(|d| same(&self.key_digest, d))
            && now.duration_since(self.last_seen) < IDLE
            && now.duration_since(self.started) < LIFETIME
    }
}

/// The sessions of logged-in browsers, by the digest of their cookie's token (so a lookup's timing says
/// nothing about a token).
#[derive(Debug, Default)]
pub struct Sessions {
    by_token: HashMap<String, Session>,
}

/// What a live session allows: its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub csrf: String,
}

impl Sessions {
    /// A new session for a browser that gave the key of `key_digest`: its cookie token and CSRF token.
    /// Sessions of keys no longer `in_force`, or too old, are forgotten.
    pub fn open(
        &mut self,
        key_digest: &str,
        in_force: &[String],
        now: Instant,
    ) -> Result<(String, Granted), AccessError> {
        self.by_token.retain(|_, s| s.live(now, in_force));
        let token = random_text(32)?;
        let csrf = random_text(24)?;
        self.by_token.insert(
            digest(&token),
            Session {
                csrf: csrf.clone(),
                key_digest: key_digest.to_string(),
                started: now,
                last_seen: now,
            },
        );
        Ok((token, Granted { csrf }))
    }

    /// The session of `token` if it is live (and now seen again); a dead one is forgotten.
    pub fn check(&mut self, token: &str, in_force: &[String], now: Instant) -> Option<Granted> {
        let id = digest(token);
        let session = self.by_token.get_mut(&id)?;
        if !session.live(now, in_force) {
            self.by_token.remove(&id);
            return None;
        }
        session.last_seen = now;
        Some(Granted {
            csrf: session.csrf.clone(),
        })
    }

    pub fn close(&mut self, token: &str) {
        self.by_token.remove(&digest(token));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_token.len()
    }
}

/// Whether a change request carries its session's CSRF token.
pub fn csrf_matches(granted: &Granted, offered: Option<&str>) -> bool {
    offered.is_some_and(|o| same(o, &granted.csrf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_only_its_digest_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dashboard/access-key.sha256");
        let key = ensure_key(&path).unwrap().expect("a new key");
        assert!(key.len() >= 32, "{key}");
        assert_eq!(ensure_key(&path).unwrap(), None, "made twice");
        let kept = std::fs::read_to_string(&path).unwrap();
        assert!(!kept.contains(&key));
        let digest = read_digest(&path).unwrap().unwrap();
        assert!(key_matches(&key, &digest));
        assert!(key_matches(&format!(" {key}\n"), &digest));
        assert!(!key_matches("wrong", &digest));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let rotated = new_key(&path).unwrap();
        assert_ne!(rotated, key);
        let now = read_digest(&path).unwrap().unwrap();
        assert!(!key_matches(&key, &now) && key_matches(&rotated, &now));
    }

    #[test]
    fn a_damaged_digest_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "not a digest").unwrap();
        let e = read_digest(&path).unwrap_err().to_string();
        assert!(e.contains("rotate-key"), "{e}");
    }

    #[test]
    fn sessions_end_when_idle_when_old_and_when_the_key_changes() {
        let t0 = Instant::now();
        let k1 = vec!["k1".to_string()];
        let mut s = Sessions::default();
        let (token, granted) = s.open("k1", &k1, t0).unwrap();
        assert_eq!(s.check(&token, &k1, t0), Some(granted.clone()));
        assert_eq!(s.check("other", &k1, t0), None);
        // Requests keep it alive past the idle time, but not past its lifetime.
        let mut t = t0;
        while t.duration_since(t0) < LIFETIME - IDLE {
            t += IDLE / 2;
            assert!(s.check(&token, &k1, t).is_some());
        }
        assert!(s.check(&token, &k1, t0 + LIFETIME).is_none());
        assert_eq!(s.len(), 0, "a dead session is forgotten");

        let (token, _) = s.open("k1", &k1, t0).unwrap();
        assert!(s.check(&token, &k1, t0 + IDLE).is_none(), "idle");
        let (token, _) = s.open("k1", &k1, t0).unwrap();
        assert!(
            s.check(&token, &["k2".to_string()], t0).is_none(),
            "a new key"
        );
        let both = vec!["k2".to_string(), "k1".to_string()];
        let (token, _) = s.open("k1", &k1, t0).unwrap();
        assert!(s.check(&token, &both, t0).is_some(), "another key added");
        s.close(&token);
        assert!(s.check(&token, &k1, t0).is_none(), "logged out");
    }

    #[test]
    fn program_keys_stand_beside_the_persons_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("dashboard/access-key.sha256");
        assert!(digests_in_force(&main).unwrap().is_empty());
        let person = ensure_key(&main).unwrap().unwrap();
        let (program, file) = add_extra_key(&main, "bench-1").unwrap();
        let in_force = digests_in_force(&main).unwrap();
        assert_eq!(in_force.len(), 2);
        assert!(matching(&person, &in_force).is_some());
        assert!(matching(&program, &in_force).is_some());
        assert!(matching("nobody", &in_force).is_none());
        std::fs::remove_file(file).unwrap();
        let in_force = digests_in_force(&main).unwrap();
        assert!(matching(&program, &in_force).is_none());
        assert!(matching(&person, &in_force).is_some());
    }

    #[test]
    fn a_change_needs_the_sessions_csrf_token() {
        let mut s = Sessions::default();
        let k = vec!["k".to_string()];
        let (_, g) = s.open("k", &k, Instant::now()).unwrap();
        let (_, other) = s.open("k", &k, Instant::now()).unwrap();
        assert!(csrf_matches(&g, Some(&g.csrf)));
        assert!(!csrf_matches(&g, None));
        assert!(!csrf_matches(&g, Some(&other.csrf)));
        assert!(!csrf_matches(&g, Some("")));
    }
}
