//! `rookery smoke-test`: proves the cluster stores data: writes objects with checksums through librados,
//! reads them back, compares, and removes them. When the cluster has filesystems and object stores, it does
//! the same through a ceph-fuse mount of a scratch subvolume and through S3 in a scratch bucket.

use rookery_platform::local::THIS_HOST_ADDRESS;
use std::time::Instant;

use anyhow::anyhow;
use clap::Args;
use rookery_orchestrator::Layout;

use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct SmokeArgs {
    /// The pool to write into.
    #[arg(long, default_value = "replicapool")]
    pub pool: String,
    /// How many objects.
    #[arg(long, default_value_t = 20)]
    pub count: usize,
    /// Size of each object in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub size: usize,
}

/// Deterministic, object-specific content, so a mixed-up read cannot pass.
pub fn content(index: usize, size: usize) -> Vec<u8> {
    let mut x = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn run(layout: &Layout, args: &SmokeArgs, output: Output) -> CmdResult {
    let rados = super::connect(layout)?;
    let io = rados.ioctx(&args.pool).map_err(|e| {
        Failure::bad_input(format!(
            "{e}; name an existing pool with --pool (`rookery status` lists them)"
        ))
    })?;
    let names: Vec<String> = (0..args.count)
        .map(|i| format!("rookery-smoke-test-{i}"))
        .collect();
    let t = Instant::now();
    for (i, n) in names.iter().enumerate() {
        io.write_full(n, &content(i, args.size))
            .map_err(anyhow::Error::from)?;
    }
    let write = t.elapsed();
    let t = Instant::now();
    let mut bad = Vec::new();
    for (i, n) in names.iter().enumerate() {
        if io.read_all(n).map_err(anyhow::Error::from)? != content(i, args.size) {
            bad.push(n.clone());
        }
    }
    let read = t.elapsed();
    for n in &names {
        io.remove(n).map_err(anyhow::Error::from)?;
    }
    if !bad.is_empty() {
        return Err(Failure::from(anyhow!(
            "{} object(s) read back different from what was written: {}",
            bad.len(),
            bad.join(", ")
        )));
    }
    let mib = (args.count * args.size) as f64 / (1 << 20) as f64;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"pool": args.pool, "objects": args.count, "bytes_each": args.size,
                "write_secs": write.as_secs_f64(), "read_secs": read.as_secs_f64(), "identical": true})
        ),
        Output::Text => println!(
            "wrote {} objects ({mib:.1} MiB) to pool {} in {:.0} ms, read them back identical in {:.0} ms, removed them",
            args.count,
            args.pool,
            write.as_secs_f64() * 1000.0,
            read.as_secs_f64() * 1000.0
        ),
    }
    let res = super::resources::saved_resources(layout)?;
    for fs in &res.filesystems {
        let line = files(layout, &rados, &fs.metadata.name, args)?;
        if let Output::Text = output {
            println!("{line}");
        }
    }
    for st in &res.object_stores {
        let line = objects(layout, &res, &st.metadata.name, args)?;
        if let Output::Text = output {
            println!("{line}");
        }
    }
    Ok(())
}

/// Writes files into a scratch subvolume through a ceph-fuse mount, unmounts, mounts again, compares.
fn files(
    layout: &Layout,
    rados: &rookery_ceph::Rados,
    fs: &str,
    args: &SmokeArgs,
) -> Result<String, Failure> {
    use rookery_files::{mount, subvolume};
    let fail = |e: rookery_files::FileError| Failure::from(anyhow!(e));
    let name = format!("rookery-smoke-{}", std::process::id());
    let count = args.count.min(20);
    subvolume::create(rados, fs, &name, 256 << 20).map_err(fail)?;
    let dir = tempfile::Builder::new()
        .prefix("rookery-smoke-")
        .tempdir()
        .map_err(|e| Failure::from(anyhow!(e)))?;
    let req = mount::MountRequest {
        fs: fs.to_string(),
        subvolume: Some(name.clone()),
        path: dir.path().to_path_buf(),
        read_only: false,
        conf: layout.conf(),
        identity: rookery_ceph::Identity::admin(),
        data_dir: layout.root.clone(),
    };
    let t = Instant::now();
    let outcome = (|| -> Result<Vec<usize>, Failure> {
        mount::mount(rados, &req).map_err(fail)?;
        for i in 0..count {
            std::fs::write(dir.path().join(format!("f{i}")), content(i, args.size))
                .map_err(|e| Failure::from(anyhow!(e)))?;
        }
        mount::unmount(&layout.root, &dir.path().display().to_string()).map_err(fail)?;
        mount::mount(rados, &req).map_err(fail)?;
        let bad = (0..count)
            .filter(|i| {
                std::fs::read(dir.path().join(format!("f{i}"))).ok() != Some(content(*i, args.size))
            })
            .collect();
        Ok(bad)
    })();
    let _ = mount::unmount(&layout.root, &dir.path().display().to_string());
    let removed = subvolume::remove(rados, fs, &name);
    let bad = outcome?;
    removed.map_err(fail)?;
    if !bad.is_empty() {
        return Err(Failure::from(anyhow!(
            "{} file(s) read back different through CephFS",
            bad.len()
        )));
    }
    Ok(format!(
        "filesystem {fs}: wrote {count} files into a scratch subvolume through ceph-fuse, mounted it again, read them back identical, removed it ({:.0} ms)",
        t.elapsed().as_secs_f64() * 1000.0
    ))
}

/// Puts objects into a scratch bucket over S3 (as the store's admin-API user), reads them back, removes all.
fn objects(
    layout: &Layout,
    res: &rookery_spec::Resources,
    store: &str,
    args: &SmokeArgs,
) -> Result<String, Failure> {
    let gateway = rookery_orchestrator::objects::Store::find(res, store)
        .map_err(|e| Failure::from(anyhow!(e)))?;
    let port = gateway.port;
    let s3 = rookery_objects::s3::S3::new(
        rookery_orchestrator::objectstore::endpoint(THIS_HOST_ADDRESS, port),
        gateway
            .admin_credentials(layout)
            .map_err(|e| Failure::from(anyhow!(e)))?,
    );
    let fail = |e: rookery_objects::ObjectError| Failure::from(anyhow!(e));
    let bucket = format!("rookery-smoke-{}", std::process::id());
    let t = Instant::now();
    s3.create_bucket(&bucket).map_err(fail)?;
    let outcome = (|| -> Result<usize, Failure> {
        for i in 0..args.count {
            s3.put(&bucket, &format!("o{i}"), &content(i, args.size))
                .map_err(fail)?;
        }
        let mut bad = 0;
        for i in 0..args.count {
            if s3.get(&bucket, &format!("o{i}")).map_err(fail)? != content(i, args.size) {
                bad += 1;
            }
        }
        Ok(bad)
    })();
    for i in 0..args.count {
        let _ = s3.delete(&bucket, &format!("o{i}"));
    }
    let removed = s3.delete_bucket(&bucket);
    let bad = outcome?;
    removed.map_err(fail)?;
    if bad > 0 {
        return Err(Failure::from(anyhow!(
            "{bad} object(s) read back different over S3"
        )));
    }
    Ok(format!(
        "object store {store}: put {} objects over S3 at http://127.0.0.1:{port}, got them back identical, removed them ({:.0} ms)",
        args.count,
        t.elapsed().as_secs_f64() * 1000.0
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_differs_per_object_and_is_stable() {
        assert_eq!(super::content(1, 64), super::content(1, 64));
        assert_ne!(super::content(1, 64), super::content(2, 64));
    }
}
