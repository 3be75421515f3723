//! Validation of the `inbound:` section: listener, upstream, claims to forward, routes.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use http::{HeaderName, Method};

use super::super::file::{
    FileDecision, FileInbound, FileInboundRoute, FileMethodOverride, FileMode, FilePolicy, FileRequirement,
    FileUnderscoreHeaders, FileUpstreamProtocol, OneOrMany,
};
use super::super::model::{
    Access, ClaimRequirement, Decision, ForwardClaim, Inbound, InboundRoute, IssuerId, MethodOverride, Mode,
    PathPrefix, Policy, Requirement, TlsFiles, UnderscoreHeaders, UpstreamProtocol,
};
use super::super::source::KeyPath;
use super::{Check, UrlRule, route_label};

const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Far above what an HTTP server takes as one header; keeps `limit + "Bearer "` a number.
const MAX_MAX_TOKEN_BYTES: usize = 1024 * 1024;
const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers that `forward_claims` may never set: they control the connection or the
/// message framing, or they carry the credential itself.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "authorization",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "cookie",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

/// The policy keys of a `FileInbound` or `FileDecision` (serde cannot flatten a shared
/// struct under `deny_unknown_fields`, so both declare them; this gathers them once).
macro_rules! file_policy {
    ($file:ident) => {
        FilePolicy {
            mode: $file.mode,
            forward_claims: $file.forward_claims,
            max_token_bytes: $file.max_token_bytes,
            path_case: $file.path_case,
            method_override: $file.method_override,
            underscore_headers: $file.underscore_headers,
            routes: $file.routes,
        }
    };
}

