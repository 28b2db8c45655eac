//! RGW's admin API (`/admin/user`, `/admin/bucket`), signed by the store's admin-API user.

use serde::{Deserialize, Serialize};

use crate::{Client, Credentials, ObjectError};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct UserInfo {
    pub user_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub max_buckets: i64,
    #[serde(default)]
    pub suspended: i64,
    #[serde(default)]
    pub caps: Vec<Cap>,
    #[serde(default)]
    pub keys: Vec<KeyInfo>,
    #[serde(default)]
    pub user_quota: Quota,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Cap {
    #[serde(rename = "type")]
    pub kind: String,
    pub perm: String,
}

#[derive(Clone, Default, Deserialize, Serialize)]
pub struct KeyInfo {
    pub user: String,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for KeyInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyInfo({}, {})", self.user, self.access_key)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Quota {
    #[serde(default)]
    pub enabled: bool,
    /// Bytes; -1 means no limit.
    #[serde(default)]
    pub max_size: i64,
    #[serde(default)]
    pub max_objects: i64,
}

/// What a user should be: rookery's reading of a CephObjectStoreUser.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserSettings {
    pub uid: String,
    pub display_name: String,
    /// `users=read;buckets=*`, sorted; empty for none.
    pub caps: String,
    /// None keeps RGW's default (1000 buckets).
    pub max_buckets: Option<u64>,
    /// None: no limit.
    pub max_size: Option<u64>,
    pub max_objects: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct BucketStats {
    pub bucket: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub usage: serde_json::Value,
}

impl BucketStats {
    /// (bytes, objects) stored.
    pub fn usage(&self) -> (u64, u64) {
        let main = self.usage.get("rgw.main");
        let get = |k: &str| {
            main.and_then(|m| m.get(k))
                .and_then(|v| v.as_u64())
                .unwrap_or(0)
        };
        (get("size_actual"), get("num_objects"))
    }
}

pub struct Admin {
    client: Client,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ObjectError> {
    serde_json::from_slice(body).map_err(|e| ObjectError::Decode(e.to_string()))
}

impl Admin {
    pub fn new(host: impl Into<String>, creds: Credentials) -> Admin {
        Admin {
            client: Client::new(host, creds),
        }
    }

    /// None when the user does not exist.
    pub fn user(&self, uid: &str) -> Result<Option<UserInfo>, ObjectError> {
        match self.client.call(
            &format!("reading user {uid}"),
            "GET",
            "/admin/user",
            &[("uid", uid)],
            b"",
        ) {
            Ok(r) => parse(&r.body).map(Some),
            Err(e) if e.code() == Some("NoSuchUser") || e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the user with the given keys, or brings an existing one to `want` (display name, bucket
    /// limit, capabilities, quota). Idempotent.
    pub fn apply_user(&self, want: &UserSettings, keys: &Credentials) -> Result<(), ObjectError> {
        let uid = want.uid.as_str();
        let max_buckets = want.max_buckets.map(|n| n.to_string());
        let current = self.user(uid)?;
        match &current {
            None => {
                let mut q = vec![
                    ("uid", uid),
                    ("display-name", want.display_name.as_str()),
                    ("access-key", keys.access_key.as_str()),
                    ("secret-key", keys.secret_key.as_str()),
                    ("key-type", "s3"),
                ];
                if let Some(m) = &max_buckets {
                    q.push(("max-buckets", m));
                }
                self.client.call(
                    &format!("creating user {uid}"),
                    "PUT",
                    "/admin/user",
                    &q,
                    b"",
                )?;
            }
            Some(have) => {
                let mut q = vec![("uid", uid), ("display-name", want.display_name.as_str())];
                if let Some(m) = &max_buckets {
                    q.push(("max-buckets", m));
                }
                self.client.call(
                    &format!("updating user {uid}"),
                    "POST",
                    "/admin/user",
                    &q,
                    b"",
                )?;
                if !have
                    .keys
                    .iter()
                    .any(|k| k.access_key == keys.access_key && k.secret_key == keys.secret_key)
                {
                    let q = [
                        ("key", ""),
                        ("uid", uid),
                        ("access-key", keys.access_key.as_str()),
                        ("secret-key", keys.secret_key.as_str()),
                        ("key-type", "s3"),
                    ];
                    self.client.call(
                        &format!("restoring the key of {uid}"),
                        "PUT",
                        "/admin/user",
                        &q,
                        b"",
                    )?;
                }
            }
        }
        let have_caps = current.map(|u| u.caps).unwrap_or_default();
        let have_text = caps_text(&have_caps);
        if have_text != want.caps {
            if !have_text.is_empty() {
                self.client.call(
                    &format!("changing the capabilities of {uid}"),
                    "DELETE",
                    "/admin/user",
                    &[("caps", ""), ("uid", uid), ("user-caps", &have_text)],
                    b"",
                )?;
            }
            if !want.caps.is_empty() {
                self.client.call(
                    &format!("changing the capabilities of {uid}"),
                    "PUT",
                    "/admin/user",
                    &[("caps", ""), ("uid", uid), ("user-caps", &want.caps)],
                    b"",
                )?;
            }
        }
        let limited = want.max_size.is_some() || want.max_objects.is_some();
        let size = want.max_size.map_or("-1".to_string(), |n| n.to_string());
        let objects = want.max_objects.map_or("-1".to_string(), |n| n.to_string());
        self.client.call(
            &format!("setting the quota of {uid}"),
            "PUT",
            "/admin/user",
            &[
                ("quota", ""),
                ("uid", uid),
                ("quota-type", "user"),
                ("max-size", &size),
                ("max-objects", &objects),
                ("enabled", if limited { "true" } else { "false" }),
            ],
            b"",
        )?;
        Ok(())
    }

    /// Removes a user; `purge` also deletes its buckets and objects.
    pub fn remove_user(&self, uid: &str, purge: bool) -> Result<(), ObjectError> {
        let purge = if purge { "true" } else { "false" };
        match self.client.call(
            &format!("removing user {uid}"),
            "DELETE",
            "/admin/user",
            &[("uid", uid), ("purge-data", purge)],
            b"",
        ) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NoSuchUser") || e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The names of a user's buckets.
    pub fn buckets(&self, uid: &str) -> Result<Vec<String>, ObjectError> {
        let r = self.client.call(
            &format!("listing the buckets of {uid}"),
            "GET",
            "/admin/bucket",
            &[("uid", uid)],
            b"",
        )?;
        parse(&r.body)
    }

    pub fn bucket_stats(&self, bucket: &str) -> Result<BucketStats, ObjectError> {
        let r = self.client.call(
            &format!("reading bucket {bucket}"),
            "GET",
            "/admin/bucket",
            &[("bucket", bucket), ("stats", "true")],
            b"",
        )?;
        parse(&r.body)
    }

    /// Removes a bucket; `purge` removes its objects too (otherwise a non-empty bucket is refused by RGW).
    pub fn remove_bucket(&self, bucket: &str, purge: bool) -> Result<(), ObjectError> {
        let purge = if purge { "true" } else { "false" };
        self.client.call(
            &format!("removing bucket {bucket}"),
            "DELETE",
            "/admin/bucket",
            &[("bucket", bucket), ("purge-objects", purge)],
            b"",
        )?;
        Ok(())
    }
}

/// Capabilities in RGW's text form, sorted: `buckets=*;users=read`.
pub fn caps_text(caps: &[Cap]) -> String {
    let mut parts: Vec<String> = caps
        .iter()
        .map(|c| format!("{}={}", c.kind, c.perm.replace(' ', "")))
        .collect();
    parts.sort();
    parts.join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_sorted_text() {
        let caps = vec![
            Cap {
                kind: "users".into(),
                perm: "read, write".into(),
            },
            Cap {
                kind: "buckets".into(),
                perm: "*".into(),
            },
        ];
        assert_eq!(caps_text(&caps), "buckets=*;users=read,write");
    }

    #[test]
    fn bucket_usage() {
        let s: BucketStats = serde_json::from_str(
            r#"{"bucket":"b","owner":"o","usage":{"rgw.main":{"size_actual":4096,"num_objects":2}}}"#,
        )
        .unwrap();
        assert_eq!(s.usage(), (4096, 2));
    }
}
