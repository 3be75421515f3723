//! Outbound: the local app sends plain HTTP; tollgate picks the route, attaches the route
//! credential's cached token (replacing any `Authorization` the app sent, or exchanging
//! it for an exchange credential) and forwards over TLS. `handle` loads the snapshot
//! once; it alone logs, counts and renders.

pub mod routing;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http::header;
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::config::{Config, Credential, Issuer, Outbound};
use crate::credentials::{
    self, ExchangeFailure, Token, TokenCache, UserToken, UserTokenCache, UserTokenError,
};
use crate::metrics::Metrics;
use crate::online::Finding;
use crate::proxy::{self, Body, Proxy, Target, TlsSetupError, Upstream};
use crate::reply::{self, Reply};
use crate::served_path::ServedPath;
use crate::server::ClientConn;

/// Everything a request is routed with; replaced whole on reload.
pub struct Snapshot {
    pub outbound: Outbound,
    /// Per route: its upstream and the index of its client in `proxies`.
    pub upstreams: Vec<(Upstream, usize)>,
    /// One pooled client per distinct `ca_file` (index 0: system roots only).
    pub proxies: Vec<(Option<std::path::PathBuf>, Proxy)>,
    /// The shared token caches of the client-credentials credentials.
    pub tokens: Vec<Arc<TokenCache>>,
    /// Per credential, same order as `outbound.credentials`: where its tokens come from.
    pub rooms: Vec<Room>,
}

/// Where a credential's token comes from.
#[derive(Clone)]
pub enum Room {
    /// Client credentials: one token shared by every request.
    Shared(Arc<TokenCache>),
    /// An exchange: one token per user token the app sends, which must first pass the
    /// `subject` issuer's checks when one is configured.
    PerUser(Arc<UserTokenCache>, Option<Arc<SubjectCheck>>),
}

/// `subject_issuer`: the user token must pass this issuer's checks (inbound's
/// verification) before it is exchanged. Keys are fetched at first use and refreshed when
/// an unknown `kid` appears.
pub struct SubjectCheck {
    issuer: Issuer,
    keys: crate::inbound::jwks::KeyCache,
}

pub struct OutboundService {
    snapshot: ArcSwap<Snapshot>,
    metrics: Metrics,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("outbound.routes[{0}]: invalid upstream URL")]
    Upstream(usize),
    #[error("outbound TLS: {0}")]
    Tls(#[from] TlsSetupError),
}

/// What building a snapshot needs from the running sidecar.
pub use crate::inbound::BuildContext;

