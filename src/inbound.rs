//! Inbound: validate the caller's JWT access token, enforce the route's policy, and only
//! then forward to the protected service with the caller's identity as headers.
//! `handle` loads the snapshot once, decides, then forwards or refuses; it alone logs,
//! counts and renders.

mod bearer;
pub mod claims;
pub mod header_names;
/// Public for the fuzz targets (`fuzz/fuzz_targets/identity.rs`): spoofed identity headers
/// are removed and claims rendered as headers here.
pub mod identity;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod method_override;

pub mod policy;
mod refusal;
pub mod served_request;
pub mod verified;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response};
use hyper::body::Incoming;

use self::jwks::KeyCache;
use self::jwt::{Claims, TokenError};
use self::keys::KeyLookup;
pub use self::refusal::Refusal;
use crate::config::{
    Access, Inbound, InboundRoute, Issuer, IssuerId, Mode, Policy, Requirement, UnderscoreHeaders,
};
use crate::metrics::Metrics;
use crate::proxy::{self, Body, Proxy, Target, Upstream};
use crate::reply;
use crate::server::ClientConn;

/// Everything a request is decided with; replaced whole on reload.
pub struct Snapshot {
    pub inbound: Inbound,
    pub issuers: Vec<Issuer>,
    /// One key cache per issuer, same order as `issuers`.
    pub keys: Vec<Arc<KeyCache>>,
    pub upstream: Upstream,
}

/// What building a snapshot needs from the running sidecar.
pub struct BuildContext<'a> {
    pub metrics: &'a Metrics,
    /// The identity-provider client ([`crate::idp::client`]), shared by every cache.
    pub http: &'a reqwest::Client,
    pub readiness: Option<&'a crate::readiness::Readiness>,
    /// Files the configuration names whose content changed since the previous build.
    pub changed_files: &'a std::collections::HashSet<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("inbound.upstream: not a usable URL")]
    Upstream,
}

/// The key caches for `config`'s issuers, in their order. Caches whose key source (and,
/// for `jwks_file`, the file's content) did not change are taken from `previous`, keys
/// and all; the others are new and also returned separately, to be fetched and started.
/// Inbound and the decision listener share one set.
pub fn key_caches(
    config: &crate::config::Config,
    previous: &[Arc<KeyCache>],
    cx: &BuildContext<'_>,
) -> (Vec<Arc<KeyCache>>, Vec<Arc<KeyCache>>) {
    let mut keys = Vec::with_capacity(config.issuers.len());
    let mut fresh = Vec::new();
    for issuer in &config.issuers {
        let file_changed = match &issuer.keys {
            crate::config::KeySource::JwksFile(path) => cx.changed_files.contains(path),
            _ => false,
        };
        let reused = previous
            .iter()
            .find(|k| {
                k.issuer() == issuer.name
                    && *k.source() == issuer.keys
                    && k.remembered_slots() == issuer.remembered_tokens
            })
            .filter(|_| !file_changed);
        match reused {
            Some(cache) => keys.push(cache.clone()),
            None => {
                let handle = cx
                    .readiness
                    .map(|r| r.register(format!("issuer/{}", issuer.name), "first signing key fetch"));
                let cache = Arc::new(KeyCache::for_issuer(
                    issuer,
                    cx.http.clone(),
                    cx.metrics.clone(),
                    handle,
                ));
                fresh.push(cache.clone());
                keys.push(cache);
            }
        }
    }
    (keys, fresh)
}

impl Snapshot {
    /// Compile the inbound section with the issuers' key caches (see [`key_caches`]).
    pub fn build(
        config: &crate::config::Config,
        inbound: &Inbound,
        keys: Vec<Arc<KeyCache>>,
    ) -> Result<Snapshot, BuildError> {
        let upstream = Upstream::from_url(&inbound.upstream).ok_or(BuildError::Upstream)?;
        Ok(Snapshot {
            inbound: inbound.clone(),
            issuers: config.issuers.clone(),
            keys,
            upstream,
        })
    }

    /// What requests are judged with.
    pub fn judge(&self) -> Judge<'_> {
        Judge {
            policy: &self.inbound.policy,
            issuers: &self.issuers,
            keys: &self.keys,
        }
    }
}

/// A policy with the issuers and key caches its tokens are checked against: what
/// [`decide`] needs, whichever listener asks.
#[derive(Clone, Copy)]
pub struct Judge<'s> {
    pub policy: &'s Policy,
    pub issuers: &'s [Issuer],
    /// One key cache per issuer, same order as `issuers`.
    pub keys: &'s [Arc<KeyCache>],
}

/// The inbound listener's request handler.
pub struct InboundService {
    snapshot: ArcSwap<Snapshot>,
    proxy: Proxy,
    metrics: Metrics,
}

/// What to do with one request.
pub struct Decision<'s> {
    pub route: Option<&'s InboundRoute>,
    pub outcome: Outcome,
}

pub enum Outcome {
    Allow {
        identity: Vec<(HeaderName, HeaderValue)>,
        client_id: Option<String>,
    },
    Anonymous,
    Refuse(Refusal),
}

