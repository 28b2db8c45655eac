//! The status the operator writes on each resource, in Rook's words (phase, state, message,
//! conditions, `ceph.health` with details, capacity, fsid, `observedGeneration`), plus what Rook keeps in
//! job logs: each node's devices with the reason one is not taken, the notices about fields that have no
//! effect, and what blocks the operator. Pure: built from what a reconcile pass saw.

use std::collections::BTreeMap;

use rookery_orchestrator::disks::{DevicePlan, Verdict};
use serde_json::{json, Value};

/// What one pass saw, as the status needs it.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub steps: Vec<String>,
    pub waiting: Option<String>,
    pub blocked: Vec<String>,
    pub problems: Vec<String>,
    pub last_error: Option<String>,
    /// Why the newest resources were not taken (invalid spec), naming the field.
    pub spec_problem: Option<String>,
    pub notices: Vec<String>,
    pub health: Option<Health>,
    pub fsid: String,
    /// The home node and its devices' verdicts.
    pub devices: BTreeMap<String, Vec<DevicePlan>>,
    /// Resident memory in MiB: the operator's, and each node's agent.
    pub operator_rss_mib: u64,
    pub agents_rss_mib: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub status: String,
    /// Code -> (severity, message).
    pub details: BTreeMap<String, (String, String)>,
    pub bytes_total: u64,
    pub bytes_used: u64,
    pub bytes_available: u64,
    /// OSDs: (up, in, total); placement groups: (active+clean, total).
    pub osds: (u32, u32, u32),
    pub pgs: (u32, u32),
}

/// Rook's phases, each with the `state` Rook derives from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Progressing,
    Ready,
    Failure,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Progressing => "Progressing",
            Phase::Ready => "Ready",
            Phase::Failure => "Failure",
        }
    }

    fn state(self) -> &'static str {
        match self {
            Phase::Progressing => "Creating",
            Phase::Ready => "Created",
            Phase::Failure => "Error",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Phase::Progressing => "ClusterProgressing",
            Phase::Ready => "ClusterCreated",
            Phase::Failure => "ReconcileFailed",
        }
    }
}

/// The phase and message of the whole cluster.
pub fn cluster_phase(o: &Observation) -> (Phase, String) {
    if let Some(p) = &o.spec_problem {
        return (
            Phase::Failure,
            format!("the spec was not applied (the cluster runs the last valid one): {p}"),
        );
    }
    if !o.blocked.is_empty() {
        return (Phase::Failure, o.blocked.join("; "));
    }
    if let Some(e) = &o.last_error {
        return (Phase::Progressing, format!("retrying: {e}"));
    }
    if let Some(w) = &o.waiting {
        return (Phase::Progressing, w.clone());
    }
    if let Some(step) = o.steps.first() {
        return (Phase::Progressing, step.clone());
    }
    match &o.health {
        None => (Phase::Progressing, "waiting for the mons to answer".into()),
        Some(_) => (Phase::Ready, "Cluster created successfully".into()),
    }
}

/// A device's verdict in a line (`loop3: 3.0 GiB, need at least 5.0 GiB`).
pub fn device_line(d: &DevicePlan) -> String {
    match &d.verdict {
        Verdict::Take => format!("{}: becomes an OSD", d.name),
        Verdict::Osd { id: Some(id) } => format!("{}: osd.{id}", d.name),
        Verdict::Osd { id: None } => format!("{}: an OSD of this cluster", d.name),
        Verdict::Skip { .. } => format!("{}: {}", d.name, d.why.as_deref().unwrap_or("not taken")),
    }
}

/// Rook's condition list: Deleting / DeletionIsBlocked kept, the current phase's condition replacing
/// the others; a condition's `lastTransitionTime` moves only when its status or message does.
pub fn conditions(previous: &Value, kind: &str, reason: &str, message: &str, now: &str) -> Value {
    let old: Vec<Value> = previous
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let same = old
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True" && c["message"] == message);
    let since = same
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or(now)
        .to_string();
    let mut out: Vec<Value> = old
        .into_iter()
        .filter(|c| matches!(c["type"].as_str(), Some("Deleting" | "DeletionIsBlocked")))
        .collect();
    out.push(json!({
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": since,
    }));
    Value::Array(out)
}

/// The CephCluster's status.
pub fn cluster_status(
    previous: &Value,
    generation: Option<i64>,
    o: &Observation,
    now: &str,
) -> Value {
    let (phase, message) = cluster_phase(o);
    let mut status = json!({
        "phase": phase.as_str(),
        "state": phase.state(),
        "message": message,
        "conditions": conditions(previous, phase.as_str(), phase.reason(), &message, now),
    });
    if phase == Phase::Ready {
        status["observedGeneration"] = json!(generation);
    } else if let Some(g) = previous.get("observedGeneration") {
        status["observedGeneration"] = g.clone();
    }
    if let Some(h) = &o.health {
        let details: serde_json::Map<String, Value> = h
            .details
            .iter()
            .map(|(code, (severity, message))| {
                (
                    code.clone(),
                    json!({"severity": severity, "message": message}),
                )
            })
            .collect();
        let previous_health = previous["ceph"]["health"].as_str().unwrap_or_default();
        let changed = previous_health != h.status;
        status["ceph"] = json!({
            "health": h.status,
            "details": details,
            "fsid": o.fsid,
            "lastChecked": now,
            "lastChanged": if changed || previous["ceph"]["lastChanged"].is_null() { json!(now) } else { previous["ceph"]["lastChanged"].clone() },
            "previousHealth": if changed { json!(previous_health) } else { previous["ceph"]["previousHealth"].clone() },
            "capacity": {
                "bytesTotal": h.bytes_total,
                "bytesUsed": h.bytes_used,
                "bytesAvailable": h.bytes_available,
                "lastUpdated": now,
            },
        });
    }
    let devices: serde_json::Map<String, Value> = o
        .devices
        .iter()
        .map(|(node, plans)| {
            (
                node.clone(),
                json!(plans.iter().map(device_line).collect::<Vec<_>>()),
            )
        })
        .collect();
    status["rookery"] = json!({
        "devices": devices,
        "notices": o.notices,
        "blocked": o.blocked,
        "problems": o.problems,
        "pending": o.steps.iter().take(10).collect::<Vec<_>>(),
        "memoryMiB": {"operator": o.operator_rss_mib, "agents": o.agents_rss_mib},
    });
    if let Some(h) = &o.health {
        status["rookery"]["osds"] = json!({"up": h.osds.0, "in": h.osds.1, "total": h.osds.2});
        status["rookery"]["pgs"] = json!({"activeClean": h.pgs.0, "total": h.pgs.1});
    }
    status
}

