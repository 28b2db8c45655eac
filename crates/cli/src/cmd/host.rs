//! `rookery host add|list`: the hosts of a cluster over several hosts. `add` asks the supervisor for a
//! one-time join token that the new host passes to `rookery join`; `list` shows the members recorded
//! in Ceph.

use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use rookery_orchestrator::join::{HostRemoval, Member};
use rookery_orchestrator::report::ClusterReport;
use rookery_orchestrator::Layout;

use crate::api::{self, Body, Client};
use crate::hosts_api::{AddHostBody, HostToken, RemoveHostBody};
use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct HostArgs {
    #[command(subcommand)]
    pub command: HostCommand,
}

#[derive(Subcommand)]
pub enum HostCommand {
    /// Print a one-time token that lets host NAME join this cluster (`rookery join TOKEN` there). The
    /// token names this member, pins its certificate and expires; it works once.
    ///
    /// Example: rookery host add node2 --valid-for 600
    Add {
        name: String,
        /// Seconds the token stays valid.
        #[arg(long, value_name = "SECS", default_value_t = 3600)]
        valid_for: u64,
    },
    /// Remove a host: its OSDs drained (progress shown) and purged, its mons taken out of the monmap,
    /// its records, CRUSH bucket and Ceph user removed. Refused, changing nothing, when the rest would
    /// lose quorum or could not hold the data. A host that runs stops its own daemons as they are let
    /// go; afterwards `rookery down --purge --yes-really-destroy-data` there clears its data dir, and
    /// it can join again (fresh OSDs and key).
    ///
    /// Example: rookery host rm node3
    Rm {
        name: String,
        /// For a host that is gone for good: purge its OSDs without waiting for their data to be safe
        /// elsewhere. Objects whose only copies were there are lost.
        #[arg(long)]
        force: bool,
        /// Return once the removal is under way instead of waiting for it to finish.
        #[arg(long)]
        no_wait: bool,
        /// Give up waiting after this many seconds (the removal goes on).
        #[arg(long, default_value_t = 1800)]
        wait_secs: u64,
    },
    /// The cluster's hosts, as recorded in Ceph.
    ///
    /// Example: rookery host list -o json
    List,
}

pub fn run(layout: &Layout, args: &HostArgs, output: Output) -> CmdResult {
    let client = Client::new(layout)?;
    match &args.command {
        HostCommand::Add { name, valid_for } => {
            let body = Body::json(&AddHostBody {
                name: name.clone(),
                valid_secs: Some(*valid_for),
            })?;
            let token: HostToken = client
                .send("POST", "/v1/hosts", Some(body), Duration::from_secs(60))
                .map_err(|r| r.word(api::plain))?;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string(&token).map_err(|e| Failure::from(anyhow!(e)))?
                ),
                Output::Text => {
                    eprintln!(
                        "a token for host {} (valid {} s, once); on that host run:\n  rookery join <token> --address <its address>",
                        token.host, valid_for
                    );
                    println!("{}", token.token);
                }
            }
        }
        HostCommand::Rm {
            name,
            force,
            no_wait,
            wait_secs,
        } => {
            if *force && output == Output::Text {
                eprintln!(
                    "--force: {name}'s OSDs are purged without waiting for their data to be safe elsewhere; objects whose only copies were there are lost"
                );
            }
            let body = Body::json(&RemoveHostBody { force: *force })?;
            let removal: HostRemoval = client
                .send(
                    "POST",
                    &format!("/v1/hosts/{name}/remove"),
                    Some(body),
                    Duration::from_secs(60),
                )
                .map_err(|r| r.word(api::plain))?;
            if !no_wait {
                wait_removed(&client, name, Duration::from_secs(*wait_secs), output)?;
            }
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string(&removal).map_err(|e| Failure::from(anyhow!(e)))?
                ),
                Output::Text if *no_wait => {
                    println!("{name} is being removed; `rookery status` shows the progress")
                }
                Output::Text => println!(
                    "{name} removed: its OSDs, mons, records and Ceph user are gone; `rookery down --purge --yes-really-destroy-data` on it clears its data dir"
                ),
            }
        }
        HostCommand::List => {
            let members: Vec<Member> = client.get("/v1/hosts").map_err(|r| r.word(api::plain))?;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string(&members).map_err(|e| Failure::from(anyhow!(e)))?
                ),
                Output::Text => {
                    println!("{:<20} {:<40} USER", "HOST", "ADDRESS");
                    for m in members {
                        println!("{:<20} {:<40} client.{}", m.name, m.address, m.user);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Shows the removal's progress until the host is no longer a member.
fn wait_removed(client: &Client, name: &str, limit: Duration, output: Output) -> CmdResult {
    let bar = indicatif::ProgressBar::new_spinner();
    if output == Output::Json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    // Set for a host that is not the one that made the cluster: that one carries it out and reports it.
    bar.set_message(format!("{name}: removal requested"));
    let started = std::time::Instant::now();
    loop {
        let members: Vec<Member> = client.get("/v1/hosts").map_err(|r| r.word(api::plain))?;
        if !members.iter().any(|m| m.name == name) {
            bar.finish_and_clear();
            return Ok(());
        }
        if let Ok(report) = client.get::<ClusterReport>("/v1/status") {
            let leaving = report
                .reconcile
                .as_ref()
                .and_then(|r| r.leaving.iter().find(|l| l.host == name).cloned());
            if let Some(l) = leaving {
                let osds: Vec<String> = l.osds_left.iter().map(|i| format!("osd.{i}")).collect();
                let mons: Vec<String> = l.mons_left.iter().map(|m| format!("mon.{m}")).collect();
                bar.set_message(format!(
                    "{name}: {}{}; left: {}",
                    l.phase,
                    if l.pgs_left > 0 {
                        format!(" ({} PGs to move)", l.pgs_left)
                    } else {
                        String::new()
                    },
                    osds.iter()
                        .chain(&mons)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
        }
        if started.elapsed() > limit {
            bar.finish_and_clear();
            return Err(Failure::from(anyhow!(
                "{name} is still being removed after {} s; it goes on (`rookery status` shows where it stands)",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
