//! `client_secret`: the secret is read from its file or variable at every acquisition
//! (Kubernetes rotates mounted secrets), then sent in the form (`post`) or as HTTP Basic
//! with id and secret each form-urlencoded first (`basic`, RFC 6749 §2.3.1).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;

use super::token_endpoint::{ClientProof, TokenEndpoint};
use super::{AcquireError, ClientAuthentication, ProofFuture};
use crate::config::{SecretMethod, SecretSource};
use crate::secret::Secret;

pub struct ClientSecret {
    pub endpoint: TokenEndpoint,
    pub client_id: String,
    pub secret: SecretSource,
    pub method: SecretMethod,
}

impl ClientAuthentication for ClientSecret {
    fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    fn prove(&self) -> ProofFuture<'_> {
        Box::pin(async move {
            let secret = read_secret(&self.secret).await?;
            Ok(match self.method {
                SecretMethod::Post => ClientProof {
                    fields: vec![
                        ("client_id", self.client_id.clone()),
                        ("client_secret", secret.expose().clone()),
                    ],
                    basic: None,
                },
                SecretMethod::Basic => ClientProof {
                    fields: Vec::new(),
                    basic: Some(basic_header(&self.client_id, &secret)),
                },
            })
        })
    }
}

/// The secret's current value: a file's content without its trailing newline, or a
/// variable's value.
pub async fn read_secret(source: &SecretSource) -> Result<Secret<String>, AcquireError> {
    let value = match source {
        SecretSource::File(path) => tokio::fs::read_to_string(path)
            .await
            .map_err(|e| AcquireError::Local(format!("cannot read secret file {}: {e}", path.display())))?,
        SecretSource::Env(name) => std::env::var(name)
            .map_err(|_| AcquireError::Local(format!("environment variable {name} is not set")))?,
    };
    let trimmed = value.trim_end_matches(['\r', '\n']);
    if trimmed.is_empty() {
        return Err(AcquireError::Local("the client secret is empty".into()));
    }
    Ok(Secret::new(trimmed.to_string()))
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, marked sensitive.
pub fn basic_header(client_id: &str, secret: &Secret<String>) -> HeaderValue {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(secret.expose()));
    // base64 output is always a valid header value.
    let mut value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(pair)))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_form_urlencodes_id_and_secret_before_base64() {
        let h = basic_header("my app", &Secret::new("a:b%c+d é".into()));
        let b64 = h.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
        assert_eq!(decoded, "my+app:a%3Ab%25c%2Bd+%C3%A9");
        assert!(h.is_sensitive());
    }
}
