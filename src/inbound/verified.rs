//! Tokens already verified. Callers reuse one token for up to an hour, so after the first
//! request a token's signature need not be checked again, nor its header and claims
//! decoded again, while the key set that verified it is still the issuer's current one.
//! What is remembered depends only on the token's bytes (its decoded algorithm and
//! claims, and that the signature held): issuer selection, the algorithm allow-list,
//! `exp`/`nbf`/`iat`/`aud` and the policy still run on every request.
//!
//! Lock-free: a fixed table of `ArcSwapOption` slots indexed by the token's SHA-256. A hit
//! needs the whole digest to match and the entry's key set to be the current one (a
//! refresh or rotation invalidates everything). Only verified tokens are stored, so a
//! flood of forged tokens cannot evict anything but by chance of index, and costs what it
//! costs without the table.

use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;
use jsonwebtoken::Algorithm;

use super::jwt::Claims;
use super::keys::KeySet;

/// Slots per issuer: a few thousand distinct callers' tokens.
pub const DEFAULT_SLOTS: usize = 4096;

pub struct VerifiedCache {
    slots: Vec<ArcSwapOption<Entry>>,
}

struct Entry {
    digest: [u8; 32],
    /// The key set that verified it (a `Weak` keeps the allocation, so its address
    /// cannot be reused by a later key set while this entry exists).
    keys: Weak<KeySet>,
    /// The token's `exp`: the entry is useless after it.
    exp: i64,
    token: Remembered,
}

/// A verified token as it was decoded.
#[derive(Clone)]
pub struct Remembered {
    pub alg: Algorithm,
    pub claims: Arc<Claims>,
}

/// The SHA-256 of a token's compact form.
pub fn token_digest(token: &str) -> [u8; 32] {
    crate::digest::sha256(token.as_bytes())
}

impl VerifiedCache {
    /// `slots` = 0 disables the cache (every signature is checked).
    pub fn new(slots: usize) -> Self {
        VerifiedCache {
            slots: (0..slots).map(|_| ArcSwapOption::empty()).collect(),
        }
    }

    fn slot(&self, digest: &[u8; 32]) -> Option<&ArcSwapOption<Entry>> {
        if self.slots.is_empty() {
            return None;
        }
        let index = u64::from_le_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ]);
        self.slots.get((index % self.slots.len() as u64) as usize)
    }

    /// This exact token as decoded when `keys` (the issuer's current set) verified it, if
    /// they did and it has not expired.
    pub fn get(&self, digest: &[u8; 32], keys: &Arc<KeySet>, now: i64) -> Option<Remembered> {
        let guard = self.slot(digest)?.load();
        guard
            .as_ref()
            .filter(|e| {
                e.digest == *digest && std::ptr::eq(e.keys.as_ptr(), Arc::as_ptr(keys)) && now < e.exp
            })
            .map(|e| e.token.clone())
    }

    /// Remember that this token's signature verified with `keys`, and what it decoded to.
    pub fn insert(&self, digest: [u8; 32], keys: &Arc<KeySet>, exp: i64, token: Remembered) {
        if let Some(slot) = self.slot(&digest) {
            slot.store(Some(Arc::new(Entry {
                digest,
                keys: Arc::downgrade(keys),
                exp,
                token,
            })));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_needs_the_same_token_the_same_key_set_and_an_unexpired_token() {
        let cache = VerifiedCache::new(16);
        let keys = Arc::new(KeySet::default());
        let other_keys = Arc::new(KeySet::default());
        let d = token_digest("a.b.c");
        let mut claims = Claims::new();
        claims.insert("sub".into(), "s".into());
        let token = Remembered {
            alg: Algorithm::RS256,
            claims: Arc::new(claims),
        };
        assert!(cache.get(&d, &keys, 100).is_none());
        cache.insert(d, &keys, 200, token.clone());
        let hit = cache.get(&d, &keys, 100).expect("a hit");
        assert_eq!(hit.alg, Algorithm::RS256);
        assert_eq!(hit.claims["sub"], "s");
        assert!(
            cache.get(&d, &other_keys, 100).is_none(),
            "another key set: check again"
        );
        assert!(cache.get(&d, &keys, 200).is_none(), "expired");
        assert!(cache.get(&token_digest("a.b.d"), &keys, 100).is_none());
        let disabled = VerifiedCache::new(0);
        disabled.insert(d, &keys, 200, token);
        assert!(disabled.get(&d, &keys, 100).is_none());
    }
}
