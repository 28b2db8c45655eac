//! `rookery doctor`: the preflight checks (local: they inspect this host), then the cluster's health
//! explained: the report of `GET /v1/status` when a supervisor answers, read here only when none runs
//! (as `rookery status` does).

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use rookery_orchestrator::preflight::{self, Severity};
use rookery_orchestrator::state::HostPolicy;
use rookery_orchestrator::Layout;

use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct DoctorArgs {
    /// Check for this spec instead of the cluster's saved one (or the default).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
}

pub fn run(layout: &Layout, args: &DoctorArgs, output: Output) -> CmdResult {
    let (_, _, desired) = super::load_spec(args.file.as_deref(), layout)?;
    let dir = preflight::inspect(layout).map_err(|e| Failure::from(anyhow!(e)))?;
    let platform = HostPolicy::load(layout).platform(layout);
    let host = crate::home_host(&platform)?;
    let mut findings = preflight::check(layout, &desired, &dir, &platform, &host.name);
    findings.push(volume_support());
    let report = matches!(dir, preflight::DataDir::Cluster(_))
        .then(|| super::status::gather(layout).ok())
        .flatten();
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"checks": findings, "cluster": report})
        ),
        Output::Text => {
            for f in &findings {
                let mark = match f.severity {
                    Severity::Ok => "ok  ",
                    Severity::Warn => "WARN",
                    Severity::Error => "FAIL",
                };
                println!("{mark} {:<9} {}", f.check, f.message);
                if let Some(fix) = &f.fix {
                    println!("     {:<9} fix: {fix}", "");
                }
            }
            for n in &desired.notices {
                println!("note {n}");
            }
            if let Some(r) = &report {
                println!();
                print!("{}", crate::render::status(r));
            }
        }
    }
    let errors: Vec<_> = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(Failure {
        code: if errors.iter().any(|f| f.bad_input) {
            2
        } else {
            1
        },
        message: format!("{} check(s) failed", errors.len()),
    })
}

/// Whether this host can mount volumes, and how. Not needed for the cluster itself, so at worst a warning.
fn volume_support() -> preflight::Finding {
    use rookery_volumes::mapper;
    let available = mapper::available();
    let names: Vec<String> = available.iter().map(|m| format!("{m:?}")).collect();
    // The FUSE server is rookery itself (`rookery fuse-serve`); all it needs from the host is librbd.
    match (mapper::best(), rookery_ceph::rbd::library_version()) {
        (Some(m), Ok((a, b, c))) => preflight::Finding::ok(
            "volumes",
            format!(
                "volumes mount through {m:?}: rookery's FUSE server on librbd {a}.{b}.{c}, then a loop device (this host offers: {})",
                names.join(", ")
            ),
        ),
        (Some(_), Err(e)) => preflight::Finding::warn(
            "volumes",
            format!("librbd cannot be loaded, so volumes cannot be mounted here: {e}"),
            "apt-get install -y librbd1",
        ),
        (None, _) => preflight::Finding::warn(
            "volumes",
            "this host has neither /dev/fuse with /dev/loop-control nor usable rbd/nbd kernel modules, so volumes cannot be mounted here",
            "load the fuse and loop modules (modprobe fuse loop), or run on a host that has them",
        ),
    }
}
