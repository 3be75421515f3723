//! One token per credential, shared by every request. Acquired eagerly; refreshed in the
//! background at `refresh_in` (else when a third of the lifetime remains) so requests do
//! not wait while a valid token exists. Without a valid token, concurrent requests share
//! ONE acquisition. Failures back off exponentially with jitter (1 s doubling to 60 s)
//! while the current token serves until it expires — or, when the IdP itself is down
//! (5xx, unreachable), until `ext_expires_in`, as MSAL does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::{AcquireError, Token, TokenSource};
use crate::config::Credential;
use crate::metrics::Metrics;
use crate::readiness::{Lifecycle, ReadinessHandle};
use crate::server::ShutdownSignal;

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

pub struct TokenCache {
    name: String,
    /// The settings this cache was built from: a reload keeps the cache (and its token)
    /// while they are unchanged.
    settings: Credential,
    lifecycle: Lifecycle,
    source: Box<dyn TokenSource>,
    current: ArcSwapOption<Token>,
    /// Single flight: held while a token request is in progress.
    flight: tokio::sync::Mutex<Flight>,
    metrics: Metrics,
}

#[derive(Default)]
struct Flight {
    failures: u32,
    /// No new attempt before this instant (after a failure).
    retry_at: Option<Instant>,
    last_error: Option<AcquireError>,
}

/// No valid token and none to be had right now.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no valid token for credential `{credential}`: {cause}")]
pub struct Unavailable {
    pub credential: String,
    pub cause: String,
}

impl TokenCache {
    /// The cache for `credential`, whose tokens come from `source`.
    pub fn new(
        credential: &Credential,
        source: Box<dyn TokenSource>,
        metrics: Metrics,
        readiness: Option<ReadinessHandle>,
    ) -> Self {
        TokenCache {
            name: credential.name.clone(),
            settings: credential.clone(),
            lifecycle: Lifecycle::new(readiness),
            source,
            current: ArcSwapOption::empty(),
            flight: tokio::sync::Mutex::new(Flight::default()),
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

    /// Report readiness from now on (for caches a reload built).
    pub fn attach_readiness(&self, handle: ReadinessHandle) {
        let state = if self.has_token() {
            Ok(())
        } else {
            Err("no token yet".to_string())
        };
        self.lifecycle.attach(handle, state);
    }

    /// Stop the refresh task: a reload replaced or removed this credential.
    pub fn retire(&self) {
        self.lifecycle.retire();
    }

    /// Whether a token that may serve is held now.
    pub fn has_token(&self) -> bool {
        self.current
            .load()
            .as_ref()
            .is_some_and(|t| Instant::now() < t.expires_at)
    }

    /// A token to attach now. Fast path: one atomic load. Otherwise waits for (or makes)
    /// the one acquisition in flight.
    pub async fn get(&self) -> Result<Arc<Token>, Unavailable> {
        let now = Instant::now();
        if let Some(t) = self.current.load_full().filter(|t| now < t.expires_at) {
            return Ok(t);
        }
        let mut flight = self.flight.lock().await;
        if let Some(t) = self.usable(&flight) {
            return Ok(t); // a flight that finished while we waited brought one
        }
        if flight.retry_at.is_none_or(|at| Instant::now() >= at) {
            self.acquire(&mut flight).await;
            if let Some(t) = self.usable(&flight) {
                return Ok(t);
            }
        }
        Err(self.unavailable(&flight))
    }

    /// Acquire now, bypassing the schedule (for `check --online`).
    pub async fn acquire_now(&self) -> Result<Arc<Token>, AcquireError> {
        let mut flight = self.flight.lock().await;
        self.acquire(&mut flight).await;
        match (&flight.last_error, self.current.load_full()) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(t)) => Ok(t),
            (None, None) => Err(AcquireError::Local("no token".into())),
        }
    }

