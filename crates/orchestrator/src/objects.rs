//! Users and buckets of an object store as clients see them (`rookery object`, the control API): the
//! users are the spec's CephObjectStoreUsers, their keys the records the supervisor keeps, their
//! settings and buckets what the gateway's admin API answers.

use std::net::IpAddr;

use rookery_objects::admin::{Admin, Quota};
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
    #[error(transparent)]
    Gateway(#[from] ObjectError),
    #[error(transparent)]
    Orchestrator(#[from] OrchestratorError),
}

impl ObjectStoreError {
    /// A stable, machine-readable name of what went wrong, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            ObjectStoreError::NoStore(_) | ObjectStoreError::NoUser { .. } => "not_found",
            ObjectStoreError::NotReady(_) => "not_ready",
            ObjectStoreError::NotEmpty { .. } => "bucket_not_empty",
            ObjectStoreError::Gateway(e) => match e.status() {
                Some(404) => "not_found",
                Some(400..=499) => "gateway_refused",
                Some(_) => "gateway_error",
                None => "gateway_unavailable",
            },
            ObjectStoreError::Orchestrator(_) => "internal",
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
