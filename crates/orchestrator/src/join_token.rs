//! Join tokens: what `rookery host add NAME` prints and `rookery join TOKEN` presents (the multi-host
//! issue). A token names the cluster, the host it is for, the members to ask, a one-time secret and the
//! fingerprint of the cluster's certificate, so the joiner sends the secret only to a member that proves
//! it holds that certificate. The member keeps only the secret's digest, the host name and an expiry
//! (in the mons' config-key store, which any `r` cap can read), and removes the record when the token is
//! redeemed, so a token works once.
//!
//! Everything here is pure: the encoding, and the decision whether a presented token is accepted.

use std::net::SocketAddr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// The token format's version.
const VERSION: u8 = 1;
/// What every token starts with, so a pasted string is recognised (and a wrong paste named).
const PREFIX: &str = "rookery-join-";

/// What a token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    pub v: u8,
    /// The cluster's fsid.
    pub cluster: String,
    /// The host it lets join.
    pub host: String,
    /// Members to ask, in order.
    pub members: Vec<SocketAddr>,
    /// SHA-256 of the cluster certificate (DER), lowercase hex.
    pub fingerprint: String,
    /// 32 random bytes, base64url.
    pub secret: String,
}

/// What the member that issued a token keeps of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub host: String,
    pub expires_unix: u64,
    /// The member that redeems it (config-key has no compare-and-set: one redeemer per token).
    pub issuer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this is not a rookery join token (it starts with {PREFIX:?}); copy the whole line `rookery host add` printed")]
    NotAToken,
    #[error("the join token is damaged ({0}); copy the whole line `rookery host add` printed")]
    Damaged(String),
    #[error("the join token has version {0}, which this rookery does not read; use the same rookery version on both hosts")]
    Version(u8),
    #[error("the join token was made for host {made_for:?}, not {this:?}; run `rookery host add {this}` on a member for a token of this host")]
    OtherHost { made_for: String, this: String },
    #[error("the join token belongs to cluster {token}, but this host already belongs to cluster {ours}; a host joins one cluster: remove it from the other first (`rookery host rm` there)")]
    OtherCluster { token: String, ours: String },
    #[error("the join token is not known to the cluster: it was used already, revoked, or never issued; run `rookery host add {host}` on a member for a new one")]
    Unknown { host: String },
    #[error("the join token expired {ago_secs} s ago; run `rookery host add {host}` on a member for a new one")]
    Expired { host: String, ago_secs: u64 },
}

impl JoinToken {
    /// A new token for `host` with a fresh secret (32 bytes from the caller's random source).
    pub fn new(
        cluster: &str,
        host: &str,
        members: Vec<SocketAddr>,
        fingerprint: &str,
        secret: [u8; 32],
    ) -> JoinToken {
        JoinToken {
            v: VERSION,
            cluster: cluster.to_string(),
            host: host.to_string(),
            members,
            fingerprint: fingerprint.to_ascii_lowercase(),
            secret: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        }
    }

