//! The configuration file exactly as written: serde structs, `deny_unknown_fields`
//! everywhere, no interpretation. `validate` turns these into the typed [`super::Config`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub admin: Option<FileAdmin>,
    pub shutdown: Option<FileShutdown>,
    pub reload: Option<FileReload>,
    #[serde(default)]
    pub issuers: BTreeMap<String, FileIssuer>,
    pub inbound: Option<FileInbound>,
    pub decision: Option<FileDecision>,
    pub outbound: Option<FileOutbound>,
    pub limits: Option<FileLimits>,
}

/// `decision:`: inbound's policy keys, a listener, and no upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDecision {
    pub listen: String,
    pub limits: Option<FileLimits>,
    pub tls: Option<FileTls>,
    #[serde(default)]
    pub allow_plaintext_non_loopback: bool,
    #[serde(default)]
    pub mode: FileMode,
    #[serde(default)]
    pub forward_claims: BTreeMap<String, String>,
    pub max_token_bytes: Option<usize>,
    #[serde(default)]
    pub path_case: FilePathCase,
    #[serde(default)]
    pub method_override: FileMethodOverride,
    #[serde(default)]
    pub underscore_headers: FileUnderscoreHeaders,
    #[serde(default)]
    pub routes: Vec<FileInboundRoute>,
}

/// The policy keys of `inbound` or `decision`, gathered for one validation.
pub struct FilePolicy {
    pub mode: FileMode,
    pub forward_claims: BTreeMap<String, String>,
    pub max_token_bytes: Option<usize>,
    pub path_case: FilePathCase,
    pub method_override: FileMethodOverride,
    pub underscore_headers: FileUnderscoreHeaders,
    pub routes: Vec<FileInboundRoute>,
}

