//! Every way inbound refuses a request, mapped once to status, RFC 6750 error code,
//! `WWW-Authenticate`, description and a bounded metric reason.

use http::StatusCode;

use super::jwt::TokenError;
use super::method_override::OverrideError;
use super::policy::Unmet;
use crate::reply::Reply;
use crate::served_path::PathError;

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Path(PathError),
    #[error("{0}")]
    MethodOverride(OverrideError),
    /// The decision listener was not told the original request properly.
    #[error("{0}")]
    Original(&'static str),
    #[error("header names with `_` are refused here (`{0}`): send `-` instead")]
    UnderscoreHeader(String),
    #[error("{0}")]
    MalformedAuthorization(&'static str),
    #[error("a bearer token is required")]
    MissingToken,
    #[error("{0}")]
    Token(TokenError),
    #[error("no route matches this request")]
    NoRoute,
    #[error("{}", .0.description)]
    Policy(Unmet),
    #[error("the signing keys of issuer `{0}` are not available yet")]
    KeysUnavailable(String),
}

impl From<TokenError> for Refusal {
    fn from(e: TokenError) -> Self {
        Refusal::Token(e)
    }
}

impl Refusal {
    /// Bounded label for metrics and the access log.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Path(_) => "bad_path",
            Refusal::MethodOverride(_) => "method_override",
            Refusal::UnderscoreHeader(_) => "underscore_header",
            Refusal::Original(_) => "no_original_request",
            Refusal::MalformedAuthorization(_) => "malformed_authorization",
            Refusal::MissingToken => "no_token",
            Refusal::Token(e) => e.reason(),
            Refusal::NoRoute => "no_route",
            Refusal::Policy(unmet) => unmet.requirement,
            Refusal::KeysUnavailable(_) => "keys_unavailable",
        }
    }

    pub fn reply(&self) -> Reply {
        let description = self.to_string();
        let (status, error) = match self {
            Refusal::Path(_)
            | Refusal::MethodOverride(_)
            | Refusal::UnderscoreHeader(_)
            | Refusal::Original(_)
            | Refusal::MalformedAuthorization(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            // RFC 6750 §3.1: no error code in the challenge when the request carried no
            // token at all; the JSON body still names the case.
            Refusal::MissingToken => {
                return Reply::new(StatusCode::UNAUTHORIZED, "missing_token", description)
                    .with_www_authenticate(r#"Bearer realm="tollgate""#.into());
            }
            Refusal::Token(_) => (StatusCode::UNAUTHORIZED, "invalid_token"),
            Refusal::NoRoute | Refusal::Policy(_) => (StatusCode::FORBIDDEN, "insufficient_scope"),
            Refusal::KeysUnavailable(_) => {
                return Reply::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    description,
                );
            }
        };
        let challenge = format!(
            r#"Bearer realm="tollgate", error="{error}", error_description="{}""#,
            description.replace(['"', '\\'], "'")
        );
        Reply::new(status, error, description).with_www_authenticate(challenge)
    }
}
