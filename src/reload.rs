//! Hot reload. Triggers: a `notify` watch on the config file's folder and the folders of the
//! files it names (catches editors that write-and-rename and Kubernetes ConfigMap `..data`
//! symlink swaps), debounced; SIGHUP; and a poll that hashes everything every
//! `reload.poll_interval_seconds` for filesystems whose events get lost.
//!
//! A reload parses, validates and compiles the file, then builds new snapshots that take
//! over the key caches and token caches whose settings did not change (so a routes-only
//! edit sends nothing to the IdP), fetches what is new within a bounded time, and swaps
//! each snapshot atomically. Identical content does nothing; an invalid file changes
//! nothing and is logged with every key path.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::{
    Config, Credential, InboundRoute, Issuer, KeySource, Outbound, OutboundRoute, ProcessEnv,
};
use crate::decision;
use crate::inbound::{self, BuildContext};
use crate::metrics::Metrics;
use crate::outbound;
use crate::readiness::Readiness;
use crate::server::ShutdownSignal;
use crate::sidecar::Services;

/// Events closer together than this make one reload.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// How long a reload waits for the keys and tokens of new issuers and credentials.
const FETCH_LIMIT: Duration = Duration::from_secs(10);

use crate::digest::{Sha256 as Hash, sha256};

pub struct Reloader {
    path: PathBuf,
    base: PathBuf,
    current: Config,
    /// Fingerprint of what is applied: the file's text and every file it names.
    applied: Option<Hash>,
    file_hashes: BTreeMap<PathBuf, Option<Hash>>,
    /// Text that failed to load, and a fingerprint that failed to apply: not retried by
    /// the poll or file events until something changes (SIGHUP retries).
    failed_text: Option<Hash>,
    failed_apply: Option<Hash>,
    services: Services,
    idp: reqwest::Client,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: ShutdownSignal,
}

/// What changed, for the one summary line.
#[derive(Default)]
struct Changes {
    parts: Vec<String>,
}

impl Reloader {
    pub fn new(
        path: PathBuf,
        config: Config,
        services: Services,
        idp: reqwest::Client,
        metrics: Metrics,
        readiness: Readiness,
        shutdown: ShutdownSignal,
    ) -> Self {
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Reloader {
            path,
            base,
            current: config,
            applied: None,
            file_hashes: BTreeMap::new(),
            failed_text: None,
            failed_apply: None,
            services,
            idp,
            metrics,
            readiness,
            shutdown,
        }
    }

    /// Register the file watch now (so no edit after this call is missed) and return the
    /// task that waits for triggers until shutdown.
    pub fn start(self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (tx, rx) = mpsc::channel::<&'static str>(16);
        let watcher = self.watch(tx.clone());
        self.run(tx, rx, watcher)
    }

