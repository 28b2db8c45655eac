//! `rookery bench scale`: listing many volumes. N volumes are made through the CSI driver (CreateVolume,
//! many at once, the RBD driver served in this process), so they are what a Kubernetes cluster's claims
//! make; then `rookery volume list` (text and `-o json`, through the supervisor), CSI ListVolumes (every
//! page) and `rookery get pools` are timed next to `rbd ls -l` on the same pool, with the supervisor's
//! memory before and after. The volumes are deleted (DeleteVolume) at the end.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use futures::StreamExt;
use rookery_csi::pb;
use rookery_csi::pb::controller_client::ControllerClient;
use rookery_orchestrator::{ClusterState, Layout};
use serde_json::{json, Value};

use super::bench_csi::{connect, ServedDriver};
use crate::{CmdResult, Failure, Output};

const POOL: &str = "replicapool";
/// CreateVolume and DeleteVolume requests in flight while setting up and cleaning up.
const AT_ONCE: usize = 32;
/// Entries per ListVolumes page, as external-provisioner pages.
const PAGE: i32 = 500;

pub fn run(layout: &Layout, count: usize, output: Output) -> CmdResult {
    let state = ClusterState::load(layout)
        .map_err(|e| Failure::from(anyhow!(e)))?
        .ok_or_else(|| Failure::bad_input("no cluster here; run `rookery up` first"))?;
    let rbd = rookery_ceph::tools::find_program("rbd").ok_or_else(|| {
        Failure::from(anyhow!(
            "the baseline needs the `rbd` CLI: apt-get install -y ceph-common"
        ))
    })?;
    let figures = with_volumes(layout, &state, "bench-scale", count, |served| {
        measure(layout, served, &rbd, count)
    })?;
    let f = |k: &str| figures[k].as_f64().unwrap_or(0.0);
    match output {
        Output::Json => println!("{figures}"),
        Output::Text => {
            let base = f("rbdLsLongSecs");
            println!("scale: listing {count} volumes of pool {POOL} next to `rbd ls -l`");
            println!("  rbd ls -l (base)          {base:.2} s");
            for (label, key) in [
                ("volume list", "volumeListSecs"),
                ("volume list -o json", "volumeListJsonSecs"),
                ("  index cold (reads all)", "volumeListColdSecs"),
                ("CSI ListVolumes (paged)", "csiListVolumesSecs"),
                ("get pools", "getPoolsSecs"),
            ] {
                println!(
                    "  {label:<25} {:.2} s   {:.1}x faster than the base",
                    f(key),
                    base / f(key).max(1e-9)
                );
            }
            println!(
                "  supervisor memory         {} MiB before, {} MiB after (targets: volume list <= 1 s at 10,000, >= 10x)",
                figures["supervisorMiB"]["before"], figures["supervisorMiB"]["after"]
            );
        }
    }
    Ok(())
}

/// Runs `measure` while `count` volumes made through the CSI driver (served in this process, as a CO
/// reaches it) exist, named `PREFIX-PID-I`; whatever was made is deleted afterwards, also after a failure.
pub(super) fn with_volumes(
    layout: &Layout,
    state: &ClusterState,
    prefix: &str,
    count: usize,
    measure: impl FnOnce(&ServedDriver) -> Result<Value>,
) -> Result<Value, Failure> {
    let work = tempfile::Builder::new()
        .prefix(&format!("rookery-{prefix}-"))
        .tempdir()
        .map_err(|e| Failure::from(anyhow!(e)))?;
    let served = ServedDriver::start(layout, state, work.path())?;
    let names: Vec<String> = (0..count)
        .map(|i| format!("{prefix}-{}-{i}", std::process::id()))
        .collect();
    let made = served
        .rt
        .block_on(make_volumes(served.socket.clone(), &names));
    let measured = match &made {
        Ok(_) => measure(&served),
        Err(e) => Err(anyhow!("making the volumes: {e:#}")),
    };
    let ids = made.as_ref().map(Vec::clone).unwrap_or_default();
    let removed = served
        .rt
        .block_on(delete_volumes(served.socket.clone(), ids));
    served.stop();
    let figures = measured.map_err(Failure::from)?;
    removed.map_err(Failure::from)?;
    Ok(figures)
}

/// The supervisor's resident memory, in bytes (0 when it does not run).
pub(super) fn supervisor_rss(layout: &Layout) -> u64 {
    rookery_platform::proc::read_pid_file(&layout.supervisor_pid())
        .and_then(rookery_platform::proc::rss_bytes)
        .unwrap_or(0)
}

