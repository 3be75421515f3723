//! File structs → typed [`Config`]. Every problem is collected (never just the first),
//! each with its key path and position, so one `tollgate check` run shows them all.

mod inbound;
mod limits;
mod outbound;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use url::Url;

use super::file::{FileConfig, FileIssuer};
use super::model::{Admin, Config, DEFAULT_REMEMBERED_TOKENS, Issuer, IssuerPattern, KeySource, Limits};
use super::source::{KeyPath, Positions};
use super::{ConfigError, Env};

const TENANT_PLACEHOLDER: &str = "{tenantid}";
const DEFAULT_DRAIN: Duration = Duration::from_secs(10);
const DEFAULT_RELOAD_POLL: Duration = Duration::from_secs(10);
const DEFAULT_LEEWAY: u64 = 60;
/// Upper bounds for numbers the sidecar computes with (a deadline `now + interval`, a
/// signed leeway), each far above any sensible value.
const MAX_RELOAD_POLL: u64 = 24 * 3600;
const MAX_LEEWAY: u64 = 3600;
/// Each remembered token holds its claims (~1.5 KiB for an Entra app token): a million
/// is gigabytes.
const MAX_REMEMBERED_TOKENS: usize = 1_000_000;

/// The state of one validation pass: where keys are, how to resolve paths, what went wrong.
pub(super) struct Check<'a> {
    positions: &'a Positions,
    base_dir: &'a Path,
    env: &'a dyn Env,
    errors: Vec<ConfigError>,
}

/// What a URL key accepts.
#[derive(Clone, Copy)]
enum UrlRule {
    /// http or https to anywhere (the protected service next door).
    AnyHttp,
    /// https, or plain http to loopback only: tokens, secrets and keys travel on it.
    Secure,
}

pub(super) fn validate(
    file: FileConfig,
    positions: &Positions,
    base_dir: &Path,
    env: &dyn Env,
) -> Result<Config, Vec<ConfigError>> {
    let mut check = Check {
        positions,
        base_dir,
        env,
        errors: Vec::new(),
    };
    let root = KeyPath::root();

    let limits = check.limits(&root.key("limits"), file.limits, &Limits::default());
    let admin = file.admin.and_then(|admin| {
        let own = check.limits(&root.key("admin").key("limits"), admin.limits, &limits);
        let listen = check.listen(&root.key("admin").key("listen"), &admin.listen)?;
        Some(Admin { listen, limits: own })
    });
    let drain_timeout = file
        .shutdown
        .and_then(|s| s.drain_timeout_seconds)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_DRAIN);
    let reload_poll_interval = match file.reload.and_then(|r| r.poll_interval_seconds) {
        None => DEFAULT_RELOAD_POLL,
        Some(0) => {
            check.err(
                &root.key("reload").key("poll_interval_seconds"),
                "must be at least 1",
            );
            DEFAULT_RELOAD_POLL
        }
        // The reload timer's first deadline is `now + interval`: it must exist.
        Some(n) if n > MAX_RELOAD_POLL => {
            check.err(
                &root.key("reload").key("poll_interval_seconds"),
                format!("must be at most {MAX_RELOAD_POLL} (a day)"),
            );
            DEFAULT_RELOAD_POLL
        }
        Some(n) => Duration::from_secs(n),
    };

    let issuer_names: Vec<String> = file.issuers.keys().cloned().collect();
    let issuers: Vec<Issuer> = file
        .issuers
        .into_iter()
        .filter_map(|(name, issuer)| check.issuer(&root.key("issuers").key(&name), name, issuer))
        .collect();

    let inbound = file.inbound.and_then(|mut i| {
        let own = check.limits(&root.key("inbound").key("limits"), i.limits.take(), &limits);
        let mut inbound = check.inbound(&root.key("inbound"), i, &issuer_names)?;
        inbound.limits = own;
        Some(inbound)
    });
    let decision = file.decision.and_then(|mut d| {
        let own = check.limits(&root.key("decision").key("limits"), d.limits.take(), &limits);
        let mut decision = check.decision(&root.key("decision"), d, &issuer_names)?;
        decision.limits = own;
        Some(decision)
    });
    let outbound = file.outbound.and_then(|mut o| {
        let own = check.limits(&root.key("outbound").key("limits"), o.limits.take(), &limits);
        let mut outbound = check.outbound(&root.key("outbound"), o, &issuer_names)?;
        outbound.limits = own;
        Some(outbound)
    });

    if check.errors.is_empty() {
        Ok(Config {
            admin,
            drain_timeout,
            reload_poll_interval,
            source_sha256: [0; 32],
            issuers,
            inbound,
            decision,
            outbound,
        })
    } else {
        Err(check.errors)
    }
}

