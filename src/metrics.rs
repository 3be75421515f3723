//! The Prometheus metrics of the contract: one [`Metrics`] registered once at start-up and
//! passed explicitly. Labels never take values from a request (bounded cardinality).

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Every metric family tollgate exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `route`, `decision` (allow, deny, would_deny, anonymous), `reason`.
    pub inbound_requests: IntCounterVec,
    /// `route`.
    pub inbound_request_duration: HistogramVec,
    /// `protocol` (envoy_grpc, envoy_http, forward_auth), `route`, `decision`, `reason`:
    /// decisions answered to a proxy.
    pub decision_requests: IntCounterVec,
    /// `protocol`.
    pub decision_duration: HistogramVec,
    /// `reason` (underscore): client headers removed before forwarding.
    pub inbound_headers_dropped: IntCounterVec,
    /// `route`, `status`.
    pub outbound_requests: IntCounterVec,
    /// `credential`, `result` (ok, error).
    pub token_requests: IntCounterVec,
    /// `credential`: when the cached token expires, unix seconds.
    pub token_expiry: GaugeVec,
    /// `issuer`, `result`.
    pub jwks_refreshes: IntCounterVec,
    /// Token signatures by issuer: `verified` (computed) or `remembered` (known good).
    pub token_signatures: IntCounterVec,
    /// `result` (ok, error).
    pub config_reloads: IntCounterVec,
    pub config_generation: IntGauge,
    /// Log lines dropped because the queue to stderr was full (synced at each scrape).
    log_lines_dropped: prometheus::IntCounter,
}

#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, MetricsError> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let inbound_requests = counter(
            "tollgate_inbound_requests_total",
            "Inbound requests by route and policy decision.",
            &["route", "decision", "reason"],
        )?;
        let inbound_headers_dropped = counter(
            "tollgate_inbound_headers_dropped_total",
            "Client request headers removed before forwarding, by reason.",
            &["reason"],
        )?;
        let decision_requests = counter(
            "tollgate_decision_requests_total",
            "Decisions answered to a proxy (ext_authz, auth_request, ForwardAuth) by protocol, route and decision.",
            &["protocol", "route", "decision", "reason"],
        )?;
        let outbound_requests = counter(
            "tollgate_outbound_requests_total",
            "Outbound requests by route and status.",
            &["route", "status"],
        )?;
        let token_requests = counter(
            "tollgate_token_requests_total",
            "Token requests to identity providers by credential and result.",
            &["credential", "result"],
        )?;
        let jwks_refreshes = counter(
            "tollgate_jwks_refreshes_total",
            "JWKS fetches by issuer and result.",
            &["issuer", "result"],
        )?;
        let token_signatures = counter(
            "tollgate_inbound_token_signatures_total",
            "Token signatures by issuer: verified (computed) or remembered (this exact token verified before by the current keys).",
            &["issuer", "check"],
        )?;
        let config_reloads = counter(
            "tollgate_config_reloads_total",
            "Configuration reloads by result.",
            &["result"],
        )?;

        let inbound_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_inbound_request_duration_seconds",
                "Inbound request latency, including the upstream.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route"],
        )?;
        registry.register(Box::new(inbound_request_duration.clone()))?;
        let decision_duration = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_decision_duration_seconds",
                "Time to answer a proxy's authorization question.",
            )
            .buckets(vec![
                0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0,
            ]),
            &["protocol"],
        )?;
        registry.register(Box::new(decision_duration.clone()))?;
        let token_expiry = GaugeVec::new(
            Opts::new(
                "tollgate_token_expiry_timestamp_seconds",
                "Expiry of the cached token, unix seconds.",
            ),
            &["credential"],
        )?;
        registry.register(Box::new(token_expiry.clone()))?;
        let config_generation = IntGauge::new(
            "tollgate_config_generation",
            "Generation of the configuration in force (1 at start).",
        )?;
        registry.register(Box::new(config_generation.clone()))?;
        let log_lines_dropped = prometheus::IntCounter::new(
            "tollgate_log_lines_dropped_total",
            "Log lines dropped because the queue to stderr was full (requests never wait for logs).",
        )?;
        registry.register(Box::new(log_lines_dropped.clone()))?;

        // Both outcomes are visible from the start, so alerts on `error` have a series.
        for result in ["ok", "error"] {
            config_reloads.with_label_values(&[result]);
        }
        Ok(Metrics {
            registry,
            inbound_requests,
            inbound_request_duration,
            inbound_headers_dropped,
            decision_requests,
            decision_duration,
            outbound_requests,
            token_requests,
            token_expiry,
            jwks_refreshes,
            token_signatures,
            config_reloads,
            config_generation,
            log_lines_dropped,
        })
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let dropped = crate::logging::dropped_lines();
        let counted = self.log_lines_dropped.get();
        if dropped > counted {
            self.log_lines_dropped.inc_by(dropped - counted);
        }
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_the_contract_are_exported() {
        let m = Metrics::new().unwrap();
        m.inbound_requests
            .with_label_values(&["orders", "allow", "ok"])
            .inc();
        m.inbound_request_duration
            .with_label_values(&["orders"])
            .observe(0.01);
        m.outbound_requests.with_label_values(&["0", "200"]).inc();
        m.token_requests.with_label_values(&["api", "ok"]).inc();
        m.token_expiry.with_label_values(&["api"]).set(1.0);
        m.jwks_refreshes.with_label_values(&["entra", "ok"]).inc();
        m.config_generation.set(1);
        let text = m.render();
        for family in [
            "tollgate_inbound_requests_total",
            "tollgate_inbound_request_duration_seconds",
            "tollgate_outbound_requests_total",
            "tollgate_token_requests_total",
            "tollgate_token_expiry_timestamp_seconds",
            "tollgate_jwks_refreshes_total",
            "tollgate_config_reloads_total",
            "tollgate_config_generation",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} missing:\n{text}"
            );
        }
        assert!(text.contains("tollgate_config_reloads_total{result=\"error\"} 0"));
    }

    #[test]
    fn two_instances_do_not_collide() {
        assert!(Metrics::new().is_ok() && Metrics::new().is_ok());
    }
}
