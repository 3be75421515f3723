//! Validation of the `outbound:` section: credentials (exactly one auth method each) and
//! routes. Workload identity takes its defaults from the AKS webhook's variables.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::super::file::{
    FileAuth, FileCredential, FileExchange, FileOutbound, FileOutboundRoute, FileSecretMethod,
};
use super::super::model::{
    AssertionAlgorithm, Credential, CredentialAuth, CredentialId, Exchange, ExchangeGrant, HostMatch,
    IssuerId, ManagedIdentityEndpoint, Outbound, OutboundRoute, PathPrefix, SecretMethod, SecretSource,
};
use super::super::source::KeyPath;
use super::{Check, UrlRule, route_label};
use crate::secret::Secret;

const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com/";
const IMDS: &str = "http://169.254.169.254";

impl Check<'_> {
    pub(super) fn outbound(
        &mut self,
        path: &KeyPath,
        file: FileOutbound,
        issuers: &[String],
    ) -> Option<Outbound> {
        let before = self.errors.len();
        let listen = self.listen(&path.key("listen"), &file.listen);
        let names: Vec<String> = file.credentials.keys().cloned().collect();
        let credentials: Vec<Credential> = file
            .credentials
            .into_iter()
            .filter_map(|(name, c)| self.credential(&path.key("credentials").key(&name), name, c, issuers))
            .collect();
        let mut route_names = HashSet::new();
        let mut routes = Vec::new();
        for (i, route) in file.routes.into_iter().enumerate() {
            let at = path.key("routes").index(i);
            if let Some(name) = &route.name
                && !route_names.insert(name.clone())
            {
                self.err(&at.key("name"), format!("duplicate route name `{name}`"));
            }
            if let Some(route) = self.outbound_route(&at, i, route, &names) {
                routes.push(route);
            }
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Outbound {
            listen: listen?,
            limits: Default::default(),
            upstream_timeout: file
                .upstream_timeout_seconds
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_UPSTREAM_TIMEOUT),
            path_case: file.path_case.into(),
            credentials,
            routes,
        })
    }

    fn credential(
        &mut self,
        path: &KeyPath,
        name: String,
        file: FileCredential,
        issuers: &[String],
    ) -> Option<Credential> {
        let before = self.errors.len();
        let scopes = self.present_list(&path.key("scopes"), Some(file.scopes.clone()));
        let auth = self.auth(path, &file);
        let exchange = self.exchange(path, &file, issuers);
        if self.errors.len() > before {
            return None;
        }
        Some(Credential {
            name,
            scopes,
            extra_params: file.extra_params.into_iter().collect(),
            auth: auth?,
            exchange,
        })
    }

    /// `exchange` and `subject_issuer`. A managed identity cannot exchange: the platform
    /// endpoint only issues its own tokens, and Entra's on-behalf-of needs a client
    /// credential.
    fn exchange(&mut self, path: &KeyPath, file: &FileCredential, issuers: &[String]) -> Option<Exchange> {
        let Some(grant) = file.exchange else {
            if file.subject_issuer.is_some() {
                self.err(
                    &path.key("subject_issuer"),
                    "only applies to an exchange credential (`exchange: on_behalf_of` or `token_exchange`)",
                );
            }
            return None;
        };
        if file.auth.managed_identity.is_some() {
            self.err(
                &path.key("exchange"),
                "a managed identity cannot exchange a user's token: use `client_secret`, `private_key_jwt` or `workload_identity`",
            );
        }
        let subject_issuer = match &file.subject_issuer {
            None => None,
            Some(name) => match issuers.iter().position(|n| n == name) {
                Some(i) => Some(IssuerId(i)),
                None => {
                    self.err(
                        &path.key("subject_issuer"),
                        format!("unknown issuer `{name}` (not under `issuers:`)"),
                    );
                    None
                }
            },
        };
        Some(Exchange {
            grant: match grant {
                FileExchange::OnBehalfOf => ExchangeGrant::OnBehalfOf,
                FileExchange::TokenExchange => ExchangeGrant::TokenExchange,
            },
            subject_issuer,
        })
    }

    fn auth(&mut self, path: &KeyPath, file: &FileCredential) -> Option<CredentialAuth> {
        let auth_path = path.key("auth");
        let FileAuth {
            client_secret,
            private_key_jwt,
            workload_identity,
            managed_identity,
        } = &file.auth;
        let given = [
            client_secret.is_some(),
            private_key_jwt.is_some(),
            workload_identity.is_some(),
            managed_identity.is_some(),
        ];
        match given.iter().filter(|g| **g).count() {
            1 => {}
            0 => {
                self.err(&auth_path, "needs one of `client_secret`, `private_key_jwt`, `workload_identity`, `managed_identity`");
                return None;
            }
            _ => {
                self.err(&auth_path, "names more than one method: keep exactly one");
                return None;
            }
        }
        if let Some(mi) = managed_identity {
            return self.managed_identity(path, file, mi.client_id.clone());
        }
        if let Some(wi) = workload_identity {
            let wi_path = auth_path.key("workload_identity");
            let token_file = match (&wi.token_file, self.env.var("AZURE_FEDERATED_TOKEN_FILE")) {
                (Some(p), _) => Some(self.file_path(p)),
                (None, Some(env)) => Some(PathBuf::from(env)),
                (None, None) => {
                    self.err(
                        &wi_path,
                        "needs `token_file` (AZURE_FEDERATED_TOKEN_FILE is not set)",
                    );
                    None
                }
            };
            let client_id = self.client_id(path, file, Some("AZURE_CLIENT_ID"));
            let token_url = self.token_url(path, file, true);
            return Some(CredentialAuth::WorkloadIdentity {
                token_url: token_url?,
                client_id: client_id?,
                token_file: token_file?,
            });
        }
        let client_id = self.client_id(path, file, None);
        let token_url = self.token_url(path, file, false);
        if let Some(secret) = client_secret {
            let secret_path = auth_path.key("client_secret");
            let source = match (&secret.file, &secret.env) {
                (Some(f), None) => Some(SecretSource::File(self.file_path(f))),
                (None, Some(e)) if !e.trim().is_empty() => Some(SecretSource::Env(e.clone())),
                (None, Some(_)) => {
                    self.err(&secret_path.key("env"), "must name an environment variable");
                    None
                }
                _ => {
                    self.err(&secret_path, "needs exactly one of `file` or `env`");
                    None
                }
            };
            let method = match secret.method {
                FileSecretMethod::Post => SecretMethod::Post,
                FileSecretMethod::Basic => SecretMethod::Basic,
            };
            return Some(CredentialAuth::ClientSecret {
                token_url: token_url?,
                client_id: client_id?,
                secret: source?,
                method,
            });
        }
        let jwt = private_key_jwt.as_ref()?;
        let algorithm = match jwt.algorithm.as_deref() {
            None | Some("PS256") => Some(AssertionAlgorithm::Ps256),
            Some("RS256") => Some(AssertionAlgorithm::Rs256),
            Some(other) => {
                self.err(
                    &auth_path.key("private_key_jwt").key("algorithm"),
                    format!("`{other}` is not supported: PS256 (default) or RS256"),
                );
                None
            }
        };
        Some(CredentialAuth::PrivateKeyJwt {
            token_url: token_url?,
            client_id: client_id?,
            certificate_file: self.file_path(&jwt.certificate_file),
            key_file: self.file_path(&jwt.key_file),
            algorithm: algorithm?,
        })
    }

    fn managed_identity(
        &mut self,
        path: &KeyPath,
        file: &FileCredential,
        client_id: Option<String>,
    ) -> Option<CredentialAuth> {
        if file.token_url.is_some() {
            self.err(
                &path.key("token_url"),
                "is not used with `managed_identity` (the platform's endpoint is)",
            );
        }
        if file.client_id.is_some() {
            self.err(
                &path.key("client_id"),
                "use `auth.managed_identity.client_id` for a user-assigned identity",
            );
        }
        if file.scopes.len() != 1 {
            self.err(
                &path.key("scopes"),
                "`managed_identity` takes exactly one scope (its resource)",
            );
            return None;
        }
        let scope = &file.scopes[0];
        let resource = scope.strip_suffix("/.default").unwrap_or(scope).to_string();
        let endpoint = self.managed_identity_endpoint(path)?;
        Some(CredentialAuth::ManagedIdentity {
            resource,
            client_id,
            endpoint,
        })
    }

    /// App Service when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set, else IMDS.
    fn managed_identity_endpoint(&mut self, path: &KeyPath) -> Option<ManagedIdentityEndpoint> {
        let var = |name: &str| self.env.var(name).filter(|v| !v.trim().is_empty());
        if let (Some(endpoint), Some(header)) = (var("IDENTITY_ENDPOINT"), var("IDENTITY_HEADER")) {
            return match Url::parse(&endpoint) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {
                    Some(ManagedIdentityEndpoint::AppService {
                        url,
                        header: Secret::new(header),
                    })
                }
                _ => {
                    self.err(path, "IDENTITY_ENDPOINT is not an http(s) URL");
                    None
                }
            };
        }
        let base = var("AZURE_POD_IDENTITY_AUTHORITY_HOST").unwrap_or_else(|| IMDS.to_string());
        match Url::parse(&base) {
            Ok(base) if matches!(base.scheme(), "http" | "https") => {
                Some(ManagedIdentityEndpoint::Imds { base })
            }
            _ => {
                self.err(path, "AZURE_POD_IDENTITY_AUTHORITY_HOST is not an http(s) URL");
                None
            }
        }
    }

    fn client_id(&mut self, path: &KeyPath, file: &FileCredential, env: Option<&str>) -> Option<String> {
        match (&file.client_id, env.and_then(|e| self.env.var(e))) {
            (Some(id), _) if !id.trim().is_empty() => Some(id.clone()),
            (Some(_), _) => {
                self.err(&path.key("client_id"), "must not be empty");
                None
            }
            (None, Some(id)) => Some(id),
            (None, None) => {
                let hint = env.map(|e| format!(" ({e} is not set)")).unwrap_or_default();
                self.err(path, format!("needs `client_id`{hint}"));
                None
            }
        }
    }

    /// Workload identity may derive the token URL from AZURE_AUTHORITY_HOST and AZURE_TENANT_ID.
    fn token_url(&mut self, path: &KeyPath, file: &FileCredential, from_env: bool) -> Option<Url> {
        if let Some(raw) = &file.token_url {
            return self.url(&path.key("token_url"), raw, UrlRule::Secure);
        }
        let tenant = if from_env {
            self.env.var("AZURE_TENANT_ID")
        } else {
            None
        };
        let Some(tenant) = tenant else {
            let hint = if from_env {
                " (AZURE_TENANT_ID is not set)"
            } else {
                ""
            };
            self.err(path, format!("needs `token_url`{hint}"));
            return None;
        };
        let authority = self
            .env
            .var("AZURE_AUTHORITY_HOST")
            .unwrap_or_else(|| DEFAULT_AUTHORITY.into());
        let raw = format!("{}/{tenant}/oauth2/v2.0/token", authority.trim_end_matches('/'));
        self.url(&path.key("token_url"), &raw, UrlRule::Secure)
    }

    fn outbound_route(
        &mut self,
        path: &KeyPath,
        index: usize,
        route: FileOutboundRoute,
        credentials: &[String],
    ) -> Option<OutboundRoute> {
        let before = self.errors.len();
        let match_path = path.key("match");
        let host = route
            .matches
            .host
            .as_deref()
            .and_then(|h| self.host_match(&match_path.key("host"), h));
        let path_prefix = route.matches.path_prefix.as_deref().and_then(|raw| {
            PathPrefix::parse(raw)
                .map_err(|why| self.err(&match_path.key("path_prefix"), format!("`{raw}` {why}")))
                .ok()
        });
        if route.matches.host.is_none() && route.matches.path_prefix.is_none() {
            self.err(&match_path, "needs `host`, `path_prefix`, or both");
        }
        if route.strip_prefix && route.matches.path_prefix.is_none() {
            self.err(&path.key("strip_prefix"), "needs `match.path_prefix`");
        }
        let upstream = self.url(&path.key("upstream"), &route.upstream, UrlRule::Secure);
        if upstream.as_ref().is_some_and(|u| u.query().is_some()) {
            self.err(&path.key("upstream"), "must not carry a query");
        }
        let credential = match credentials.iter().position(|c| *c == route.credential) {
            Some(i) => Some(CredentialId(i)),
            None => {
                self.err(
                    &path.key("credential"),
                    format!(
                        "unknown credential `{}` (not under `outbound.credentials`)",
                        route.credential
                    ),
                );
                None
            }
        };
        if self.errors.len() > before {
            return None;
        }
        Some(OutboundRoute {
            label: route_label(route.name.as_deref(), index),
            host,
            path_prefix,
            strip_prefix: route.strip_prefix,
            upstream: upstream?,
            credential: credential?,
            ca_file: route.ca_file.map(|p| self.file_path(&p)),
        })
    }

    fn host_match(&mut self, path: &KeyPath, raw: &str) -> Option<HostMatch> {
        let parsed = http::uri::Authority::try_from(raw)
            .ok()
            .filter(|a| !a.host().is_empty() && !raw.contains('@'));
        match parsed {
            Some(a) => Some(HostMatch {
                host: a.host().to_ascii_lowercase(),
                port: a.port_u16(),
            }),
            None => {
                self.err(path, format!("`{raw}` is not a host or host:port"));
                None
            }
        }
    }
}
