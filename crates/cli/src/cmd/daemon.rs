//! `rookery daemon retry`: start again a daemon the supervisor gave up on, through the control API.

use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use rookery_orchestrator::Layout;

use crate::api::{self, Client};
use crate::control::Retried;
use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct DaemonArgs {
    #[command(subcommand)]
    pub command: DaemonCommand,
}

#[derive(Subcommand)]
pub enum DaemonCommand {
    /// Start again a daemon that kept dying at start and was given up on (`rookery status` shows it,
    /// with the last lines of its output); fix the cause first.
    ///
    /// Example: rookery daemon retry osd.1
    Retry {
        /// The daemon, as `rookery status` names it: mon.a, osd.1, mds.myfs-a, ...
        name: String,
    },
}

pub fn run(layout: &Layout, args: &DaemonArgs, output: Output) -> CmdResult {
    match &args.command {
        DaemonCommand::Retry { name } => {
            let path = format!("/v1/daemons/{}/retry", api::enc(name));
            let retried: Retried = Client::new(layout)?
                .send("POST", &path, None, Duration::from_secs(30))
                .map_err(|r| r.word(api::plain))?;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string(&retried).map_err(|e| Failure::from(anyhow!(e)))?
                ),
                Output::Text => println!(
                    "{}: {}",
                    retried.daemon,
                    serde_json::to_value(retried.state)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default()
                ),
            }
            Ok(())
        }
    }
}
