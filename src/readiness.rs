//! The readiness registry: each component (config, issuers' keys, credentials' tokens)
//! registers and reports; tollgate is ready when every registered component is.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::server::{ShutdownSignal, ShutdownTrigger};

/// Shared registry behind `/readyz`. Cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness {
    components: Arc<RwLock<BTreeMap<String, State>>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Ready,
    NotReady(String),
}

/// A component's handle to report its own state.
#[derive(Clone)]
pub struct ReadinessHandle {
    name: String,
    registry: Readiness,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a component, not ready until it says so.
    pub fn register(&self, name: impl Into<String>, waiting_for: impl Into<String>) -> ReadinessHandle {
        let name = name.into();
        self.set(&name, State::NotReady(waiting_for.into()));
        ReadinessHandle {
            name,
            registry: self.clone(),
        }
    }

    /// Remove a component (for example an issuer dropped by a reload).
    pub fn unregister(&self, name: &str) {
        self.write(|m| {
            m.remove(name);
        });
    }

    /// `Ok` when every component is ready; else what each missing one waits for.
    pub fn check(&self) -> Result<(), BTreeMap<String, String>> {
        let guard = self.components.read().unwrap_or_else(|e| e.into_inner());
        let missing: BTreeMap<String, String> = guard
            .iter()
            .filter_map(|(name, state)| match state {
                State::Ready => None,
                State::NotReady(why) => Some((name.clone(), why.clone())),
            })
            .collect();
        if missing.is_empty() { Ok(()) } else { Err(missing) }
    }

    /// Wait (polling every 20 ms) until ready, at most `limit`; else what is still missing.
    pub async fn wait(&self, limit: std::time::Duration) -> Result<(), BTreeMap<String, String>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self.check() {
                Ok(()) => return Ok(()),
                Err(missing) if tokio::time::Instant::now() >= deadline => return Err(missing),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    }

    fn set(&self, name: &str, state: State) {
        self.write(|m| {
            m.insert(name.to_string(), state);
        });
    }

    // The lock is held only for a map operation, never across an await.
    fn write(&self, f: impl FnOnce(&mut BTreeMap<String, State>)) {
        let mut guard = self.components.write().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    }
}

impl ReadinessHandle {
    pub fn ready(&self) {
        self.registry.set(&self.name, State::Ready);
    }

    pub fn not_ready(&self, why: impl Into<String>) {
        self.registry.set(&self.name, State::NotReady(why.into()));
    }
}

/// A background cache's (signing keys, tokens) link to the running sidecar: its readiness
/// handle, and the signal that a reload retired it. A cache a reload builds gets its
/// handle only once its first fetch was tried ([`Lifecycle::attach`]), so the entry of
/// the cache it replaces never reads "not ready" while that one still serves.
pub struct Lifecycle {
    readiness: arc_swap::ArcSwapOption<ReadinessHandle>,
    retire: ShutdownTrigger,
    retired: ShutdownSignal,
}

impl Lifecycle {
    pub fn new(handle: Option<ReadinessHandle>) -> Self {
        let (retire, retired) = crate::server::shutdown_channel();
        Lifecycle {
            readiness: arc_swap::ArcSwapOption::new(handle.map(Arc::new)),
            retire,
            retired,
        }
    }

    /// Ready (`Ok`), or not and why; nothing when no handle is attached yet.
    pub fn report(&self, state: Result<(), String>) {
        if let Some(handle) = self.readiness.load().as_ref() {
            match state {
                Ok(()) => handle.ready(),
                Err(why) => handle.not_ready(why),
            }
        }
    }

    /// Report through `handle` from now on, starting with `state`.
    pub fn attach(&self, handle: ReadinessHandle, state: Result<(), String>) {
        self.readiness.store(Some(Arc::new(handle)));
        self.report(state);
    }

    /// A reload replaced or removed the cache: its refresh task ends.
    pub fn retire(&self) {
        self.retire.trigger();
    }

    /// Resolves once retired (clone it into the refresh loop).
    pub fn retired(&self) -> ShutdownSignal {
        self.retired.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_component_is() {
        let r = Readiness::new();
        assert!(r.check().is_ok(), "nothing registered: ready");
        let keys = r.register("issuer/entra", "first JWKS fetch");
        let token = r.register("credential/api", "first token");
        assert_eq!(r.check().unwrap_err().len(), 2);
        keys.ready();
        let missing = r.check().unwrap_err();
        assert_eq!(
            missing.get("credential/api").map(String::as_str),
            Some("first token")
        );
        token.ready();
        assert!(r.check().is_ok());
        token.not_ready("token expired");
        assert!(r.check().is_err());
        r.unregister("credential/api");
        assert!(r.check().is_ok());
    }
}