// === impl Check ===

impl Check<'_> {
    fn err(&mut self, path: &KeyPath, message: impl Into<String>) {
        let position = self.positions.find(path);
        self.errors
            .push(ConfigError::new(path.clone(), position, message.into()));
    }

    /// Paths in the file are relative to the file's folder.
    fn file_path(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }

    fn listen(&mut self, path: &KeyPath, raw: &str) -> Option<SocketAddr> {
        match SocketAddr::from_str(raw) {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.err(
                    path,
                    format!("`{raw}` is not an address like 127.0.0.1:8443 or [::]:8443"),
                );
                None
            }
        }
    }

    fn url(&mut self, path: &KeyPath, raw: &str, rule: UrlRule) -> Option<Url> {
        let url = match Url::parse(raw) {
            Ok(url) => url,
            Err(e) => {
                self.err(path, format!("`{raw}` is not a valid URL: {e}"));
                return None;
            }
        };
        let ok = match (url.scheme(), rule) {
            ("https", _) => true,
            ("http", UrlRule::AnyHttp) => true,
            ("http", UrlRule::Secure) if is_loopback(&url) => true,
            ("http", UrlRule::Secure) => {
                self.err(
                    path,
                    "plain http is only allowed to a loopback address: use https",
                );
                return None;
            }
            _ => false,
        };
        if !ok || url.host_str().is_none() {
            self.err(path, format!("`{raw}` must be an http(s) URL with a host"));
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            self.err(path, "credentials in a URL are not allowed");
            return None;
        }
        Some(url)
    }

    /// A list that, when present, must hold at least one non-empty value.
    fn list(&mut self, path: &KeyPath, values: Option<Vec<String>>) -> Vec<String> {
        let values = values.unwrap_or_default();
        if values.is_empty() {
            return values;
        }
        for (i, v) in values.iter().enumerate() {
            if v.trim().is_empty() {
                self.err(&path.index(i), "must not be empty");
            }
        }
        values
    }

    fn present_list(&mut self, path: &KeyPath, values: Option<Vec<String>>) -> Vec<String> {
        if matches!(&values, Some(v) if v.is_empty()) {
            self.err(
                path,
                "must not be an empty list (leave the key out for no constraint)",
            );
        }
        self.list(path, values)
    }

    fn issuer(&mut self, path: &KeyPath, name: String, file: FileIssuer) -> Option<Issuer> {
        let before = self.errors.len();
        let issuer = self.issuer_pattern(path, &file);
        let keys = self.key_source(path, &file);
        let audiences = self.present_list(&path.key("audiences"), Some(file.audiences));
        let algorithms = self.algorithms(&path.key("algorithms"), file.algorithms);
        let leeway = file.leeway_seconds.unwrap_or(DEFAULT_LEEWAY);
        if leeway > MAX_LEEWAY {
            // Also keeps it a signed number of seconds, as the claim checks use it.
            self.err(
                &path.key("leeway_seconds"),
                format!("must be at most {MAX_LEEWAY} (an hour): more outlasts the tokens it should bound"),
            );
        }
        let leeway = Duration::from_secs(leeway);
        let remembered_tokens = file.remembered_tokens.unwrap_or(DEFAULT_REMEMBERED_TOKENS);
        if remembered_tokens > MAX_REMEMBERED_TOKENS {
            self.err(
                &path.key("remembered_tokens"),
                format!("must be at most {MAX_REMEMBERED_TOKENS}: each remembered token holds its claims (~1.5 KiB for an Entra app token)"),
            );
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Issuer {
            name,
            issuer: issuer?,
            keys: keys?,
            audiences,
            algorithms,
            leeway,
            remembered_tokens,
        })
    }

    fn issuer_pattern(&mut self, path: &KeyPath, file: &FileIssuer) -> Option<IssuerPattern> {
        let raw = &file.issuer;
        let tenants = self.present_list(&path.key("tenants"), file.tenants.clone());
        let placeholders = raw.matches(TENANT_PLACEHOLDER).count();
        if Url::parse(&raw.replace(TENANT_PLACEHOLDER, "tenant")).is_err() {
            self.err(&path.key("issuer"), format!("`{raw}` is not a URL"));
            return None;
        }
        match (placeholders, tenants.is_empty()) {
            (0, true) => Some(IssuerPattern::Exact(raw.clone())),
            (0, false) => {
                self.err(
                    &path.key("tenants"),
                    "only applies to an issuer containing {tenantid}",
                );
                None
            }
            (1, true) => {
                self.err(
                    &path.key("issuer"),
                    "contains {tenantid} but `tenants` is missing: list the tenant ids to accept",
                );
                None
            }
            (1, false) => {
                let (prefix, suffix) = raw.split_once(TENANT_PLACEHOLDER)?;
                Some(IssuerPattern::Tenant {
                    prefix: prefix.into(),
                    suffix: suffix.into(),
                    tenants: tenants.into_iter().collect(),
                })
            }
            _ => {
                self.err(&path.key("issuer"), "may contain {tenantid} at most once");
                None
            }
        }
    }

    fn key_source(&mut self, path: &KeyPath, file: &FileIssuer) -> Option<KeySource> {
        let given = [
            file.discovery_url.is_some(),
            file.jwks_uri.is_some(),
            file.jwks_file.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            self.err(
                path,
                "needs exactly one of `discovery_url`, `jwks_uri`, `jwks_file`",
            );
            return None;
        }
        if let Some(raw) = &file.discovery_url {
            return self
                .url(&path.key("discovery_url"), raw, UrlRule::Secure)
                .map(KeySource::Discovery);
        }
        if let Some(raw) = &file.jwks_uri {
            return self
                .url(&path.key("jwks_uri"), raw, UrlRule::Secure)
                .map(KeySource::JwksUri);
        }
        file.jwks_file
            .as_deref()
            .map(|p| KeySource::JwksFile(self.file_path(p)))
    }

    fn algorithms(&mut self, path: &KeyPath, names: Option<Vec<String>>) -> Vec<Algorithm> {
        let Some(names) = names else {
            return vec![Algorithm::RS256];
        };
        if names.is_empty() {
            self.err(path, "must not be an empty list (leave the key out for [RS256])");
        }
        let mut out = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match parse_algorithm(name) {
                Ok(alg) => out.push(alg),
                Err(why) => self.err(&path.index(i), why),
            }
        }
        out
    }
}

/// Asymmetric signature algorithms only: `none` is never accepted, and HMAC would let
/// a public key be used as a shared secret (algorithm confusion).
fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("`none` is never accepted: tokens must be signed".into());
    }
    match name {
        "RS256" => Ok(Algorithm::RS256),
        "RS384" => Ok(Algorithm::RS384),
        "RS512" => Ok(Algorithm::RS512),
        "PS256" => Ok(Algorithm::PS256),
        "PS384" => Ok(Algorithm::PS384),
        "PS512" => Ok(Algorithm::PS512),
        "ES256" => Ok(Algorithm::ES256),
        "ES384" => Ok(Algorithm::ES384),
        "EdDSA" => Ok(Algorithm::EdDSA),
        "HS256" | "HS384" | "HS512" => Err(format!(
            "`{name}` (a shared-secret algorithm) is not supported: use a public-key algorithm"
        )),
        _ => Err(format!(
            "unknown algorithm `{name}` (one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
        )),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The route label: `name:` when given, else the index (bounded metric cardinality).
fn route_label(name: Option<&str>, index: usize) -> String {
    name.map(str::to_string).unwrap_or_else(|| index.to_string())
}
