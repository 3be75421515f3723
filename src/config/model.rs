//! The validated configuration: only real types, nothing a typo could still break.
//! Built once per load by `validate`; immutable afterwards.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, Method};
use jsonwebtoken::Algorithm;
use url::Url;

use crate::served_path::{self, PathCase, ServedPath};

#[derive(Debug, Clone)]
pub struct Config {
    pub admin: Option<Admin>,
    pub drain_timeout: Duration,
    /// How often the file (and the files it names) are hashed to catch lost watch events.
    pub reload_poll_interval: Duration,
    /// SHA-256 of the text this configuration was loaded from (reload compares with it).
    pub source_sha256: [u8; 32],
    pub issuers: Vec<Issuer>,
    pub inbound: Option<Inbound>,
    pub decision: Option<Decision>,
    pub outbound: Option<Outbound>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub listen: SocketAddr,
    pub limits: Limits,
}

/// What one listener allows a client, resolved from the listener's own `limits:`, then
/// the top-level `limits:`, then these defaults (see [`Limits::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From the connection's start, or a new request's first byte, to its complete head.
    pub header_read_timeout: Duration,
    /// Request line plus headers; past it 431.
    pub max_header_bytes: usize,
    /// A connection with no request in flight and no bytes moving is closed after this.
    pub idle_timeout: Duration,
    /// Connections served at once; past it new ones wait in the kernel's backlog.
    pub max_connections: usize,
    pub http2_max_concurrent_streams: u32,
    /// TCP (and TLS) connect to an upstream; past it 502.
    pub upstream_connect_timeout: Duration,
}