    async fn run(
        mut self,
        tx: mpsc::Sender<&'static str>,
        mut rx: mpsc::Receiver<&'static str>,
        mut _watcher: Option<notify::RecommendedWatcher>,
    ) {
        // What is applied: the text the running configuration was loaded from, and the
        // named files as they are now (their users read them at start, too).
        self.file_hashes = hash_files(&referenced_files(&self.current)).await;
        self.applied = Some(fingerprint(&self.current.source_sha256, &self.file_hashes));
        tokio::spawn(forward_sighup(tx.clone(), self.shutdown.clone()));
        let mut poll_every = self.current.reload_poll_interval;
        let mut poll = poll_timer(poll_every);
        let mut shutdown = self.shutdown.clone();
        // An edit between the load and the watch is caught by comparing at once.
        self.reload("start").await;
        loop {
            let trigger = tokio::select! {
                Some(reason) = rx.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    let mut reason = reason;
                    while let Ok(more) = rx.try_recv() {
                        if more == "SIGHUP" {
                            reason = more;
                        }
                    }
                    reason
                }
                _ = poll.tick() => "poll",
                _ = shutdown.wait() => return,
            };
            let folders_before = self.folders();
            if self.reload(trigger).await {
                if self.folders() != folders_before {
                    _watcher = self.watch(tx.clone());
                }
                if self.current.reload_poll_interval != poll_every {
                    poll_every = self.current.reload_poll_interval;
                    poll = poll_timer(poll_every);
                }
            }
        }
    }

    /// The folders of the config file and of every file it names.
    fn folders(&self) -> Vec<PathBuf> {
        let mut folders: Vec<PathBuf> = vec![self.base.clone()];
        folders.extend(
            referenced_files(&self.current)
                .iter()
                .filter_map(|f| f.parent())
                .map(Path::to_path_buf),
        );
        folders.sort();
        folders.dedup();
        folders
    }

    /// Watch the folders of the config file and of every file it names.
    fn watch(&self, events: mpsc::Sender<&'static str>) -> Option<notify::RecommendedWatcher> {
        let handler = move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res
                && !matches!(event.kind, EventKind::Access(_))
            {
                let _ = events.try_send("file change");
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch files; relying on the poll");
                return None;
            }
        };
        for folder in self.folders() {
            if let Err(e) = watcher.watch(&folder, RecursiveMode::NonRecursive) {
                tracing::warn!(folder = %folder.display(), error = %e, "cannot watch folder; relying on the poll");
            }
        }
        Some(watcher)
    }

    /// One reload attempt. Returns whether a new configuration was applied.
    pub async fn reload(&mut self, trigger: &'static str) -> bool {
        let explicit = trigger == "SIGHUP";
        let text = match tokio::fs::read(&self.path).await {
            Ok(t) => t,
            Err(e) => {
                let key = sha256(e.to_string().as_bytes());
                if explicit || self.failed_text != Some(key) {
                    tracing::error!(file = %self.path.display(), error = %e, trigger, "cannot read the configuration; the previous one keeps serving");
                    self.count("error");
                    self.failed_text = Some(key);
                }
                return false;
            }
        };
        let text_hash = sha256(&text);
        if !explicit && self.failed_text == Some(text_hash) {
            return false;
        }
        let config = match std::str::from_utf8(&text)
            .map_err(|_| Vec::new())
            .and_then(|t| Config::from_yaml(t, &self.base, &ProcessEnv))
        {
            Ok(c) => c,
            Err(errors) => {
                for e in &errors {
                    tracing::error!(file = %self.path.display(), problem = %e, "invalid configuration");
                }
                tracing::error!(
                    file = %self.path.display(),
                    problems = errors.len().max(1),
                    trigger,
                    "configuration not reloaded; the previous one keeps serving"
                );
                self.count("error");
                self.failed_text = Some(text_hash);
                return false;
            }
        };
        self.failed_text = None;
        let hashes = hash_files(&referenced_files(&config)).await;
        let fp = fingerprint(&text_hash, &hashes);
        if self.applied == Some(fp) || (!explicit && self.failed_apply == Some(fp)) {
            return false;
        }
        let changed_files: HashSet<PathBuf> = hashes
            .iter()
            .filter(|(p, h)| self.file_hashes.get(*p) != Some(*h))
            .map(|(p, _)| p.clone())
            .collect();
        match self.apply(&config, &changed_files).await {
            Ok(changes) => {
                self.metrics.config_generation.inc();
                self.count("ok");
                let summary = if changes.parts.is_empty() {
                    "no effective change".to_string()
                } else {
                    changes.parts.join("; ")
                };
                tracing::info!(
                    trigger,
                    generation = self.metrics.config_generation.get(),
                    changes = %summary,
                    "configuration reloaded"
                );
                self.current = config;
                self.applied = Some(fp);
                self.file_hashes = hashes;
                self.failed_apply = None;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, trigger, "configuration not reloaded; the previous one keeps serving");
                self.count("error");
                self.failed_apply = Some(fp);
                false
            }
        }
    }

    fn count(&self, result: &str) {
        self.metrics.config_reloads.with_label_values(&[result]).inc();
    }

    /// Build the new snapshots (taking over unchanged caches), fetch what is new, swap.
    async fn apply(&self, new: &Config, changed_files: &HashSet<PathBuf>) -> Result<Changes, String> {
        let mut changes = Changes::default();
        self.note_restart_needed(new);
        describe(&mut changes, &self.current, new, changed_files);
        // Building reads files (CA bundles, system roots): off the async workers.
        let old_keys = self.current_keys();
        let (built, outbound_built) = {
            let new = new.clone();
            let metrics = self.metrics.clone();
            let idp = self.idp.clone();
            let changed = changed_files.clone();
            let old_keys = old_keys.clone();
            let old_out = self.services.outbound.as_ref().map(|s| s.snapshot());
            let (has_in, has_dec) = (self.services.inbound.is_some(), self.services.decision.is_some());
            tokio::task::spawn_blocking(move || {
                // A new https URL in an image without a CA bundle: refuse, old config serves.
                crate::trust::require_for(&new).map_err(|e| e.to_string())?;
                let cx = BuildContext {
                    metrics: &metrics,
                    http: &idp,
                    readiness: None,
                    changed_files: &changed,
                };
                let (keys, fresh) = inbound::key_caches(&new, &old_keys, &cx);
                let inbound = match (has_in, &new.inbound) {
                    (true, Some(section)) => {
                        Some(inbound::Snapshot::build(&new, section, keys.clone()).map_err(|e| e.to_string()))
                    }
                    _ => None,
                };
                let decision = match (has_dec, &new.decision) {
                    (true, Some(section)) => Some(decision::Snapshot::build(&new, section, keys.clone())),
                    _ => None,
                };
                let outbound = match (old_out, &new.outbound) {
                    (Some(old), Some(section)) => Some(
                        outbound::Snapshot::build(section, &new.issuers, Some(&old), &cx)
                            .map(|built| (old, built))
                            .map_err(|e| e.to_string()),
                    ),
                    _ => None,
                };
                Ok::<_, String>(((keys, fresh, inbound, decision), outbound))
            })
            .await
            .map_err(|e| format!("building the new configuration failed: {e}"))??
        };
        let (keys, fresh_keys, inbound_built, decision_built) = built;
        let inbound = match (&self.services.inbound, inbound_built) {
            (Some(service), Some(built)) => Some((service, built?)),
            _ => None,
        };
        let decision = match (&self.services.decision, decision_built) {
            (Some(service), Some(snapshot)) => Some((service, snapshot)),
            _ => None,
        };
        let outbound = match (&self.services.outbound, outbound_built) {
            (Some(service), Some(built)) => {
                let (old, (snapshot, fresh)) = built?;
                Some((service, old, snapshot, fresh))
            }
            _ => None,
        };

        // The listener's certificate: new handshakes use the new pair.
        if let (Some(cert), Some(old_tls), Some(new_tls)) = (
            &self.services.inbound_cert,
            self.current.inbound.as_ref().and_then(|i| i.tls.as_ref()),
            new.inbound.as_ref().and_then(|i| i.tls.as_ref()),
        ) && (old_tls != new_tls
            || changed_files.contains(&new_tls.cert_file)
            || changed_files.contains(&new_tls.key_file))
        {
            let (cert, tls) = (cert.clone(), new_tls.clone());
            tokio::task::spawn_blocking(move || cert.reload(&tls.cert_file, &tls.key_file))
                .await
                .map_err(|e| format!("inbound.tls: {e}"))?
                .map_err(|e| format!("inbound.tls: {e}"))?;
            changes.parts.push("inbound TLS certificate reloaded".into());
        }

        // Fetch keys and tokens of new issuers and credentials before they serve.
        let mut fetches = tokio::task::JoinSet::new();
        for cache in &fresh_keys {
            let cache = cache.clone();
            fetches.spawn(async move {
                let _ = tokio::time::timeout(FETCH_LIMIT, cache.refresh()).await;
            });
        }
        for cache in outbound.iter().flat_map(|(_, _, _, fresh)| fresh.iter().cloned()) {
            fetches.spawn(async move {
                let _ = tokio::time::timeout(FETCH_LIMIT, cache.acquire_now()).await;
            });
        }
        while fetches.join_next().await.is_some() {}

        for cache in fresh_keys {
            cache.attach_readiness(
                self.readiness
                    .register(format!("issuer/{}", cache.issuer()), "first signing key fetch"),
            );
            tokio::spawn(cache.keep_fresh(self.shutdown.clone()));
        }
        for cache in &old_keys {
            if !keys.iter().any(|k| Arc::ptr_eq(k, cache)) {
                cache.retire();
                if !new.issuers.iter().any(|i| i.name == cache.issuer()) {
                    self.readiness.unregister(&format!("issuer/{}", cache.issuer()));
                }
            }
        }
        if let Some((service, snapshot)) = inbound {
            service.store(snapshot);
        }
        if let Some((service, snapshot)) = decision {
            service.store(snapshot);
        }
        if let Some((service, old, snapshot, fresh)) = outbound {
            for cache in fresh {
                cache.attach_readiness(
                    self.readiness
                        .register(format!("credential/{}", cache.name()), "first token"),
                );
                tokio::spawn(cache.keep_fresh(self.shutdown.clone()));
            }
            for cache in &old.tokens {
                if !snapshot.tokens.iter().any(|t| Arc::ptr_eq(t, cache)) {
                    cache.retire();
                    if !snapshot
                        .outbound
                        .credentials
                        .iter()
                        .any(|c| c.name == cache.name())
                    {
                        self.readiness.unregister(&format!("credential/{}", cache.name()));
                    }
                }
            }
            service.store(snapshot);
        }
        Ok(changes)
    }

    /// The issuers' key caches in use (shared by inbound and the decision listener).
    fn current_keys(&self) -> Vec<Arc<crate::inbound::jwks::KeyCache>> {
        if let Some(service) = &self.services.inbound {
            return service.snapshot().keys.clone();
        }
        self.services
            .decision
            .as_ref()
            .map(|s| s.snapshot().keys.clone())
            .unwrap_or_default()
    }

    /// Listeners are bound once: a changed address or an added/removed section waits for
    /// a restart.
    fn note_restart_needed(&self, new: &Config) {
        let old = &self.current;
        let mut needs = Vec::new();
        if old.admin.as_ref().map(|a| a.listen) != new.admin.as_ref().map(|a| a.listen) {
            needs.push("admin.listen");
        }
        match (&old.inbound, &new.inbound) {
            (Some(a), Some(b)) => {
                if a.listen != b.listen {
                    needs.push("inbound.listen");
                }
                if a.tls.is_some() != b.tls.is_some() {
                    needs.push("inbound.tls (added or removed)");
                }
            }
            (None, None) => {}
            _ => needs.push("inbound (section added or removed)"),
        }
        match (&old.decision, &new.decision) {
            (Some(a), Some(b)) => {
                if a.listen != b.listen {
                    needs.push("decision.listen");
                }
                if a.tls != b.tls {
                    needs.push("decision.tls");
                }
            }
            (None, None) => {}
            _ => needs.push("decision (section added or removed)"),
        }
        match (&old.outbound, &new.outbound) {
            (Some(a), Some(b)) if a.listen != b.listen => needs.push("outbound.listen"),
            (Some(_), Some(_)) | (None, None) => {}
            _ => needs.push("outbound (section added or removed)"),
        }
        if old.drain_timeout != new.drain_timeout {
            needs.push("shutdown.drain_timeout_seconds");
        }
        let limits = |c: &Config| {
            (
                c.admin.as_ref().map(|a| a.limits),
                c.inbound.as_ref().map(|i| i.limits),
                c.decision.as_ref().map(|d| d.limits),
                c.outbound.as_ref().map(|o| o.limits),
            )
        };
        if limits(old) != limits(new) {
            needs.push("limits");
        }
        if !needs.is_empty() {
            tracing::warn!(
                settings = %needs.join(", "),
                "these settings change only on restart; the running values stay in effect"
            );
        }
    }
}

