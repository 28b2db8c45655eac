//! The CSI drivers end to end: `rookery csi --driver rbd.csi.rookery.io` and `cephfs.csi.rookery.io`
//! serving one real cluster, each driven by a real gRPC client over its unix socket through the same
//! lifecycle (capabilities, create, stage, publish, write, unpublish, unstage, stage elsewhere, read back,
//! snapshots, clones from a snapshot and from a volume, expansion, stats, pagination, delete, the spec's
//! idempotency and error codes including concurrent duplicates, per-RPC metrics), then each driver's own
//! checks (RBD: secrets, claims on images, raw block; CephFS: several writers at once).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    checksum, free_port, promtool_check, pseudo_random, sample, scrape, text, TestCluster,
};
use rookery_csi::pb;
use rookery_csi::pb::controller_client::ControllerClient;
use rookery_csi::pb::identity_client::IdentityClient;
use rookery_csi::pb::node_client::NodeClient;
use tonic::transport::Channel;
use tonic::Code;

/// The driver process, stopped when dropped.
struct DriverProcess(Child);

impl Drop for DriverProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mount_cap(fs: &str, mode: pb::volume_capability::access_mode::Mode) -> pb::VolumeCapability {
    pb::VolumeCapability {
        access_type: Some(pb::volume_capability::AccessType::Mount(
            pb::volume_capability::MountVolume {
                fs_type: fs.into(),
                mount_flags: vec![],
                volume_mount_group: String::new(),
            },
        )),
        access_mode: Some(pb::volume_capability::AccessMode { mode: mode as i32 }),
    }
}

fn writer(fs: &str) -> pb::VolumeCapability {
    mount_cap(
        fs,
        pb::volume_capability::access_mode::Mode::SingleNodeWriter,
    )
}

