//! `rookery down`: stop the cluster (data kept), or with `--purge` destroy it.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use rookery_orchestrator::{ClusterState, Layout};
use rookery_platform::local::LocalPlatform;

use crate::api::{self, CallError};
use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct DownArgs {
    /// Also delete everything of this cluster: data, keys, config, logs. Needs --yes-really-destroy-data.
    #[arg(long)]
    pub purge: bool,
    /// Confirms --purge.
    #[arg(long)]
    pub yes_really_destroy_data: bool,
}

pub fn run(layout: &Layout, args: &DownArgs, output: Output) -> CmdResult {
    let state = ClusterState::load(layout)
        .map_err(|e| Failure::from(anyhow!(e)))?
        .ok_or_else(|| {
            Failure::bad_input(format!(
                "{} holds no rookery cluster; nothing to stop",
                layout.root.display()
            ))
        })?;
    if args.purge && !args.yes_really_destroy_data {
        let osd_files: Vec<String> = state
            .osds
            .iter()
            .filter_map(|o| o.block.as_ref().map(|b| b.display().to_string()))
            .collect();
        return Err(Failure::bad_input(format!(
            "--purge destroys cluster {:?} (fsid {}) for good: every object, volume and file stored in it, its keys and config, \
             and the folder {} ({} on disk, OSD files: {}). Nothing was changed. To go ahead, add --yes-really-destroy-data",
            state.name,
            state.fsid,
            layout.root.display(),
            rookery_orchestrator::preflight::human(disk_usage(&layout.root)),
            if osd_files.is_empty() { "none".into() } else { osd_files.join(", ") }
        )));
    }
    let started = Instant::now();
    unmount_volumes(layout, !args.purge)?;
    unmount_files(layout, !args.purge)?;
    stop(layout, &state)?;
    if args.purge {
        LocalPlatform::new(&layout.root).stop_leftovers();
        rookery_orchestrator::purge(layout).map_err(|e| Failure::from(anyhow!(e)))?;
    }
    let what = if args.purge {
        "destroyed; nothing of it is left"
    } else {
        "stopped; data kept"
    };
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"cluster": state.name, "purged": args.purge, "elapsed_secs": started.elapsed().as_secs_f64()})
        ),
        Output::Text => println!(
            "cluster {:?} {what} ({:.1} s)",
            state.name,
            started.elapsed().as_secs_f64()
        ),
    }
    Ok(())
}

/// Volumes mounted on this host are unmounted before their cluster stops (a mount without its cluster
/// hangs every process that touches it). A plain `down` remembers them for the next `up`.
fn unmount_volumes(layout: &Layout, remount: bool) -> Result<(), Failure> {
    let has_records = rookery_volumes::records::Records::dir(&layout.root)
        .join("mounts.json")
        .exists();
    if !has_records {
        return Ok(());
    }
    let rados = rookery_ceph::Rados::connect(
        &layout.conf(),
        &rookery_orchestrator::ceph_user(layout),
        Duration::from_secs(5),
    )
    .ok();
    let done = rookery_volumes::suspend_all(rados.as_ref(), &layout.root, remount)
        .map_err(|e| Failure::from(anyhow!(e)))?;
    for r in done {
        eprintln!(
            "unmounted {}/{} from {}{}",
            r.pool,
            r.volume,
            r.path.display(),
            if remount {
                " (`rookery up` mounts it again)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// CephFS mounts go too, for the same reason; a plain `down` remembers them for the next `up`.
fn unmount_files(layout: &Layout, remount: bool) -> Result<(), Failure> {
    if !layout.root.join("files").join("mounts.json").exists() {
        return Ok(());
    }
    let done = rookery_files::mount::suspend_all(&layout.root, remount)
        .map_err(|e| Failure::from(anyhow!(e)))?;
    for m in done {
        eprintln!(
            "unmounted {} from {}{}",
            m.source(),
            m.path.display(),
            if remount {
                " (`rookery up` mounts it again)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Asks the supervisor to stop everything; without one, stops the daemons found through pid files.
fn stop(layout: &Layout, state: &ClusterState) -> Result<(), Failure> {
    let rt = crate::runtime()?;
    // Read before asking: the supervisor removes its pid file shortly before it exits.
    let supervisor = rookery_platform::proc::read_pid_file(&layout.supervisor_pid());
    match rt.block_on(api::call::<serde_json::Value>(
        &layout.socket(),
        "POST",
        api::SHUTDOWN,
        Duration::from_secs(120),
    )) {
        Ok(_) => {
            // The supervisor exits right after replying.
            let deadline = Instant::now() + Duration::from_secs(10);
            while supervisor.is_some_and(rookery_platform::proc::is_alive)
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(CallError::NotRunning) => {}
        Err(e) => {
            return Err(Failure::from(
                anyhow::Error::msg(e.to_string()).context("asking the supervisor to stop"),
            ))
        }
    }
    // Whatever still runs (no supervisor, or one that died mid-way) is stopped in order here.
    let daemons = super::status::running_daemons(layout, state);
    for prefix in ["osd.", "mgr.", "mon."] {
        let pids: Vec<u32> = daemons
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .filter_map(|(_, p)| *p)
            .collect();
        for pid in &pids {
            rookery_platform::proc::signal(*pid, libc::SIGTERM);
        }
        for pid in pids {
            rookery_platform::proc::terminate(pid, Duration::from_secs(20));
        }
    }
    Ok(())
}

fn disk_usage(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else {
            total += m.blocks() * 512;
        }
    }
    total
}