    /// Keep a fresh token until shutdown: acquire at start, refresh when due, retry
    /// failures with backoff; report readiness.
    pub async fn keep_fresh(self: Arc<Self>, mut shutdown: ShutdownSignal) {
        let mut retired = self.lifecycle.retired();
        loop {
            if retired.is_triggered() {
                return;
            }
            let wake_at = {
                let mut flight = self.flight.lock().await;
                let now = Instant::now();
                let due = self.current.load().as_ref().is_none_or(|t| now >= t.refresh_at);
                if due && flight.retry_at.is_none_or(|at| now >= at) {
                    self.acquire(&mut flight).await;
                }
                self.report_readiness(&flight);
                self.next_wake(&flight)
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake_at.into()) => {}
                _ = shutdown.wait() => return,
                _ = retired.wait() => return,
            }
        }
    }

    /// After a failure: the retry time. Else: the token's refresh time.
    fn next_wake(&self, flight: &Flight) -> Instant {
        let soonest = Instant::now() + Duration::from_millis(100);
        match (flight.retry_at, self.current.load_full()) {
            (Some(retry), _) => retry.max(soonest),
            (None, Some(t)) => t.refresh_at.max(soonest),
            (None, None) => Instant::now() + BACKOFF_START,
        }
    }

    /// The current token if it may serve: unexpired, or within `ext_expires_in` while
    /// the IdP is unavailable.
    fn usable(&self, flight: &Flight) -> Option<Arc<Token>> {
        let now = Instant::now();
        let t = self.current.load_full()?;
        if now < t.expires_at {
            return Some(t);
        }
        let idp_down = flight
            .last_error
            .as_ref()
            .is_some_and(AcquireError::idp_unavailable);
        if idp_down && t.ext_expires_at.is_some_and(|ext| now < ext) {
            return Some(t);
        }
        None
    }

    fn unavailable(&self, flight: &Flight) -> Unavailable {
        let cause = match &flight.last_error {
            Some(e) => e.to_string(),
            None if self.current.load().is_some() => "the token expired".into(),
            None => "no token acquired yet".into(),
        };
        Unavailable {
            credential: self.name.clone(),
            cause,
        }
    }

    /// One token request; holds the flight lock (the caller's `&mut Flight`).
    async fn acquire(&self, flight: &mut Flight) {
        let result = self.source.acquire().await;
        let label = if result.is_ok() { "ok" } else { "error" };
        self.metrics
            .token_requests
            .with_label_values(&[self.name.as_str(), label])
            .inc();
        match result {
            Ok(token) => {
                let lifetime = token.expires_at.saturating_duration_since(Instant::now());
                tracing::info!(
                    credential = %self.name,
                    expires_in_s = lifetime.as_secs(),
                    refresh_in_s = token.refresh_at.saturating_duration_since(Instant::now()).as_secs(),
                    "token acquired"
                );
                self.metrics
                    .token_expiry
                    .with_label_values(&[self.name.as_str()])
                    .set(token.expires_unix as f64);
                self.current.store(Some(Arc::new(token)));
                *flight = Flight::default();
            }
            Err(e) => {
                flight.failures = flight.failures.saturating_add(1);
                let delay = backoff(flight.failures);
                flight.retry_at = Some(Instant::now() + delay);
                let serving = self
                    .current
                    .load()
                    .as_ref()
                    .is_some_and(|t| Instant::now() < t.expires_at);
                tracing::warn!(
                    credential = %self.name,
                    error = %e,
                    failures = flight.failures,
                    retry_in_ms = delay.as_millis() as u64,
                    current_token_serving = serving,
                    "token request failed"
                );
                flight.last_error = Some(e);
            }
        }
    }

    fn report_readiness(&self, flight: &Flight) {
        let state = match self.usable(flight) {
            Some(_) => Ok(()),
            None => Err(self.unavailable(flight).cause),
        };
        self.lifecycle.report(state);
    }
}

/// 1 s doubling to 60 s, each with up to 50 % random reduction so that many sidecars do
/// not retry in lockstep.
fn backoff(failures: u32) -> Duration {
    let exp = BACKOFF_START.saturating_mul(1u32 << failures.saturating_sub(1).min(6));
    let base = exp.min(BACKOFF_MAX);
    let mut byte = [0u8; 1];
    let jitter = match aws_lc_rs::rand::fill(&mut byte) {
        Ok(()) => f64::from(byte[0]) / 255.0 * 0.5,
        Err(_) => 0.25,
    };
    base.mul_f64(1.0 - jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute_with_jitter() {
        for (failures, max) in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (30, 60.0)] {
            let d = backoff(failures).as_secs_f64();
            assert!(d <= max && d >= max / 2.0, "failures {failures}: {d}");
        }
    }
}
