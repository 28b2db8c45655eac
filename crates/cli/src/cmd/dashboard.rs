//! `rookery dashboard`: where the web dashboard is, and a new access key for it.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use rookery_orchestrator::Layout;

use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct DashboardArgs {
    #[command(subcommand)]
    pub command: DashboardCommand,
}

#[derive(Subcommand)]
pub enum DashboardCommand {
    /// Make a new access key for the web dashboard and print it (the only time it is shown). The old key
    /// stops working at once, and every browser logged in with it is logged out.
    ///
    /// Example: rookery dashboard rotate-key
    RotateKey,
}

pub fn run(layout: &Layout, args: &DashboardArgs, output: Output) -> CmdResult {
    match args.command {
        DashboardCommand::RotateKey => {
            if !layout.state().exists() {
                return Err(Failure::bad_input(format!(
                    "{} holds no rookery cluster; `rookery up` makes one (and the dashboard's first key with --dashboard-port)",
                    layout.root.display()
                )));
            }
            let key = crate::dashboard::access::new_key(&crate::dashboard::key_file(layout))
                .map_err(|e| Failure::from(anyhow!(e)))?;
            match output {
                Output::Json => println!("{}", serde_json::json!({ "access_key": key })),
                Output::Text => {
                    println!("{key}");
                    eprintln!("the dashboard's new access key (shown only now); the old one no longer works");
                }
            }
            Ok(())
        }
    }
}
