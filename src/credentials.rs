//! Outbound credentials: one [`TokenSource`] per configured credential (client secret,
//! `private_key_jwt` certificate, workload identity, managed identity), each behind a
//! [`TokenCache`] that acquires eagerly, refreshes in the background and shares one
//! request among concurrent callers when no valid token exists. Exchange credentials
//! (on-behalf-of, RFC 8693) use the same client authentication with a per-user cache.

mod cache;
mod client_secret;
mod exchange;
mod managed_identity;
mod private_key_jwt;
mod token_endpoint;
mod workload_identity;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use http::HeaderValue;

pub use self::cache::{TokenCache, Unavailable};
pub use self::exchange::{
    DEFAULT_CAPACITY_BYTES, ExchangeFailure, UserToken, UserTokenCache, UserTokenError,
};
pub use self::private_key_jwt::{Assertion, CertificateKey};
use self::token_endpoint::{ClientProof, TokenEndpoint};
use crate::config::{Credential, CredentialAuth};

/// `grant_type=client_credentials` assertion type for certificates and federated tokens.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An access token ready to attach, with its schedule.
pub struct Token {
    /// `Bearer …`, marked sensitive so that it is never printed or indexed by HPACK.
    pub bearer: HeaderValue,
    pub expires_at: Instant,
    pub expires_unix: u64,
    /// When the background refresh should replace it.
    pub refresh_at: Instant,
    /// Entra's `ext_expires_in`: how long it may still serve while the IdP is down.
    pub ext_expires_at: Option<Instant>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("bearer", &"[redacted]")
            .field("expires_unix", &self.expires_unix)
            .finish()
    }
}

/// Why a token could not be acquired. Never holds a secret, assertion or token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AcquireError {
    /// A local input (secret, certificate, key, token file) is missing or unusable.
    #[error("{0}")]
    Local(String),
    /// Connection refused, DNS, TLS or timeout.
    #[error("token endpoint unreachable: {0}")]
    Unreachable(String),
    /// The IdP answered with an error status.
    #[error("token endpoint answered {status}{}", oauth_detail(.error, .description, .codes))]
    Refused {
        status: u16,
        error: Option<String>,
        description: Option<String>,
        codes: Vec<i64>,
        /// A claims challenge the user must satisfy (Entra conditional access).
        claims: Option<String>,
    },
    /// A 2xx answer that is not a usable token response.
    #[error("unusable token response: {0}")]
    BadResponse(String),
}

impl AcquireError {
    /// The IdP is down or overloaded (5xx, timeout, unreachable): worth serving an
    /// expired token within `ext_expires_in`, as MSAL does.
    pub fn idp_unavailable(&self) -> bool {
        match self {
            AcquireError::Unreachable(_) => true,
            AcquireError::Refused { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

fn oauth_detail(error: &Option<String>, description: &Option<String>, codes: &[i64]) -> String {
    let mut out = String::new();
    if let Some(e) = error {
        out.push_str(&format!(" {e}"));
    }
    if let Some(d) = description {
        // Entra descriptions carry trace ids and timestamps on further lines.
        let first = d.lines().next().unwrap_or_default();
        out.push_str(&format!(": {first}"));
    }
    if !codes.is_empty() {
        let list: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
        out.push_str(&format!(" (error_codes {})", list.join(",")));
    }
    out
}

pub type AcquireFuture<'a> = Pin<Box<dyn Future<Output = Result<Token, AcquireError>> + Send + 'a>>;

/// A way to obtain an access token for one credential.
pub trait TokenSource: Send + Sync {
    fn acquire(&self) -> AcquireFuture<'_>;
}

type ProofFuture<'a> = Pin<Box<dyn Future<Output = Result<ClientProof, AcquireError>> + Send + 'a>>;

/// How a client authenticates at its token endpoint (secret, certificate, federated
/// assertion), whatever the grant it asks for.
trait ClientAuthentication: Send + Sync {
    fn endpoint(&self) -> &TokenEndpoint;
    /// The proof for one request, read fresh (secrets and token files rotate).
    fn prove(&self) -> ProofFuture<'_>;
}

/// The client-credentials grant (RFC 6749 §4.4) with a client's authentication.
struct ClientCredentials(Box<dyn ClientAuthentication>);

impl TokenSource for ClientCredentials {
    fn acquire(&self) -> AcquireFuture<'_> {
        Box::pin(async move {
            let proof = self.0.prove().await?;
            let grant = [("grant_type", "client_credentials")];
            self.0.endpoint().request(&grant, proof).await
        })
    }
}

/// The token source for a configured credential.
pub fn source(credential: &Credential, http: reqwest::Client) -> Box<dyn TokenSource> {
    match kind(credential, http) {
        Kind::Client(client) => Box::new(ClientCredentials(client)),
        Kind::Platform(identity) => Box::new(identity),
    }
}

/// Who asks for tokens: a client authenticating at its token endpoint, or a managed
/// identity asking the platform.
enum Kind {
    Client(Box<dyn ClientAuthentication>),
    Platform(managed_identity::ManagedIdentity),
}

fn kind(credential: &Credential, http: reqwest::Client) -> Kind {
    let endpoint = |token_url: &url::Url| {
        TokenEndpoint::new(
            http.clone(),
            token_url.clone(),
            credential.scopes.join(" "),
            credential.extra_params.clone(),
        )
    };
    Kind::Client(match &credential.auth {
        CredentialAuth::ClientSecret {
            token_url,
            client_id,
            secret,
            method,
        } => Box::new(client_secret::ClientSecret {
            endpoint: endpoint(token_url),
            client_id: client_id.clone(),
            secret: secret.clone(),
            method: *method,
        }),
        CredentialAuth::PrivateKeyJwt {
            token_url,
            client_id,
            certificate_file,
            key_file,
            algorithm,
        } => Box::new(private_key_jwt::PrivateKeyJwt {
            endpoint: endpoint(token_url),
            client_id: client_id.clone(),
            certificate_file: certificate_file.clone(),
            key_file: key_file.clone(),
            algorithm: *algorithm,
        }),
        CredentialAuth::WorkloadIdentity {
            token_url,
            client_id,
            token_file,
        } => Box::new(workload_identity::WorkloadIdentity {
            endpoint: endpoint(token_url),
            client_id: client_id.clone(),
            token_file: token_file.clone(),
        }),
        CredentialAuth::ManagedIdentity {
            resource,
            client_id,
            endpoint,
        } => {
            return Kind::Platform(managed_identity::ManagedIdentity {
                http,
                resource: resource.clone(),
                client_id: client_id.clone(),
                endpoint: endpoint.clone(),
            });
        }
    })
}
