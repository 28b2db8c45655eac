//! `rookery join TOKEN`: this host joins the cluster a member's `rookery host add` made the token for.
//! The token is checked here first (for this host, not another cluster's); then it is presented to the
//! member over TLS pinned to the certificate the token names, and the member's grant (the cluster's
//! identity, mons, spec and this host's own Ceph key) becomes this host's data dir. Its supervisor then
//! makes and runs this host's OSDs. Nothing is written here before the member said yes.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use rookery_orchestrator::join::JoinRequest;
use rookery_orchestrator::join_token::JoinToken;
use rookery_orchestrator::preflight::{self, DataDir};
use rookery_orchestrator::state::HostPolicy;
use rookery_orchestrator::Layout;

use crate::cmd::up::MemberArgs;
use crate::join_channel::{self, JoinCallError};
use crate::{CmdResult, Failure, Output};

#[derive(Args)]
pub struct JoinArgs {
    /// The token `rookery host add NAME` printed on a member.
    pub token: String,
    #[command(flatten)]
    pub member: MemberArgs,
    /// Give up waiting for this host's OSDs after this many seconds (they keep converging).
    #[arg(long, default_value_t = 300)]
    pub wait_secs: u64,
}

pub fn run(layout: &Layout, args: &JoinArgs, output: Output) -> CmdResult {
    let started = Instant::now();
    let token = JoinToken::decode(&args.token).map_err(|e| Failure::bad_input(e.to_string()))?;
    let Some(member) = args.member.member()? else {
        return Err(Failure::bad_input(
            "--address is needed: the address this host serves on, which the other hosts reach (e.g. --address 10.0.0.2)",
        ));
    };
    let dir = preflight::inspect(layout).map_err(|e| Failure::from(anyhow!(e)))?;
    let ours = match &dir {
        DataDir::Cluster(state) => Some(state.fsid.clone()),
        DataDir::Foreign(what) => {
            return Err(Failure::bad_input(format!(
                "{} is not empty and holds no rookery cluster ({what}); join with an empty --data-dir (nothing was changed)",
                layout.root.display()
            )))
        }
        DataDir::Absent | DataDir::Empty => None,
    };
    token
        .fits_this_host(&member.name, ours.as_deref())
        .map_err(|e| Failure::bad_input(e.to_string()))?;
    if ours.is_some() {
        return Err(Failure::bad_input(format!(
            "{} holds cluster {} already: this host joined it before. If it still is a member, \
             `rookery up` starts it again; if it was removed (`rookery host rm`), clear the data dir \
             with `rookery down --purge --yes-really-destroy-data` and join again (nothing was changed)",
            layout.root.display(),
            token.cluster,
        )));
    }
    let request = JoinRequest {
        token,
        address: member.address,
        join_port: member.join_port,
    };
    let grant = join_channel::request(&request).map_err(|e| match e {
        JoinCallError::Refused {
            bad_input: true, ..
        }
        | JoinCallError::NotTheMember { .. } => {
            Failure::bad_input(format!("{e} (nothing was changed)"))
        }
        other => Failure::from(anyhow!("{other} (nothing was changed)")),
    })?;
    rookery_orchestrator::create_joined(layout, &grant).map_err(|e| Failure::from(anyhow!(e)))?;
    HostPolicy {
        allow_loop_devices: false,
        member: Some(member.clone()),
    }
    .save(layout)
    .map_err(|e| Failure::from(anyhow!(e)))?;
    if output == Output::Text {
        eprintln!(
            "host {} joined cluster {:?} ({}); starting its supervisor",
            member.name, grant.name, grant.fsid
        );
    }
    let rt = crate::runtime()?;
    crate::cmd::up::start_supervisor(&rt, layout, None, None)?;
    let report =
        crate::cmd::up::wait_ready(&rt, layout, Duration::from_secs(args.wait_secs), output)?;
    crate::cmd::up::finish(&report, started, output, false, None)
}