impl Snapshot {
    /// Compile the section. Token caches of credentials whose settings did not change are
    /// taken over from `previous` (token and all), as are upstream clients whose `ca_file`
    /// did not change (pooled connections and all). New caches are returned separately,
    /// to be acquired and started.
    pub fn build(
        outbound: &Outbound,
        issuers: &[Issuer],
        previous: Option<&Snapshot>,
        cx: &BuildContext<'_>,
    ) -> Result<(Self, Vec<Arc<TokenCache>>), BuildError> {
        let mut tokens = Vec::with_capacity(outbound.credentials.len());
        let mut rooms = Vec::with_capacity(outbound.credentials.len());
        let mut fresh = Vec::new();
        for c in &outbound.credentials {
            if let Some(exchange) = &c.exchange {
                // Holds no token until a user call arrives: not a readiness condition.
                let subject_issuer = exchange.subject_issuer.map(|id| &issuers[id.0]);
                let kept = previous.and_then(|p| {
                    p.rooms.iter().find_map(|r| match r {
                        Room::PerUser(u, subject)
                            if u.name() == c.name
                                && u.serves(c)
                                && subject.as_ref().map(|s| &s.issuer) == subject_issuer =>
                        {
                            Some((u.clone(), subject.clone()))
                        }
                        _ => None,
                    })
                });
                if let Some((cache, subject)) = kept {
                    rooms.push(Room::PerUser(cache, subject));
                    continue;
                }
                let subject = subject_issuer.map(|issuer| {
                    Arc::new(SubjectCheck {
                        issuer: issuer.clone(),
                        keys: crate::inbound::jwks::KeyCache::for_issuer(
                            issuer,
                            cx.http.clone(),
                            cx.metrics.clone(),
                            None,
                        ),
                    })
                });
                let cache = Arc::new(UserTokenCache::new(
                    c,
                    cx.http.clone(),
                    cx.metrics.clone(),
                    credentials::DEFAULT_CAPACITY_BYTES,
                ));
                rooms.push(Room::PerUser(cache, subject));
                continue;
            }
            match previous.and_then(|p| p.tokens.iter().find(|t| t.name() == c.name && t.serves(c))) {
                Some(cache) => {
                    rooms.push(Room::Shared(cache.clone()));
                    tokens.push(cache.clone());
                }
                None => {
                    let handle = cx
                        .readiness
                        .map(|r| r.register(format!("credential/{}", c.name), "first token"));
                    let cache = Arc::new(TokenCache::new(
                        c,
                        credentials::source(c, cx.http.clone()),
                        cx.metrics.clone(),
                        handle,
                    ));
                    fresh.push(cache.clone());
                    rooms.push(Room::Shared(cache.clone()));
                    tokens.push(cache);
                }
            }
        }
        let reuse = |ca: &Option<std::path::PathBuf>| {
            let unchanged = ca.as_ref().is_none_or(|p| !cx.changed_files.contains(p));
            previous
                .and_then(|p| p.proxies.iter().find(|(c, _)| c == ca))
                .filter(|_| unchanged)
                .map(|(_, proxy)| proxy.clone())
        };
        let connect = outbound.limits.upstream_connect_timeout;
        let mut proxies = vec![(None, reuse(&None).map_or_else(|| Proxy::new(None, connect), Ok)?)];
        let mut upstreams = Vec::with_capacity(outbound.routes.len());
        for (i, route) in outbound.routes.iter().enumerate() {
            let upstream = Upstream::from_url(&route.upstream).ok_or(BuildError::Upstream(i))?;
            let index = match proxies.iter().position(|(c, _)| *c == route.ca_file) {
                Some(p) => p,
                None => {
                    let proxy = match reuse(&route.ca_file) {
                        Some(p) => p,
                        None => Proxy::new(route.ca_file.as_deref(), connect)?,
                    };
                    proxies.push((route.ca_file.clone(), proxy));
                    proxies.len() - 1
                }
            };
            upstreams.push((upstream, index));
        }
        let snapshot = Snapshot {
            outbound: outbound.clone(),
            upstreams,
            proxies,
            tokens,
            rooms,
        };
        Ok((snapshot, fresh))
    }
}

