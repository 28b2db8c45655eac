//! Users and buckets of an object store as clients see them (`rookery object`, the control API): the
//! users are the spec's CephObjectStoreUsers, their keys the records the supervisor keeps, their
//! settings and buckets what the gateway's admin API answers.

use std::net::IpAddr;

use rookery_objects::admin::{Admin, Quota};
use rookery_objects::s3::S3;
use rookery_objects::ObjectError;
use rookery_spec::Resources;
use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use crate::objectstore::{self, KeyRecord};
use crate::OrchestratorError;

#[derive(Debug, thiserror::Error)]
pub enum ObjectStoreError {
    #[error("there is no object store {0:?}; `rookery status` lists them")]
    NoStore(String),
    #[error("object store {store} has no user {user:?}; `rookery object user list` shows them")]
    NoUser { store: String, user: String },
    /// The supervisor has not made the store's admin user, or this user, yet.
    #[error("{0} is not set up yet; `rookery status` shows what the supervisor is doing")]
    NotReady(String),
    #[error(
        "bucket {bucket} holds {objects} objects; delete them first, or remove it with its objects"
    )]
    NotEmpty { bucket: String, objects: u64 },
    /// A bucket name S3 does not allow; `why` says which rule it breaks.
    #[error("bucket name {bucket:?} is not valid: {why}")]
    InvalidBucketName { bucket: String, why: String },
    /// The bucket exists and belongs to another user (bucket names are one namespace per store).
    #[error("bucket {bucket} already exists and belongs to user {owner}; choose another name")]
    BucketExists { bucket: String, owner: String },
    #[error(transparent)]
    Gateway(#[from] ObjectError),
    #[error(transparent)]
    Orchestrator(#[from] OrchestratorError),
}

impl ObjectStoreError {
    /// A stable, machine-readable name of what went wrong, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            ObjectStoreError::NoStore(_) => "no_such_store",
            ObjectStoreError::NoUser { .. } => "no_such_user",
            ObjectStoreError::NotReady(_) => "not_ready",
            ObjectStoreError::NotEmpty { .. } => "bucket_not_empty",
            ObjectStoreError::InvalidBucketName { .. } => "invalid_value",
            ObjectStoreError::BucketExists { .. } => "bucket_exists",
            ObjectStoreError::Gateway(e) => match e.status() {
                Some(404) => "not_found",
                Some(400..=499) => "gateway_refused",
                Some(_) => "gateway_error",
                None => "gateway_unavailable",
            },
            ObjectStoreError::Orchestrator(_) => "internal",
        }
    }

    /// The request field the error is about, when it is about one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ObjectStoreError::InvalidBucketName { .. } => Some("bucket"),
            _ => None,
        }
    }
}

/// An object store of the spec and its gateway's port.
#[derive(Debug, Clone)]
pub struct Store {
    pub name: String,
    pub port: u16,
}

impl Store {
    pub fn find(res: &Resources, name: &str) -> Result<Store, ObjectStoreError> {
        res.object_stores
            .iter()
            .find(|s| s.metadata.name == name)
            .map(|s| Store {
                name: name.to_string(),
                port: u16::try_from(s.spec.gateway.port).unwrap_or(0),
            })
            .ok_or_else(|| ObjectStoreError::NoStore(name.to_string()))
    }

    /// `http://ADDRESS:PORT` of the gateway running at `address`.
    pub fn endpoint(&self, address: IpAddr) -> String {
        format!("http://{}", objectstore::endpoint(address, self.port))
    }

    /// The keys of the store's admin-API user (the identity rookery's own S3 calls are signed with).
    pub fn admin_credentials(
        &self,
        layout: &Layout,
    ) -> Result<rookery_objects::Credentials, ObjectStoreError> {
        objectstore::read(&layout.rgw_admin(&self.name))?
            .map(|k| k.credentials())
            .ok_or_else(|| ObjectStoreError::NotReady(format!("object store {}", self.name)))
    }

    /// The admin-API client of the gateway running at `address`.
    pub fn admin(&self, layout: &Layout, address: IpAddr) -> Result<Admin, ObjectStoreError> {
        objectstore::admin(layout, &self.name, address, self.port)?
            .ok_or_else(|| ObjectStoreError::NotReady(format!("object store {}", self.name)))
    }