/// Routes, issuers and credentials added (+), removed (-) or changed (~), and other
/// settings that changed.
fn describe(changes: &mut Changes, old: &Config, new: &Config, changed_files: &HashSet<PathBuf>) {
    fn inbound_routes(c: &Config) -> Vec<(&str, &InboundRoute)> {
        c.inbound
            .iter()
            .flat_map(|i| &i.policy.routes)
            .map(|r| (r.label.as_str(), r))
            .collect()
    }
    fn decision_routes(c: &Config) -> Vec<(&str, &InboundRoute)> {
        c.decision
            .iter()
            .flat_map(|d| &d.policy.routes)
            .map(|r| (r.label.as_str(), r))
            .collect()
    }
    fn outbound_routes(c: &Config) -> Vec<(&str, &OutboundRoute)> {
        c.outbound
            .iter()
            .flat_map(|o| &o.routes)
            .map(|r| (r.label.as_str(), r))
            .collect()
    }
    fn issuers(c: &Config) -> Vec<(&str, &Issuer)> {
        c.issuers.iter().map(|i| (i.name.as_str(), i)).collect()
    }
    fn credentials(c: &Config) -> Vec<(&str, &Credential)> {
        c.outbound
            .iter()
            .flat_map(|o| &o.credentials)
            .map(|c| (c.name.as_str(), c))
            .collect()
    }
    let jwks_file_changed =
        |i: &Issuer| matches!(&i.keys, KeySource::JwksFile(p) if changed_files.contains(p));
    diff(
        changes,
        "inbound routes",
        &inbound_routes(old),
        &inbound_routes(new),
        |_| false,
    );
    diff(
        changes,
        "decision routes",
        &decision_routes(old),
        &decision_routes(new),
        |_| false,
    );
    diff(
        changes,
        "outbound routes",
        &outbound_routes(old),
        &outbound_routes(new),
        |_| false,
    );
    diff(
        changes,
        "issuers",
        &issuers(old),
        &issuers(new),
        jwks_file_changed,
    );
    diff(
        changes,
        "credentials",
        &credentials(old),
        &credentials(new),
        |_| false,
    );
    // The sections without their routes and credentials (listed above).
    let inbound_settings = |c: &Config| {
        c.inbound.as_ref().map(|i| {
            let mut i = i.clone();
            i.policy.routes.clear();
            i
        })
    };
    let decision_settings = |c: &Config| {
        c.decision.as_ref().map(|d| {
            let mut d = d.clone();
            d.policy.routes.clear();
            d
        })
    };
    let outbound_settings = |c: &Config| {
        c.outbound.as_ref().map(|o| Outbound {
            routes: Vec::new(),
            credentials: Vec::new(),
            ..o.clone()
        })
    };
    if inbound_settings(old) != inbound_settings(new) {
        changes.parts.push("inbound settings changed".into());
    }
    if decision_settings(old) != decision_settings(new) {
        changes.parts.push("decision settings changed".into());
    }
    if outbound_settings(old) != outbound_settings(new) {
        changes.parts.push("outbound settings changed".into());
    }
    if old.reload_poll_interval != new.reload_poll_interval {
        changes.parts.push("reload.poll_interval_seconds changed".into());
    }
}