/// CreateVolume for every name, `AT_ONCE` in flight (as external-provisioner with many workers); the
/// volume ids.
async fn make_volumes(socket: std::path::PathBuf, names: &[String]) -> Result<Vec<String>> {
    let ctl = ControllerClient::new(connect(socket).await?);
    let started = Instant::now();
    let ids: Vec<Result<String>> = futures::stream::iter(names.iter().cloned())
        .map(|name| {
            let mut ctl = ctl.clone();
            async move {
                let made = ctl
                    .create_volume(super::bench_csi::request(&name, 64 << 20))
                    .await
                    .with_context(|| format!("CreateVolume {name}"))?;
                made.into_inner()
                    .volume
                    .map(|v| v.volume_id)
                    .ok_or_else(|| anyhow!("CreateVolume {name} answered no volume"))
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    eprintln!(
        "making {} volumes through CreateVolume took {:.1} s",
        names.len(),
        started.elapsed().as_secs_f64()
    );
    ids.into_iter().collect()
}

/// DeleteVolume for every id, `AT_ONCE` in flight.
async fn delete_volumes(socket: std::path::PathBuf, ids: Vec<String>) -> Result<()> {
    let ctl = ControllerClient::new(connect(socket).await?);
    let started = Instant::now();
    let count = ids.len();
    let done: Vec<Result<()>> = futures::stream::iter(ids)
        .map(|id| {
            let mut ctl = ctl.clone();
            async move {
                ctl.delete_volume(pb::DeleteVolumeRequest {
                    volume_id: id.clone(),
                    secrets: Default::default(),
                })
                .await
                .with_context(|| format!("DeleteVolume {id}"))?;
                Ok(())
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    eprintln!(
        "deleting {count} volumes through DeleteVolume took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    done.into_iter().collect()
}

/// The time a command takes, which must succeed; its output is thrown away.
fn timed(program: &Path, args: &[&str]) -> Result<f64> {
    let started = Instant::now();
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !out.status.success() {
        return Err(anyhow!(
            "{} {}: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(started.elapsed().as_secs_f64())
}

fn measure(layout: &Layout, served: &ServedDriver, rbd: &Path, count: usize) -> Result<Value> {
    let conf = layout.conf().display().to_string();
    let data_dir = layout.root.display().to_string();
    let me = std::env::current_exe().context("finding this program")?;
    let supervisor_mib = || supervisor_rss(layout) >> 20;
    let before = supervisor_mib();
    let base = timed(rbd, &["--conf", &conf, "ls", "-l", "--pool", POOL])?;
    let list = timed(&me, &["--data-dir", &data_dir, "volume", "list"])?;
    let list_json = timed(
        &me,
        &["--data-dir", &data_dir, "-o", "json", "volume", "list"],
    )?;
    let pools = timed(
        &me,
        &["--data-dir", &data_dir, "-o", "json", "get", "pools"],
    )?;
    // The pool's index forgets every image: the next listing reads them all from their objects.
    forget_indexed_images(layout)?;
    let list_cold = timed(
        &me,
        &["--data-dir", &data_dir, "-o", "json", "volume", "list"],
    )?;
    let after = supervisor_mib();
    let (csi_secs, pages, entries) = served.rt.block_on(list_every_page(served.socket.clone()))?;
    if entries < count {
        return Err(anyhow!(
            "CSI ListVolumes returned {entries} volumes, fewer than the {count} made"
        ));
    }
    Ok(json!({
        "bench": "scale",
        "volumes": count,
        "rbdLsLongSecs": base,
        "volumeListSecs": list,
        "volumeListJsonSecs": list_json,
        "volumeListColdSecs": list_cold,
        "csiListVolumesSecs": csi_secs,
        "csiPages": pages,
        "getPoolsSecs": pools,
        "supervisorMiB": {"before": before, "after": after},
    }))
}

fn forget_indexed_images(layout: &Layout) -> Result<()> {
    let rados = rookery_ceph::Rados::connect(&layout.conf(), "admin", Duration::from_secs(10))?;
    let io = rados.ioctx(POOL)?;
    let index = rookery_volumes::index::read(&io)?;
    let names: Vec<&str> = index.images.keys().map(String::as_str).collect();
    rookery_volumes::index::forget_images(&io, &names)?;
    Ok(())
}

/// Every page of ListVolumes, as external-provisioner asks: seconds, pages, entries.
async fn list_every_page(socket: std::path::PathBuf) -> Result<(f64, usize, usize)> {
    let mut ctl = ControllerClient::new(connect(socket).await?);
    let started = Instant::now();
    let (mut token, mut pages, mut entries) = (String::new(), 0, 0);
    loop {
        let page = tokio::time::timeout(
            Duration::from_secs(600),
            ctl.list_volumes(pb::ListVolumesRequest {
                max_entries: PAGE,
                starting_token: token,
            }),
        )
        .await
        .context("ListVolumes took over 10 minutes")??
        .into_inner();
        pages += 1;
        entries += page.entries.len();
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    Ok((started.elapsed().as_secs_f64(), pages, entries))
}
