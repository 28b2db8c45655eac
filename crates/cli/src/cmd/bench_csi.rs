//! `rookery bench csi`: the CSI driver's CreateVolume (one at a time and 100 at once) next to `rbd create`
//! execs, and node stage+publish, all through gRPC on a unix socket as a CO would call them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rookery_csi::pb;
use rookery_csi::pb::controller_client::ControllerClient;
use rookery_csi::pb::node_client::NodeClient;
use rookery_orchestrator::{ClusterState, Layout};
use serde_json::{json, Value};
use tonic::transport::Channel;

use crate::{CmdResult, Failure, Output};

const POOL: &str = "replicapool";

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

/// The RBD driver (controller and node) served in this process on a unix socket in `dir`, as a CO reaches
/// it.
pub(crate) struct ServedDriver {
    pub rt: tokio::runtime::Runtime,
    pub socket: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<()>>,
}

impl ServedDriver {
    pub fn start(
        layout: &Layout,
        state: &ClusterState,
        dir: &Path,
    ) -> Result<ServedDriver, Failure> {
        let driver = rookery_csi::Driver::new(rookery_csi::Config {
            kind: rookery_csi::Kind::Rbd,
            node_id: "bench".into(),
            controller: true,
            node: true,
            data_dir: layout.root.clone(),
            conf: layout.conf(),
            identity: rookery_ceph::Identity::admin(),
            cluster_ids: vec![state.fsid.clone(), state.name.clone()],
        })
        .map_err(|e| Failure::from(anyhow!(e)))?;
        let socket = dir.join("csi.sock");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(128)
            .enable_all()
            .build()
            .map_err(|e| Failure::from(anyhow!(e)))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = {
            let socket = socket.clone();
            rt.spawn(async move {
                rookery_csi::serve(driver, &socket, async {
                    let _ = stopped.await;
                })
                .await
                .map_err(|e| anyhow!("{e}"))
            })
        };
        rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !socket.exists() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Ok(ServedDriver {
            rt,
            socket,
            stop,
            server,
        })
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.rt.block_on(self.server);
    }
}

pub(crate) async fn connect(path: PathBuf) -> Result<Channel> {
    Ok(tonic::transport::Endpoint::try_from("http://[::]:50051")?
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await?)
}

pub(crate) fn request(name: &str, bytes: i64) -> pb::CreateVolumeRequest {
    pb::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(pb::CapacityRange {
            required_bytes: bytes,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![capability()],
        parameters: [("pool".to_string(), POOL.to_string())]
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

fn capability() -> pb::VolumeCapability {
    use pb::volume_capability::{access_mode::Mode, AccessMode, AccessType, MountVolume};
    pb::VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume {
            fs_type: "ext4".into(),
            mount_flags: vec![],
            volume_mount_group: String::new(),
        })),
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
    }
}

