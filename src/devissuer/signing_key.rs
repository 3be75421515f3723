//! Signing keys generated in memory for the development issuer (RSA 2048 or EC P-256),
//! with their public JWK. aws-lc-rs generates; jsonwebtoken signs.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::Value;

/// A private key that signs tokens, and the public JWK that verifies them.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    public_pem: String,
    private_pem: Option<crate::secret::Secret<String>>,
}

#[derive(Debug, thiserror::Error)]
#[error("signing key: {0}")]
pub struct KeyError(String);

impl KeyError {
    pub fn new(why: impl Into<String>) -> Self {
        KeyError(why.into())
    }
}

impl SigningKey {
    /// A fresh RSA 2048 key for RS256 (or any RSA algorithm passed in `alg`).
    pub fn generate_rsa(kid: &str, alg: Algorithm) -> Result<Self, KeyError> {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
        use aws_lc_rs::rsa::{KeyPair, KeySize};
        use aws_lc_rs::signature::KeyPair as _;
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| KeyError(e.to_string()))?;
        let der: Pkcs8V1Der = pair.as_der().map_err(|e| KeyError(e.to_string()))?;
        let public: PublicKeyX509Der = pair.public_key().as_der().map_err(|e| KeyError(e.to_string()))?;
        let private_pem = pem("PRIVATE KEY", der.as_ref());
        let encoding =
            EncodingKey::from_rsa_pem(private_pem.as_bytes()).map_err(|e| KeyError(e.to_string()))?;
        let mut key = Self::finish(kid, alg, encoding, pem("PUBLIC KEY", public.as_ref()))?;
        key.private_pem = Some(crate::secret::Secret::new(private_pem));
        Ok(key)
    }

    /// A fresh EC P-256 key for ES256.
    pub fn generate_es256(kid: &str) -> Result<Self, KeyError> {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|e| KeyError(e.to_string()))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
            .map_err(|e| KeyError(e.to_string()))?;
        let public = pair.public_key().as_der().map_err(|e| KeyError(e.to_string()))?;
        let encoding = EncodingKey::from_ec_pem(pem("PRIVATE KEY", doc.as_ref()).as_bytes())
            .map_err(|e| KeyError(e.to_string()))?;
        Self::finish(
            kid,
            Algorithm::ES256,
            encoding,
            pem("PUBLIC KEY", public.as_ref()),
        )
    }

    fn finish(
        kid: &str,
        alg: Algorithm,
        encoding: EncodingKey,
        public_pem: String,
    ) -> Result<Self, KeyError> {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(|e| KeyError(e.to_string()))?;
        jwk.common.key_id = Some(kid.to_string());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let jwk = serde_json::to_value(&jwk).map_err(|e| KeyError(e.to_string()))?;
        Ok(SigningKey {
            kid: kid.to_string(),
            alg,
            encoding,
            jwk,
            public_pem,
            private_pem: None,
        })
    }

    /// The public key as a JWK (with `kid`, `use: sig`, `alg`).
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The PKCS#8 private key as PEM (RSA keys only), e.g. to write a client's key file.
    pub fn private_pem(&self) -> Option<&crate::secret::Secret<String>> {
        self.private_pem.as_ref()
    }

    /// The public key as SPKI PEM text.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// Sign `claims` with a standard header (`typ: JWT`, `alg`, `kid`).
    pub fn sign(&self, claims: &Value) -> String {
        let header = serde_json::json!({ "typ": "JWT", "alg": alg_name(self.alg), "kid": self.kid });
        self.sign_with_header(&header, claims)
    }

    /// Sign with an arbitrary header (tests use this to build hostile tokens).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        self.sign_payload(header, &claims.to_string())
    }

    /// Sign `payload` as it is written, for payloads a `Value` cannot hold (a claim
    /// named twice, say).
    pub fn sign_payload(&self, header: &Value, payload: &str) -> String {
        let input = format!("{}.{}", b64_json(header), URL_SAFE_NO_PAD.encode(payload));
        // Signing with a key we generated for this algorithm cannot fail.
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, self.alg).unwrap_or_default();
        format!("{input}.{signature}")
    }
}

pub fn alg_name(alg: Algorithm) -> String {
    format!("{alg:?}")
}

pub fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