/// `limits:` at the top level, or under `admin`, `inbound`, `outbound` (overriding one
/// key at a time).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    pub header_read_timeout_seconds: Option<u64>,
    pub max_header_bytes: Option<u64>,
    pub idle_timeout_seconds: Option<u64>,
    pub max_connections: Option<u64>,
    pub http2_max_concurrent_streams: Option<u64>,
    pub upstream_connect_timeout_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAdmin {
    pub listen: String,
    pub limits: Option<FileLimits>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileShutdown {
    pub drain_timeout_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReload {
    pub poll_interval_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileIssuer {
    pub issuer: String,
    pub tenants: Option<Vec<String>>,
    pub discovery_url: Option<String>,
    pub jwks_uri: Option<String>,
    pub jwks_file: Option<PathBuf>,
    pub audiences: Vec<String>,
    pub algorithms: Option<Vec<String>>,
    pub leeway_seconds: Option<u64>,
    pub remembered_tokens: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInbound {
    pub listen: String,
    pub limits: Option<FileLimits>,
    pub tls: Option<FileTls>,
    pub upstream: String,
    pub upstream_protocol: Option<FileUpstreamProtocol>,
    pub upstream_timeout_seconds: Option<u64>,
    #[serde(default)]
    pub mode: FileMode,
    #[serde(default)]
    pub strip_authorization: bool,
    #[serde(default)]
    pub forward_claims: BTreeMap<String, String>,
    pub max_token_bytes: Option<usize>,
    #[serde(default)]
    pub path_case: FilePathCase,
    #[serde(default)]
    pub method_override: FileMethodOverride,
    #[serde(default)]
    pub underscore_headers: FileUnderscoreHeaders,
    #[serde(default)]
    pub routes: Vec<FileInboundRoute>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilePathCase {
    #[default]
    Insensitive,
    Sensitive,
}

impl From<FilePathCase> for crate::served_path::PathCase {
    fn from(c: FilePathCase) -> Self {
        match c {
            FilePathCase::Insensitive => crate::served_path::PathCase::Insensitive,
            FilePathCase::Sensitive => crate::served_path::PathCase::Sensitive,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileMethodOverride {
    #[default]
    Refuse,
    Judge,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileUnderscoreHeaders {
    #[default]
    Drop,
    Keep,
    Refuse,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileUpstreamProtocol {
    Http1,
    Http2,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileMode {
    #[default]
    Enforce,
    Audit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInboundRoute {
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub matches: FileInboundMatch,
    pub allow_anonymous: Option<bool>,
    pub require: Option<FileRequirement>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInboundMatch {
    pub path_prefix: String,
    pub methods: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRequirement {
    pub issuers: Option<Vec<String>>,
    pub roles_any: Option<Vec<String>>,
    pub roles_all: Option<Vec<String>>,
    pub scopes_any: Option<Vec<String>>,
    pub scopes_all: Option<Vec<String>>,
    pub clients: Option<Vec<String>>,
    pub azpacr: Option<Vec<String>>,
    pub tenants: Option<Vec<String>>,
    pub token_kind: Option<FileTokenKind>,
    pub claims: Option<BTreeMap<String, OneOrMany>>,
    pub any_of: Option<Vec<FileRequirement>>,
}

/// `token_kind: app | user`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileTokenKind {
    App,
    User,
}

impl From<FileTokenKind> for super::model::TokenKind {
    fn from(k: FileTokenKind) -> Self {
        match k {
            FileTokenKind::App => super::model::TokenKind::App,
            FileTokenKind::User => super::model::TokenKind::User,
        }
    }
}

/// A claim requirement value: `idtyp: app` or `idtyp: [app, user]`.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "expected a string or a list of strings")]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutbound {
    pub listen: String,
    pub limits: Option<FileLimits>,
    #[serde(default)]
    pub credentials: BTreeMap<String, FileCredential>,
    #[serde(default)]
    pub routes: Vec<FileOutboundRoute>,
    pub upstream_timeout_seconds: Option<u64>,
    #[serde(default)]
    pub path_case: FilePathCase,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCredential {
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub auth: FileAuth,
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
    /// Absent: client credentials. Present: the app's user token is exchanged.
    pub exchange: Option<FileExchange>,
    /// The issuer (under `issuers:`) whose checks the user token must pass first.
    pub subject_issuer: Option<String>,
}

/// `exchange: on_behalf_of | token_exchange`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileExchange {
    OnBehalfOf,
    TokenExchange,
}

/// `auth:` holds exactly one method. A struct of options rather than an enum, because
/// serde's `deny_unknown_fields` is unreliable on tagged enums (serde #2123) and because
/// "two methods given" deserves its own error message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuth {
    #[serde(default, deserialize_with = "secret_struct")]
    pub client_secret: Option<FileClientSecret>,
    pub private_key_jwt: Option<FilePrivateKeyJwt>,
    #[serde(default, deserialize_with = "present")]
    pub workload_identity: Option<FileWorkloadIdentity>,
    #[serde(default, deserialize_with = "present")]
    pub managed_identity: Option<FileManagedIdentity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileClientSecret {
    pub file: Option<PathBuf>,
    pub env: Option<String>,
    #[serde(default)]
    pub method: FileSecretMethod,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileSecretMethod {
    #[default]
    Post,
    Basic,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePrivateKeyJwt {
    pub certificate_file: PathBuf,
    pub key_file: PathBuf,
    pub algorithm: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWorkloadIdentity {
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileManagedIdentity {
    pub client_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutboundRoute {
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub matches: FileOutboundMatch,
    pub upstream: String,
    pub credential: String,
    #[serde(default)]
    pub strip_prefix: bool,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutboundMatch {
    pub host: Option<String>,
    pub path_prefix: Option<String>,
}

// === deserialize helpers ===

/// A key that is present but empty (`managed_identity:` or `managed_identity: {}`) means
/// "this method, with defaults"; only an absent key means "not this method".
fn present<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(de)?.unwrap_or_default()))
}

/// `client_secret: "hunter2"` must fail with a message that says why, not with serde's
/// "invalid type: string, expected struct".
fn secret_struct<'de, D>(de: D) -> Result<Option<FileClientSecret>, D::Error>
where
    D: Deserializer<'de>,
{
    use serde::de::Error;
    let value = serde_yaml::Value::deserialize(de)?;
    match value {
        serde_yaml::Value::String(_) | serde_yaml::Value::Number(_) => Err(D::Error::custom(
            "a literal secret is not allowed in the file: use { file: PATH } or { env: NAME }",
        )),
        other => serde_yaml::from_value(other).map(Some).map_err(D::Error::custom),
    }
}
