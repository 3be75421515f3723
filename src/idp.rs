//! The one HTTP client tollgate uses to talk to identity providers: OIDC discovery, JWKS,
//! token endpoints and managed identity endpoints. No redirects (a redirect could send a
//! secret or assertion elsewhere), 5 s to connect, 10 s in all. Built once per process
//! (it holds the connection pool and the TLS settings) and cloned where needed. Its TLS
//! trusts the system roots, read only when an https endpoint is reached ([`crate::trust`]).

use std::time::Duration;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The identity-provider client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Build(#[from] reqwest::Error),
}

pub fn client() -> Result<reqwest::Client, ClientError> {
    let mut tls = crate::trust::client_config(Vec::new())?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .build()?)
}
