//! Verification keys parsed from a JWK Set, once per fetch: asymmetric keys only (`kty`
//! `oct` and `use: enc` keys are dropped), indexed by `kid`. Each key is parsed into
//! aws-lc verification keys, one per algorithm it may verify, so a request only hashes
//! and checks the signature.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};

/// The key type a JWK holds, which fixes the algorithms it can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

/// One public key, parsed for each algorithm it may verify.
pub struct VerifyKey {
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
    pub family: KeyFamily,
    /// The JWK's own `alg`, when it names one: then only that algorithm may use the key.
    pub alg: Option<Algorithm>,
}

/// An issuer's keys at one point in time. Immutable; replaced whole on refresh.
#[derive(Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    all: Vec<Arc<VerifyKey>>,
}

/// Why no key can verify a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookup {
    UnknownKid,
    /// No `kid` in the token and more (or fewer) than one candidate key.
    Ambiguous,
    /// The key named by `kid` cannot verify this algorithm (e.g. an RSA key for ES256).
    WrongKeyType,
}

// === impl VerifyKey ===

impl VerifyKey {
    pub fn supports(&self, alg: Algorithm) -> bool {
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        use Algorithm::*;
        matches!(
            (self.family, alg),
            (KeyFamily::Rsa, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
                | (KeyFamily::EcP256, ES256)
                | (KeyFamily::EcP384, ES384)
                | (KeyFamily::Ed25519, EdDSA)
        )
    }

    /// `None` for keys tollgate never uses: symmetric, encryption, unsupported curves.
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return None;
        }
        let family = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyFamily::Rsa,
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => KeyFamily::EcP256,
                EllipticCurve::P384 => KeyFamily::EcP384,
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                KeyFamily::Ed25519
            }
            _ => return None,
        };
        let alg = match jwk.common.key_algorithm {
            None => None,
            Some(ka) => Some(ka.to_string().parse::<Algorithm>().ok()?),
        };
        let mut key = VerifyKey {
            parsed: Vec::new(),
            family,
            alg,
        };
        // A key whose own `alg` does not fit its type is unusable, not a wildcard.
        if let Some(a) = alg
            && !key.supports(a)
        {
            return None;
        }
        let algorithms: Vec<Algorithm> = ALL.iter().copied().filter(|a| key.supports(*a)).collect();
        for a in algorithms {
            key.parsed.push((a, parse(&jwk.algorithm, a)?));
        }
        Some(key)
    }

    /// Check `signature` (raw bytes) over `message` with this key and `alg`.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.parsed
            .iter()
            .find(|(a, _)| *a == alg)
            .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
    }
}

const ALL: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The aws-lc verification key for `params` used with `alg`; `None` if malformed.
fn parse(params: &AlgorithmParameters, alg: Algorithm) -> Option<ParsedPublicKey> {
    let b64 = |s: &str| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok();
    match params {
        AlgorithmParameters::RSA(rsa) => {
            let rsa_params: &'static sig::RsaParameters = match alg {
                Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
                Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
                Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
                _ => return None,
            };
            let (n, e) = (b64(&rsa.n)?, b64(&rsa.e)?);
            RsaPublicKeyComponents { n: &n, e: &e }
                .to_parsed_public_key(rsa_params)
                .ok()
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let algorithm: &'static dyn sig::VerificationAlgorithm = match alg {
                Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
                Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
                _ => return None,
            };
            let mut point = vec![0x04];
            point.extend(b64(&ec.x)?);
            point.extend(b64(&ec.y)?);
            ParsedPublicKey::new(algorithm, point).ok()
        }
        AlgorithmParameters::OctetKeyPair(okp) if alg == Algorithm::EdDSA => {
            ParsedPublicKey::new(&sig::ED25519, b64(&okp.x)?).ok()
        }
        _ => None,
    }
}

// === impl KeySet ===

