//! `tollgate check --online`: after the offline validation, reach every issuer's discovery
//! document and JWKS (and, for outbound, acquire one token per credential) and report each.
//! Reports name what was reached and what failed; they never contain a token or secret.

use std::fmt;

use crate::config::{Config, KeySource};
use crate::inbound::jwks::KeyCache;
use crate::metrics::Metrics;

/// The result of reaching one issuer or credential.
pub struct Finding {
    pub subject: String,
    pub outcome: Result<String, String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(what) => write!(f, "{}: ok, {what}", self.subject),
            Err(why) => write!(f, "{}: error: {why}", self.subject),
        }
    }
}

/// Reach everything the configuration depends on, one finding per issuer and credential,
/// in the file's order.
pub async fn check(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    let metrics = match Metrics::new() {
        Ok(m) => m,
        Err(e) => {
            findings.push(Finding {
                subject: "metrics".into(),
                outcome: Err(e.to_string()),
            });
            return findings;
        }
    };
    let http = match crate::idp::client() {
        Ok(h) => h,
        Err(e) => {
            findings.push(Finding {
                subject: "HTTP client".into(),
                outcome: Err(e.to_string()),
            });
            return findings;
        }
    };
    if let Err(e) = crate::trust::require_for(config) {
        findings.push(Finding {
            subject: "TLS trust roots".into(),
            outcome: Err(e.to_string()),
        });
    }
    for issuer in &config.issuers {
        let cache = KeyCache::new(
            &issuer.name,
            issuer.keys.clone(),
            http.clone(),
            metrics.clone(),
            None,
        );
        let outcome = match cache.refresh().await {
            Ok(_) => {
                let n = cache.current().map(|k| k.len()).unwrap_or(0);
                Ok(format!("{n} signing key(s) from {}", describe(&issuer.keys)))
            }
            Err(e) => Err(e.to_string()),
        };
        findings.push(Finding {
            subject: format!("issuer {}", issuer.name),
            outcome,
        });
    }
    findings.extend(crate::outbound::check_online(config, &http, &metrics).await);
    findings
}

fn describe(source: &KeySource) -> String {
    match source {
        KeySource::Discovery(url) => format!("discovery {url}"),
        KeySource::JwksUri(url) => format!("jwks_uri {url}"),
        KeySource::JwksFile(path) => format!("jwks_file {}", path.display()),
    }
}
