//! `rookery object`: users and buckets of an object store. Users are CephObjectStoreUser resources (so
//! `create` is `apply` of one, and their keys are made and kept by the supervisor); buckets go through
//! S3 (create) and RGW's admin API (list, remove).

use anyhow::anyhow;
use clap::{Args, Subcommand};
use rookery_objects::admin::Admin;
use rookery_objects::s3::S3;
use rookery_orchestrator::objectstore;
use rookery_orchestrator::Layout;
use rookery_platform::local::THIS_HOST_ADDRESS;
use rookery_spec::Resources;
use serde_json::json;

use super::resources;
use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct ObjectArgs {
    /// The object store (needed only when the cluster has several).
    #[arg(long, global = true)]
    pub store: Option<String>,
    #[command(subcommand)]
    pub command: ObjectCommand,
}

#[derive(Subcommand)]
pub enum ObjectCommand {
    /// S3 users: their keys are made by rookery and kept (0600) in the data dir.
    ///
    /// Example: rookery object user create alice --max-size 10Gi
    #[command(subcommand)]
    User(UserCommand),
    /// Buckets of a user.
    ///
    /// Example: rookery object bucket create photos --user alice
    #[command(subcommand)]
    Bucket(BucketCommand),
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user and print its keys (once).
    ///
    /// Example: rookery object user create alice --display-name "Alice" --max-objects 100000
    Create {
        name: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        max_buckets: Option<u64>,
        /// Quota on stored bytes, such as 10Gi.
        #[arg(long)]
        max_size: Option<String>,
        #[arg(long)]
        max_objects: Option<u64>,
    },
    /// A user's settings and access key; the secret only with --show-secret.
    ///
    /// Example: rookery object user show alice --show-secret
    Show {
        name: String,
        #[arg(long)]
        show_secret: bool,
    },
    /// Example: rookery object user list
    List,
    /// Remove a user (refused while it owns buckets, unless --yes-delete-buckets).
    ///
    /// Example: rookery object user rm alice
    Rm {
        name: String,
        #[arg(long)]
        yes_delete_buckets: bool,
    },
}

#[derive(Subcommand)]
pub enum BucketCommand {
    /// Example: rookery object bucket create photos --user alice
    Create {
        bucket: String,
        #[arg(long)]
        user: String,
    },
    /// Example: rookery object bucket list --user alice
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Remove a bucket (refused while it holds objects, unless --purge-objects).
    ///
    /// Example: rookery object bucket rm photos --purge-objects
    Rm {
        bucket: String,
        #[arg(long)]
        purge_objects: bool,
    },
}

fn print_json(v: &serde_json::Value) -> CmdResult {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| Failure::from(anyhow!(e)))?
    );
    Ok(())
}

