//! The shipped monitoring files (deploy/monitoring/) and a real Prometheus that loads them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/monitoring")
}

pub fn rules_file() -> PathBuf {
    dir().join("rookery-rules.yaml")
}

/// Every `rookery_...` metric the alert rules and the Grafana dashboard name.
pub fn metric_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in ["rookery-rules.yaml", "grafana-dashboard.json"] {
        let text = std::fs::read_to_string(dir().join(file)).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("rookery_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names
}

/// Asserts that a scrape (the classic text format) describes each of `names`: a histogram's
/// `_bucket` by its family, a counter family that has no sample yet by its `# TYPE` line.
pub fn assert_served<'a>(scraped: &str, names: impl IntoIterator<Item = &'a String>) {
    for name in names {
        let family = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        let described = [name.as_str(), family]
            .iter()
            .any(|n| scraped.contains(&format!("# TYPE {n} ")));
        assert!(
            described,
            "{name} is named in deploy/monitoring but not served:\n{scraped}"
        );
    }
}

/// A Prometheus server (Debian's package) on 127.0.0.1, scraping `target` every second and evaluating
/// the shipped rules every second; stopped when dropped.
pub struct Prometheus {
    child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [{:?}]\n\
                 scrape_configs:\n  - job_name: rookery\n    static_configs: [{{targets: [{target:?}]}}]\n",
                rules_file().canonicalize().unwrap()
            ),
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", super::free_port());
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect(
                "prometheus is needed (Debian package `prometheus`): run scripts/install-deps.sh",
            );
        let p = Prometheus {
            child,
            address,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if p.get("/-/ready").map(|(code, _)| code == 200) == Some(true) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not start:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        super::http(&self.address, "GET", path, &[], None).map(|(code, _, body)| (code, body))
    }

    /// The alerts pending or firing now.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let (code, body) = self.get("/api/v1/alerts").expect("prometheus answers");
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["alerts"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until alert `name` with label `daemon` = `daemon` is firing; the time it took.
    pub fn wait_firing(&self, name: &str, daemon: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let alerts = self.alerts();
            if alerts.iter().any(|a| {
                a["labels"]["alertname"] == name
                    && a["labels"]["daemon"] == daemon
                    && a["state"] == "firing"
            }) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{name} for {daemon} did not fire within {limit:?}; alerts now: {alerts:#?}"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Waits until no alert `name` with label `daemon` = `daemon` is pending or firing.
    pub fn wait_resolved(&self, name: &str, daemon: &str, limit: Duration) {
        let started = Instant::now();
        loop {
            let alerts = self.alerts();
            if !alerts
                .iter()
                .any(|a| a["labels"]["alertname"] == name && a["labels"]["daemon"] == daemon)
            {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "{name} for {daemon} still active after {limit:?}: {alerts:#?}"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs promtool with `args` in deploy/monitoring; its output, asserting success.
pub fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir())
        .stdin(Stdio::null())
        .output()
        .expect("promtool is needed (Debian package `prometheus`): run scripts/install-deps.sh");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{said}");
    said
}
