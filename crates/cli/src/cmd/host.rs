//! `rookery host add|list`: the hosts of a cluster over several hosts. `add` asks the supervisor for a
//! one-time join token that the new host passes to `rookery join`; `list` shows the members recorded
//! in Ceph.

use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use rookery_orchestrator::join::Member;
use rookery_orchestrator::Layout;

use crate::api::{self, Body, Client};
use crate::hosts_api::{AddHostBody, HostToken};
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
