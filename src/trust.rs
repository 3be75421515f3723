//! Trust roots for outbound TLS (identity providers, https upstreams): the system's CA
//! certificates, found where rustls-native-certs looks, read once and only when something
//! needs them, so a configuration with no outbound TLS runs in an image without a CA bundle.

use std::ffi::OsString;
use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use url::Url;

use crate::config::{Config, CredentialAuth, KeySource, ManagedIdentityEndpoint};

/// The bundles openssl-probe (rustls-native-certs' search on Linux) tries, in its order,
/// when neither `SSL_CERT_FILE` nor `SSL_CERT_DIR` is set.
pub const SYSTEM_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
    "/opt/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/certs/cacert.pem",
];

/// The folders openssl-probe reads every certificate from, as for [`SYSTEM_FILES`].
pub const SYSTEM_DIRS: &[&str] = &[
    "/etc/ssl/certs",
    "/etc/pki/tls/certs",
    "/etc/security/certificates",
];

/// No CA certificate was found where the system roots are looked for.
#[derive(Debug, Clone, thiserror::Error)]
pub struct NoTrustRoots {
    /// The configuration key whose https URL needs the roots, when known.
    needed_by: Option<String>,
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR` as they were (unset: `None`).
    cert_file: Option<OsString>,
    cert_dir: Option<OsString>,
    /// What the loader reported (unreadable files, bad PEM).
    problems: Vec<String>,
}

/// An https URL in the configuration, and whether its connection brings its own roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsDestination {
    /// The key path that names the URL (`issuers.entra.discovery_url`).
    pub key: String,
    /// A route `ca_file` can verify it without the system roots.
    pub own_roots: bool,
}

/// Verifies server certificates against the system roots plus extra roots, reading the
/// system roots at the first handshake that needs them (cached for the process).
#[derive(Debug)]
struct LazyRoots {
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
}

/// The system roots, read the first time they are asked for; the result (found or not)
/// holds for the process, so no handshake reads the file system after start-up.
pub fn system_roots() -> Result<Arc<RootCertStore>, NoTrustRoots> {
    static SYSTEM: OnceLock<Result<Arc<RootCertStore>, NoTrustRoots>> = OnceLock::new();
    SYSTEM.get_or_init(load_system_roots).clone()
}

fn load_system_roots() -> Result<Arc<RootCertStore>, NoTrustRoots> {
    let found = rustls_native_certs::load_native_certs();
    let problems: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
    let mut roots = RootCertStore::empty();
    let (_added, unusable) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(NoTrustRoots::from_env(problems));
    }
    if unusable > 0 || !problems.is_empty() {
        tracing::warn!(roots = roots.len(), unusable, problems = ?problems, "some system CA certificates were skipped");
    }
    Ok(Arc::new(roots))
}

/// Read the system roots now when `config` has an https URL, and refuse the configuration
/// when one of them can only be verified with roots that are not there. A config with no
/// https URL never reads them.
pub fn require_for(config: &Config) -> Result<(), NoTrustRoots> {
    let destinations = tls_destinations(config);
    if destinations.is_empty() {
        return Ok(());
    }
    match system_roots() {
        Ok(_) => Ok(()),
        Err(e) => match destinations.into_iter().find(|d| !d.own_roots) {
            Some(d) => Err(e.needed_by(d.key)),
            None => Ok(()),
        },
    }
}

/// Every https URL `config` connects to, in file order.
pub fn tls_destinations(config: &Config) -> Vec<TlsDestination> {
    let mut out = Vec::new();
    let mut add = |key: String, url: &Url, own_roots: bool| {
        if url.scheme() == "https" {
            out.push(TlsDestination { key, own_roots });
        }
    };
    for issuer in &config.issuers {
        match &issuer.keys {
            KeySource::Discovery(url) => add(format!("issuers.{}.discovery_url", issuer.name), url, false),
            KeySource::JwksUri(url) => add(format!("issuers.{}.jwks_uri", issuer.name), url, false),
            KeySource::JwksFile(_) => {}
        }
    }
    if let Some(inbound) = &config.inbound {
        add("inbound.upstream".into(), &inbound.upstream, false);
    }
    let Some(outbound) = &config.outbound else {
        return out;
    };
    for credential in &outbound.credentials {
        let key = |what: &str| format!("outbound.credentials.{}.{what}", credential.name);
        match &credential.auth {
            CredentialAuth::ClientSecret { token_url, .. }
            | CredentialAuth::PrivateKeyJwt { token_url, .. }
            | CredentialAuth::WorkloadIdentity { token_url, .. } => add(key("token_url"), token_url, false),
            CredentialAuth::ManagedIdentity { endpoint, .. } => match endpoint {
                ManagedIdentityEndpoint::AppService { url, .. } => {
                    add(key("auth.managed_identity (IDENTITY_ENDPOINT)"), url, false)
                }
                ManagedIdentityEndpoint::Imds { base } => add(key("auth.managed_identity"), base, false),
            },
        }
    }
    for (i, route) in outbound.routes.iter().enumerate() {
        add(
            format!("outbound.routes[{i}].upstream"),
            &route.upstream,
            route.ca_file.is_some(),
        );
    }
    out
}

/// rustls client settings on aws-lc-rs that trust the system roots plus `extra`. The system
/// roots are read at the first handshake unless [`require_for`] already read them.
pub fn client_config(extra: Vec<CertificateDer<'static>>) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(LazyRoots {
        extra,
        provider: provider.clone(),
        verifier: OnceLock::new(),
    });
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

// === impl NoTrustRoots ===

impl NoTrustRoots {
    fn from_env(problems: Vec<String>) -> Self {
        NoTrustRoots::new(
            std::env::var_os("SSL_CERT_FILE"),
            std::env::var_os("SSL_CERT_DIR"),
            problems,
        )
    }

    /// What was searched, given `SSL_CERT_FILE` and `SSL_CERT_DIR` as they were.
    pub fn new(cert_file: Option<OsString>, cert_dir: Option<OsString>, problems: Vec<String>) -> Self {
        NoTrustRoots {
            needed_by: None,
            cert_file,
            cert_dir,
            problems,
        }
    }

    /// The same, naming the configuration key that needs the roots.
    pub fn needed_by(mut self, key: String) -> Self {
        self.needed_by = Some(key);
        self
    }
}

impl fmt::Display for NoTrustRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no trust roots found for outbound TLS")?;
        if let Some(key) = &self.needed_by {
            write!(f, " (needed by {key})")?;
        }
        let shown = |v: &Option<OsString>| match v {
            Some(v) => format!("={}", v.to_string_lossy()),
            None => " (unset)".to_string(),
        };
        write!(
            f,
            ": looked in SSL_CERT_FILE{}, SSL_CERT_DIR{}",
            shown(&self.cert_file),
            shown(&self.cert_dir)
        )?;
        // rustls-native-certs searches the system paths only when neither variable is set.
        if self.cert_file.is_none() && self.cert_dir.is_none() {
            write!(
                f,
                ", and the system paths {} and the folders {}",
                SYSTEM_FILES.join(", "),
                SYSTEM_DIRS.join(", ")
            )?;
        } else {
            f.write_str(" (the system paths are not searched when either is set)")?;
        }
        for problem in &self.problems {
            write!(f, "; {problem}")?;
        }
        f.write_str(
            "; install a CA bundle (Debian's ca-certificates: /etc/ssl/certs/ca-certificates.crt) \
             or point SSL_CERT_FILE at one",
        )
    }
}

// === impl LazyRoots ===

impl LazyRoots {
    fn verifier(&self) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        self.verifier
            .get_or_init(|| self.build())
            .as_ref()
            .map_err(|e| rustls::Error::General(e.clone()))
    }

    /// System roots plus the extra ones; the extra ones alone when the system has none.
    fn build(&self) -> Result<Arc<WebPkiServerVerifier>, String> {
        let mut roots = match system_roots() {
            Ok(roots) => (*roots).clone(),
            Err(e) if self.extra.is_empty() => return Err(e.to_string()),
            Err(_) => RootCertStore::empty(),
        };
        for cert in &self.extra {
            roots.add(cert.clone()).map_err(|e| e.to_string())?;
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| e.to_string())
    }
}

impl ServerCertVerifier for LazyRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests;