/// The store named, or the only one.
fn pick_store(res: &Resources, asked: &Option<String>) -> Result<(String, u16), Failure> {
    let stores: Vec<(String, u16)> = res
        .object_stores
        .iter()
        .map(|s| {
            (
                s.metadata.name.clone(),
                u16::try_from(s.spec.gateway.port).unwrap_or(0),
            )
        })
        .collect();
    match asked {
        Some(name) => stores.into_iter().find(|(n, _)| n == name).ok_or_else(|| {
            Failure::bad_input(format!(
                "there is no object store {name:?}; `rookery status` lists them"
            ))
        }),
        None => match stores.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Failure::bad_input(
                "this cluster has no object store; create one with `rookery apply -f object-store.yaml`",
            )),
            many => Err(Failure::bad_input(format!(
                "this cluster has several object stores ({}); name one with --store",
                many.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        },
    }
}

fn user_doc(name: &str, store: &str) -> serde_json::Value {
    json!({"apiVersion": rookery_spec::API_VERSION, "kind": "CephObjectStoreUser",
           "metadata": {"name": name}, "spec": {"store": store}})
}

fn s3_failure(e: rookery_objects::ObjectError) -> Failure {
    match e.status() {
        Some(400..=499) => Failure::bad_input(format!("{e}; nothing was changed")),
        _ => Failure::from(anyhow!(e)),
    }
}

pub fn run(layout: &Layout, args: &ObjectArgs, output: Output) -> CmdResult {
    let res = resources::saved_resources(layout)?;
    let (store, port) = pick_store(&res, &args.store)?;
    let user_in_spec = |name: &str| {
        res.object_users
            .iter()
            .find(|u| u.metadata.name == name && u.spec.store == store)
    };
    let keys_of = |name: &str| -> Result<objectstore::KeyRecord, Failure> {
        if user_in_spec(name).is_none() {
            return Err(Failure::bad_input(format!(
                "object store {store} has no user {name:?}; `rookery object user list` shows them"
            )));
        }
        objectstore::read(&layout.rgw_user(&store, name))
            .map_err(|e| Failure::from(anyhow!(e)))?
            .ok_or_else(|| {
                Failure::from(anyhow!(
                    "user {name} is not made yet; `rookery status` shows what the supervisor is doing"
                ))
            })
    };
    let admin = || -> Result<Admin, Failure> { resources::store_admin(layout, &res, &store) };
    match &args.command {
        ObjectCommand::User(UserCommand::Create {
            name,
            display_name,
            max_buckets,
            max_size,
            max_objects,
        }) => {
            if user_in_spec(name).is_some() {
                return Err(Failure::bad_input(format!(
                    "object store {store} already has a user {name}; choose another name (`rookery object user show {name}` shows it); nothing was changed"
                )));
            }
            let mut doc = user_doc(name, &store);
            if let Some(d) = display_name {
                doc["spec"]["displayName"] = json!(d);
            }
            let mut quotas = serde_json::Map::new();
            if let Some(n) = max_buckets {
                quotas.insert("maxBuckets".into(), json!(n));
            }
            if let Some(q) = max_size {
                quotas.insert("maxSize".into(), json!(q));
            }
            if let Some(n) = max_objects {
                quotas.insert("maxObjects".into(), json!(n));
            }
            if !quotas.is_empty() {
                doc["spec"]["quotas"] = serde_json::Value::Object(quotas);
            }
            let text = serde_yaml::to_string(&doc).map_err(|e| Failure::from(anyhow!(e)))?;
            resources::apply_text(layout, &text, "the new user", output)
        }
        ObjectCommand::User(UserCommand::Show { name, show_secret }) => {
            let keys = keys_of(name)?;
            let info = admin()?
                .user(name)
                .map_err(|e| Failure::from(anyhow!(e)))?
                .ok_or_else(|| Failure::from(anyhow!("the gateway does not know user {name}")))?;
            let buckets = admin()?
                .buckets(name)
                .map_err(|e| Failure::from(anyhow!(e)))?;
            let secret = if *show_secret {
                keys.secret_key.clone()
            } else {
                "(hidden; add --show-secret)".into()
            };
            let v = json!({"store": store, "user": name, "display_name": info.display_name,
                "endpoint": format!("http://{}", objectstore::endpoint(THIS_HOST_ADDRESS, port)),
                "access_key": keys.access_key, "secret_key": secret,
                "max_buckets": info.max_buckets, "quota": info.user_quota,
                "capabilities": rookery_objects::admin::caps_text(&info.caps), "buckets": buckets});
            match output {
                Output::Json => print_json(&v),
                Output::Text => {
                    println!(
                        "user {name} of object store {store} ({})",
                        info.display_name
                    );
                    println!(
                        "  endpoint    http://{}",
                        objectstore::endpoint(THIS_HOST_ADDRESS, port)
                    );
                    println!("  access key  {}", keys.access_key);
                    println!("  secret key  {secret}");
                    let q = &info.user_quota;
                    let limit = |n: i64, f: &dyn Fn(i64) -> String| {
                        if q.enabled && n >= 0 {
                            f(n)
                        } else {
                            "no limit".into()
                        }
                    };
                    println!(
                        "  quota       {} / {} objects; at most {} buckets",
                        limit(q.max_size, &|n| rookery_spec::Quantity(n as u64)
                            .to_string()),
                        limit(q.max_objects, &|n| n.to_string()),
                        info.max_buckets
                    );
                    println!(
                        "  buckets     {}",
                        if buckets.is_empty() {
                            "none".into()
                        } else {
                            buckets.join(", ")
                        }
                    );
                    Ok(())
                }
            }
        }
        ObjectCommand::User(UserCommand::List) => {
            let admin = admin()?;
            let mut rows = Vec::new();
            for u in res.object_users.iter().filter(|u| u.spec.store == store) {
                let name = &u.metadata.name;
                let buckets = admin.buckets(name).unwrap_or_default();
                let access = objectstore::read(&layout.rgw_user(&store, name))
                    .ok()
                    .flatten()
                    .map(|k| k.access_key)
                    .unwrap_or_else(|| "(not made yet)".into());
                rows.push(json!({"user": name, "access_key": access, "buckets": buckets.len()}));
            }
            match output {
                Output::Json => print_json(&json!(rows)),
                Output::Text => {
                    println!("{:<24} {:<22} BUCKETS", "USER", "ACCESS KEY");
                    for r in rows {
                        println!(
                            "{:<24} {:<22} {}",
                            r["user"].as_str().unwrap_or_default(),
                            r["access_key"].as_str().unwrap_or_default(),
                            r["buckets"]
                        );
                    }
                    Ok(())
                }
            }
        }
        ObjectCommand::User(UserCommand::Rm {
            name,
            yes_delete_buckets,
        }) => {
            if user_in_spec(name).is_none() {
                return Err(Failure::bad_input(format!(
                    "object store {store} has no user {name:?}; nothing was changed"
                )));
            }
            let text = serde_yaml::to_string(&user_doc(name, &store))
                .map_err(|e| Failure::from(anyhow!(e)))?;
            resources::delete_text(layout, &text, "the user", *yes_delete_buckets, output)
        }
        ObjectCommand::Bucket(BucketCommand::Create { bucket, user }) => {
            let keys = keys_of(user)?;
            S3::new(
                objectstore::endpoint(THIS_HOST_ADDRESS, port),
                keys.credentials(),
            )
            .create_bucket(bucket)
            .map_err(s3_failure)?;
            match output {
                Output::Json => {
                    print_json(&json!({"bucket": bucket, "owner": user, "store": store}))
                }
                Output::Text => {
                    println!("bucket {bucket} created for {user} in {store}");
                    Ok(())
                }
            }
        }
        ObjectCommand::Bucket(BucketCommand::List { user }) => {
            let admin = admin()?;
            let names = admin
                .buckets(user.as_deref().unwrap_or(""))
                .map_err(|e| Failure::from(anyhow!(e)))?;
            let mut rows = Vec::new();
            for b in names {
                let stats = admin
                    .bucket_stats(&b)
                    .map_err(|e| Failure::from(anyhow!(e)))?;
                let (bytes, objects) = stats.usage();
                rows.push(
                    json!({"bucket": b, "owner": stats.owner, "bytes": bytes, "objects": objects}),
                );
            }
            match output {
                Output::Json => print_json(&json!(rows)),
                Output::Text => {
                    println!(
                        "{:<32} {:<20} {:>10} {:>8}",
                        "BUCKET", "OWNER", "STORED", "OBJECTS"
                    );
                    for r in rows {
                        println!(
                            "{:<32} {:<20} {:>10} {:>8}",
                            r["bucket"].as_str().unwrap_or_default(),
                            r["owner"].as_str().unwrap_or_default(),
                            rookery_orchestrator::preflight::human(
                                r["bytes"].as_u64().unwrap_or(0)
                            ),
                            r["objects"]
                        );
                    }
                    Ok(())
                }
            }
        }
        ObjectCommand::Bucket(BucketCommand::Rm {
            bucket,
            purge_objects,
        }) => {
            let admin = admin()?;
            let stats = admin.bucket_stats(bucket).map_err(s3_failure)?;
            let (_, objects) = stats.usage();
            if objects > 0 && !purge_objects {
                return Err(Failure::bad_input(format!(
                    "bucket {bucket} holds {objects} objects; delete them first, or add --purge-objects; nothing was changed"
                )));
            }
            admin
                .remove_bucket(bucket, *purge_objects)
                .map_err(|e| Failure::from(anyhow!(e)))?;
            match output {
                Output::Json => print_json(&json!({"removed": bucket, "objects_removed": objects})),
                Output::Text => {
                    println!("bucket {bucket} removed ({objects} objects)");
                    Ok(())
                }
            }
        }
    }
}
