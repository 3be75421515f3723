//! The one HTTP client tollgate uses to talk to identity providers: OIDC discovery, JWKS,
//! token endpoints and managed identity endpoints. No redirects (a redirect could send a
//! secret or assertion elsewhere), 5 s to connect, 10 s in all. Built once per process
//! (it holds the connection pool and the TLS roots) and cloned where needed.

use std::time::Duration;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .build()
}