/// The status of a pool, filesystem, object store or user: ready once the cluster has nothing left to
/// do for it.
pub fn resource_status(
    previous: &Value,
    generation: Option<i64>,
    pending: Option<&str>,
    failure: Option<&str>,
    now: &str,
) -> Value {
    let (phase, reason, message) = match (failure, pending) {
        (Some(f), _) => (Phase::Failure, "ReconcileFailed", f.to_string()),
        (None, Some(p)) => (Phase::Progressing, "ReconcileStarted", p.to_string()),
        (None, None) => (Phase::Ready, "ReconcileSucceeded", String::new()),
    };
    let mut status = json!({
        "phase": phase.as_str(),
        "conditions": conditions(previous, phase.as_str(), reason, &message, now),
    });
    if phase == Phase::Ready {
        status["observedGeneration"] = json!(generation);
    } else if let Some(g) = previous.get("observedGeneration") {
        status["observedGeneration"] = g.clone();
    }
    status
}

/// The status without its clock fields, to tell a change from a heartbeat.
pub fn without_times(status: &Value) -> Value {
    let mut s = status.clone();
    if let Some(conds) = s.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conds {
            if let Some(m) = c.as_object_mut() {
                m.remove("lastHeartbeatTime");
            }
        }
    }
    if let Some(ceph) = s.get_mut("ceph").and_then(Value::as_object_mut) {
        ceph.remove("lastChecked");
        if let Some(cap) = ceph.get_mut("capacity").and_then(Value::as_object_mut) {
            cap.remove("lastUpdated");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Observation {
        Observation {
            health: Some(Health {
                status: "HEALTH_OK".into(),
                ..Default::default()
            }),
            fsid: "f".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_converged_cluster_is_ready_with_its_generation() {
        let s = cluster_status(&json!({}), Some(3), &healthy(), "t1");
        assert_eq!(s["phase"], "Ready");
        assert_eq!(s["state"], "Created");
        assert_eq!(s["observedGeneration"], 3);
        assert_eq!(s["ceph"]["health"], "HEALTH_OK");
        assert_eq!(s["rookery"]["osds"]["total"], 0);
        assert_eq!(s["conditions"][0]["type"], "Ready");
        assert_eq!(s["conditions"][0]["reason"], "ClusterCreated");
    }

    #[test]
    fn an_invalid_spec_is_a_failure_naming_the_field_and_keeps_the_old_generation() {
        let mut o = healthy();
        o.spec_problem = Some("spec.mon.count: must be 1, 3 or 5".into());
        let prev = json!({"observedGeneration": 2});
        let s = cluster_status(&prev, Some(3), &o, "t1");
        assert_eq!(s["phase"], "Failure");
        assert_eq!(s["state"], "Error");
        assert!(s["message"].as_str().unwrap().contains("spec.mon.count"));
        assert_eq!(s["observedGeneration"], 2);
    }

    #[test]
    fn work_left_is_progress_and_transition_time_stays_while_nothing_changes() {
        let mut o = healthy();
        o.steps = vec!["starting osd.0".into()];
        let first = cluster_status(&json!({}), Some(1), &o, "t1");
        assert_eq!(first["phase"], "Progressing");
        let second = cluster_status(&first, Some(1), &o, "t2");
        assert_eq!(second["conditions"][0]["lastTransitionTime"], "t1");
        assert_eq!(second["conditions"][0]["lastHeartbeatTime"], "t2");
        assert_eq!(without_times(&first), without_times(&second));
    }

    #[test]
    fn deletion_conditions_survive_a_new_phase() {
        let prev = json!({"conditions": [
            {"type": "DeletionIsBlocked", "status": "True", "message": "m"},
            {"type": "Progressing", "status": "True", "message": "x"}]});
        let c = conditions(&prev, "Ready", "ClusterCreated", "", "t");
        let types: Vec<&str> = c
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["DeletionIsBlocked", "Ready"]);
    }

    #[test]
    fn resources_are_ready_when_nothing_is_pending() {
        let s = resource_status(&json!({}), Some(1), None, None, "t");
        assert_eq!(s["phase"], "Ready");
        assert_eq!(s["observedGeneration"], 1);
        let p = resource_status(&json!({}), Some(1), Some("creating pool"), None, "t");
        assert_eq!(p["phase"], "Progressing");
        assert!(p.get("observedGeneration").is_none());
    }
}