impl OutboundService {
    pub fn new(snapshot: Snapshot, metrics: Metrics) -> Self {
        OutboundService {
            snapshot: ArcSwap::from_pointee(snapshot),
            metrics,
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Replace the routes and credentials; requests in flight finish on the one they loaded.
    pub fn store(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        _conn: ClientConn,
    ) -> Result<Response<Body>, Infallible> {
        let started = Instant::now();
        let snap = self.snapshot.load_full();
        let grpc = reply::is_grpc(req.headers());
        let method = req.method().clone();
        let raw_path = req.uri().path().to_string();
        let host = routing::request_host(&req);
        let host_text = host
            .as_ref()
            .map_or_else(|| "-".into(), routing::RequestHost::text);

        let sent = match route(&snap, &method, host.as_ref(), &raw_path) {
            Err(reply) => Sent {
                route: None,
                decision: "refuse",
                reason: reply.error,
                response: reply.render(grpc),
            },
            Ok(i) => send(&snap, i, req, &raw_path, grpc).await,
        };
        let route = sent.route.map(|i| &snap.outbound.routes[i]);
        let route_label = route.map_or("-", |r| r.label.as_str());
        let credential = route.map(|r| snap.outbound.credential(r.credential));
        let status = sent.response.status();
        // Three digits: bounded, whatever the upstream answers.
        self.metrics
            .outbound_requests
            .with_label_values(&[route_label, status.as_str()])
            .inc();
        tracing::info!(
            target: "tollgate::access",
            side = "outbound",
            route = route_label,
            decision = sent.decision,
            reason = sent.reason,
            credential = credential.map_or("-", |c| c.name.as_str()),
            client_id = credential.and_then(Credential::client_id).unwrap_or("-"),
            status = status.as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            method = method.as_str(),
            host = host_text.as_str(),
            path = raw_path.as_str(),
        );
        Ok(sent.response)
    }
}

/// What became of one request.
struct Sent {
    route: Option<usize>,
    /// `forward` or `refuse`.
    decision: &'static str,
    /// `ok`, or why: `no_route`, `invalid_request`, `token_unavailable`, `upstream_timeout`, …
    reason: &'static str,
    response: Response<Body>,
}

/// Attach route `i`'s token and forward.
async fn send(snap: &Snapshot, i: usize, mut req: Request<Incoming>, raw_path: &str, grpc: bool) -> Sent {
    let route = &snap.outbound.routes[i];
    let token = match token_for(&snap.rooms[route.credential.0], req.headers()).await {
        Ok(token) => token,
        Err(reply) => {
            return Sent {
                route: Some(i),
                decision: "refuse",
                reason: reply.error,
                response: reply.render(grpc),
            };
        }
    };
    let upgrade = proxy::upgrade_requested(&req);
    let headers = req.headers_mut();
    proxy::strip_hop_by_hop(headers);
    headers.remove(header::AUTHORIZATION);
    headers.insert(header::AUTHORIZATION, token.bearer.clone());
    let (upstream, proxy) = &snap.upstreams[i];
    headers.insert(header::HOST, upstream.host());
    let path = routing::upstream_path(route, raw_path);
    let pq = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let target = Target {
        upstream,
        path_and_query: PathAndQuery::try_from(pq).unwrap_or_else(|_| PathAndQuery::from_static("/")),
        protocol: None,
        timeout: snap.outbound.upstream_timeout,
        upgrade,
    };
    match snap.proxies[*proxy].1.forward(req, target).await {
        Ok(response) => Sent {
            route: Some(i),
            decision: "forward",
            reason: "ok",
            response,
        },
        Err(e) => {
            tracing::warn!(side = "outbound", route = %route.label, error = %e, "forwarding failed");
            let reply = proxy::failure_reply(&e);
            Sent {
                route: Some(i),
                decision: "forward",
                reason: reply.error,
                response: reply.render(grpc),
            }
        }
    }
}

/// The token to attach: the shared one, or the exchange of the app's user token.
async fn token_for(room: &Room, headers: &http::HeaderMap) -> Result<Arc<Token>, Reply> {
    let cache = match room {
        Room::Shared(cache) => {
            return cache.get().await.map_err(|e| {
                tracing::warn!(side = "outbound", error = %e, "no token");
                Reply::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "token_unavailable",
                    e.to_string(),
                )
                .with_field("credential", cache.name())
            });
        }
        Room::PerUser(cache, subject) => (cache, subject),
    };
    let (cache, subject) = cache;
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let user = match (values.next(), values.next()) {
        (first, None) => UserToken::from_authorization(first),
        (Some(_), Some(_)) => Err(UserTokenError::Malformed),
        (None, Some(_)) => Err(UserTokenError::Missing),
    };
    let user = user.map_err(ExchangeFailure::from);
    let user = match (user, subject) {
        (Ok(user), Some(check)) => {
            match crate::inbound::verify_from(&check.issuer, &check.keys, user.expose()).await {
                Ok(_) => Ok(user),
                Err(refusal) => {
                    return Err(
                        subject_reply(&refusal, &check.issuer.name).with_field("credential", cache.name())
                    );
                }
            }
        }
        (user, _) => user,
    };
    let result = match user {
        Ok(user) => cache.get(&user).await,
        Err(e) => Err(e),
    };
    result.map_err(|e| {
        tracing::warn!(side = "outbound", credential = %cache.name(), error = %e, "no exchanged token");
        exchange_reply(&e).with_field("credential", cache.name())
    })
}

/// The user token failed `subject_issuer`'s checks (401), or its keys are unavailable (503).
fn subject_reply(refusal: &crate::inbound::Refusal, issuer: &str) -> Reply {
    tracing::warn!(side = "outbound", subject_issuer = %issuer, error = %refusal, "user token refused");
    if matches!(refusal, crate::inbound::Refusal::KeysUnavailable(_)) {
        return Reply::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "keys_unavailable",
            refusal.to_string(),
        );
    }
    let description = format!("the user token failed issuer `{issuer}`'s checks: {refusal}");
    Reply::new(StatusCode::UNAUTHORIZED, "invalid_token", description.clone()).with_www_authenticate(format!(
        r#"Bearer realm="tollgate", error="invalid_token", error_description="{}""#,
        description.replace('"', "'")
    ))
}