/// Named items of one kind, old against new; `also_changed` flags an equal item whose
/// content changed outside the config (a rewritten `jwks_file`).
fn diff<T: PartialEq>(
    changes: &mut Changes,
    what: &str,
    old: &[(&str, &T)],
    new: &[(&str, &T)],
    also_changed: impl Fn(&T) -> bool,
) {
    let mut out = Vec::new();
    for (name, item) in new {
        match old.iter().find(|(n, _)| n == name) {
            None => out.push(format!("+{name}")),
            Some((_, before)) if before != item || also_changed(item) => out.push(format!("~{name}")),
            Some(_) => {}
        }
    }
    for (name, _) in old {
        if !new.iter().any(|(n, _)| n == name) {
            out.push(format!("-{name}"));
        }
    }
    if !out.is_empty() {
        changes.parts.push(format!("{what}: {}", out.join(" ")));
    }
}

/// Files the configuration names whose content matters beyond the next token request:
/// `jwks_file`, route `ca_file`s, the inbound TLS certificate and key.
pub fn referenced_files(config: &Config) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for issuer in &config.issuers {
        if let KeySource::JwksFile(path) = &issuer.keys {
            files.push(path.clone());
        }
    }
    if let Some(tls) = config.inbound.as_ref().and_then(|i| i.tls.as_ref()) {
        files.push(tls.cert_file.clone());
        files.push(tls.key_file.clone());
    }
    if let Some(outbound) = &config.outbound {
        files.extend(outbound.routes.iter().filter_map(|r| r.ca_file.clone()));
    }
    files.sort();
    files.dedup();
    files
}

