//! Exchange credentials: the app's user token is traded for a token to the downstream API
//! (Entra's on-behalf-of, or RFC 8693 token exchange), authenticated as the credential's
//! client. Tokens are cached per user (SHA-256 of the whole user token) in a bounded
//! cache; concurrent calls with one user token share one exchange.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use moka::Expiry;
use moka::future::Cache;

use super::{AcquireError, ClientAuthentication, Kind, Token};
use crate::clock::unix_now;
use crate::config::{Credential, ExchangeGrant};
use crate::digest::{Sha256, sha256};
use crate::metrics::Metrics;
use crate::secret::Secret;

/// Entra ID's on-behalf-of grant type (RFC 7523 §2.1).
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// RFC 8693 §2.1.
const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Cached tokens stop serving this long before they expire (at most a tenth of their life).
const MARGIN: Duration = Duration::from_secs(60);
/// The cache's bound: bytes of cached tokens (each entry weighs its token plus overhead).
pub const DEFAULT_CAPACITY_BYTES: u64 = 32 * 1024 * 1024;
const ENTRY_OVERHEAD: u32 = 128;

/// A user token the app sent, checked cheaply: a JWT whose payload carries an unexpired `exp`.
pub struct UserToken {
    raw: Secret<String>,
    exp_unix: u64,
}

/// Why a user token was refused before any call to the identity provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserTokenError {
    #[error("the request carries no bearer token: send the user's token as `Authorization: Bearer …`")]
    Missing,
    #[error("the user token is not a well-formed JWT with a numeric `exp`")]
    Malformed,
    #[error("the user token has expired")]
    Expired,
}

/// Why no exchanged token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExchangeFailure {
    #[error(transparent)]
    UserToken(#[from] UserTokenError),
    /// The identity provider refused or failed the exchange.
    #[error("token exchange for credential `{credential}` failed: {cause}")]
    Acquire {
        credential: String,
        cause: Arc<AcquireError>,
    },
}

impl ExchangeFailure {
    /// The IdP's claims challenge, when it asks for user interaction or more claims
    /// (`interaction_required`, or any error carrying `claims`, as AADSTS50076/50079 do).
    pub fn claims_challenge(&self) -> Option<ClaimsChallenge<'_>> {
        let ExchangeFailure::Acquire { cause, .. } = self else {
            return None;
        };
        match cause.as_ref() {
            AcquireError::Refused { error, claims, .. }
                if claims.is_some() || error.as_deref() == Some("interaction_required") =>
            {
                Some(ClaimsChallenge {
                    claims: claims.as_deref(),
                })
            }
            _ => None,
        }
    }

    /// The IdP is down or overloaded (503), rather than refusing (502).
    pub fn idp_unavailable(&self) -> bool {
        match self {
            ExchangeFailure::Acquire { cause, .. } => cause.idp_unavailable() || is_local(cause),
            ExchangeFailure::UserToken(_) => false,
        }
    }
}

fn is_local(e: &AcquireError) -> bool {
    matches!(e, AcquireError::Local(_))
}

/// The IdP's claims challenge, to pass to the app (Microsoft.Identity.Web does the same).
pub struct ClaimsChallenge<'a> {
    /// The claims JSON, as the IdP sent it.
    pub claims: Option<&'a str>,
}

impl ClaimsChallenge<'_> {
    /// `Bearer error="insufficient_claims", claims="<base64 of the claims JSON>"`.
    pub fn www_authenticate(&self) -> String {
        use base64::engine::general_purpose::STANDARD;
        match self.claims {
            Some(c) => format!(
                r#"Bearer realm="tollgate", error="insufficient_claims", claims="{}""#,
                STANDARD.encode(c)
            ),
            None => r#"Bearer realm="tollgate", error="insufficient_claims""#.to_string(),
        }
    }
}

/// One cached exchange result.
struct Entry {
    token: Arc<Token>,
    /// The earlier of the token's expiry less the margin and the user token's `exp`.
    until: Instant,
}

struct UntilExpiry;

impl Expiry<Sha256, Arc<Entry>> for UntilExpiry {
    fn expire_after_create(&self, _key: &Sha256, value: &Arc<Entry>, _at: Instant) -> Option<Duration> {
        Some(value.until.saturating_duration_since(Instant::now()))
    }
}

/// The exchange grant with a client's authentication.
struct Exchanger {
    client: Option<Box<dyn ClientAuthentication>>,
    grant: ExchangeGrant,
}

/// Exchanged tokens of one credential, per user.
pub struct UserTokenCache {
    name: String,
    settings: Credential,
    exchanger: Exchanger,
    entries: Cache<Sha256, Arc<Entry>>,
    metrics: Metrics,
}

// === impl UserToken ===

impl UserToken {
    /// The bearer token of an `Authorization` header value, if it is a JWT that has not
    /// expired. The signature is not checked here (the IdP checks it).
    pub fn from_authorization(value: Option<&http::HeaderValue>) -> Result<Self, UserTokenError> {
        let value = value.ok_or(UserTokenError::Missing)?;
        let text = value.to_str().map_err(|_| UserTokenError::Malformed)?;
        let (scheme, token) = text.split_once(' ').ok_or(UserTokenError::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(UserTokenError::Missing);
        }
        Self::parse(token.trim(), unix_now())
    }