fn rbd_create_baseline(conf: &Path, count: usize, stamp: u32) -> Result<(Vec<Duration>, Duration)> {
    let rbd = rookery_ceph::tools::find_program("rbd").ok_or_else(|| {
        anyhow!("the baseline needs the `rbd` CLI: apt-get install -y ceph-common")
    })?;
    let mut each = Vec::new();
    let all = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        let out = Command::new(&rbd)
            .arg("--conf")
            .arg(conf)
            .args([
                "create",
                "--size",
                "64M",
                &format!("{POOL}/bench-csi-base-{stamp}-{i}"),
            ])
            .stdin(Stdio::null())
            .output()
            .context("running rbd")?;
        if !out.status.success() {
            return Err(anyhow!(
                "rbd create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        each.push(t.elapsed());
    }
    Ok((each, all.elapsed()))
}

async fn measure(socket: PathBuf, work: PathBuf, count: usize, stamp: u32) -> Result<Value> {
    let channel = connect(socket).await?;
    let mut ctl = ControllerClient::new(channel.clone());
    let mut node = NodeClient::new(channel);
    // One at a time.
    let mut one = Vec::new();
    let mut ids = Vec::new();
    for i in 0..count.min(50) {
        let t = Instant::now();
        let v = ctl
            .create_volume(request(&format!("bench-seq-{stamp}-{i}"), 64 << 20))
            .await?;
        one.push(t.elapsed());
        ids.push(
            v.into_inner()
                .volume
                .map(|v| v.volume_id)
                .unwrap_or_default(),
        );
    }
    // All at once, as a CO provisioning a burst of claims does.
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..count {
        let mut c = ctl.clone();
        let name = format!("bench-par-{stamp}-{i}");
        tasks.push(tokio::spawn(async move {
            c.create_volume(request(&name, 64 << 20)).await
        }));
    }
    for task in tasks {
        let v = task.await??;
        ids.push(
            v.into_inner()
                .volume
                .map(|v| v.volume_id)
                .unwrap_or_default(),
        );
    }
    let parallel = t.elapsed();
    // Node: stage + publish of fresh volumes (the first stage formats the filesystem).
    let mut attach = Vec::new();
    for (i, id) in ids.iter().take(5).enumerate() {
        let staging = work.join(format!("staging-{i}"));
        let target = work.join(format!("target-{i}"));
        let t = Instant::now();
        node.node_stage_volume(pb::NodeStageVolumeRequest {
            volume_id: id.clone(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(capability()),
            ..Default::default()
        })
        .await?;
        node.node_publish_volume(pb::NodePublishVolumeRequest {
            volume_id: id.clone(),
            staging_target_path: staging.display().to_string(),
            target_path: target.display().to_string(),
            volume_capability: Some(capability()),
            ..Default::default()
        })
        .await?;
        attach.push(t.elapsed());
        node.node_unpublish_volume(pb::NodeUnpublishVolumeRequest {
            volume_id: id.clone(),
            target_path: target.display().to_string(),
        })
        .await?;
        node.node_unstage_volume(pb::NodeUnstageVolumeRequest {
            volume_id: id.clone(),
            staging_target_path: staging.display().to_string(),
        })
        .await?;
    }
    for id in &ids {
        ctl.delete_volume(pb::DeleteVolumeRequest {
            volume_id: id.clone(),
            secrets: Default::default(),
        })
        .await?;
    }
    Ok(json!({
        "create_p50_ms": pct(one.clone(), 0.5),
        "create_p99_ms": pct(one, 0.99),
        "parallel_count": count,
        "parallel_secs": parallel.as_secs_f64(),
        "stage_publish_p50_ms": pct(attach, 0.5),
    }))
}

pub fn run(layout: &Layout, count: usize, output: Output) -> CmdResult {
    let rados = super::connect(layout)?;
    let state = ClusterState::load(layout)
        .map_err(|e| Failure::from(anyhow!(e)))?
        .ok_or_else(|| Failure::bad_input("no cluster here; run `rookery up` first"))?;
    let stamp = std::process::id();
    let work = tempfile::Builder::new()
        .prefix("rookery-bench-csi-")
        .tempdir()
        .map_err(|e| Failure::from(anyhow!(e)))?;
    let (base_each, base_total) =
        rbd_create_baseline(&layout.conf(), count, stamp).map_err(Failure::from)?;
    let io = rados.ioctx(POOL).map_err(|e| Failure::from(anyhow!(e)))?;
    for i in 0..count {
        let _ = rookery_ceph::rbd::remove(&io, &format!("bench-csi-base-{stamp}-{i}"));
    }
    let served = ServedDriver::start(layout, &state, work.path())?;
    let result = served.rt.block_on(measure(
        served.socket.clone(),
        work.path().to_path_buf(),
        count,
        stamp,
    ));
    served.stop();
    let mut m = result.map_err(Failure::from)?;
    let base_p50 = pct(base_each, 0.5);
    m["rbd_create_p50_ms"] = json!(base_p50);
    m["rbd_create_total_secs"] = json!(base_total.as_secs_f64());
    let f = |k: &str| m[k].as_f64().unwrap_or(0.0);
    match output {
        Output::Json => println!("{m}"),
        Output::Text => {
            println!("csi: CreateVolume through gRPC on a unix socket vs `rbd create` execs (64 MiB volumes)");
            println!(
                "  rbd create (base)        p50 {:.1} ms; {count} one after another {:.2} s",
                base_p50,
                f("rbd_create_total_secs")
            );
            println!(
                "  CreateVolume one by one  p50 {:.1} ms, p99 {:.1} ms   ratio {:.1}x (target p50 <= 50 ms)",
                f("create_p50_ms"),
                f("create_p99_ms"),
                base_p50 / f("create_p50_ms").max(1e-9)
            );
            println!(
                "  CreateVolume {count} at once  {:.2} s total            ratio {:.1}x (target <= 5 s)",
                f("parallel_secs"),
                f("rbd_create_total_secs") / f("parallel_secs").max(1e-9)
            );
            println!(
                "  NodeStage+NodePublish    p50 {:.0} ms (FUSE server over librbd, loop device, mkfs.ext4 on first use, mount, bind mount)",
                f("stage_publish_p50_ms")
            );
        }
    }
    Ok(())
}