/// A token whose signature and claims were verified.
struct Verified {
    issuer: IssuerId,
    claims: Arc<Claims>,
}

// === impl InboundService ===

impl InboundService {
    pub fn new(snapshot: Snapshot, proxy: Proxy, metrics: Metrics) -> Self {
        InboundService {
            snapshot: ArcSwap::from_pointee(snapshot),
            proxy,
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

    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: ClientConn,
    ) -> Result<Response<Body>, Infallible> {
        let started = Instant::now();
        let snap = self.snapshot.load_full();
        let grpc = reply::is_grpc(req.headers());
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let decision = decide(snap.judge(), req.headers(), req.method(), req.uri().path()).await;
        let route = decision.route.map(|r| r.label.as_str()).unwrap_or("none");
        let audit = snap.inbound.policy.mode == Mode::Audit;

        let (label, reason, client_id, response) = match decision.outcome {
            Outcome::Refuse(refusal) if !audit => {
                ("deny", refusal.reason(), None, refusal.reply().render(grpc))
            }
            Outcome::Refuse(refusal) => {
                tracing::warn!(target: "tollgate::audit", route, reason = refusal.reason(), detail = %refusal, "would deny");
                let res = self.forward(&snap, req, Vec::new(), conn, grpc).await;
                ("would_deny", refusal.reason(), None, res)
            }
            Outcome::Anonymous => (
                "anonymous",
                "none",
                None,
                self.forward(&snap, req, Vec::new(), conn, grpc).await,
            ),
            Outcome::Allow { identity, client_id } => (
                "allow",
                "ok",
                client_id,
                self.forward(&snap, req, identity, conn, grpc).await,
            ),
        };
        let elapsed = started.elapsed();
        self.metrics
            .inbound_requests
            .with_label_values(&[route, label, reason])
            .inc();
        self.metrics
            .inbound_request_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
        tracing::info!(
            target: "tollgate::access",
            side = "inbound",
            route,
            decision = label,
            reason,
            client_id = client_id.as_deref().unwrap_or("-"),
            status = response.status().as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            method = method.as_str(),
            path = path.as_str(),
        );
        Ok(response)
    }

    async fn forward(
        &self,
        snap: &Snapshot,
        mut req: Request<Incoming>,
        identity: Vec<(HeaderName, HeaderValue)>,
        conn: ClientConn,
        grpc: bool,
    ) -> Response<Body> {
        let uri = req.uri().clone();
        let upgrade = proxy::upgrade_requested(&req);
        let headers = req.headers_mut();
        identity::remove_spoofed(headers, &snap.inbound.policy.forward_claims);
        if snap.inbound.policy.underscore_headers == UnderscoreHeaders::Drop {
            let dropped = header_names::drop_underscored(headers);
            if dropped > 0 {
                tracing::debug!(
                    side = "inbound",
                    dropped,
                    "dropped request headers whose name holds `_`"
                );
                self.metrics
                    .inbound_headers_dropped
                    .with_label_values(&["underscore"])
                    .inc_by(dropped as u64);
            }
        }
        if snap.inbound.strip_authorization {
            headers.remove(header::AUTHORIZATION);
        }
        proxy::prepare(headers, &uri, conn);
        for (name, value) in identity {
            headers.insert(name, value);
        }
        let target = Target {
            upstream: &snap.upstream,
            path_and_query: uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
            protocol: snap.inbound.upstream_protocol,
            timeout: snap.inbound.upstream_timeout,
            upgrade,
        };
        match self.proxy.forward(req, target).await {
            Ok(res) => res,
            Err(e) => {
                tracing::warn!(side = "inbound", error = %e, "forwarding failed");
                proxy::failure_reply(&e).render(grpc)
            }
        }
    }
}

/// The request as the service will serve it (path, method, header names), then route,
/// then (unless anonymous) token and policy. Awaits only when an unknown `kid` makes it
/// refresh the issuer's keys.
pub async fn decide<'s>(
    judge: Judge<'s>,
    headers: &http::HeaderMap,
    method: &http::Method,
    raw_path: &str,
) -> Decision<'s> {
    let served = match served_request::read(judge.policy, headers, method, raw_path) {
        Ok(served) => served,
        Err(refusal) => {
            return Decision {
                route: None,
                outcome: Outcome::Refuse(refusal),
            };
        }
    };
    let Some(route) = policy::find_route(&judge.policy.routes, &served.method, &served.path) else {
        return Decision {
            route: None,
            outcome: Outcome::Refuse(Refusal::NoRoute),
        };
    };
    let outcome = match &route.access {
        Access::Anonymous => Outcome::Anonymous,
        Access::Require(requirement) => match authorize(judge, headers, requirement).await {
            Ok(outcome) => outcome,
            Err(refusal) => Outcome::Refuse(refusal),
        },
    };
    Decision {
        route: Some(route),
        outcome,
    }
}