impl Check<'_> {
    pub(super) fn inbound(
        &mut self,
        path: &KeyPath,
        file: FileInbound,
        issuers: &[String],
    ) -> Option<Inbound> {
        let before = self.errors.len();
        let listen = self.listen(&path.key("listen"), &file.listen);
        let upstream = self.url(&path.key("upstream"), &file.upstream, UrlRule::AnyHttp);
        if let Some(url) = &upstream
            && (url.path() != "/" || url.query().is_some())
        {
            self.err(
                &path.key("upstream"),
                "must be scheme://host:port only, without a path or query",
            );
        }
        let tls = file.tls.map(|t| TlsFiles {
            cert_file: self.file_path(&t.cert_file),
            key_file: self.file_path(&t.key_file),
        });
        let policy = self.policy(path, file_policy!(file), issuers);
        if self.errors.len() > before {
            return None;
        }
        Some(Inbound {
            policy: policy?,
            listen: listen?,
            limits: Default::default(),
            tls,
            upstream: upstream?,
            upstream_protocol: file.upstream_protocol.map(|p| match p {
                FileUpstreamProtocol::Http1 => UpstreamProtocol::Http1,
                FileUpstreamProtocol::Http2 => UpstreamProtocol::Http2,
            }),
            upstream_timeout: file
                .upstream_timeout_seconds
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_UPSTREAM_TIMEOUT),
            strip_authorization: file.strip_authorization,
        })
    }

    /// The decision listener: a listen address, optional TLS, and inbound's policy. A
    /// non-loopback address needs TLS or an explicit `allow_plaintext_non_loopback`: the
    /// listener believes what it is told about the original request.
    pub(super) fn decision(
        &mut self,
        path: &KeyPath,
        file: FileDecision,
        issuers: &[String],
    ) -> Option<Decision> {
        let before = self.errors.len();
        let listen = self.listen(&path.key("listen"), &file.listen);
        let tls = file.tls.map(|t| TlsFiles {
            cert_file: self.file_path(&t.cert_file),
            key_file: self.file_path(&t.key_file),
        });
        if let Some(addr) = listen
            && !addr.ip().is_loopback()
            && tls.is_none()
            && !file.allow_plaintext_non_loopback
        {
            self.err(
                &path.key("listen"),
                format!(
                    "`{addr}` is not a loopback address: the decision listener trusts what it is told about the original request, so give it `tls`, or set `allow_plaintext_non_loopback: true` once only the proxy can reach it (a NetworkPolicy)"
                ),
            );
        }
        let policy = self.policy(path, file_policy!(file), issuers);
        if self.errors.len() > before {
            return None;
        }
        Some(Decision {
            listen: listen?,
            limits: Default::default(),
            tls,
            policy: policy?,
        })
    }

    fn policy(&mut self, path: &KeyPath, file: FilePolicy, issuers: &[String]) -> Option<Policy> {
        let before = self.errors.len();
        let max_token_bytes = file.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
        if max_token_bytes < 256 {
            self.err(&path.key("max_token_bytes"), "must be at least 256");
        } else if max_token_bytes > MAX_MAX_TOKEN_BYTES {
            self.err(
                &path.key("max_token_bytes"),
                format!("must be at most {MAX_MAX_TOKEN_BYTES} (1 MiB)"),
            );
        }
        let forward_claims = self.forward_claims(&path.key("forward_claims"), file.forward_claims);
        let routes = self.inbound_routes(&path.key("routes"), file.routes, issuers);
        if self.errors.len() > before {
            return None;
        }
        Some(Policy {
            mode: match file.mode {
                FileMode::Enforce => Mode::Enforce,
                FileMode::Audit => Mode::Audit,
            },
            forward_claims,
            max_token_bytes,
            path_case: file.path_case.into(),
            method_override: match file.method_override {
                FileMethodOverride::Refuse => MethodOverride::Refuse,
                FileMethodOverride::Judge => MethodOverride::Judge,
            },
            underscore_headers: match file.underscore_headers {
                FileUnderscoreHeaders::Drop => UnderscoreHeaders::Drop,
                FileUnderscoreHeaders::Keep => UnderscoreHeaders::Keep,
                FileUnderscoreHeaders::Refuse => UnderscoreHeaders::Refuse,
            },
            routes,
        })
    }

    fn forward_claims(&mut self, path: &KeyPath, map: BTreeMap<String, String>) -> Vec<ForwardClaim> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (header, claim) in map {
            let at = path.key(&header);
            let Ok(name) = HeaderName::from_bytes(header.as_bytes()) else {
                self.err(&at, format!("`{header}` is not a valid HTTP header name"));
                continue;
            };
            if RESERVED_HEADERS.contains(&name.as_str()) {
                self.err(&at, format!("`{header}` is reserved and cannot carry a claim"));
                continue;
            }
            if !seen.insert(name.clone()) {
                self.err(
                    &at,
                    format!("header `{header}` is listed twice (names are case-insensitive)"),
                );
                continue;
            }
            if claim.trim().is_empty() {
                self.err(&at, "claim name must not be empty");
                continue;
            }
            out.push(ForwardClaim { header: name, claim });
        }
        out
    }

    fn inbound_routes(
        &mut self,
        path: &KeyPath,
        routes: Vec<FileInboundRoute>,
        issuers: &[String],
    ) -> Vec<InboundRoute> {
        let mut names = HashSet::new();
        let mut out = Vec::new();
        for (i, route) in routes.into_iter().enumerate() {
            let at = path.index(i);
            if let Some(name) = &route.name {
                if name.trim().is_empty() {
                    self.err(&at.key("name"), "must not be empty");
                } else if !names.insert(name.clone()) {
                    self.err(&at.key("name"), format!("duplicate route name `{name}`"));
                }
            }
            if let Some(route) = self.inbound_route(&at, i, route, issuers) {
                out.push(route);
            }
        }
        out
    }

    fn inbound_route(
        &mut self,
        path: &KeyPath,
        index: usize,
        route: FileInboundRoute,
        issuers: &[String],
    ) -> Option<InboundRoute> {
        let prefix_path = path.key("match").key("path_prefix");
        let path_prefix = match PathPrefix::parse(&route.matches.path_prefix) {
            Ok(p) => Some(p),
            Err(why) => {
                self.err(&prefix_path, format!("`{}` {why}", route.matches.path_prefix));
                None
            }
        };
        let methods = route
            .matches
            .methods
            .map(|m| self.methods(&path.key("match").key("methods"), m));
        let access = match (route.allow_anonymous, route.require) {
            (Some(true), Some(_)) => {
                self.err(path, "has both `allow_anonymous: true` and `require`: choose one");
                None
            }
            (Some(true), None) => Some(Access::Anonymous),
            (_, Some(req)) => self
                .requirement(&path.key("require"), req, issuers)
                .map(|r| Access::Require(Box::new(r))),
            (_, None) => {
                self.err(path, "has neither `require` nor `allow_anonymous: true`");
                None
            }
        };
        Some(InboundRoute {
            label: route_label(route.name.as_deref(), index),
            path_prefix: path_prefix?,
            methods,
            access: access?,
        })
    }

    fn methods(&mut self, path: &KeyPath, names: Vec<String>) -> Vec<Method> {
        if names.is_empty() {
            self.err(
                path,
                "must not be an empty list (leave the key out for every method)",
            );
        }
        let mut out = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if METHODS.contains(&name.as_str()) {
                if let Ok(m) = Method::from_bytes(name.as_bytes()) {
                    out.push(m);
                }
            } else {
                self.err(
                    &path.index(i),
                    format!("unknown HTTP method `{name}` (one of {})", METHODS.join(", ")),
                );
            }
        }
        out
    }

    fn requirement(
        &mut self,
        path: &KeyPath,
        file: FileRequirement,
        issuers: &[String],
    ) -> Option<Requirement> {
        if issuers.is_empty() {
            self.err(path, "requires a token, but no `issuers` are configured");
            return None;
        }
        let before = self.errors.len();
        let mut req = Requirement {
            issuers: Vec::new(),
            roles_any: self.present_list(&path.key("roles_any"), file.roles_any),
            roles_all: self.present_list(&path.key("roles_all"), file.roles_all),
            scopes_any: self.present_list(&path.key("scopes_any"), file.scopes_any),
            scopes_all: self.present_list(&path.key("scopes_all"), file.scopes_all),
            clients: self.present_list(&path.key("clients"), file.clients),
            azpacr: self.present_list(&path.key("azpacr"), file.azpacr),
            tenants: self.present_list(&path.key("tenants"), file.tenants),
            token_kind: file.token_kind.map(Into::into),
            claims: Vec::new(),
            any_of: Vec::new(),
        };
        for (i, name) in self
            .present_list(&path.key("issuers"), file.issuers)
            .into_iter()
            .enumerate()
        {
            match issuers.iter().position(|n| *n == name) {
                Some(id) => req.issuers.push(IssuerId(id)),
                None => self.err(
                    &path.key("issuers").index(i),
                    format!("unknown issuer `{name}` (not under `issuers:`)"),
                ),
            }
        }
        for (claim, values) in file.claims.unwrap_or_default() {
            let values = match values {
                OneOrMany::One(v) => vec![v],
                OneOrMany::Many(v) => v,
            };
            let values = self.present_list(&path.key("claims").key(&claim), Some(values));
            req.claims.push(ClaimRequirement { claim, values });
        }
        if let Some(any_of) = file.any_of {
            if any_of.is_empty() {
                self.err(&path.key("any_of"), "must not be an empty list");
            }
            for (i, alt) in any_of.into_iter().enumerate() {
                if let Some(alt) = self.requirement(&path.key("any_of").index(i), alt, issuers) {
                    req.any_of.push(alt);
                }
            }
        }
        if req == Requirement::default() && self.errors.len() == before {
            self.err(
                path,
                "is empty: name what a token must carry (e.g. `issuers: [name]` for any valid token)",
            );
        }
        (self.errors.len() == before).then_some(req)
    }
}