impl Default for Limits {
    /// Safe without configuration: a slow-header client is cut at 30 s (hyper's and Go's
    /// usual value); 64 KiB of head fits Entra ID tokens with many claims (nginx allows
    /// 32 KiB); idle keep-alive connections close after 60 s (below the 75 s of nginx);
    /// 4096 connections bound memory (tens of MiB); 256 HTTP/2 streams per connection
    /// (nginx 128, Go 250); 5 s to connect to an upstream.
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            http2_max_concurrent_streams: 256,
            upstream_connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Index into [`Config::issuers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssuerId(pub usize);

/// Verified tokens remembered per issuer unless `remembered_tokens` says otherwise: a
/// few thousand distinct callers' tokens.
pub const DEFAULT_REMEMBERED_TOKENS: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct Issuer {
    pub name: String,
    pub issuer: IssuerPattern,
    pub keys: KeySource,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    /// How many verified tokens are remembered (0: every signature is checked).
    pub remembered_tokens: usize,
}

/// How a token's `iss` is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerPattern {
    Exact(String),
    /// `prefix{tenantid}suffix`; the substituted value must be in `tenants` and equal `tid`.
    Tenant {
        prefix: String,
        suffix: String,
        tenants: BTreeSet<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Discovery(Url),
    JwksUri(Url),
    JwksFile(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub listen: SocketAddr,
    pub limits: Limits,
    pub tls: Option<TlsFiles>,
    pub upstream: Url,
    pub upstream_protocol: Option<UpstreamProtocol>,
    pub upstream_timeout: Duration,
    pub strip_authorization: bool,
    pub policy: Policy,
}

/// The decision listener: inbound's policy, answered to a proxy that forwards itself
/// (Envoy/Istio ext_authz, nginx `auth_request`, Traefik `ForwardAuth`).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub listen: SocketAddr,
    pub limits: Limits,
    pub tls: Option<TlsFiles>,
    pub policy: Policy,
}

/// How requests are judged: shared by `inbound` and `decision`.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub mode: Mode,
    pub forward_claims: Vec<ForwardClaim>,
    pub max_token_bytes: usize,
    /// How route prefixes compare with the request path's segment names.
    pub path_case: PathCase,
    pub method_override: MethodOverride,
    pub underscore_headers: UnderscoreHeaders,
    pub routes: Vec<InboundRoute>,
}

/// What a method-override header (`X-HTTP-Method-Override`, …) does to a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MethodOverride {
    /// 400 before any policy (the default).
    #[default]
    Refuse,
    /// The route is chosen with the overriding method; the header is forwarded.
    Judge,
}

/// What happens to request headers whose name holds `_` (CGI-style servers read `_` and
/// `-` as the same character).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnderscoreHeaders {
    /// Removed before forwarding (the default, as nginx).
    #[default]
    Drop,
    /// Forwarded (look-alikes of identity headers are still removed).
    Keep,
    /// 400 before any policy.
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    Http2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Audit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardClaim {
    pub header: HeaderName,
    pub claim: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InboundRoute {
    /// `name:` when given, else the route's index: used in logs and metric labels.
    pub label: String,
    pub path_prefix: PathPrefix,
    /// `None`: every method.
    pub methods: Option<Vec<Method>>,
    pub access: Access,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    Anonymous,
    Require(Box<Requirement>),
}

/// A requirement set: every present constraint must hold. Empty vectors mean "no
/// constraint"; validation refuses empty lists in the file, so they never mean "nothing
/// allowed".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    pub issuers: Vec<IssuerId>,
    pub roles_any: Vec<String>,
    pub roles_all: Vec<String>,
    pub scopes_any: Vec<String>,
    pub scopes_all: Vec<String>,
    pub clients: Vec<String>,
    pub azpacr: Vec<String>,
    pub tenants: Vec<String>,
    /// An application or a user (delegated) token.
    pub token_kind: Option<TokenKind>,
    pub claims: Vec<ClaimRequirement>,
    pub any_of: Vec<Requirement>,
}

/// Whose token it is: Entra's `idtyp` when present, otherwise a token with `scp` is a
/// user (delegated) token and one without is an application token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    App,
    User,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::App => "app",
            TokenKind::User => "user",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequirement {
    pub claim: String,
    /// The claim must equal one of these (string), or contain one of them (array).
    pub values: Vec<String>,
}

/// A path prefix that matches whole segments of a request's [`ServedPath`] names:
/// `/orders` matches `/orders`, `/orders/7` and `/orders;v=1`, never `/ordersX`; with
/// [`PathCase::Insensitive`] also `/ORDERS`. Always starts with `/`, never ends with one
/// (but `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPrefix {
    text: String,
    /// `text` case-folded, compared with an insensitive path's key.
    folded: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    pub listen: SocketAddr,
    pub limits: Limits,
    pub upstream_timeout: Duration,
    pub path_case: PathCase,
    pub credentials: Vec<Credential>,
    pub routes: Vec<OutboundRoute>,
}

/// Index into [`Outbound::credentials`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CredentialId(pub usize);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub name: String,
    pub scopes: Vec<String>,
    pub extra_params: Vec<(String, String)>,
    pub auth: CredentialAuth,
    /// `None`: the client-credentials grant, one token shared by every request.
    pub exchange: Option<Exchange>,
}

/// A credential that exchanges the app's user token (one token per user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub grant: ExchangeGrant,
    /// The user token must first pass this issuer's signature, audience and time checks.
    pub subject_issuer: Option<IssuerId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeGrant {
    /// Entra ID's on-behalf-of (`urn:ietf:params:oauth:grant-type:jwt-bearer`).
    OnBehalfOf,
    /// RFC 8693 token exchange.
    TokenExchange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialAuth {
    ClientSecret {
        token_url: Url,
        client_id: String,
        secret: SecretSource,
        method: SecretMethod,
    },
    PrivateKeyJwt {
        token_url: Url,
        client_id: String,
        certificate_file: PathBuf,
        key_file: PathBuf,
        algorithm: AssertionAlgorithm,
    },
    WorkloadIdentity {
        token_url: Url,
        client_id: String,
        token_file: PathBuf,
    },
    ManagedIdentity {
        /// The scope without `/.default`.
        resource: String,
        client_id: Option<String>,
        endpoint: ManagedIdentityEndpoint,
    },
}

/// Where a managed identity token comes from, decided from the environment at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagedIdentityEndpoint {
    /// App Service / Functions: `IDENTITY_ENDPOINT` with `X-IDENTITY-HEADER: $IDENTITY_HEADER`.
    AppService {
        url: Url,
        header: crate::secret::Secret<String>,
    },
    /// The instance metadata service (VMs, AKS nodes): `http://169.254.169.254`, or
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` when set.
    Imds { base: Url },
}

/// Where a secret is read from at each use; the YAML never holds the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// RFC 6749 §2.3.1: in the form body (`post`) or as HTTP Basic (`basic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMethod {
    Post,
    Basic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionAlgorithm {
    Ps256,
    Rs256,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRoute {
    pub label: String,
    pub host: Option<HostMatch>,
    pub path_prefix: Option<PathPrefix>,
    pub strip_prefix: bool,
    pub upstream: Url,
    pub credential: CredentialId,
    pub ca_file: Option<PathBuf>,
}

/// A host to match, lower-cased; the port is compared only when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMatch {
    pub host: String,
    pub port: Option<u16>,
}

// === impl PathPrefix ===

impl PathPrefix {
    /// Checks the rules of a configured prefix; the error says which was broken.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if !raw.starts_with('/') {
            return Err("must start with `/`");
        }
        if raw.contains(['?', '#', '%', ';', '\\', '\0']) {
            return Err("must be a plain path without `?`, `#`, `%`, `;`, `\\` or NUL");
        }
        let trimmed = raw.trim_end_matches('/');
        if trimmed
            .split('/')
            .skip(1)
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err("must not contain empty, `.` or `..` segments");
        }
        let text: String = if trimmed.is_empty() {
            "/".into()
        } else {
            trimmed.into()
        };
        Ok(PathPrefix {
            folded: served_path::fold(&text),
            text,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whole-segment match against the path's names, in the path's case mode.
    pub fn matches(&self, path: &ServedPath) -> bool {
        let prefix = match path.case() {
            PathCase::Sensitive => &self.text,
            PathCase::Insensitive => &self.folded,
        };
        served_path::prefix_matches(prefix, path.key())
    }
}

// === impl Config ===

impl Config {
    pub fn issuer(&self, id: IssuerId) -> &Issuer {
        &self.issuers[id.0]
    }
}

impl Credential {
    /// The OAuth client id the credential authenticates as (none for a system-assigned
    /// managed identity).
    pub fn client_id(&self) -> Option<&str> {
        match &self.auth {
            CredentialAuth::ClientSecret { client_id, .. }
            | CredentialAuth::PrivateKeyJwt { client_id, .. }
            | CredentialAuth::WorkloadIdentity { client_id, .. } => Some(client_id),
            CredentialAuth::ManagedIdentity { client_id, .. } => client_id.as_deref(),
        }
    }
}

impl Outbound {
    pub fn credential(&self, id: CredentialId) -> &Credential {
        &self.credentials[id.0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str, case: PathCase) -> ServedPath {
        ServedPath::parse(raw, case).unwrap()
    }

    #[test]
    fn path_prefix_matches_whole_segments() {
        let p = PathPrefix::parse("/orders").unwrap();
        let sensitive = |raw| path(raw, PathCase::Sensitive);
        assert!(p.matches(&sensitive("/orders")));
        assert!(p.matches(&sensitive("/orders/7")));
        assert!(p.matches(&sensitive("/orders;v=1/7")));
        assert!(!p.matches(&sensitive("/ordersX")));
        assert!(!p.matches(&sensitive("/order")));
        let trailing = PathPrefix::parse("/orders/").unwrap();
        assert_eq!(trailing.as_str(), "/orders");
        assert!(PathPrefix::parse("/").unwrap().matches(&sensitive("/anything")));
    }

    #[test]
    fn path_prefix_matches_any_case_unless_sensitive() {
        let p = PathPrefix::parse("/Admin").unwrap();
        assert!(p.matches(&path("/ADMIN/users", PathCase::Insensitive)));
        assert!(p.matches(&path("/admin", PathCase::Insensitive)));
        assert!(!p.matches(&path("/ADMIN/users", PathCase::Sensitive)));
        assert!(p.matches(&path("/Admin/users", PathCase::Sensitive)));
        assert_eq!(p.as_str(), "/Admin", "shown as written");
    }

    #[test]
    fn path_prefix_refuses_dot_segments_and_relative_paths() {
        assert!(PathPrefix::parse("orders").is_err());
        assert!(PathPrefix::parse("/a/../b").is_err());
        assert!(PathPrefix::parse("/a//b").is_err());
        assert!(PathPrefix::parse("/a%2fb").is_err());
        assert!(PathPrefix::parse("/a;x").is_err());
    }
}