async fn hash_files(files: &[PathBuf]) -> BTreeMap<PathBuf, Option<Hash>> {
    let mut out = BTreeMap::new();
    for file in files {
        let hash = tokio::fs::read(file).await.ok().map(|bytes| sha256(&bytes));
        out.insert(file.clone(), hash);
    }
    out
}

fn fingerprint(text: &Hash, files: &BTreeMap<PathBuf, Option<Hash>>) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(text);
    for (path, hash) in files {
        ctx.update(path.as_os_str().as_encoded_bytes());
        ctx.update(hash.as_ref().map_or(&[0u8; 32][..], |h| &h[..]));
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn poll_timer(every: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

async fn forward_sighup(tx: mpsc::Sender<&'static str>, mut shutdown: ShutdownSignal) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; file changes still reload");
            return;
        }
    };
    loop {
        tokio::select! {
            Some(()) = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                if tx.send("SIGHUP").await.is_err() {
                    return;
                }
            }
            _ = shutdown.wait() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Config {
        Config::from_yaml(yaml, Path::new("/etc/tollgate"), &ProcessEnv).unwrap()
    }

    const BASE: &str = "issuers:\n  a:\n    issuer: https://a.example\n    jwks_file: keys.json\n    audiences: [x]\ninbound:\n  listen: 127.0.0.1:1\n  upstream: http://127.0.0.1:2\n  routes:\n    - name: r1\n      match: { path_prefix: /one }\n      require: { roles_any: [A] }\n    - name: r2\n      match: { path_prefix: /two }\n      allow_anonymous: true\n";

    #[test]
    fn the_summary_names_added_removed_and_changed_routes() {
        let old = load(BASE);
        let new = load(&BASE.replace("roles_any: [A]", "roles_any: [B]").replace(
            "name: r2\n      match: { path_prefix: /two }",
            "name: r3\n      match: { path_prefix: /three }",
        ));
        let mut changes = Changes::default();
        describe(&mut changes, &old, &new, &HashSet::new());
        assert_eq!(changes.parts, vec!["inbound routes: ~r1 +r3 -r2".to_string()]);

        let mut none = Changes::default();
        describe(&mut none, &old, &old, &HashSet::new());
        assert!(none.parts.is_empty());

        let mut file = Changes::default();
        describe(
            &mut file,
            &old,
            &old,
            &HashSet::from([PathBuf::from("/etc/tollgate/keys.json")]),
        );
        assert_eq!(file.parts, vec!["issuers: ~a".to_string()]);
    }

    #[test]
    fn referenced_files_are_the_ones_read_once_per_load() {
        let config = load(BASE);
        assert_eq!(
            referenced_files(&config),
            vec![PathBuf::from("/etc/tollgate/keys.json")]
        );
    }

    #[test]
    fn the_fingerprint_covers_text_and_every_named_file() {
        let text = sha256(b"a: 1");
        let mut files = BTreeMap::from([(PathBuf::from("/k"), Some(sha256(b"keys")))]);
        let before = fingerprint(&text, &files);
        assert_eq!(before, fingerprint(&text, &files));
        files.insert(PathBuf::from("/k"), Some(sha256(b"other keys")));
        assert_ne!(before, fingerprint(&text, &files));
        assert_ne!(before, fingerprint(&sha256(b"a: 2"), &files));
    }
}
