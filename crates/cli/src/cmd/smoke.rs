//! `rookery smoke-test`: proves the cluster stores data: writes objects with checksums through librados,
//! reads them back, compares, and removes them.

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
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_differs_per_object_and_is_stable() {
        assert_eq!(super::content(1, 64), super::content(1, 64));
        assert_ne!(super::content(1, 64), super::content(2, 64));
    }
}
