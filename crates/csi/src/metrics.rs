//! Per-RPC request counters and latency histograms, kept in the process for the metrics endpoint to
//! serve (Prometheus text format from [`Metrics::render`]).

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub method: String,
    /// The gRPC status code name (`OK`, `NotFound`, ...).
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    pub method: String,
}

pub struct Metrics {
    requests: Family<RpcLabels, Counter>,
    latency: Family<MethodLabel, Histogram>,
    registry: Mutex<Registry>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RpcLabels, Counter>::default();
        let latency = Family::<MethodLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let mut registry = Registry::with_prefix("rookery_csi");
        registry.register(
            "requests",
            "CSI requests by method and result",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "CSI request latency by method",
            latency.clone(),
        );
        Metrics {
            requests,
            latency,
            registry: Mutex::new(registry),
        }
    }
}

impl Metrics {
    pub fn observe(&self, method: &str, code: tonic::Code, took: Duration) {
        self.requests
            .get_or_create(&RpcLabels {
                method: method.to_string(),
                code: format!("{code:?}"),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabel {
                method: method.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// How many requests of `method` ended with `code`.
    pub fn count(&self, method: &str, code: tonic::Code) -> u64 {
        self.requests
            .get_or_create(&RpcLabels {
                method: method.to_string(),
                code: format!("{code:?}"),
            })
            .get()
    }

    /// Everything in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::default();
        m.observe("CreateVolume", tonic::Code::Ok, Duration::from_millis(3));
        m.observe("CreateVolume", tonic::Code::Ok, Duration::from_millis(5));
        m.observe(
            "CreateVolume",
            tonic::Code::AlreadyExists,
            Duration::from_millis(1),
        );
        assert_eq!(m.count("CreateVolume", tonic::Code::Ok), 2);
        let text = m.render();
        assert!(
            text.contains("rookery_csi_requests_total{method=\"CreateVolume\",code=\"Ok\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("rookery_csi_request_duration_seconds_count{method=\"CreateVolume\"} 3"),
            "{text}"
        );
    }
}
