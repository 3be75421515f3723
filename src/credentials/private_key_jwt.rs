//! `private_key_jwt` (RFC 7523 §2.2): a client assertion signed with the certificate's
//! private key, header `x5t#S256` (and `x5t`) from the certificate's DER. The certificate
//! and key are read at every acquisition, so a rotated pair (Key Vault certificates
//! arrive as files from the Secrets Store CSI driver) is used from the next token on.

use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::json;

use super::token_endpoint::{ClientProof, TokenEndpoint};
use super::{AcquireError, ClientAuthentication, JWT_BEARER, ProofFuture};
use crate::clock::unix_now;
use crate::config::AssertionAlgorithm;
use crate::secret::Secret;

/// Assertions live five minutes (Entra accepts up to about ten).
const ASSERTION_LIFETIME: i64 = 300;

pub struct PrivateKeyJwt {
    pub endpoint: TokenEndpoint,
    pub client_id: String,
    pub certificate_file: PathBuf,
    pub key_file: PathBuf,
    pub algorithm: AssertionAlgorithm,
}

/// A certificate's thumbprints and its private key.
pub struct CertificateKey {
    /// base64url(SHA-256(DER)).
    pub x5t_s256: String,
    /// base64url(SHA-1(DER)), for older Entra documentation and other IdPs.
    pub x5t: String,
    key: EncodingKey,
}

/// What to sign: the claims of one client assertion.
pub struct Assertion<'a> {
    pub client_id: &'a str,
    pub audience: &'a str,
    pub algorithm: AssertionAlgorithm,
}

impl ClientAuthentication for PrivateKeyJwt {
    fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    fn prove(&self) -> ProofFuture<'_> {
        Box::pin(async move {
            let key = CertificateKey::load(&self.certificate_file, &self.key_file).await?;
            let assertion = key.sign(&Assertion {
                client_id: &self.client_id,
                audience: self.endpoint.url().as_str(),
                algorithm: self.algorithm,
            })?;
            let fields = vec![
                ("client_id", self.client_id.clone()),
                ("client_assertion_type", JWT_BEARER.to_string()),
                ("client_assertion", assertion.expose().clone()),
            ];
            Ok(ClientProof { fields, basic: None })
        })
    }
}

impl CertificateKey {
    /// Read the first certificate of `cert_file` and the RSA private key of `key_file`
    /// (PKCS#8 or PKCS#1 PEM). The key file may also be the certificate file.
    pub async fn load(cert_file: &Path, key_file: &Path) -> Result<Self, AcquireError> {
        let read = |path: &Path| {
            let path = path.to_path_buf();
            async move {
                tokio::fs::read(&path)
                    .await
                    .map_err(|e| AcquireError::Local(format!("cannot read {}: {e}", path.display())))
            }
        };
        let cert_pem = read(cert_file).await?;
        let key_pem = Secret::new(read(key_file).await?);
        Self::from_pem(&cert_pem, key_pem.expose()).map_err(|why| {
            AcquireError::Local(format!(
                "certificate {} / key {}: {why}",
                cert_file.display(),
                key_file.display()
            ))
        })
    }

    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, String> {
        let der = CertificateDer::pem_slice_iter(cert_pem)
            .next()
            .ok_or("no PEM certificate found")?
            .map_err(|e| format!("bad certificate PEM: {e}"))?;
        let sha256 = crate::digest::sha256(der.as_ref());
        let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref());
        let key =
            EncodingKey::from_rsa_pem(key_pem).map_err(|_| "no usable RSA private key in the key file")?;
        Ok(CertificateKey {
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256),
            x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            key,
        })
    }

    /// A signed client assertion: `iss` = `sub` = client id, `aud` = token URL, random
    /// `jti`, `iat` = `nbf` = now, `exp` = now + 5 min.
    pub fn sign(&self, a: &Assertion<'_>) -> Result<Secret<String>, AcquireError> {
        let mut header = Header::new(match a.algorithm {
            AssertionAlgorithm::Ps256 => Algorithm::PS256,
            AssertionAlgorithm::Rs256 => Algorithm::RS256,
        });
        header.typ = Some("JWT".into());
        header.x5t_s256 = Some(self.x5t_s256.clone());
        header.x5t = Some(self.x5t.clone());
        let now = unix_now();
        let claims = json!({
            "iss": a.client_id,
            "sub": a.client_id,
            "aud": a.audience,
            "jti": random_id()?,
            "iat": now,
            "nbf": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Secret::new)
            .map_err(|e| AcquireError::Local(format!("cannot sign the client assertion: {e}")))
    }
}

fn random_id() -> Result<String, AcquireError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AcquireError::Local("no randomness".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