    fn parse(token: &str, now: i64) -> Result<Self, UserTokenError> {
        let mut parts = token.split('.');
        let (Some(_), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(UserTokenError::Malformed);
        };
        let claims: serde_json::Value = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(UserTokenError::Malformed)?;
        let exp = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .ok_or(UserTokenError::Malformed)?;
        if exp <= now {
            return Err(UserTokenError::Expired);
        }
        Ok(UserToken {
            raw: Secret::new(token.to_string()),
            exp_unix: exp as u64,
        })
    }

    /// The token itself, for inbound's validation (`subject_issuer`).
    pub fn expose(&self) -> &str {
        self.raw.expose()
    }

    /// When the user token expires, on this process's monotonic clock.
    fn expires_at(&self) -> Instant {
        let left = self.exp_unix.saturating_sub(unix_now().max(0) as u64);
        Instant::now() + Duration::from_secs(left)
    }
}

// === impl Exchanger ===

impl Exchanger {
    async fn exchange(&self, user: &UserToken) -> Result<Token, AcquireError> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| AcquireError::Local("a managed identity cannot exchange tokens".into()))?;
        let proof = client.prove().await?;
        let subject = user.raw.expose().as_str();
        let grant: [(&str, &str); 3] = match self.grant {
            // Entra ID on-behalf-of.
            ExchangeGrant::OnBehalfOf => [
                ("grant_type", JWT_BEARER_GRANT),
                ("requested_token_use", "on_behalf_of"),
                ("assertion", subject),
            ],
            ExchangeGrant::TokenExchange => [
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ],
        };
        client.endpoint().request(&grant, proof).await
    }
}

// === impl UserTokenCache ===

impl UserTokenCache {
    /// The per-user cache of an exchange credential, bounded to `capacity_bytes`.
    pub fn new(
        credential: &Credential,
        http: reqwest::Client,
        metrics: Metrics,
        capacity_bytes: u64,
    ) -> Self {
        let client = match super::kind(credential, http) {
            Kind::Client(client) => Some(client),
            Kind::Platform(_) => None, // refused by validation
        };
        let grant = credential
            .exchange
            .as_ref()
            .map_or(ExchangeGrant::OnBehalfOf, |e| e.grant);
        let entries = Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|_key: &Sha256, entry: &Arc<Entry>| {
                let len = entry.token.bearer.len().min(u32::MAX as usize) as u32;
                len.saturating_add(ENTRY_OVERHEAD)
            })
            .expire_after(UntilExpiry)
            .build();
        UserTokenCache {
            name: credential.name.clone(),
            settings: credential.clone(),
            exchanger: Exchanger { client, grant },
            entries,
            metrics,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this cache was built for exactly these settings.
    pub fn serves(&self, credential: &Credential) -> bool {
        self.settings == *credential
    }

    /// The exchanged token for `user`: cached, or from the one exchange in flight for it.
    pub async fn get(&self, user: &UserToken) -> Result<Arc<Token>, ExchangeFailure> {
        let key = sha256(user.raw.expose().as_bytes());
        for _ in 0..2 {
            let entry = self
                .entries
                .try_get_with(key, self.exchange(user))
                .await
                .map_err(|cause| ExchangeFailure::Acquire {
                    credential: self.name.clone(),
                    cause,
                })?;
            if Instant::now() < entry.until {
                return Ok(entry.token.clone());
            }
            // The cache's own clock has not yet retired it: drop it and exchange again.
            self.entries.invalidate(&key).await;
        }
        Err(ExchangeFailure::Acquire {
            credential: self.name.clone(),
            cause: Arc::new(AcquireError::BadResponse(
                "the exchanged token expires at once".into(),
            )),
        })
    }

    /// Entries held now (for tests and metrics).
    pub async fn len(&self) -> u64 {
        self.entries.run_pending_tasks().await;
        self.entries.entry_count()
    }

    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
    }

    async fn exchange(&self, user: &UserToken) -> Result<Arc<Entry>, AcquireError> {
        let result = self.exchanger.exchange(user).await;
        let label = if result.is_ok() { "ok" } else { "error" };
        self.metrics
            .token_requests
            .with_label_values(&[self.name.as_str(), label])
            .inc();
        match result {
            Ok(token) => {
                let now = Instant::now();
                let lifetime = token.expires_at.saturating_duration_since(now);
                let margin = MARGIN.min(lifetime / 10);
                let until = (token.expires_at - margin).min(user.expires_at());
                tracing::debug!(
                    credential = %self.name,
                    expires_in_s = lifetime.as_secs(),
                    cached_for_s = until.saturating_duration_since(now).as_secs(),
                    "token exchanged"
                );
                Ok(Arc::new(Entry {
                    token: Arc::new(token),
                    until,
                }))
            }
            Err(e) => {
                tracing::warn!(credential = %self.name, error = %e, "token exchange failed");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests;