    /// The one line printed for the user.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    /// Reads a pasted token (surrounding whitespace ignored).
    pub fn decode(text: &str) -> Result<JoinToken, TokenError> {
        let body = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(TokenError::NotAToken)?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Damaged("not base64url".into()))?;
        #[derive(Deserialize)]
        struct Versioned {
            v: u8,
        }
        let v: Versioned =
            serde_json::from_slice(&json).map_err(|e| TokenError::Damaged(e.to_string()))?;
        if v.v != VERSION {
            return Err(TokenError::Version(v.v));
        }
        let token: JoinToken =
            serde_json::from_slice(&json).map_err(|e| TokenError::Damaged(e.to_string()))?;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token.secret)
            .map_err(|_| TokenError::Damaged("the secret is not base64url".into()))?;
        if secret.len() != 32 {
            return Err(TokenError::Damaged("the secret is not 32 bytes".into()));
        }
        if token.members.is_empty() {
            return Err(TokenError::Damaged("it names no member".into()));
        }
        if token.fingerprint.len() != 64
            || !token.fingerprint.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(TokenError::Damaged(
                "the fingerprint is not a SHA-256".into(),
            ));
        }
        Ok(token)
    }

    /// The key its record is kept under: the secret's digest, so reading the store reveals no secret.
    pub fn record_key(&self) -> String {
        record_key(&self.secret)
    }

    /// What the joining host checks before it presents the token: that it is for this host, and that
    /// the host is not a member of another cluster (`ours`: the cluster this host's data dir holds).
    pub fn fits_this_host(&self, this_host: &str, ours: Option<&str>) -> Result<(), TokenError> {
        if self.host != this_host {
            return Err(TokenError::OtherHost {
                made_for: self.host.clone(),
                this: this_host.to_string(),
            });
        }
        match ours {
            Some(fsid) if fsid != self.cluster => Err(TokenError::OtherCluster {
                token: self.cluster.clone(),
                ours: fsid.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

/// Checks a host's name: CRUSH names its bucket after it and commands take it as an argument.
pub fn check_host_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    if name.is_empty() || name.len() > 63 {
        return Err(format!("{name:?} must be 1 to 63 characters"));
    }
    if !name.chars().all(ok_char) || name.starts_with(['-', '.']) {
        return Err(format!(
            "{name:?} may hold only letters, digits, '-', '_' and '.', and must start with a letter or digit"
        ));
    }
    Ok(())
}

/// Where issued tokens' records live.
pub const RECORDS: &str = "rookery/join/";

/// `rookery/join/<sha256 of the secret, hex>`.
pub fn record_key(secret: &str) -> String {
    let digest = sha2::Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{RECORDS}{hex}")
}

/// The member's decision on a presented token: `issued` is the record found under its key (None: used
/// already, revoked or never issued). On Ok the caller removes the record before it answers.
pub fn redeem(
    issued: Option<&IssuedToken>,
    presented: &JoinToken,
    now_unix: u64,
) -> Result<(), TokenError> {
    let unknown = || TokenError::Unknown {
        host: presented.host.clone(),
    };
    let issued = issued.ok_or_else(unknown)?;
    // A record under this secret's digest for another host means the token was altered.
    if issued.host != presented.host {
        return Err(unknown());
    }
    if now_unix >= issued.expires_unix {
        return Err(TokenError::Expired {
            host: presented.host.clone(),
            ago_secs: now_unix - issued.expires_unix,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> JoinToken {
        JoinToken::new(
            "5f0c2e9a-1111-4c3e-9a52-6a1f0b7c2d11",
            "host2",
            vec!["10.77.0.1:7443".parse().unwrap()],
            &"AB".repeat(32),
            [7u8; 32],
        )
    }

    #[test]
    fn host_names_are_checked() {
        assert!(check_host_name("host2").is_ok());
        assert!(check_host_name("node-1.example").is_ok());
        assert!(check_host_name("").is_err());
        assert!(check_host_name("-x").is_err());
        assert!(check_host_name("a b").is_err());
        assert!(check_host_name(&"x".repeat(64)).is_err());
    }

    #[test]
    fn a_token_reads_back_as_written() {
        let t = token();
        let line = t.encode();
        assert!(line.starts_with("rookery-join-"), "{line}");
        assert!(!line.contains(['+', '/', '=', '\n']), "{line}");
        assert_eq!(JoinToken::decode(&format!("  {line}\n")).unwrap(), t);
        assert_eq!(t.fingerprint, "ab".repeat(32));
    }

    #[test]
    fn damaged_tokens_are_named() {
        assert_eq!(JoinToken::decode("hello"), Err(TokenError::NotAToken));
        let line = token().encode();
        let cut = &line[..line.len() - 10];
        assert!(matches!(
            JoinToken::decode(cut),
            Err(TokenError::Damaged(_))
        ));
        let mut other = token();
        other.v = 9;
        let text = format!(
            "rookery-join-{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::to_vec(&other).unwrap())
        );
        assert_eq!(JoinToken::decode(&text), Err(TokenError::Version(9)));
        let mut short = token();
        short.secret = "c2hvcnQ".into();
        assert!(matches!(
            JoinToken::decode(&short.encode()),
            Err(TokenError::Damaged(m)) if m.contains("32 bytes")
        ));
        let mut bare = token();
        bare.members.clear();
        assert!(JoinToken::decode(&bare.encode()).is_err());
    }

    #[test]
    fn a_token_is_for_one_host_of_one_cluster() {
        let t = token();
        assert_eq!(t.fits_this_host("host2", None), Ok(()));
        assert_eq!(t.fits_this_host("host2", Some(&t.cluster.clone())), Ok(()));
        let e = t.fits_this_host("host3", None).unwrap_err();
        assert!(e.to_string().contains("rookery host add host3"), "{e}");
        let e = t.fits_this_host("host2", Some("other-fsid")).unwrap_err();
        assert!(matches!(e, TokenError::OtherCluster { .. }));
        assert!(e.to_string().contains("other-fsid"), "{e}");
    }

    #[test]
    fn a_token_is_accepted_once_before_it_expires() {
        let t = token();
        let issued = IssuedToken {
            host: "host2".into(),
            expires_unix: 1_000,
            issuer: "host1".into(),
        };
        assert_eq!(redeem(Some(&issued), &t, 999), Ok(()));
        // Removed once redeemed: a second use finds nothing.
        let e = redeem(None, &t, 999).unwrap_err();
        assert!(e.to_string().contains("used already"), "{e}");
        assert_eq!(
            redeem(Some(&issued), &t, 1_030),
            Err(TokenError::Expired {
                host: "host2".into(),
                ago_secs: 30
            })
        );
        let for_other = IssuedToken {
            host: "host9".into(),
            ..issued
        };
        assert!(matches!(
            redeem(Some(&for_other), &t, 10),
            Err(TokenError::Unknown { .. })
        ));
    }

    #[test]
    fn the_record_key_hides_the_secret() {
        let t = token();
        let key = t.record_key();
        assert!(key.starts_with("rookery/join/"));
        assert_eq!(key.len(), "rookery/join/".len() + 64);
        assert!(!key.contains(&t.secret));
        assert_eq!(key, record_key(&t.secret));
    }
}
