//! Self-signed client certificates for `private_key_jwt` clients of the development
//! issuer (and the tests): an RSA key, its certificate, and the thumbprint Entra matches.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::signing_key::{KeyError, SigningKey};
use crate::secret::Secret;

pub struct ClientCertificate {
    pub cert_pem: String,
    pub key_pem: Secret<String>,
    /// base64url(SHA-256 of the certificate DER): the `x5t#S256` an assertion must carry.
    pub x5t_s256: String,
    /// The public key as a JWK without `alg`, to verify assertions (PS256 or RS256).
    pub jwk: Value,
}

impl ClientCertificate {
    pub fn generate(common_name: &str) -> Result<Self, KeyError> {
        let key = SigningKey::generate_rsa(common_name, jsonwebtoken::Algorithm::RS256)?;
        let private = key.private_pem().ok_or_else(|| KeyError::new("no private key"))?;
        let pair = rcgen::KeyPair::from_pem(private.expose()).map_err(|e| KeyError::new(e.to_string()))?;
        let params = rcgen::CertificateParams::new(vec![common_name.to_string()])
            .map_err(|e| KeyError::new(e.to_string()))?;
        let cert = params
            .self_signed(&pair)
            .map_err(|e| KeyError::new(e.to_string()))?;
        let sha = crate::digest::sha256(cert.der());
        let mut jwk = key.jwk().clone();
        if let Some(map) = jwk.as_object_mut() {
            map.remove("alg");
        }
        Ok(ClientCertificate {
            cert_pem: cert.pem(),
            key_pem: private.clone(),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha),
            jwk,
        })
    }
}