async fn authorize(
    judge: Judge<'_>,
    headers: &http::HeaderMap,
    requirement: &Requirement,
) -> Result<Outcome, Refusal> {
    let token = bearer::extract(headers, judge.policy.max_token_bytes)?;
    let verified = verify(judge, token).await?;
    let name = |id: IssuerId| judge.issuers[id.0].name.clone();
    policy::evaluate(requirement, verified.issuer, &verified.claims, &name).map_err(Refusal::Policy)?;
    let identity = identity::identity_headers(&judge.policy.forward_claims, &verified.claims)?;
    let client_id = ["azp", "appid"]
        .iter()
        .find_map(|c| verified.claims.get(c).and_then(|v| v.as_str()))
        .map(str::to_string);
    Ok(Outcome::Allow { identity, client_id })
}

/// Verify with the keys of the issuer the token names, and only those.
async fn verify(judge: Judge<'_>, token: &str) -> Result<Verified, Refusal> {
    let digest = verified::token_digest(token);
    let now = crate::clock::unix_now();
    for (i, cache) in judge.keys.iter().enumerate() {
        if let Some(claims) = recall(judge.issuers, IssuerId(i), cache, &digest, now)? {
            return Ok(Verified {
                issuer: IssuerId(i),
                claims,
            });
        }
    }
    let unverified = jwt::parse(token)?;
    let id = jwt::select_issuer(&unverified.claims, judge.issuers)?;
    let claims = verify_as(&judge.issuers[id.0], &judge.keys[id.0], unverified, &digest, now).await?;
    Ok(Verified { issuer: id, claims })
}

/// Verify `token` as one of `issuer`'s, with `cache` holding its keys: what inbound does
/// to every token, for the outbound exchange's `subject_issuer`. Keys never fetched yet
/// are fetched first.
pub async fn verify_from(issuer: &Issuer, cache: &KeyCache, token: &str) -> Result<Arc<Claims>, Refusal> {
    let digest = verified::token_digest(token);
    let now = crate::clock::unix_now();
    let issuers = std::slice::from_ref(issuer);
    if let Some(claims) = recall(issuers, IssuerId(0), cache, &digest, now)? {
        return Ok(claims);
    }
    let unverified = jwt::parse(token)?;
    jwt::select_issuer(&unverified.claims, issuers)?;
    if cache.current().is_none() {
        let _ = cache.refresh().await;
    }
    verify_as(issuer, cache, unverified, &digest, now).await
}

/// The claims of a token (`digest`) that `cache`'s current keys verified before, once the
/// checks that depend on configuration and time pass again: issuer selection (it must
/// still be issuer `id`), the algorithm allow-list, `exp`/`nbf`/`iat`/`aud`. `None` when
/// the token is not remembered, or now belongs to another issuer: verify it in full.
fn recall(
    issuers: &[Issuer],
    id: IssuerId,
    cache: &KeyCache,
    digest: &[u8; 32],
    now: i64,
) -> Result<Option<Arc<Claims>>, Refusal> {
    let keys = cache.current_guard();
    let Some(keys) = keys.as_ref() else {
        return Ok(None);
    };
    let Some(token) = cache.verified().get(digest, keys, now) else {
        return Ok(None);
    };
    if jwt::select_issuer(&token.claims, issuers).ok() != Some(id) {
        return Ok(None);
    }
    cache.count_signature(false);
    let issuer = &issuers[id.0];
    jwt::check_algorithm(token.alg, issuer)?;
    jwt::validate_claims(&token.claims, issuer, now)?;
    Ok(Some(token.claims))
}

/// Algorithm, signature (an unknown `kid` refreshes the keys, rate-limited), then the
/// issuer's claim checks (`iss`, `aud`, `exp`, `nbf`). A token that passes is remembered
/// with its key set (see [`verified`]).
async fn verify_as(
    issuer: &Issuer,
    cache: &KeyCache,
    unverified: jwt::Unverified<'_>,
    digest: &[u8; 32],
    now: i64,
) -> Result<Arc<Claims>, Refusal> {
    jwt::check_algorithm(unverified.alg, issuer)?;
    let unavailable = || Refusal::KeysUnavailable(issuer.name.clone());
    let mut keys = cache.current().ok_or_else(unavailable)?;
    let kid = unverified.kid.as_deref();
    if let (Err(KeyLookup::UnknownKid), Some(kid)) = (keys.find(kid, unverified.alg), kid) {
        cache.refresh_for_unknown_kid(kid).await;
        keys = cache.current().ok_or_else(unavailable)?;
    }
    let key = keys.find(kid, unverified.alg).map_err(jwt::key_error)?;
    cache.count_signature(true);
    jwt::verify_signature(&unverified, key)?;
    let alg = unverified.alg;
    let claims = Arc::new(unverified.claims);
    // Remembered even when a claim check below fails (another API's audience, say), so a
    // replayed refused token does not cost a signature check each time.
    if let Some(exp) = claims.get("exp").and_then(serde_json::Value::as_i64) {
        let token = verified::Remembered {
            alg,
            claims: claims.clone(),
        };
        cache.verified().insert(*digest, &keys, now, exp, token);
    }
    jwt::validate_claims(&claims, issuer, now)?;
    Ok(claims)
}

impl From<TokenError> for Outcome {
    fn from(e: TokenError) -> Self {
        Outcome::Refuse(Refusal::Token(e))
    }
}

#[cfg(test)]
mod tests;
