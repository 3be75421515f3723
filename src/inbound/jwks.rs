//! Per-issuer key cache: fetched at start (readiness waits for it), refreshed on a schedule
//! (hourly, or the JWKS `Cache-Control: max-age` within bounds), and on an unknown `kid`
//! at most once per 30 s, with concurrent misses sharing one fetch. A failed fetch keeps
//! the last good key set.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use url::Url;

use super::keys::KeySet;
use super::verified::VerifiedCache;
use crate::config::{DEFAULT_REMEMBERED_TOKENS, Issuer, KeySource};
use crate::metrics::Metrics;
use crate::readiness::{Lifecycle, ReadinessHandle};
use crate::server::ShutdownSignal;

const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);
const MIN_REFRESH: Duration = Duration::from_secs(300);
const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);
const UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(30);
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The signing keys of one issuer.
pub struct KeyCache {
    issuer: String,
    source: KeySource,
    keys: ArcSwapOption<KeySet>,
    http: reqwest::Client,
    metrics: Metrics,
    lifecycle: Lifecycle,
    /// Single flight for unknown-kid fetches; holds when the last one started.
    miss: tokio::sync::Mutex<Option<Instant>>,
    cooldown: Duration,
    /// When the next scheduled refresh is due (set by each successful fetch).
    due: ArcSwapOption<Instant>,
    /// Tokens whose signature these keys already verified.
    verified: VerifiedCache,
    /// `tollgate_inbound_token_signatures_total` for this issuer, resolved once.
    signatures_verified: prometheus::IntCounter,
    signatures_remembered: prometheus::IntCounter,
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("GET {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("GET {url}: status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {reason}")]
    Document { url: String, reason: String },
    #[error("cannot read {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

// === impl KeyCache ===

impl KeyCache {
    pub fn new(
        issuer: &str,
        source: KeySource,
        http: reqwest::Client,
        metrics: Metrics,
        readiness: Option<ReadinessHandle>,
    ) -> Self {
        let signatures = |check| metrics.token_signatures.with_label_values(&[issuer, check]);
        let signatures_verified = signatures("verified");
        let signatures_remembered = signatures("remembered");
        KeyCache {
            signatures_verified,
            signatures_remembered,
            issuer: issuer.to_string(),
            source,
            keys: ArcSwapOption::empty(),
            http,
            metrics,
            lifecycle: Lifecycle::new(readiness),
            miss: tokio::sync::Mutex::new(None),
            cooldown: UNKNOWN_KID_COOLDOWN,
            due: ArcSwapOption::empty(),
            verified: VerifiedCache::new(DEFAULT_REMEMBERED_TOKENS),
        }
    }

    /// The cache for a configured issuer: its key source, and as many remembered tokens
    /// as its `remembered_tokens` says.
    pub fn for_issuer(
        issuer: &Issuer,
        http: reqwest::Client,
        metrics: Metrics,
        readiness: Option<ReadinessHandle>,
    ) -> Self {
        KeyCache::new(&issuer.name, issuer.keys.clone(), http, metrics, readiness)
            .remembering(issuer.remembered_tokens)
    }

    /// Remember up to `tokens` verified tokens (0: every request checks its signature).
    pub fn remembering(mut self, tokens: usize) -> Self {
        if tokens != self.verified.slots() {
            self.verified = VerifiedCache::new(tokens);
        }
        self
    }

    /// How many verified tokens this cache can remember.
    pub fn remembered_slots(&self) -> usize {
        self.verified.slots()
    }

    /// Count a signature computed (`true`) or skipped as remembered.
    pub fn count_signature(&self, computed: bool) {
        if computed {
            self.signatures_verified.inc();
        } else {
            self.signatures_remembered.inc();
        }
    }

    pub fn verified(&self) -> &VerifiedCache {
        &self.verified
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// Report readiness from now on (for caches a reload built): ready when keys are held.
    pub fn attach_readiness(&self, handle: ReadinessHandle) {
        let state = match self.current() {
            Some(_) => Ok(()),
            None => Err("no signing keys yet".to_string()),
        };
        self.lifecycle.attach(handle, state);
    }

    /// Stop the refresh task: a reload replaced or removed this issuer.
    pub fn retire(&self) {
        self.lifecycle.retire();
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The current key set: one atomic load, no lock.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    /// The current key set, borrowed for a moment (no reference count touched): for the
    /// per-request lookup of remembered tokens.
    pub fn current_guard(&self) -> arc_swap::Guard<Option<Arc<KeySet>>> {
        self.keys.load()
    }

    /// Fetch now; on success replace the key set. Returns when to refresh next.
    pub async fn refresh(&self) -> Result<Duration, JwksError> {
        let result = self.fetch().await;
        let label = if result.is_ok() { "ok" } else { "error" };
        self.metrics
            .jwks_refreshes
            .with_label_values(&[self.issuer.as_str(), label])
            .inc();
        match result {
            Ok((set, skipped, next)) => {
                tracing::info!(issuer = %self.issuer, keys = set.len(), skipped, "signing keys loaded");
                self.keys.store(Some(Arc::new(set)));
                self.due.store(Some(Arc::new(Instant::now() + next)));
                self.lifecycle.report(Ok(()));
                Ok(next)
            }
            Err(e) => {
                let kept = self.current().map(|k| k.len()).unwrap_or(0);
                tracing::warn!(issuer = %self.issuer, error = %e, kept_keys = kept, "signing key fetch failed");
                Err(e)
            }
        }
    }

    /// A token named a `kid` we do not know: maybe the issuer rotated. Refresh, at most
    /// once per cooldown; concurrent callers wait for the one fetch in progress.
    pub async fn refresh_for_unknown_kid(&self, kid: &str) {
        if matches!(self.source, KeySource::JwksFile(_)) {
            return;
        }
        let mut last = self.miss.lock().await;
        if self.current().is_some_and(|k| k.contains_kid(kid)) {
            return; // a fetch that finished while we waited brought it
        }
        if last.is_some_and(|t| t.elapsed() < self.cooldown) {
            return;
        }
        *last = Some(Instant::now());
        let _ = self.refresh().await;
    }

    /// Refresh on schedule until shutdown or retirement; retry failures with backoff (1 s
    /// doubling to 5 min). Keys already loaded (a reload fetched them) wait for their due time.
    pub async fn keep_fresh(self: Arc<Self>, mut shutdown: ShutdownSignal) {
        let mut backoff = Duration::from_secs(1);
        let mut retired = self.lifecycle.retired();
        if let Some(due) = self.due.load_full() {
            if matches!(self.source, KeySource::JwksFile(_)) {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until((*due).into()) => {}
                _ = shutdown.wait() => return,
                _ = retired.wait() => return,
            }
        }
        loop {
            if retired.is_triggered() {
                return;
            }
            let wait = match self.refresh().await {
                Ok(next) => {
                    backoff = Duration::from_secs(1);
                    next
                }
                Err(_) => {
                    let wait = backoff;
                    backoff = (backoff * 2).min(MIN_REFRESH);
                    wait
                }
            };
            if matches!(self.source, KeySource::JwksFile(_)) && self.current().is_some() {
                return; // static keys; reload re-reads the file
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => return,
                _ = retired.wait() => return,
            }
        }
    }

    async fn fetch(&self) -> Result<(KeySet, usize, Duration), JwksError> {
        match &self.source {
            KeySource::JwksFile(path) => {
                let bytes = tokio::fs::read(path).await.map_err(|e| JwksError::File {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let (set, skipped) = KeySet::from_json(&bytes).map_err(|reason| JwksError::File {
                    path: path.clone(),
                    reason,
                })?;
                Ok((set, skipped, MAX_REFRESH))
            }
            KeySource::JwksUri(url) => self.fetch_jwks(url).await,
            KeySource::Discovery(url) => {
                let jwks_uri = self.discover(url).await?;
                self.fetch_jwks(&jwks_uri).await
            }
        }
    }

    async fn discover(&self, url: &Url) -> Result<Url, JwksError> {
        let (bytes, _) = self.get(url).await?;
        let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| JwksError::Document {
            url: url.to_string(),
            reason: format!("not JSON: {e}"),
        })?;
        let bad = |reason: &str| JwksError::Document {
            url: url.to_string(),
            reason: reason.into(),
        };
        let raw = doc
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("no `jwks_uri`"))?;
        let jwks = Url::parse(raw).map_err(|_| bad("`jwks_uri` is not a URL"))?;
        if !secure_or_loopback(&jwks) {
            return Err(bad("`jwks_uri` must be https (or http on loopback)"));
        }
        Ok(jwks)
    }

    async fn fetch_jwks(&self, url: &Url) -> Result<(KeySet, usize, Duration), JwksError> {
        let (bytes, max_age) = self.get(url).await?;
        let (set, skipped) = KeySet::from_json(&bytes).map_err(|reason| JwksError::Document {
            url: url.to_string(),
            reason,
        })?;
        let next = max_age
            .map(|a| a.clamp(MIN_REFRESH, MAX_REFRESH))
            .unwrap_or(DEFAULT_REFRESH);
        Ok((set, skipped, next))
    }

    /// GET a small JSON document; also returns `Cache-Control: max-age`.
    async fn get(&self, url: &Url) -> Result<(Vec<u8>, Option<Duration>), JwksError> {
        let http_err = |e: reqwest::Error| JwksError::Http {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let mut res = self.http.get(url.clone()).send().await.map_err(http_err)?;
        if !res.status().is_success() {
            return Err(JwksError::Status {
                url: url.to_string(),
                status: res.status().as_u16(),
            });
        }
        let max_age = res
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(http_err)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(JwksError::Document {
                    url: url.to_string(),
                    reason: "larger than 1 MiB".into(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

fn parse_max_age(value: &str) -> Option<Duration> {
    value
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|n| n.trim_matches('"').parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn secure_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            parse_max_age("public, max-age=86400"),
            Some(Duration::from_secs(86400))
        );
        assert_eq!(parse_max_age("no-cache"), None);
    }

    #[test]
    fn jwks_uri_from_discovery_must_be_https_or_loopback() {
        assert!(secure_or_loopback(
            &Url::parse("https://login.microsoftonline.com/k").unwrap()
        ));
        assert!(secure_or_loopback(&Url::parse("http://127.0.0.1:1/k").unwrap()));
        assert!(!secure_or_loopback(
            &Url::parse("http://evil.example.com/k").unwrap()
        ));
    }
}
