//! deploy/monitoring/ without a cluster: the alert rules pass `promtool check rules` and their unit
//! tests (`promtool test rules`), the PrometheusRule carries the same groups, and every query of the
//! Grafana dashboard is PromQL that Prometheus accepts. (That the metrics they name are served, and that
//! an alert fires on a real cluster, is checked by lifecycle.rs and csi.rs.)

mod common;

use common::monitoring::{dir, metric_names, promtool, rules_file};

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let checked = promtool(&["check", "rules", "rookery-rules.yaml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "rookery-rules.test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_alert_is_unit_tested_and_explained() {
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(rules_file()).unwrap()).unwrap();
    let tests = std::fs::read_to_string(dir().join("rookery-rules.test.yaml")).unwrap();
    let mut alerts = 0;
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().unwrap();
            alerts += 1;
            assert!(
                tests.contains(&format!("alertname: {name}\n")),
                "{name} has no promtool test"
            );
            let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
            assert!(
                ["critical", "warning", "info"].contains(&severity),
                "{name}: severity {severity:?}"
            );
            for key in ["summary", "description"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()),
                    "{name} has no {key}"
                );
            }
        }
    }
    assert!(alerts >= 10, "{alerts} alerts");
}

#[test]
fn the_prometheus_rule_manifest_carries_the_same_groups() {
    let read = |f: &str| -> serde_yaml::Value {
        serde_yaml::from_str(&std::fs::read_to_string(dir().join(f)).unwrap()).unwrap()
    };
    let rules = read("rookery-rules.yaml");
    let manifest = read("prometheusrule.yaml");
    assert_eq!(manifest["kind"], "PrometheusRule");
    assert_eq!(manifest["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        manifest["spec"]["groups"], rules["groups"],
        "prometheusrule.yaml's spec.groups differ from rookery-rules.yaml: copy them over"
    );
}

#[test]
fn the_grafana_dashboard_queries_are_valid_promql() {
    let text = std::fs::read_to_string(dir().join("grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = std::collections::BTreeSet::new();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for p in panels {
        let id = p["id"].as_u64().unwrap();
        assert!(ids.insert(id), "panel id {id} twice");
        let grid = &p["gridPos"];
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "panel {id} is wider than the dashboard"
        );
        if p["type"] == "row" {
            continue;
        }
        // The data source is chosen by the person importing it, never a UID of ours.
        assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {id}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {id} has no query");
        for (n, t) in targets.iter().enumerate() {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m");
            rules.push_str(&format!(
                "      - record: dashboard:panel_{id}_{n}\n        expr: {}\n",
                serde_json::to_string(&expr).unwrap()
            ));
        }
    }
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("dashboard-queries.yaml");
    std::fs::write(&file, &rules).unwrap();
    let checked = promtool(&["check", "rules", file.to_str().unwrap()]);
    assert!(checked.contains("SUCCESS"), "{checked}\n{rules}");
    // The ones the issue asks for: capacity, IOPS and throughput over time.
    for wanted in [
        "rookery_ceph_raw_used_bytes",
        "rookery_ceph_pool_read_ops_total",
        "rookery_ceph_pool_written_bytes_total",
    ] {
        assert!(text.contains(wanted), "{wanted}");
    }
    assert!(metric_names().len() > 20, "{:?}", metric_names());
}