impl KeySet {
    /// Parse a JWK Set document. Keys that cannot be used are skipped one by one, so
    /// one exotic key does not hide the others. Returns the set and how many were skipped.
    pub fn from_json(bytes: &[u8]) -> Result<(Self, usize), String> {
        #[derive(serde::Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(bytes).map_err(|e| format!("not a JWK Set: {e}"))?;
        let mut set = KeySet::default();
        let mut skipped = 0;
        for value in doc.keys {
            let parsed = serde_json::from_value::<Jwk>(value).ok().and_then(|jwk| {
                let kid = jwk.common.key_id.clone();
                VerifyKey::from_jwk(&jwk).map(|k| (kid, Arc::new(k)))
            });
            match parsed {
                Some((kid, key)) => {
                    if let Some(kid) = kid {
                        set.by_kid.insert(kid, key.clone());
                    }
                    set.all.push(key);
                }
                None => skipped += 1,
            }
        }
        if set.all.is_empty() {
            return Err("the JWK Set holds no usable signing key".into());
        }
        Ok((set, skipped))
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn contains_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// The key to verify a token signed with `alg` and carrying `kid`.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<&VerifyKey, KeyLookup> {
        match kid {
            Some(kid) => {
                let key = self.by_kid.get(kid).ok_or(KeyLookup::UnknownKid)?;
                if key.supports(alg) {
                    Ok(key)
                } else {
                    Err(KeyLookup::WrongKeyType)
                }
            }
            None => {
                let mut candidates = self.all.iter().filter(|k| k.supports(alg));
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Ok(only),
                    _ => Err(KeyLookup::Ambiguous),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_N: &str = "u1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0_IzW7yWR7QkrmBL7jTKEn5u-qKhbwKfBstIs-bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW_VDL5AaWTg0nLVkjRo9z-40RQzuVaE8AkAFmxZzow3x-VJYKdjykkJ0iT9wCS0DRTXu269V264Vf_3jvredZiKRkgwlL9xNAwxXFg0x_XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC-9aGVd-Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmw";

    fn rsa(kid: &str, extra: &str) -> String {
        format!(r#"{{"kty":"RSA","kid":"{kid}","n":"{RSA_N}","e":"AQAB"{extra}}}"#)
    }

    #[test]
    fn symmetric_and_encryption_keys_are_never_loaded() {
        let doc = format!(
            r#"{{"keys":[{},{},{{"kty":"oct","kid":"h","k":"c2VjcmV0"}},{{"kty":"XYZ","kid":"z"}}]}}"#,
            rsa("sig", ""),
            rsa("enc", r#","use":"enc""#)
        );
        let (set, skipped) = KeySet::from_json(doc.as_bytes()).unwrap();
        assert_eq!((set.len(), skipped), (1, 3));
        assert!(set.contains_kid("sig") && !set.contains_kid("enc") && !set.contains_kid("h"));
    }

    #[test]
    fn a_key_only_verifies_algorithms_of_its_type() {
        let doc = format!(r#"{{"keys":[{}]}}"#, rsa("k1", ""));
        let (set, _) = KeySet::from_json(doc.as_bytes()).unwrap();
        assert!(set.find(Some("k1"), Algorithm::RS256).is_ok());
        assert!(set.find(Some("k1"), Algorithm::PS256).is_ok());
        assert_eq!(
            set.find(Some("k1"), Algorithm::ES256).err(),
            Some(KeyLookup::WrongKeyType)
        );
        assert_eq!(
            set.find(Some("k2"), Algorithm::RS256).err(),
            Some(KeyLookup::UnknownKid)
        );
        assert!(
            set.find(None, Algorithm::RS256).is_ok(),
            "one candidate: usable without kid"
        );
    }

    #[test]
    fn a_key_pinned_to_an_algorithm_refuses_others() {
        let doc = format!(r#"{{"keys":[{}]}}"#, rsa("k1", r#","alg":"RS256""#));
        let (set, _) = KeySet::from_json(doc.as_bytes()).unwrap();
        assert!(set.find(Some("k1"), Algorithm::RS256).is_ok());
        assert_eq!(
            set.find(Some("k1"), Algorithm::PS256).err(),
            Some(KeyLookup::WrongKeyType)
        );
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        assert!(KeySet::from_json(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).is_err());
        assert!(KeySet::from_json(b"not json").is_err());
    }
}
