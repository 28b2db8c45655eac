//! `rookery status`: from the supervisor when it answers, otherwise gathered here (pid files + librados).

use std::time::Duration;

use anyhow::anyhow;
use rookery_orchestrator::report::{self, ClusterReport};
use rookery_orchestrator::{known_daemons, ClusterState, Layout};
use rookery_platform::{DaemonState, DaemonStatus, Platform};

use crate::api::{self, CallError};
use crate::{render, CmdResult, Failure, Output};

pub fn run(layout: &Layout, output: Output) -> CmdResult {
    let report = gather(layout)?;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| Failure::from(anyhow!(e)))?
        ),
        Output::Text => print!("{}", render::status(&report)),
    }
    Ok(())
}

pub fn gather(layout: &Layout) -> Result<ClusterReport, Failure> {
    let state = ClusterState::load(layout)
        .map_err(|e| Failure::from(anyhow!(e)))?
        .ok_or_else(|| {
            Failure::from(anyhow!(
                "{} holds no cluster; create one with `rookery up`",
                layout.root.display()
            ))
        })?;
    let rt = crate::runtime()?;
    match rt.block_on(api::call::<ClusterReport>(
        &layout.socket(),
        "GET",
        api::STATUS,
        Duration::from_secs(30),
    )) {
        Ok(r) => return Ok(r),
        Err(CallError::NotRunning) => {}
        Err(e) => {
            tracing::warn!(error = %e, "the supervisor did not answer; gathering status directly")
        }
    }
    Ok(without_supervisor(layout, &state))
}

/// The daemons found through their pid files, as (name, pid when it runs).
pub fn running_daemons(layout: &Layout, state: &ClusterState) -> Vec<(String, Option<u32>)> {
    let platform = rookery_orchestrator::state::HostPolicy::load(layout).platform(layout);
    let host = platform
        .hosts()
        .into_iter()
        .next()
        .map(|h| h.name)
        .unwrap_or_default();
    known_daemons(state, platform.stores().as_ref())
        .into_iter()
        .map(|name| {
            let pid = rookery_orchestrator::daemon_spec(&host, &name)
                .ok()
                .and_then(|spec| platform.files().process(&spec).ok())
                .and_then(|process| rookery_platform::local::adoptable(&process));
            (name, pid)
        })
        .collect()
}

fn without_supervisor(layout: &Layout, state: &ClusterState) -> ClusterReport {
    let daemons: Vec<DaemonStatus> = running_daemons(layout, state)
        .into_iter()
        .map(|(name, pid)| DaemonStatus {
            name,
            state: if pid.is_some() {
                DaemonState::Running
            } else {
                DaemonState::Stopped
            },
            pid,
            restarts: 0,
            last_exit: None,
            uptime_secs: None,
            adopted: false,
            crash_looping: false,
            log_tail: Vec::new(),
        })
        .collect();
    let mut report = ClusterReport {
        name: state.name.clone(),
        fsid: state.fsid.clone(),
        data_dir: layout.root.display().to_string(),
        daemons,
        ..Default::default()
    };
    let mon_running = report
        .daemons
        .iter()
        .any(|d| d.name.starts_with("mon.") && d.pid.is_some());
    report.not_ready.push(
        "the supervisor is not running: crashed daemons are not restarted (run `rookery up`)"
            .into(),
    );
    if !mon_running {
        report.ceph_error = Some("no mon is running".into());
    } else {
        let expected = state.osds.len() as u32;
        match rookery_ceph::Rados::connect(
            &layout.conf(),
            &rookery_orchestrator::ceph_user(layout),
            Duration::from_secs(3),
        )
        .and_then(|r| report::ceph_report(&r, state))
        {
            Ok(c) => {
                // Without a supervisor, the instances running are the processes in the pid files.
                let stale = report::stale_in_map(&c, |name, nonce| {
                    let pid = report.daemons.iter().find(|d| d.name == name)?.pid?;
                    Some(u64::from(pid) == nonce)
                });
                report
                    .not_ready
                    .extend(report::not_ready(&c, expected, &stale));
                report.ceph = Some(c);
            }
            Err(e) => report.ceph_error = Some(e.to_string()),
        }
    }
    report.ready = false;
    report
}
