//! The development issuer: a small OIDC provider (discovery and JWKS) that mints
//! Entra-shaped access tokens, for `tollgate demo` and the test suite. It binds loopback
//! only and is for development only: never trust it in production.

mod signing_key;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use serde_json::{Value, json};

pub use self::signing_key::{KeyError, SigningKey, alg_name, b64_json};
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
}

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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
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

async fn handle<B>(state: Arc<State>, req: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
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
