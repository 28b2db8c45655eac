//! `rookery osd rm|replace`: an OSD leaves the cluster (or moves to a new device under its id) once its
//! data has moved to the others. Asked through the control API, carried out by the supervisor; this
//! command shows the progress until it is done (Ctrl-C stops watching, not the removal).

use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use rookery_orchestrator::osd_requests::OsdRequest;
use rookery_orchestrator::report::ClusterReport;
use rookery_orchestrator::{ClusterState, Layout};

use crate::api::{self, Body, Client};
use crate::control::RetireBody;
use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct OsdArgs {
    #[command(subcommand)]
    pub command: OsdCommand,
}

#[derive(Subcommand)]
pub enum OsdCommand {
    /// Remove an OSD for good: marked out, its data moved to the other OSDs (progress shown), checked
    /// safe to destroy, stopped, purged from the OSD map, CRUSH and auth, its device wiped blank (or its
    /// file deleted). Refused when the OSDs left cannot hold every pool's copies or its data.
    ///
    /// Example: rookery osd rm 3
    Rm {
        id: u32,
        /// Return once the removal is under way instead of waiting for it to finish.
        #[arg(long)]
        no_wait: bool,
    },
    /// Move an OSD to a new device under the same id: drained and destroyed like `rm`, then made again on
    /// DEVICE (blank and unused) with its id and CRUSH position.
    ///
    /// Example: rookery osd replace 3 /dev/loop7
    Replace {
        id: u32,
        device: String,
        #[arg(long)]
        no_wait: bool,
    },
}

pub fn run(layout: &Layout, args: &OsdArgs, output: Output) -> CmdResult {
    let (id, replace_with, no_wait) = match &args.command {
        OsdCommand::Rm { id, no_wait } => (*id, None, *no_wait),
        OsdCommand::Replace {
            id,
            device,
            no_wait,
        } => (*id, Some(device.clone()), *no_wait),
    };
    let client = Client::new(layout)?;
    let body = Body::json(&RetireBody {
        replace_with: replace_with.clone(),
    })?;
    let request: OsdRequest = client
        .send(
            "POST",
            &format!("/v1/osds/{id}/retire"),
            Some(body),
            Duration::from_secs(60),
        )
        .map_err(|r| r.word(api::plain))?;
    if !no_wait {
        wait(layout, &client, &request, output)?;
    }
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string(&request).map_err(|e| Failure::from(anyhow!(e)))?
        ),
        Output::Text if no_wait => println!(
            "osd.{id} is being {}; `rookery status` shows the progress",
            if replace_with.is_some() {
                "replaced"
            } else {
                "removed"
            }
        ),
        Output::Text => match &replace_with {
            Some(d) => println!("osd.{id} now lives on {d}"),
            None => println!("osd.{id} removed; its data is on the other OSDs"),
        },
    }
    Ok(())
}

/// Shows the progress until the OSD the request named is gone (and, for a replacement, its successor
/// runs).
fn wait(layout: &Layout, client: &Client, request: &OsdRequest, output: Output) -> CmdResult {
    let bar = indicatif::ProgressBar::new_spinner();
    if output == Output::Json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    let mut last_error = String::new();
    loop {
        let state = ClusterState::load(layout).map_err(|e| Failure::from(anyhow!(e)))?;
        let gone = state
            .as_ref()
            .is_some_and(|s| !s.osds.iter().any(|o| o.uuid == request.uuid));
        let report: Option<ClusterReport> = client.get("/v1/status").ok();
        let successor_up = request.replace_with.is_none()
            || report.as_ref().is_some_and(|r| {
                r.ceph
                    .as_ref()
                    .is_some_and(|c| c.osds.iter().any(|o| o.id == request.id && o.up))
                    && state.as_ref().is_some_and(|s| {
                        s.osds
                            .iter()
                            .any(|o| o.id == Some(request.id) && o.uuid != request.uuid)
                    })
            });
        // The status a pass publishes is the one it planned before its steps: until a later pass has
        // published, `status` would still show the OSD leaving and its device as taken.
        let still_shown = report.as_ref().is_some_and(|r| {
            r.reconcile
                .as_ref()
                .is_some_and(|i| i.retiring.iter().any(|q| q.id == request.id))
        });
        if gone && successor_up && !still_shown {
            bar.finish_and_clear();
            return Ok(());
        }
        if let Some(i) = report.as_ref().and_then(|r| r.reconcile.as_ref()) {
            if let Some(q) = i.retiring.iter().find(|q| q.id == request.id) {
                bar.set_message(format!(
                    "osd.{}: {}{}",
                    q.id,
                    q.phase,
                    q.pgs_left
                        .map(|n| format!(", {n} PGs left on it"))
                        .unwrap_or_default()
                ));
            } else if gone {
                bar.set_message(format!("osd.{}: making its successor", request.id));
            }
            if let Some(e) = &i.last_error {
                if *e != last_error {
                    bar.println(format!("supervisor: {e}"));
                    last_error = e.clone();
                }
            }
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bar.finish_and_clear();
            return Err(Failure::from(anyhow!(
                "osd.{} is still on its way out after an hour; `rookery status` shows why; the supervisor keeps going",
                request.id
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
