//! The development issuer: a small OIDC provider (discovery and JWKS) that mints
//! Entra-shaped access tokens, for `tollgate demo` and the test suite. It binds loopback
//! only and is for development only: never trust it in production.

mod certificate;
mod exchange;
mod signing_key;
mod token_endpoint;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use serde_json::{Value, json};

pub use self::certificate::ClientCertificate;
pub use self::signing_key::{KeyError, SigningKey, alg_name, b64_json};
pub use self::token_endpoint::{Behaviour, Client, ClientAuth, TokenRequest};
use crate::server::{self, ShutdownSignal, ShutdownTrigger};

/// A running development issuer.
pub struct DevIssuer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: ShutdownTrigger,
}

struct State {
    issuer: String,
    /// The key new tokens are signed with.
    signer: RwLock<Arc<SigningKey>>,
    /// The keys the JWKS publishes.
    published: RwLock<Vec<Arc<SigningKey>>>,
    available: AtomicBool,
    jwks_requests: AtomicUsize,
    discovery_requests: AtomicUsize,
    clients: RwLock<HashMap<String, Client>>,
    behaviour: RwLock<Behaviour>,
    token_log: RwLock<Vec<TokenRequest>>,
    /// The `X-IDENTITY-HEADER` value the managed identity endpoint expects.
    identity_header: RwLock<Option<String>>,
}

/// The instance metadata service's token path (IMDS), served for managed identity tests.
const IMDS_PATH: &str = "/metadata/identity/oauth2/token";

/// The tenant id in the tokens the development issuer mints.
pub const DEV_TENANT: &str = "7ff95b15-dc21-4ba6-bc92-824856578fc1";