    /// The keys of `user`, which the spec must name.
    pub fn keys(
        &self,
        layout: &Layout,
        res: &Resources,
        user: &str,
    ) -> Result<KeyRecord, ObjectStoreError> {
        if !self.has_user(res, user) {
            return Err(ObjectStoreError::NoUser {
                store: self.name.clone(),
                user: user.to_string(),
            });
        }
        objectstore::read(&layout.rgw_user(&self.name, user))?
            .ok_or_else(|| ObjectStoreError::NotReady(format!("user {user}")))
    }

    pub fn has_user(&self, res: &Resources, user: &str) -> bool {
        res.object_users
            .iter()
            .any(|u| u.metadata.name == user && u.spec.store == self.name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserRow {
    pub user: String,
    /// None until the supervisor has made the user.
    pub access_key: Option<String>,
    pub buckets: usize,
}

/// The store's users, from the spec, with their access keys and bucket counts.
pub fn users(layout: &Layout, res: &Resources, store: &Store, admin: &Admin) -> Vec<UserRow> {
    res.object_users
        .iter()
        .filter(|u| u.spec.store == store.name)
        .map(|u| {
            let name = &u.metadata.name;
            UserRow {
                user: name.clone(),
                access_key: objectstore::read(&layout.rgw_user(&store.name, name))
                    .ok()
                    .flatten()
                    .map(|k| k.access_key),
                buckets: admin.buckets(name).map(|b| b.len()).unwrap_or(0),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserDetail {
    pub store: String,
    pub user: String,
    pub display_name: String,
    /// `http://ADDRESS:PORT`, the S3 endpoint.
    pub endpoint: String,
    pub access_key: String,
    /// Only when asked for.
    pub secret_key: Option<String>,
    pub max_buckets: i64,
    /// `enabled`, `max_size` (bytes) and `max_objects`; -1 is no limit.
    #[schema(value_type = Object)]
    pub quota: Quota,
    /// `users=read;buckets=*`, sorted; empty for none.
    pub capabilities: String,
    pub buckets: Vec<String>,
}

/// One user with its settings and buckets; its secret key only with `show_secret`.
pub fn user(
    layout: &Layout,
    res: &Resources,
    store: &Store,
    address: IpAddr,
    name: &str,
    show_secret: bool,
) -> Result<UserDetail, ObjectStoreError> {
    let keys = store.keys(layout, res, name)?;
    let admin = store.admin(layout, address)?;
    let info = admin
        .user(name)?
        .ok_or_else(|| ObjectStoreError::NotReady(format!("user {name}")))?;
    let buckets = admin.buckets(name)?;
    Ok(UserDetail {
        store: store.name.clone(),
        user: name.to_string(),
        display_name: info.display_name,
        endpoint: store.endpoint(address),
        access_key: keys.access_key.clone(),
        secret_key: show_secret.then(|| keys.secret_key.clone()),
        max_buckets: info.max_buckets,
        quota: info.user_quota,
        capabilities: rookery_objects::admin::caps_text(&info.caps),
        buckets,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BucketRow {
    pub bucket: String,
    pub owner: String,
    pub bytes: u64,
    pub objects: u64,
}

/// The buckets of `user`, or of every user.
pub fn buckets(admin: &Admin, user: Option<&str>) -> Result<Vec<BucketRow>, ObjectStoreError> {
    let mut rows = Vec::new();
    for bucket in admin.buckets(user.unwrap_or(""))? {
        let stats = admin.bucket_stats(&bucket)?;
        let (bytes, objects) = stats.usage();
        rows.push(BucketRow {
            bucket,
            owner: stats.owner,
            bytes,
            objects,
        });
    }
    Ok(rows)
}

/// Removes a bucket, refused while it holds objects unless `purge_objects`; answers how many went.
pub fn remove_bucket(
    admin: &Admin,
    bucket: &str,
    purge_objects: bool,
) -> Result<u64, ObjectStoreError> {
    let (_, objects) = admin.bucket_stats(bucket)?.usage();
    if objects > 0 && !purge_objects {
        return Err(ObjectStoreError::NotEmpty {
            bucket: bucket.to_string(),
            objects,
        });
    }
    admin.remove_bucket(bucket, purge_objects)?;
    Ok(objects)
}

/// S3's rules for bucket names (the ones RGW enforces unless told to relax them): 3 to 63 lowercase
/// letters, digits, '.' and '-', starting and ending with a letter or digit, no "..", not an IPv4 address.
pub fn validate_bucket_name(bucket: &str) -> Result<(), ObjectStoreError> {
    let why = if !(3..=63).contains(&bucket.len()) {
        Some("use 3 to 63 characters")
    } else if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        Some("use only lowercase letters, digits, '.' and '-'")
    } else if !bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        Some("start and end it with a letter or digit")
    } else if bucket.contains("..") {
        Some("do not put two dots side by side")
    } else if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        Some("an IP address is not a bucket name")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(ObjectStoreError::InvalidBucketName {
            bucket: bucket.to_string(),
            why: why.to_string(),
        }),
    }
}

/// What [`create_bucket`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketMade {
    Created,
    /// The user owned a bucket of that name already; nothing was changed.
    Existed,
}

/// The owner of `bucket`, or None when there is no such bucket.
fn bucket_owner(admin: &Admin, bucket: &str) -> Result<Option<String>, ObjectStoreError> {
    match admin.bucket_stats(bucket) {
        Ok(stats) => Ok(Some(stats.owner)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether an existing bucket's owner makes a create of it by `user` a no-op or a refusal.
fn owned_by(bucket: &str, owner: String, user: &str) -> Result<BucketMade, ObjectStoreError> {
    if owner == user {
        Ok(BucketMade::Existed)
    } else {
        Err(ObjectStoreError::BucketExists {
            bucket: bucket.to_string(),
            owner,
        })
    }
}

/// Creates `bucket` for `user` of the spec, through S3 signed with the user's own keys, so the bucket is
/// the user's. Idempotent for its owner ([`BucketMade::Existed`]); a bucket of another user is refused.
pub fn create_bucket(
    layout: &Layout,
    res: &Resources,
    store: &Store,
    address: IpAddr,
    bucket: &str,
    user: &str,
) -> Result<BucketMade, ObjectStoreError> {
    validate_bucket_name(bucket)?;
    let keys = store.keys(layout, res, user)?;
    let admin = store.admin(layout, address)?;
    if let Some(owner) = bucket_owner(&admin, bucket)? {
        return owned_by(bucket, owner, user);
    }
    let s3 = S3::new(
        objectstore::endpoint(address, store.port),
        keys.credentials(),
    );
    match s3.create_bucket(bucket) {
        Ok(()) => Ok(BucketMade::Created),
        // Made by someone else since the look above.
        Err(e)
            if matches!(
                e.code(),
                Some("BucketAlreadyExists" | "BucketAlreadyOwnedByYou")
            ) =>
        {
            match bucket_owner(&admin, bucket)? {
                Some(owner) => owned_by(bucket, owner, user),
                None => Err(e.into()),
            }
        }
        Err(e) if e.code() == Some("InvalidBucketName") => {
            Err(ObjectStoreError::InvalidBucketName {
                bucket: bucket.to_string(),
                why: e.to_string(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3() {
        for ok in ["abc", "photos-2024", "my.bucket.1", &"a".repeat(63)] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "Photos",
            "under_score",
            "-start",
            "end-",
            ".dot",
            "two..dots",
            "192.168.1.1",
            "a b",
        ] {
            let e = validate_bucket_name(bad).unwrap_err();
            assert_eq!(
                (e.code(), e.field()),
                ("invalid_value", Some("bucket")),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_existing_bucket_is_yours_or_refused() {
        assert_eq!(
            owned_by("b", "alice".into(), "alice").unwrap(),
            BucketMade::Existed
        );
        let e = owned_by("b", "bob".into(), "alice").unwrap_err();
        assert_eq!(e.code(), "bucket_exists");
        assert!(e.to_string().contains("bob"), "{e}");
    }
}