/// An exchange failure as the app sees it: 401 for what the user can fix (sign in again,
/// satisfy a claims challenge), 503 when the IdP is unavailable, else 502.
fn exchange_reply(e: &ExchangeFailure) -> Reply {
    let realm = r#"Bearer realm="tollgate""#;
    match e {
        // RFC 6750 §3.1: no error code when no token was sent.
        ExchangeFailure::UserToken(UserTokenError::Missing) => {
            Reply::new(StatusCode::UNAUTHORIZED, "missing_token", e.to_string())
                .with_www_authenticate(realm.into())
        }
        ExchangeFailure::UserToken(_) => Reply::new(StatusCode::UNAUTHORIZED, "invalid_token", e.to_string())
            .with_www_authenticate(format!(
                r#"{realm}, error="invalid_token", error_description="{e}""#
            )),
        ExchangeFailure::Acquire { .. } => {
            if let Some(challenge) = e.claims_challenge() {
                return Reply::new(StatusCode::UNAUTHORIZED, "insufficient_claims", e.to_string())
                    .with_www_authenticate(challenge.www_authenticate());
            }
            if e.idp_unavailable() {
                Reply::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "token_unavailable",
                    e.to_string(),
                )
            } else {
                Reply::new(StatusCode::BAD_GATEWAY, "exchange_failed", e.to_string())
            }
        }
    }
}

/// Path safety, then the route index; or the reply that refuses the request.
fn route(
    snap: &Snapshot,
    method: &http::Method,
    host: Option<&routing::RequestHost>,
    raw_path: &str,
) -> Result<usize, Reply> {
    if method == http::Method::CONNECT {
        return Err(Reply::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "connect_not_supported",
            "tollgate does not tunnel: send plain HTTP (http://host/path) and it adds the token and the TLS",
        ));
    }
    let path = ServedPath::parse(raw_path, snap.outbound.path_case)
        .map_err(|e| Reply::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()))?;
    match routing::find_route(&snap.outbound.routes, host, &path) {
        Some((i, _)) => Ok(i),
        None => {
            let host = host.map(|h| h.host.clone()).unwrap_or_else(|| "(none)".into());
            let shown: String = path.as_str().chars().take(200).collect();
            Err(Reply::new(
                StatusCode::NOT_FOUND,
                "no_route",
                format!("no outbound route for host `{host}` and path `{shown}`"),
            )
            .with_field("host", host)
            .with_field("path", shown))
        }
    }
}

/// `check --online`: one token per credential, reported without the token.
pub async fn check_online(config: &Config, http: &reqwest::Client, metrics: &Metrics) -> Vec<Finding> {
    let Some(outbound) = &config.outbound else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    for c in &outbound.credentials {
        if c.exchange.is_some() {
            findings.push(Finding {
                subject: format!("credential {}", c.name),
                outcome: Ok(
                    "exchange credential: tokens are exchanged per user call, not checked here".into(),
                ),
            });
            continue;
        }
        let cache = TokenCache::new(c, credentials::source(c, http.clone()), metrics.clone(), None);
        let outcome = match cache.acquire_now().await {
            Ok(t) => Ok(format!(
                "token acquired, expires in {} s",
                t.expires_at.saturating_duration_since(Instant::now()).as_secs()
            )),
            Err(e) => Err(e.to_string()),
        };
        findings.push(Finding {
            subject: format!("credential {}", c.name),
            outcome,
        });
    }
    findings
}