#[derive(Debug, thiserror::Error)]
pub enum DevIssuerError {
    #[error("the development issuer only binds loopback addresses, not {0}")]
    NotLoopback(SocketAddr),
    #[error("{0}")]
    Bind(#[from] std::io::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
}

// === impl DevIssuer ===

impl DevIssuer {
    /// Start on `addr` (loopback only; port 0 picks a free port) with one RS256 key.
    pub async fn start(addr: SocketAddr) -> Result<DevIssuer, DevIssuerError> {
        if !addr.ip().is_loopback() {
            return Err(DevIssuerError::NotLoopback(addr));
        }
        let listener = server::bind("dev-issuer", addr).await?;
        let addr = listener.local_addr()?;
        let key = Arc::new(SigningKey::generate_rsa(
            "dev-key-1",
            jsonwebtoken::Algorithm::RS256,
        )?);
        let state = Arc::new(State {
            issuer: format!("http://{addr}"),
            signer: RwLock::new(key.clone()),
            published: RwLock::new(vec![key]),
            available: AtomicBool::new(true),
            jwks_requests: AtomicUsize::new(0),
            discovery_requests: AtomicUsize::new(0),
            clients: RwLock::new(HashMap::new()),
            behaviour: RwLock::new(Behaviour::default()),
            token_log: RwLock::new(Vec::new()),
            identity_header: RwLock::new(None),
        });
        let (stop, shutdown) = server::shutdown_channel();
        tokio::spawn(serve(listener, state.clone(), shutdown));
        tracing::warn!(issuer = %state.issuer, "development issuer started: for development only");
        Ok(DevIssuer { addr, state, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `iss` of its tokens: `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.state.issuer)
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/keys", self.state.issuer)
    }

    /// How many times the JWKS was requested (answered or not).
    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    pub fn discovery_requests(&self) -> usize {
        self.state.discovery_requests.load(Ordering::SeqCst)
    }

    /// `false`: every endpoint answers 503, as an issuer in an outage would.
    pub fn set_available(&self, available: bool) {
        self.state.available.store(available, Ordering::SeqCst);
    }

    /// The current signing key.
    pub fn signing_key(&self) -> Arc<SigningKey> {
        read(&self.state.signer).clone()
    }

    /// Sign new tokens with `key` and publish it (the old keys stay published).
    pub fn rotate_to(&self, key: SigningKey) {
        let key = Arc::new(key);
        write(&self.state.published).push(key.clone());
        *write(&self.state.signer) = key;
    }

    /// Publish exactly these keys (the signer is unchanged).
    pub fn publish_only(&self, keys: Vec<Arc<SigningKey>>) {
        *write(&self.state.published) = keys;
    }

    /// A signed token with these claims (`iss` is added when missing).
    pub fn token(&self, claims: Value) -> String {
        let mut claims = claims;
        if let Some(map) = claims.as_object_mut() {
            map.entry("iss")
                .or_insert_with(|| self.state.issuer.clone().into());
        }
        self.signing_key().sign(&claims)
    }

    /// The client-credentials token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.state.issuer)
    }

    /// The App Service–style managed identity endpoint (`IDENTITY_ENDPOINT`).
    pub fn identity_endpoint(&self) -> String {
        format!("{}/msi/token", self.state.issuer)
    }

    /// Register a client of the token endpoint.
    pub fn add_client(&self, client_id: &str, auth: ClientAuth, roles: &[&str]) {
        write(&self.state.clients).insert(
            client_id.to_string(),
            Client {
                auth,
                roles: roles.iter().map(|r| r.to_string()).collect(),
            },
        );
    }

    /// Serve managed identity tokens: on `/msi/token` to callers presenting this
    /// `X-IDENTITY-HEADER` (App Service), and on the IMDS path to callers sending
    /// `Metadata: true`.
    pub fn enable_managed_identity(&self, identity_header: &str) {
        *write(&self.state.identity_header) = Some(identity_header.to_string());
    }

    /// Lifetime of minted tokens, answer delay, forced failure.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *write(&self.state.behaviour) = behaviour;
    }

    /// Every token-endpoint request so far.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        read(&self.state.token_log).clone()
    }

    /// Stop serving (the port closes).
    pub fn stop(&self) {
        self.stop.trigger();
    }
}

impl Drop for DevIssuer {
    fn drop(&mut self) {
        self.stop.trigger();
    }
}

/// Entra-shaped app-token claims for a client, valid for an hour from now.
pub fn app_claims(audience: &str, client_id: &str, azpacr: &str, roles: &[&str], tenant: &str) -> Value {
    let now = crate::clock::unix_now();
    json!({
        "aud": audience,
        "azp": client_id,
        "azpacr": azpacr,
        "roles": roles,
        "tid": tenant,
        "oid": format!("sp-{client_id}"),
        "sub": format!("sp-{client_id}"),
        "idtyp": "app",
        "ver": "2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    })
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<State>, shutdown: ShutdownSignal) {
    let make = move |_conn| {
        let state = state.clone();
        service_fn(move |req| handle(state.clone(), req))
    };
    server::serve(
        "dev-issuer",
        listener,
        None,
        make,
        shutdown,
        std::time::Duration::from_secs(1),
    )
    .await;
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    if path == "/token" || path == "/msi/token" || path == IMDS_PATH {
        return Ok(token_request(&state, req).await);
    }
    let path = path.as_str();
    match path {
        "/keys" => state.jwks_requests.fetch_add(1, Ordering::SeqCst),
        "/.well-known/openid-configuration" => state.discovery_requests.fetch_add(1, Ordering::SeqCst),
        _ => 0,
    };
    if !state.available.load(Ordering::SeqCst) {
        return Ok(json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "temporarily_unavailable"}),
        ));
    }
    let body = match path {
        "/.well-known/openid-configuration" => json!({
            "issuer": state.issuer,
            "jwks_uri": format!("{}/keys", state.issuer),
            "token_endpoint": format!("{}/token", state.issuer),
            "id_token_signing_alg_values_supported": ["RS256"],
        }),
        "/keys" => {
            let keys: Vec<Value> = read(&state.published).iter().map(|k| k.jwk().clone()).collect();
            json!({ "keys": keys })
        }
        _ => {
            return Ok(json_response(
                StatusCode::NOT_FOUND,
                json!({"error": "not_found"}),
            ));
        }
    };
    Ok(json_response(StatusCode::OK, body))
}

/// `/token` (client credentials) and `/msi/token` (managed identity).
async fn token_request(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, 64 * 1024)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut form: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    if parts.method == http::Method::GET {
        form.extend(
            url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).into_owned(),
        );
    }
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let (delay, lifetime, fail_with, claims_challenge) = {
        let b = read(&state.behaviour);
        (b.delay, b.lifetime, b.fail_with, b.claims_challenge.clone())
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut entry = TokenRequest {
        path: parts.uri.path().to_string(),
        client_id: None,
        method: "unknown",
        form: form.clone(),
        headers,
        status: 200,
        error: None,
    };
    let now = crate::clock::unix_now();
    let outcome = if !state.available.load(Ordering::SeqCst) {
        Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the issuer is down".to_string(),
        ))
    } else if let Some(status) = fail_with {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Err((
            status,
            "server_error",
            "AADSTS90000: failure injected by the test".to_string(),
        ))
    } else if entry.path == "/msi/token" || entry.path == IMDS_PATH {
        managed_identity(state, &entry, now)
    } else {
        let clients = read(&state.clients);
        let token_url = format!("{}/token", state.issuer);
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let scope = form
            .iter()
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        let client_credentials = entry.field("grant_type") == Some("client_credentials");
        let authenticated = token_endpoint::authenticate(&clients, &token_url, &form, auth, now);
        match authenticated {
            Err(e) => Err(e),
            Ok(a) if client_credentials => {
                let roles: Vec<&str> = clients
                    .get(&a.client_id)
                    .map(|c| c.roles.iter().map(String::as_str).collect())
                    .unwrap_or_default();
                let aud = token_endpoint::audience_of(scope);
                let claims = app_claims(&aud, &a.client_id, a.azpacr, &roles, DEV_TENANT);
                Ok((a.client_id, a.method, claims))
            }
            Ok(a) => {
                entry.client_id = Some(a.client_id.clone());
                let jwks = json!({ "keys": read(&state.published).iter().map(|k| k.jwk().clone()).collect::<Vec<_>>() });
                let minted = exchange::subject(&form)
                    .and_then(|subject| exchange::exchange(&jwks, &state.issuer, &a, subject, scope, now));
                match (minted, claims_challenge) {
                    (Ok(_), Some(claims)) => {
                        let description = "AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication.";
                        entry.status = 400;
                        entry.error = Some(description.to_string());
                        let body = json!({
                            "error": "invalid_grant",
                            "error_description": description,
                            "error_codes": [50076],
                            "suberror": "basic_action",
                            "claims": claims,
                        });
                        write(&state.token_log).push(entry);
                        return json_response(StatusCode::BAD_REQUEST, body);
                    }
                    (minted, _) => minted.map(|claims| (a.client_id, a.method, claims)),
                }
            }
        }
    };
    let response = match outcome {
        Ok((client_id, method, mut claims)) => {
            entry.client_id = Some(client_id);
            entry.method = method;
            let secs = lifetime.as_secs().max(1);
            claims["iss"] = json!(state.issuer);
            claims["exp"] = json!(now + secs as i64);
            let token = read(&state.signer).clone().sign(&claims);
            if method == "managed_identity" {
                json_response(
                    StatusCode::OK,
                    json!({
                        "access_token": token,
                        "expires_in": secs.to_string(),
                        "expires_on": (now + secs as i64).to_string(),
                        "resource": claims["aud"],
                        "token_type": "Bearer",
                    }),
                )
            } else {
                json_response(
                    StatusCode::OK,
                    json!({ "token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": token }),
                )
            }
        }
        Err((status, error, description)) => {
            entry.status = status.as_u16();
            entry.error = Some(description.clone());
            json_response(
                status,
                json!({ "error": error, "error_description": description, "error_codes": [] }),
            )
        }
    };
    write(&state.token_log).push(entry);
    response
}

type Minted = (String, &'static str, Value);

fn managed_identity(
    state: &State,
    req: &TokenRequest,
    _now: i64,
) -> Result<Minted, (StatusCode, &'static str, String)> {
    let expected = read(&state.identity_header).clone();
    let imds = req.path == IMDS_PATH;
    if expected.is_none() {
        return Err((
            StatusCode::NOT_FOUND,
            "invalid_request",
            "managed identity is not enabled".into(),
        ));
    }
    if imds && req.header("metadata") != Some("true") {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Metadata: true required".into(),
        ));
    }
    if !imds && req.header("x-identity-header") != expected.as_deref() {
        return Err((
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "X-IDENTITY-HEADER missing or wrong".into(),
        ));
    }
    let version = if imds { "2018-02-01" } else { "2019-08-01" };
    let resource = req.field("resource").unwrap_or_default();
    if resource.is_empty() || req.field("api-version") != Some(version) {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("resource and api-version={version} required"),
        ));
    }
    let client = req
        .field("client_id")
        .unwrap_or("dev-managed-identity")
        .to_string();
    let claims = app_claims(resource, &client, "2", &[], DEV_TENANT);
    Ok((client, "managed_identity", claims))
}

fn json_response(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    res
}

// Poisoning cannot leave these in a half-written state (single assignments).
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