fn create_req(name: &str, bytes: i64, fs: &str) -> pb::CreateVolumeRequest {
    pb::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(pb::CapacityRange {
            required_bytes: bytes,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![writer(fs)],
        parameters: [
            ("pool".to_string(), "replicapool".to_string()),
            (
                "csi.storage.k8s.io/pvc/name".to_string(),
                format!("claim-{name}"),
            ),
            (
                "csi.storage.k8s.io/pvc/namespace".to_string(),
                "default".to_string(),
            ),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    }
}

struct Csi {
    ctl: ControllerClient<Channel>,
    node: NodeClient<Channel>,
    work: PathBuf,
    /// The capability stage and publish ask for; None: a writer with the call's filesystem.
    cap: Option<pb::VolumeCapability>,
}

impl Csi {
    async fn create(&mut self, req: pb::CreateVolumeRequest) -> Result<pb::Volume, tonic::Status> {
        self.ctl
            .create_volume(req)
            .await
            .map(|r| r.into_inner().volume.unwrap())
    }

    async fn stage(&mut self, id: &str, staging: &Path, fs: &str) -> Result<(), tonic::Status> {
        self.node
            .node_stage_volume(pb::NodeStageVolumeRequest {
                volume_id: id.into(),
                staging_target_path: staging.display().to_string(),
                volume_capability: Some(self.cap.clone().unwrap_or_else(|| writer(fs))),
                ..Default::default()
            })
            .await
            .map(|_| ())
    }

    async fn publish(
        &mut self,
        id: &str,
        staging: &Path,
        target: &Path,
        fs: &str,
        readonly: bool,
    ) -> Result<(), tonic::Status> {
        self.node
            .node_publish_volume(pb::NodePublishVolumeRequest {
                volume_id: id.into(),
                staging_target_path: staging.display().to_string(),
                target_path: target.display().to_string(),
                volume_capability: Some(self.cap.clone().unwrap_or_else(|| writer(fs))),
                readonly,
                ..Default::default()
            })
            .await
            .map(|_| ())
    }

    async fn unpublish(&mut self, id: &str, target: &Path) -> Result<(), tonic::Status> {
        self.node
            .node_unpublish_volume(pb::NodeUnpublishVolumeRequest {
                volume_id: id.into(),
                target_path: target.display().to_string(),
            })
            .await
            .map(|_| ())
    }

    async fn unstage(&mut self, id: &str, staging: &Path) -> Result<(), tonic::Status> {
        self.node
            .node_unstage_volume(pb::NodeUnstageVolumeRequest {
                volume_id: id.into(),
                staging_target_path: staging.display().to_string(),
            })
            .await
            .map(|_| ())
    }

    /// Stage + publish at fresh paths; returns (staging, target).
    async fn attach(&mut self, id: &str, tag: &str, fs: &str) -> (PathBuf, PathBuf) {
        let staging = self.work.join(format!("staging-{tag}"));
        let target = self.work.join(format!("target-{tag}"));
        self.stage(id, &staging, fs).await.unwrap();
        self.publish(id, &staging, &target, fs, false)
            .await
            .unwrap();
        (staging, target)
    }

    async fn detach(&mut self, id: &str, staging: &Path, target: &Path) {
        self.unpublish(id, target).await.unwrap();
        self.unstage(id, staging).await.unwrap();
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => s.code(),
    }
}

fn total_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    s.f_blocks * s.f_frsize
}

/// Starts `rookery csi --driver DRIVER` for the cluster; returns the process guard, its socket and where
/// it serves metrics.
fn start_driver(c: &TestCluster, driver: &str) -> (DriverProcess, PathBuf, String) {
    let work = c.dir.parent().unwrap().to_path_buf();
    let socket = work.join(format!("csi-{driver}/csi.sock"));
    let endpoint = format!("unix://{}", socket.display());
    let metrics = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_rookery"))
        .arg("--data-dir")
        .arg(&c.dir)
        .args([
            "csi",
            "--driver",
            driver,
            "--endpoint",
            &endpoint,
            "--node-id",
            "node-1",
            "--metrics-address",
            &metrics,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = DriverProcess(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the driver did not serve");
        std::thread::sleep(Duration::from_millis(50));
    }
    (guard, socket, metrics)
}

fn fs_req(name: &str, bytes: i64) -> pb::CreateVolumeRequest {
    pb::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(pb::CapacityRange {
            required_bytes: bytes,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![rwx()],
        parameters: [
            ("fsName".to_string(), "myfs".to_string()),
            (
                "csi.storage.k8s.io/pvc/name".to_string(),
                format!("claim-{name}"),
            ),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    }
}

fn rwx() -> pb::VolumeCapability {
    mount_cap(
        "",
        pb::volume_capability::access_mode::Mode::MultiNodeMultiWriter,
    )
}

fn rbd_req(name: &str, bytes: i64) -> pb::CreateVolumeRequest {
    create_req(name, bytes, "ext4")
}

/// What differs between the drivers in the lifecycle they share.
struct Flavor {
    driver: &'static str,
    /// A CreateVolume request for a volume of `bytes`.
    req: fn(&str, i64) -> pb::CreateVolumeRequest,
    /// The filesystem stage and publish name.
    fs: &'static str,
    /// The capability stage and publish ask for; None: a writer with `fs`.
    cap: Option<pb::VolumeCapability>,
    node_expands: bool,
    /// The parameter that places a volume, and a value naming nothing (NOT_FOUND).
    place: (&'static str, &'static str),
}

fn rbd_flavor() -> Flavor {
    Flavor {
        driver: "rbd.csi.rookery.io",
        req: rbd_req,
        fs: "ext4",
        cap: None,
        node_expands: true,
        place: ("pool", "nosuchpool"),
    }
}

fn cephfs_flavor() -> Flavor {
    Flavor {
        driver: "cephfs.csi.rookery.io",
        req: fs_req,
        fs: "",
        cap: Some(rwx()),
        node_expands: false,
        place: ("fsName", "nosuchfs"),
    }
}

fn delete_req(id: &str) -> pb::DeleteVolumeRequest {
    pb::DeleteVolumeRequest {
        volume_id: id.into(),
        secrets: Default::default(),
    }
}

/// DeleteVolume as a CO sends it: again after `Unavailable` (the mgr did not answer in time, which a
/// loaded 2-core host sees now and then), as the CSI spec asks of callers.
async fn delete_volume(ctl: &mut ControllerClient<Channel>, id: &str) {
    for attempt in 1.. {
        match ctl.delete_volume(delete_req(id)).await {
            Ok(_) => return,
            Err(e) if e.code() == Code::Unavailable && attempt < 4 => {
                eprintln!(
                    "DeleteVolume {id}: {} (attempt {attempt}); again",
                    e.message()
                );
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => panic!("DeleteVolume {id}: {e:?}"),
        }
    }
}

/// One cluster for both drivers: a CephFilesystem beside the RBD pool, and a driver process each.
#[test]
fn csi_drivers_end_to_end() {
    let c = TestCluster::new_dir();
    c.ok(&["up", "--mon-port", "0"]);
    let work = c.dir.parent().unwrap().to_path_buf();
    c.apply_myfs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for flavor in [rbd_flavor(), cephfs_flavor()] {
        let (_driver, socket, metrics) = start_driver(&c, flavor.driver);
        let dir = work.join(flavor.driver);
        std::fs::create_dir_all(&dir).unwrap();
        rt.block_on(async {
            let channel = common::csi_channel(socket.clone()).await;
            let mut csi = Csi {
                ctl: ControllerClient::new(channel.clone()),
                node: NodeClient::new(channel.clone()),
                work: dir.clone(),
                cap: flavor.cap.clone(),
            };
            lifecycle(&mut csi, IdentityClient::new(channel), &flavor, &metrics).await;
            if flavor.node_expands {
                rbd_only(&c, &mut csi).await;
            } else {
                cephfs_only(&c, &mut csi).await;
            }
        });
    }
}

/// What both drivers do alike, with the same answers.
async fn lifecycle(
    csi: &mut Csi,
    mut identity: IdentityClient<Channel>,
    f: &Flavor,
    metrics: &str,
) {
    let work = csi.work.clone();
    let fs = f.fs;
    let req = f.req;

    // Identity and capabilities: exactly what is implemented.
    let info = identity
        .get_plugin_info(pb::GetPluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, f.driver);
    let probe = identity
        .probe(pb::ProbeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(probe.ready, Some(true));
    use pb::controller_service_capability::rpc::Type as T;
    let caps = csi
        .ctl
        .controller_get_capabilities(pb::ControllerGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut got: Vec<i32> = caps
        .capabilities
        .iter()
        .filter_map(|c| match &c.r#type {
            Some(pb::controller_service_capability::Type::Rpc(r)) => Some(r.r#type),
            _ => None,
        })
        .collect();
    got.sort();
    let mut want: Vec<i32> = [
        T::CreateDeleteVolume,
        T::CreateDeleteSnapshot,
        T::ListSnapshots,
        T::ListVolumes,
        T::GetCapacity,
        T::CloneVolume,
        T::ExpandVolume,
    ]
    .iter()
    .map(|t| *t as i32)
    .collect();
    want.sort();
    assert_eq!(got, want);
    let ncaps = csi
        .node
        .node_get_capabilities(pb::NodeGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    let expands = ncaps.capabilities.iter().any(|c| {
        matches!(&c.r#type, Some(pb::node_service_capability::Type::Rpc(r))
            if r.r#type == pb::node_service_capability::rpc::Type::ExpandVolume as i32)
    });
    assert_eq!(expands, f.node_expands, "{ncaps:?}");
    let ni = csi
        .node
        .node_get_info(pb::NodeGetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ni.node_id, "node-1");
    // Not advertised, so not served.
    let r = csi
        .ctl
        .controller_publish_volume(pb::ControllerPublishVolumeRequest::default())
        .await;
    assert_eq!(code(r), Code::Unimplemented);

    // CreateVolume refusals.
    assert_eq!(
        code(csi.create(req("", 1 << 20)).await),
        Code::InvalidArgument
    );
    let mut no_caps = req("pvc-bad", 1 << 20);
    no_caps.volume_capabilities.clear();
    assert_eq!(code(csi.create(no_caps).await), Code::InvalidArgument);
    let mut range = req("pvc-bad", 10 << 20);
    range.capacity_range = Some(pb::CapacityRange {
        required_bytes: 10 << 20,
        limit_bytes: 5 << 20,
    });
    assert_eq!(code(csi.create(range).await), Code::OutOfRange);
    let mut unknown = req("pvc-bad", 1 << 20);
    unknown.parameters.insert("colour".into(), "blue".into());
    assert_eq!(code(csi.create(unknown).await), Code::InvalidArgument);
    let mut cluster = req("pvc-bad", 1 << 20);
    cluster
        .parameters
        .insert("clusterID".into(), "someone-else".into());
    assert_eq!(code(csi.create(cluster).await), Code::InvalidArgument);
    let mut nowhere = req("pvc-bad", 1 << 20);
    nowhere
        .parameters
        .insert(f.place.0.into(), f.place.1.into());
    assert_eq!(code(csi.create(nowhere).await), Code::NotFound);

    // Create is idempotent by name; an incompatible size is ALREADY_EXISTS.
    let vol = csi.create(req("pvc-1", 64 << 20)).await.unwrap();
    assert_eq!(vol.capacity_bytes, 64 << 20);
    let again = csi.create(req("pvc-1", 64 << 20)).await.unwrap();
    assert_eq!(again.volume_id, vol.volume_id);
    assert_eq!(
        code(csi.create(req("pvc-1", 128 << 20)).await),
        Code::AlreadyExists
    );
    // Concurrent duplicates make one volume: each answer is that volume or ABORTED.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut ctl = csi.ctl.clone();
        tasks.push(tokio::spawn(async move {
            ctl.create_volume(req("pvc-race", 8 << 20)).await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                ids.insert(r.into_inner().volume.unwrap().volume_id);
            }
            Err(s) => assert_eq!(s.code(), Code::Aborted, "{s:?}"),
        }
    }
    assert!(ids.len() <= 1, "{ids:?}");
    let race = csi.create(req("pvc-race", 8 << 20)).await.unwrap();

    // Stage, publish, write; then the same at other paths reads it back.
    let id = vol.volume_id.clone();
    let (staging, target) = csi.attach(&id, "a", fs).await;
    // Repeats succeed; a stage of another volume at the same path does not.
    csi.stage(&id, &staging, fs).await.unwrap();
    csi.publish(&id, &staging, &target, fs, false)
        .await
        .unwrap();
    assert_eq!(
        code(csi.stage(&race.volume_id, &staging, fs).await),
        Code::AlreadyExists
    );
    assert_eq!(
        code(
            csi.publish(&id, &work.join("not-staged"), &work.join("t-x"), fs, false)
                .await
        ),
        Code::FailedPrecondition
    );
    let data = pseudo_random(11, 5 << 20);
    std::fs::write(target.join("a.bin"), &data).unwrap();
    let stats = csi
        .node
        .node_get_volume_stats(pb::NodeGetVolumeStatsRequest {
            volume_id: id.clone(),
            volume_path: target.display().to_string(),
            staging_target_path: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let bytes = stats
        .usage
        .iter()
        .find(|u| u.unit == pb::volume_usage::Unit::Bytes as i32)
        .unwrap();
    assert!(bytes.total > 0, "{stats:?}");
    if f.node_expands {
        // CephFS counts usage lazily; a block filesystem at once.
        assert!(bytes.used >= 5 << 20, "{stats:?}");
    }
    assert!(!stats.volume_condition.unwrap().abnormal);
    // Deleting a volume in use is refused.
    assert_eq!(
        code(csi.ctl.delete_volume(delete_req(&id)).await),
        Code::FailedPrecondition
    );
    csi.detach(&id, &staging, &target).await;
    csi.unpublish(&id, &target).await.unwrap();
    csi.unstage(&id, &staging).await.unwrap();
    assert!(!target.exists());
    let (staging, target) = csi.attach(&id, "b", fs).await;
    assert_eq!(
        checksum(&std::fs::read(target.join("a.bin")).unwrap()),
        checksum(&data)
    );

    // Snapshot, write more, a volume from the snapshot sees only the old content; a clone sees all.
    let snap_req = |name: &str, src: &str| pb::CreateSnapshotRequest {
        source_volume_id: src.into(),
        name: name.into(),
        ..Default::default()
    };
    let snap = csi
        .ctl
        .create_snapshot(snap_req("snap-1", &id))
        .await
        .unwrap()
        .into_inner()
        .snapshot
        .unwrap();
    assert!(snap.creation_time.is_some());
    let snap2 = csi
        .ctl
        .create_snapshot(snap_req("snap-1", &id))
        .await
        .unwrap()
        .into_inner()
        .snapshot
        .unwrap();
    assert_eq!(snap.snapshot_id, snap2.snapshot_id);
    assert_eq!(snap.creation_time, snap2.creation_time);
    assert_eq!(
        code(
            csi.ctl
                .create_snapshot(snap_req("snap-1", &race.volume_id))
                .await
        ),
        Code::AlreadyExists
    );
    std::fs::write(target.join("later.txt"), b"after the snapshot").unwrap();
    let from_snap = pb::CreateVolumeRequest {
        volume_content_source: Some(pb::VolumeContentSource {
            r#type: Some(pb::volume_content_source::Type::Snapshot(
                pb::volume_content_source::SnapshotSource {
                    snapshot_id: snap.snapshot_id.clone(),
                },
            )),
        }),
        ..req("pvc-from-snap", 64 << 20)
    };
    let restored = csi.create(from_snap.clone()).await.unwrap();
    assert_eq!(restored.capacity_bytes, 64 << 20);
    // The same request again is the same volume; from another source it is ALREADY_EXISTS.
    let restored_again = csi.create(from_snap).await.unwrap();
    assert_eq!(restored_again.volume_id, restored.volume_id);
    assert_eq!(
        code(csi.create(req("pvc-from-snap", 64 << 20)).await),
        Code::AlreadyExists
    );
    let (s2, t2) = csi.attach(&restored.volume_id, "snap", fs).await;
    assert_eq!(
        checksum(&std::fs::read(t2.join("a.bin")).unwrap()),
        checksum(&data)
    );
    assert!(
        !t2.join("later.txt").exists(),
        "the snapshot's volume sees a later write"
    );
    csi.detach(&restored.volume_id, &s2, &t2).await;

    // Expansion of a staged volume: the controller grows it, and the node too where the driver says so.
    let grown = csi
        .ctl
        .controller_expand_volume(pb::ControllerExpandVolumeRequest {
            volume_id: id.clone(),
            capacity_range: Some(pb::CapacityRange {
                required_bytes: 128 << 20,
                limit_bytes: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grown.capacity_bytes, 128 << 20);
    assert_eq!(grown.node_expansion_required, f.node_expands);
    let nexp = csi
        .node
        .node_expand_volume(pb::NodeExpandVolumeRequest {
            volume_id: id.clone(),
            volume_path: target.display().to_string(),
            staging_target_path: staging.display().to_string(),
            ..Default::default()
        })
        .await;
    if f.node_expands {
        assert_eq!(nexp.unwrap().into_inner().capacity_bytes, 128 << 20);
    } else {
        assert_eq!(code(nexp), Code::Unimplemented);
    }
    csi.detach(&id, &staging, &target).await;

    let clone_req = pb::CreateVolumeRequest {
        volume_content_source: Some(pb::VolumeContentSource {
            r#type: Some(pb::volume_content_source::Type::Volume(
                pb::volume_content_source::VolumeSource {
                    volume_id: id.clone(),
                },
            )),
        }),
        ..req("pvc-clone", 128 << 20)
    };
    let clone = csi.create(clone_req).await.unwrap();
    assert_eq!(clone.capacity_bytes, 128 << 20);
    let (s3, t3) = csi.attach(&clone.volume_id, "clone", fs).await;
    assert_eq!(
        std::fs::read(t3.join("later.txt")).unwrap(),
        b"after the snapshot"
    );
    csi.detach(&clone.volume_id, &s3, &t3).await;

    // Listing, with pagination; a bad token is ABORTED.
    let page = csi
        .ctl
        .list_volumes(pb::ListVolumesRequest {
            max_entries: 2,
            starting_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.entries.len(), 2);
    let rest = csi
        .ctl
        .list_volumes(pb::ListVolumesRequest {
            max_entries: 0,
            starting_token: page.next_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.entries.len() + rest.entries.len(),
        4,
        "pvc-1, pvc-race, from-snap, clone"
    );
    assert_eq!(
        code(
            csi.ctl
                .list_volumes(pb::ListVolumesRequest {
                    max_entries: 1,
                    starting_token: "zz".into()
                })
                .await
        ),
        Code::Aborted
    );
    let snaps = csi
        .ctl
        .list_snapshots(pb::ListSnapshotsRequest {
            source_volume_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(snaps.entries.len(), 1);
    let cap = csi
        .ctl
        .get_capacity(pb::GetCapacityRequest {
            parameters: req("pvc-cap", 1).parameters,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(cap.available_capacity > 0);
    // A CO may ask without parameters: the capacity the driver can offer anywhere.
    let anywhere = csi
        .ctl
        .get_capacity(pb::GetCapacityRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(anywhere.available_capacity > 0);

    // Deletes: a volume with a snapshot is refused; repeated and unknown deletes succeed.
    assert_eq!(
        code(csi.ctl.delete_volume(delete_req(&id)).await),
        Code::FailedPrecondition
    );
    for _ in 0..2 {
        csi.ctl
            .delete_snapshot(pb::DeleteSnapshotRequest {
                snapshot_id: snap.snapshot_id.clone(),
                secrets: Default::default(),
            })
            .await
            .unwrap();
    }
    for v in [
        &id,
        &race.volume_id,
        &restored.volume_id,
        &clone.volume_id,
        &id,
    ] {
        delete_volume(&mut csi.ctl, v).await;
    }
    csi.ctl
        .delete_volume(delete_req("not-an-id"))
        .await
        .unwrap();
    assert_eq!(
        code(
            csi.ctl
                .delete_volume(pb::DeleteVolumeRequest::default())
                .await
        ),
        Code::InvalidArgument
    );
    let validate = csi
        .ctl
        .validate_volume_capabilities(pb::ValidateVolumeCapabilitiesRequest {
            volume_id: id.clone(),
            volume_capabilities: vec![csi.cap.clone().unwrap_or_else(|| writer(fs))],
            ..Default::default()
        })
        .await;
    assert_eq!(code(validate), Code::NotFound);
    let left = csi
        .ctl
        .list_volumes(pb::ListVolumesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(left.entries.is_empty(), "{left:?}");

    // Every other RPC's refusals, as the spec names them.
    let gone = id.clone();
    let snap_err = csi
        .ctl
        .create_snapshot(pb::CreateSnapshotRequest {
            name: String::new(),
            source_volume_id: gone.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(snap_err), Code::InvalidArgument);
    let snap_err = csi
        .ctl
        .create_snapshot(pb::CreateSnapshotRequest {
            name: "s".into(),
            source_volume_id: gone.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(snap_err), Code::NotFound);
    let snap_err = csi
        .ctl
        .delete_snapshot(pb::DeleteSnapshotRequest::default())
        .await;
    assert_eq!(code(snap_err), Code::InvalidArgument);
    let exp = csi
        .ctl
        .controller_expand_volume(pb::ControllerExpandVolumeRequest {
            volume_id: gone.clone(),
            capacity_range: Some(pb::CapacityRange {
                required_bytes: 1 << 30,
                limit_bytes: 0,
            }),
            ..Default::default()
        })
        .await;
    assert_eq!(code(exp), Code::NotFound);
    let exp = csi
        .ctl
        .controller_expand_volume(pb::ControllerExpandVolumeRequest {
            volume_id: gone.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(exp), Code::InvalidArgument);
    let val = csi
        .ctl
        .validate_volume_capabilities(pb::ValidateVolumeCapabilitiesRequest {
            volume_id: gone.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(val), Code::InvalidArgument);
    assert_eq!(
        code(csi.stage(&gone, &work.join("staging-gone"), fs).await),
        Code::NotFound
    );
    let no_path = csi
        .node
        .node_stage_volume(pb::NodeStageVolumeRequest {
            volume_id: gone.clone(),
            volume_capability: Some(csi.cap.clone().unwrap_or_else(|| writer(fs))),
            ..Default::default()
        })
        .await;
    assert_eq!(code(no_path), Code::InvalidArgument);
    let no_cap = csi
        .node
        .node_stage_volume(pb::NodeStageVolumeRequest {
            volume_id: gone.clone(),
            staging_target_path: work.join("s").display().to_string(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(no_cap), Code::InvalidArgument);
    assert_eq!(
        code(
            csi.publish(&gone, &work.join("s-none"), &work.join("t-none"), fs, false)
                .await
        ),
        Code::NotFound
    );
    let stats = csi
        .node
        .node_get_volume_stats(pb::NodeGetVolumeStatsRequest {
            volume_id: gone.clone(),
            volume_path: work.join("nowhere").display().to_string(),
            staging_target_path: String::new(),
        })
        .await;
    assert_eq!(code(stats), Code::NotFound);
    let nexp = csi
        .node
        .node_expand_volume(pb::NodeExpandVolumeRequest {
            volume_id: gone.clone(),
            volume_path: work.join("nowhere").display().to_string(),
            ..Default::default()
        })
        .await;
    let want = if f.node_expands {
        Code::NotFound
    } else {
        Code::Unimplemented
    };
    assert_eq!(code(nexp), want);
    // Repeated unpublish and unstage of what is gone succeed.
    csi.unpublish(&gone, &work.join("t-none")).await.unwrap();
    csi.unstage(&gone, &work.join("s-none")).await.unwrap();

    // Metrics count the RPCs made: exactly, for a known sequence between two scrapes.
    let count = |text: &str, method: &str, code: &str| {
        let series = format!("rookery_csi_requests_total{{method=\"{method}\",code=\"{code}\"}}");
        sample(text, &series).unwrap_or(0.0)
    };
    let before = scrape(metrics);
    let v = csi.create(req("pvc-metrics", 8 << 20)).await.unwrap();
    // The same request again: answered from the existing volume.
    csi.create(req("pvc-metrics", 8 << 20)).await.unwrap();
    let staging = work.join("staging-metrics");
    csi.stage(&v.volume_id, &staging, fs).await.unwrap();
    csi.unstage(&v.volume_id, &staging).await.unwrap();
    csi.ctl
        .delete_volume(delete_req(&v.volume_id))
        .await
        .unwrap();
    let after = scrape(metrics);
    promtool_check(&after);
    // The CSI metrics the shipped Grafana dashboard and alert rules use are the ones served.
    common::monitoring::assert_served(
        &after,
        common::monitoring::metric_names()
            .iter()
            .filter(|n| n.starts_with("rookery_csi_")),
    );
    for (method, made) in [
        ("CreateVolume", 2.0),
        ("NodeStageVolume", 1.0),
        ("NodeUnstageVolume", 1.0),
        ("DeleteVolume", 1.0),
    ] {
        assert_eq!(
            count(&after, method, "Ok") - count(&before, method, "Ok"),
            made,
            "{method}:\n{after}"
        );
    }
    // Since the start: the calls made once, and refusals by their code.
    assert_eq!(count(&after, "GetPluginInfo", "Ok"), 1.0, "{after}");
    assert_eq!(count(&after, "Probe", "Ok"), 1.0);
    assert_eq!(count(&after, "NodeGetInfo", "Ok"), 1.0);
    assert_eq!(count(&after, "CreateVolume", "OutOfRange"), 1.0);
    assert_eq!(count(&after, "CreateVolume", "NotFound"), 1.0);
    assert_eq!(count(&after, "ValidateVolumeCapabilities", "NotFound"), 1.0);
    // Every request is timed too.
    let counted: f64 = after
        .lines()
        .filter(|l| l.starts_with("rookery_csi_requests_total{method=\"CreateVolume\","))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(counted > 10.0, "{after}");
    assert_eq!(
        sample(
            &after,
            "rookery_csi_request_duration_seconds_count{method=\"CreateVolume\"}"
        ),
        Some(counted)
    );
}

/// RBD's own: one writer mode only, secrets, the claim on the image, xfs grown online, raw block.
async fn rbd_only(c: &TestCluster, csi: &mut Csi) {
    let work = csi.work.clone();
    let mut rwx = create_req("pvc-bad", 1 << 20, "ext4");
    rwx.volume_capabilities = vec![mount_cap(
        "ext4",
        pb::volume_capability::access_mode::Mode::MultiNodeMultiWriter,
    )];
    assert_eq!(code(csi.create(rwx).await), Code::InvalidArgument);

    // Secrets as ceph-csi's StorageClasses carry them: the request acts as that Ceph user.
    let conf = c.dir.join("ceph.conf");
    let made = Command::new("ceph")
        .arg("--conf")
        .arg(&conf)
        .args([
            "auth",
            "get-or-create",
            "client.csi-rbd",
            "mon",
            "profile rbd",
            "osd",
            "profile rbd pool=replicapool",
            "mgr",
            "profile rbd pool=replicapool",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let entity: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let key = entity[0]["key"].as_str().unwrap().to_string();
    let mut as_user = create_req("pvc-secret", 4 << 20, "ext4");
    as_user.secrets = [
        ("adminID".to_string(), "csi-rbd".to_string()),
        ("adminKey".to_string(), key.clone()),
    ]
    .into_iter()
    .collect();
    let secret_vol = csi.create(as_user.clone()).await.unwrap();
    let mut wrong = as_user.clone();
    wrong.secrets.insert(
        "adminKey".into(),
        "AQBxrVNnAAAAABAAtQ1x9yYZvNqxH6QDyRzYjw==".into(),
    );
    let refused = csi.create(wrong).await;
    assert_eq!(code(refused), Code::Unauthenticated);
    let mut half = as_user.clone();
    half.secrets.remove("adminKey");
    assert_eq!(code(csi.create(half).await), Code::InvalidArgument);
    csi.ctl
        .delete_volume(pb::DeleteVolumeRequest {
            volume_id: secret_vol.volume_id.clone(),
            secrets: as_user.secrets.clone(),
        })
        .await
        .unwrap();

    // The claim's names are on the image, for `rookery volume info`.
    let claimed = csi
        .create(create_req("pvc-claim", 8 << 20, "ext4"))
        .await
        .unwrap();
    let image = claimed.volume_id.split_once('/').unwrap().1.to_string();
    let info = common::json(&common::rookery(
        &c.dir,
        &["volume", "info", &image, "-o", "json"],
    ));
    assert_eq!(info["claim"], "default/claim-pvc-claim", "{info}");
    let table =
        String::from_utf8_lossy(&common::rookery(&c.dir, &["volume", "list"]).stdout).to_string();
    assert!(table.contains("default/claim-pvc-claim"), "{table}");
    csi.ctl
        .delete_volume(delete_req(&claimed.volume_id))
        .await
        .unwrap();

    // Expansion: the controller grows the image, the node grows the filesystem (xfs grows online here).
    let x = csi
        .create(create_req("pvc-xfs", 320 << 20, "xfs"))
        .await
        .unwrap();
    let (sx, tx) = csi.attach(&x.volume_id, "xfs", "xfs").await;
    let before = total_bytes(&tx);
    let grown = csi
        .ctl
        .controller_expand_volume(pb::ControllerExpandVolumeRequest {
            volume_id: x.volume_id.clone(),
            capacity_range: Some(pb::CapacityRange {
                required_bytes: 640 << 20,
                limit_bytes: 0,
            }),
            volume_capability: Some(writer("xfs")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grown.capacity_bytes, 640 << 20);
    assert!(grown.node_expansion_required);
    csi.node
        .node_expand_volume(pb::NodeExpandVolumeRequest {
            volume_id: x.volume_id.clone(),
            volume_path: tx.display().to_string(),
            staging_target_path: sx.display().to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    let after = total_bytes(&tx);
    assert!(after > before + (200 << 20), "{before} -> {after}");
    csi.detach(&x.volume_id, &sx, &tx).await;

    csi.ctl
        .delete_volume(delete_req(&x.volume_id))
        .await
        .unwrap();

    // Raw block: the device itself is published as a file; data written through it comes back at
    // another staging, and expansion grows the device.
    let block_cap = pb::VolumeCapability {
        access_type: Some(pb::volume_capability::AccessType::Block(
            pb::volume_capability::BlockVolume {},
        )),
        access_mode: writer("ext4").access_mode,
    };
    let mut mixed = create_req("pvc-mixed", 16 << 20, "ext4");
    mixed.volume_capabilities.push(block_cap.clone());
    assert_eq!(code(csi.create(mixed).await), Code::InvalidArgument);
    let mut blk_req = create_req("pvc-block", 16 << 20, "");
    blk_req.volume_capabilities = vec![block_cap.clone()];
    let blk = csi.create(blk_req).await.unwrap();
    csi.cap = Some(block_cap.clone());
    let (bs1, bt1) = (work.join("staging-blk1"), work.join("pods/blk1/dev"));
    csi.stage(&blk.volume_id, &bs1, "").await.unwrap();
    csi.publish(&blk.volume_id, &bs1, &bt1, "", false)
        .await
        .unwrap();
    csi.publish(&blk.volume_id, &bs1, &bt1, "", false)
        .await
        .unwrap();
    let pattern = pseudo_random(21, 1 << 20);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut dev = std::fs::OpenOptions::new().write(true).open(&bt1).unwrap();
        dev.seek(SeekFrom::Start(4096)).unwrap();
        dev.write_all(&pattern).unwrap();
        dev.sync_all().unwrap();
    }
    let stats = csi
        .node
        .node_get_volume_stats(pb::NodeGetVolumeStatsRequest {
            volume_id: blk.volume_id.clone(),
            volume_path: bt1.display().to_string(),
            staging_target_path: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.usage[0].total, 16 << 20, "{stats:?}");
    csi.unpublish(&blk.volume_id, &bt1).await.unwrap();
    assert!(!bt1.exists());
    csi.unstage(&blk.volume_id, &bs1).await.unwrap();
    let (bs2, bt2) = (work.join("staging-blk2"), work.join("pods/blk2/dev"));
    csi.stage(&blk.volume_id, &bs2, "").await.unwrap();
    csi.publish(&blk.volume_id, &bs2, &bt2, "", false)
        .await
        .unwrap();
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut dev = std::fs::File::open(&bt2).unwrap();
        dev.seek(SeekFrom::Start(4096)).unwrap();
        let mut back = vec![0u8; pattern.len()];
        dev.read_exact(&mut back).unwrap();
        assert_eq!(
            checksum(&back),
            checksum(&pattern),
            "the block device lost data"
        );
    }
    let grown = csi
        .ctl
        .controller_expand_volume(pb::ControllerExpandVolumeRequest {
            volume_id: blk.volume_id.clone(),
            capacity_range: Some(pb::CapacityRange {
                required_bytes: 32 << 20,
                limit_bytes: 0,
            }),
            volume_capability: Some(block_cap.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(grown.node_expansion_required);
    csi.node
        .node_expand_volume(pb::NodeExpandVolumeRequest {
            volume_id: blk.volume_id.clone(),
            volume_path: bt2.display().to_string(),
            staging_target_path: bs2.display().to_string(),
            volume_capability: Some(block_cap.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let stats = csi
        .node
        .node_get_volume_stats(pb::NodeGetVolumeStatsRequest {
            volume_id: blk.volume_id.clone(),
            volume_path: bt2.display().to_string(),
            staging_target_path: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.usage[0].total, 32 << 20, "{stats:?}");
    // The raw device is never formatted behind the workload's back: a filesystem mount is refused.
    let mount = c.run(&[
        "volume",
        "mount",
        blk.volume_id.split_once('/').unwrap().1,
        work.join("m-blk").to_str().unwrap(),
    ]);
    assert_ne!(mount.status.code(), Some(0));
    csi.unpublish(&blk.volume_id, &bt2).await.unwrap();
    csi.unstage(&blk.volume_id, &bs2).await.unwrap();
    csi.ctl
        .delete_volume(pb::DeleteVolumeRequest {
            volume_id: blk.volume_id.clone(),
            secrets: Default::default(),
        })
        .await
        .unwrap();
    a_raw_block_volume_on_a_full_pool(c, csi, &block_cap).await;
}

/// A raw block volume whose pool fills: the writer gets ENOSPC in bounded time, what was written reads
/// back, and once the quota is raised the same published device takes writes again.
async fn a_raw_block_volume_on_a_full_pool(
    c: &TestCluster,
    csi: &mut Csi,
    block_cap: &pb::VolumeCapability,
) {
    let file = csi.work.join("blkfull.yaml");
    let spec = |quota: &str| {
        format!("apiVersion: ceph.rook.io/v1\nkind: CephBlockPool\nmetadata: {{name: blkfull}}\nspec:\n  failureDomain: osd\n  replicated: {{size: 1}}\n  quotas: {{maxSize: {quota}}}\n")
    };
    std::fs::write(&file, spec("64Mi")).unwrap();
    c.ok(&["apply", "-f", file.to_str().unwrap()]);
    let mut req = create_req("pvc-blkfull", 48 << 20, "");
    req.volume_capabilities = vec![block_cap.clone()];
    req.parameters.insert("pool".into(), "blkfull".into());
    let vol = csi.create(req).await.unwrap();
    csi.cap = Some(block_cap.clone());
    let (staging, target) = (
        csi.work.join("staging-blkfull"),
        csi.work.join("pods/blkfull/dev"),
    );
    csi.stage(&vol.volume_id, &staging, "").await.unwrap();
    csi.publish(&vol.volume_id, &staging, &target, "", false)
        .await
        .unwrap();
    // Another client fills the pool to its quota, and Ceph marks it full.
    let rados = c.rados();
    rados
        .ioctx("blkfull")
        .unwrap()
        .write_full("filler", &vec![7u8; 64 << 20])
        .unwrap();
    let filled = Instant::now();
    while !rookery_ceph::commands::osd::dump(&rados)
        .unwrap()
        .pools
        .iter()
        .any(|p| p.pool_name == "blkfull" && p.flags_names.contains("full"))
    {
        assert!(
            filled.elapsed() < Duration::from_secs(60),
            "pool blkfull was never marked full"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The mons marked it; the OSDs hold writes once their map says so too, moments later (a write
    // that reached an OSD still on the older map went through, once, under a loaded CI run).
    std::thread::sleep(Duration::from_secs(3));
    let dd = |seek: &str, count: &str| {
        Command::new("dd")
            .args(["if=/dev/zero", "bs=1M", "oflag=direct", "conv=fsync"])
            .arg(format!("of={}", target.display()))
            .args([seek, count])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let started = Instant::now();
    let mut writer = dd("seek=1", "count=16");
    let outcome = loop {
        if let Some(status) = writer.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = writer.kill();
            let _ = rados.ioctx("blkfull").unwrap().remove("filler");
            panic!("a raw block writer on a full pool got no error within 30 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let said = text(&writer.wait_with_output().unwrap());
    assert!(!outcome.success(), "dd succeeded on a full pool: {said}");
    // A write the server had taken into its write-back cache fails at the flush, which the loop device
    // reports as EIO whatever the cause; a write that waits for room fails with ENOSPC.
    assert!(
        said.contains("No space left on device") || said.contains("fsync failed"),
        "{said}"
    );
    eprintln!(
        "raw block writer on a full pool: failed after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Room again: the same device takes writes, and they read back.
    let pattern = pseudo_random(33, 1 << 20);
    std::fs::write(csi.work.join("pattern"), &pattern).unwrap();
    std::fs::write(&file, spec("1Gi")).unwrap();
    c.ok(&["apply", "-f", file.to_str().unwrap()]);
    let raised = Instant::now();
    loop {
        let again = Command::new("dd")
            .arg(format!("if={}", csi.work.join("pattern").display()))
            .arg(format!("of={}", target.display()))
            .args(["bs=1M", "count=1", "oflag=direct", "conv=fsync,notrunc"])
            .output()
            .unwrap();
        if again.status.success() {
            break;
        }
        assert!(
            raised.elapsed() < Duration::from_secs(60),
            "the raw block volume took no writes within 60 s of the quota raised: {}",
            text(&again)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let back = Command::new("dd")
        .arg(format!("if={}", target.display()))
        .args(["bs=1M", "count=1", "iflag=direct"])
        .output()
        .unwrap();
    assert_eq!(
        checksum(&back.stdout),
        checksum(&pattern),
        "the raw block volume lost data"
    );
    csi.unpublish(&vol.volume_id, &target).await.unwrap();
    csi.unstage(&vol.volume_id, &staging).await.unwrap();
    delete_volume(&mut csi.ctl, &vol.volume_id).await;
    rados.ioctx("blkfull").unwrap().remove("filler").unwrap();
    c.ok(&["delete", "-f", file.to_str().unwrap()]);
}

/// CephFS's own: no block volumes, a filesystem named, the claim in `rookery fs subvolume list`, and
/// several writers of one volume at once.
async fn cephfs_only(c: &TestCluster, csi: &mut Csi) {
    let mut no_fs = fs_req("pvc-bad", 1 << 20);
    no_fs.parameters.remove("fsName");
    assert_eq!(code(csi.create(no_fs).await), Code::InvalidArgument);
    let mut block = fs_req("pvc-bad", 1 << 20);
    block.volume_capabilities = vec![pb::VolumeCapability {
        access_type: Some(pb::volume_capability::AccessType::Block(
            pb::volume_capability::BlockVolume {},
        )),
        access_mode: rwx().access_mode,
    }];
    assert_eq!(code(csi.create(block).await), Code::InvalidArgument);

    let vol = csi.create(fs_req("pvc-rwx", 32 << 20)).await.unwrap();
    let id = vol.volume_id.clone();
    let sub = id.split_once('/').unwrap().1.to_string();
    let listed = String::from_utf8_lossy(
        &common::rookery(&c.dir, &["fs", "subvolume", "list", "myfs"]).stdout,
    )
    .to_string();
    assert!(
        listed.contains(&sub) && listed.contains("claim-pvc-rwx"),
        "{listed}"
    );

    // Two stagings (two "nodes") of one volume see each other's writes.
    let (s1, t1) = csi.attach(&id, "one", "").await;
    let (s2, t2) = csi.attach(&id, "two", "").await;
    let data = pseudo_random(5, 2 << 20);
    std::fs::write(t1.join("shared.bin"), &data).unwrap();
    assert_eq!(
        checksum(&std::fs::read(t2.join("shared.bin")).unwrap()),
        checksum(&data)
    );
    std::fs::write(t2.join("back.txt"), b"from two").unwrap();
    assert_eq!(std::fs::read(t1.join("back.txt")).unwrap(), b"from two");
    csi.detach(&id, &s1, &t1).await;
    csi.detach(&id, &s2, &t2).await;
    assert!(
        common::processes_mentioning(&s1.display().to_string()).is_empty(),
        "ceph-fuse left running"
    );
    delete_volume(&mut csi.ctl, &id).await;
}
