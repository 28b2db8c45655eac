//! `rookery object`: users and buckets of an object store, through the supervisor's control API. Users
//! are CephObjectStoreUser resources (so `create` is `apply` of one, and their keys are made and kept by
//! the supervisor); buckets are made with their owner's keys (S3) and listed and removed through RGW's
//! admin API, by the supervisor.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use std::time::Duration;

use rookery_orchestrator::objects::{BucketRow, Store, UserDetail, UserRow};
use rookery_orchestrator::Layout;
use rookery_spec::Resources;
use serde_json::json;

use super::resources;
use crate::api::{self, Body, Client, Refusal};
use crate::control::{BucketCreated, BucketRemoved, CreateBucket, ErrorBody};
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
pub(crate) fn pick_store(res: &Resources, asked: &Option<String>) -> Result<Store, Failure> {
    let name = match asked {
        Some(name) => name.clone(),
        None => match res.object_stores.as_slice() {
            [one] => one.metadata.name.clone(),
            [] => return Err(Failure::bad_input(
                "this cluster has no object store; create one with `rookery apply -f object-store.yaml`",
            )),
            many => return Err(Failure::bad_input(format!(
                "this cluster has several object stores ({}); name one with --store",
                many.iter().map(|s| s.metadata.name.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        },
    };
    Store::find(res, &name).map_err(|e| Failure::bad_input(e.to_string()))
}

fn user_doc(name: &str, store: &str) -> serde_json::Value {
    json!({"apiVersion": rookery_spec::API_VERSION, "kind": "CephObjectStoreUser",
           "metadata": {"name": name}, "spec": {"store": store}})
}

/// The API's error as the CLI words it: 4xx is a refusal of the request (exit 2).
fn api_failure(status: u16, e: ErrorBody) -> Failure {
    let message = match e.code.as_str() {
        "bucket_not_empty" => e
            .message
            .replace("remove it with its objects", "add --purge-objects"),
        _ => e.message,
    };
    if (400..500).contains(&status) {
        Failure::bad_input(format!("{message}; nothing was changed"))
    } else {
        Failure::from(anyhow!(message))
    }
}

pub fn run(layout: &Layout, args: &ObjectArgs, output: Output) -> CmdResult {
    let res = resources::saved_resources(layout)?;
    let store = pick_store(&res, &args.store)?;
    let client = Client::new(layout)?;
    let word = |r: Refusal| r.word(api_failure);
    let base = format!("/v1/objectstores/{}", api::enc(&store.name));
    let name_of = &store.name;
    match &args.command {
        ObjectCommand::User(UserCommand::Create {
            name,
            display_name,
            max_buckets,
            max_size,
            max_objects,
        }) => {
            if store.has_user(&res, name) {
                return Err(Failure::bad_input(format!(
                    "object store {name_of} already has a user {name}; choose another name (`rookery object user show {name}` shows it); nothing was changed"
                )));
            }
            let mut doc = user_doc(name, name_of);
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
            let path = format!(
                "{base}/users/{}{}",
                api::enc(name),
                if *show_secret {
                    "?showSecrets=true"
                } else {
                    ""
                }
            );
            let u: UserDetail = client.get(&path).map_err(word)?;
            let secret = u
                .secret_key
                .clone()
                .unwrap_or_else(|| "(hidden; add --show-secret)".into());
            let v = json!({"store": u.store, "user": u.user, "display_name": u.display_name,
                "endpoint": u.endpoint, "access_key": u.access_key, "secret_key": secret,
                "max_buckets": u.max_buckets, "quota": u.quota,
                "capabilities": u.capabilities, "buckets": u.buckets});
            match output {
                Output::Json => print_json(&v),
                Output::Text => {
                    println!(
                        "user {name} of object store {} ({})",
                        u.store, u.display_name
                    );
                    println!("  endpoint    {}", u.endpoint);
                    println!("  access key  {}", u.access_key);
                    println!("  secret key  {secret}");
                    let q = &u.quota;
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
                        u.max_buckets
                    );
                    println!(
                        "  buckets     {}",
                        if u.buckets.is_empty() {
                            "none".into()
                        } else {
                            u.buckets.join(", ")
                        }
                    );
                    Ok(())
                }
            }
        }
        ObjectCommand::User(UserCommand::List) => {
            let rows: Vec<UserRow> = client.get(&format!("{base}/users")).map_err(word)?;
            let not_made = "(not made yet)";
            match output {
                Output::Json => print_json(&json!(rows
                    .iter()
                    .map(|r| json!({"user": r.user, "access_key": r.access_key.as_deref().unwrap_or(not_made), "buckets": r.buckets}))
                    .collect::<Vec<_>>())),
                Output::Text => {
                    println!("{:<24} {:<22} BUCKETS", "USER", "ACCESS KEY");
                    for r in rows {
                        println!(
                            "{:<24} {:<22} {}",
                            r.user,
                            r.access_key.as_deref().unwrap_or(not_made),
                            r.buckets
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
            if !store.has_user(&res, name) {
                return Err(Failure::bad_input(format!(
                    "object store {name_of} has no user {name:?}; nothing was changed"
                )));
            }
            let text = serde_yaml::to_string(&user_doc(name, name_of))
                .map_err(|e| Failure::from(anyhow!(e)))?;
            resources::delete_text(layout, &text, "the user", *yes_delete_buckets, output)
        }
        ObjectCommand::Bucket(BucketCommand::Create { bucket, user }) => {
            let req = CreateBucket {
                bucket: bucket.clone(),
                user: user.clone(),
            };
            let made: BucketCreated = client
                .send(
                    "POST",
                    &format!("{base}/buckets"),
                    Some(Body::json(&req)?),
                    Duration::from_secs(120),
                )
                .map_err(word)?;
            match output {
                Output::Json => print_json(&json!({"bucket": bucket, "owner": user,
                    "store": name_of, "created": made.created})),
                Output::Text => {
                    if made.created {
                        println!("bucket {bucket} created for {user} in {name_of}");
                    } else {
                        println!(
                            "bucket {bucket} already belongs to {user} in {name_of}; nothing was changed"
                        );
                    }
                    Ok(())
                }
            }
        }
        ObjectCommand::Bucket(BucketCommand::List { user }) => {
            let path = match user {
                Some(u) => format!("{base}/buckets?user={}", api::enc(u)),
                None => format!("{base}/buckets"),
            };
            let rows: Vec<BucketRow> = client.get(&path).map_err(word)?;
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
                            r.bucket,
                            r.owner,
                            rookery_orchestrator::preflight::human(r.bytes),
                            r.objects
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
            let path = format!(
                "{base}/buckets/{}{}",
                api::enc(bucket),
                if *purge_objects {
                    "?purgeObjects=true"
                } else {
                    ""
                }
            );
            let removed: BucketRemoved = client
                .send("DELETE", &path, None, Duration::from_secs(300))
                .map_err(word)?;
            let objects = removed.objects_removed;
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
