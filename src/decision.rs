//! The decision listener: inbound's policy answered to a proxy that forwards the request
//! itself. Each protocol (Envoy gRPC and HTTP ext_authz, nginx `auth_request` / Traefik
//! `ForwardAuth`) translates its request into the original method, path and headers,
//! asks [`crate::inbound::decide`] (the very function inbound forwards with), and turns
//! the outcome into its own reply. This listener never forwards a request.

mod envoy_grpc;
mod envoy_http;
mod forward_auth;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::config::{Decision as DecisionSection, ForwardClaim, Issuer, Mode};
use crate::inbound::jwks::KeyCache;
use crate::inbound::{self, Judge, Outcome, Refusal};
use crate::metrics::Metrics;
use crate::proxy::Body;
use crate::reply::{self, Reply};

/// Everything a decision is made with; replaced whole on reload.
pub struct Snapshot {
    pub decision: DecisionSection,
    pub issuers: Vec<Issuer>,
    /// Shared with inbound (see [`inbound::key_caches`]).
    pub keys: Vec<Arc<KeyCache>>,
}

/// The original request, as the proxy describes it.
pub struct Original<'r> {
    pub method: Method,
    /// Path (and maybe query) as the client sent it.
    pub target: String,
    pub headers: &'r HeaderMap,
}

/// What the protocol answers with.
pub enum Answer {
    /// Let the request through, setting these headers upstream (every `forward_claims`
    /// header: empty when the token has no such claim, so the proxy replaces a client's
    /// copy instead of keeping it).
    Allow(Vec<(HeaderName, HeaderValue)>),
    Deny(Refusal),
}

/// The decision listener's request handler.
pub struct DecisionService {
    snapshot: ArcSwap<Snapshot>,
    metrics: Metrics,
}

// === impl Snapshot ===

impl Snapshot {
    pub fn build(
        config: &crate::config::Config,
        decision: &DecisionSection,
        keys: Vec<Arc<KeyCache>>,
    ) -> Self {
        Snapshot {
            decision: decision.clone(),
            issuers: config.issuers.clone(),
            keys,
        }
    }

    pub fn judge(&self) -> Judge<'_> {
        Judge {
            policy: &self.decision.policy,
            issuers: &self.issuers,
            keys: &self.keys,
        }
    }
}

// === impl DecisionService ===

impl DecisionService {
    pub fn new(snapshot: Snapshot, metrics: Metrics) -> Self {
        DecisionService {
            snapshot: ArcSwap::from_pointee(snapshot),
            metrics,
        }
    }

    /// Replace the policy; requests in flight finish on the one they loaded.
    pub fn store(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let started = Instant::now();
        let snap = self.snapshot.load_full();
        let path = req.uri().path();
        let envoy_rest = path
            .strip_prefix(envoy_http::PREFIX)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'));
        let response = if path == envoy_grpc::PATH {
            let server =
                envoy_types::ext_authz::v3::pb::AuthorizationServer::new(envoy_grpc::Checker(self.clone()));
            let res = tonic::codegen::Service::call(&mut server.clone(), req).await;
            match res {
                Ok(res) => res.map(|body| {
                    use http_body_util::BodyExt;
                    body.map_err(|status| Box::new(status) as crate::proxy::BoxError)
                        .boxed_unsync()
                }),
                Err(never) => match never {},
            }
        } else if let Some(rest) = envoy_rest {
            let target = envoy_http::original_target(rest, req.uri().query());
            let original = Original {
                method: req.method().clone(),
                target,
                headers: req.headers(),
            };
            let answer = self.judge(&snap, &original, "envoy_http", started).await;
            envoy_http::reply(answer, reply::is_grpc(req.headers()))
        } else if path == forward_auth::PATH {
            match forward_auth::original(req.headers()) {
                Ok(original) => {
                    let answer = self.judge(&snap, &original, "forward_auth", started).await;
                    forward_auth::reply(answer)
                }
                Err(refusal) => {
                    self.count("forward_auth", "none", "deny", refusal.reason(), started);
                    forward_auth::reply(Answer::Deny(refusal))
                }
            }
        } else {
            Reply::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the decision listener answers /auth, /ext_authz/… and envoy.service.auth.v3.Authorization/Check",
            )
            .render(false)
        };
        Ok(response)
    }

    /// Decide for `original` exactly as inbound would, then log and count.
    async fn judge(
        &self,
        snap: &Snapshot,
        original: &Original<'_>,
        protocol: &'static str,
        started: Instant,
    ) -> Answer {
        let path = original.target.split(['?', '#']).next().unwrap_or_default();
        let decision = inbound::decide(snap.judge(), original.headers, &original.method, path).await;
        let route = decision.route.map(|r| r.label.as_str()).unwrap_or("none");
        let audit = snap.decision.policy.mode == Mode::Audit;
        let forward = &snap.decision.policy.forward_claims;
        let (label, reason, client_id, answer) = match decision.outcome {
            Outcome::Refuse(refusal) if !audit => ("deny", refusal.reason(), None, Answer::Deny(refusal)),
            Outcome::Refuse(refusal) => {
                tracing::warn!(target: "tollgate::audit", side = "decision", route, reason = refusal.reason(), detail = %refusal, "would deny");
                (
                    "would_deny",
                    refusal.reason(),
                    None,
                    Answer::Allow(identity(forward, Vec::new())),
                )
            }
            Outcome::Anonymous => (
                "anonymous",
                "none",
                None,
                Answer::Allow(identity(forward, Vec::new())),
            ),
            Outcome::Allow {
                identity: set,
                client_id,
            } => ("allow", "ok", client_id, Answer::Allow(identity(forward, set))),
        };
        self.count(protocol, route, label, reason, started);
        tracing::info!(
            target: "tollgate::access",
            side = "decision",
            protocol,
            route,
            decision = label,
            reason,
            client_id = client_id.as_deref().unwrap_or("-"),
            method = original.method.as_str(),
            path = %path,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        );
        answer
    }

    fn count(&self, protocol: &str, route: &str, decision: &str, reason: &str, started: Instant) {
        self.metrics
            .decision_requests
            .with_label_values(&[protocol, route, decision, reason])
            .inc();
        self.metrics
            .decision_duration
            .with_label_values(&[protocol])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Every `forward_claims` header: the verified value, or empty.
fn identity(forward: &[ForwardClaim], set: Vec<(HeaderName, HeaderValue)>) -> Vec<(HeaderName, HeaderValue)> {
    forward
        .iter()
        .map(|f| {
            let value = set
                .iter()
                .find(|(n, _)| *n == f.header)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| HeaderValue::from_static(""));
            (f.header.clone(), value)
        })
        .collect()
}
