//! Signatures already checked. Callers reuse one token for up to an hour, so after the
//! first request a token's signature need not be checked again while the key set that
//! verified it is still the issuer's current one. Only the signature is remembered:
//! issuer selection, algorithm, `exp`/`nbf`/`iat`/`aud` and the policy still run on every
//! request.
//!
//! Lock-free: a fixed table of `ArcSwapOption` slots indexed by the token's SHA-256. A hit
//! needs the whole digest to match and the entry's key set to be the current one (a
//! refresh or rotation invalidates everything). Only verified tokens are stored, so a
//! flood of forged tokens cannot evict anything but by chance of index, and costs what it
//! costs without the table.

use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;

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

    /// Was this exact token verified with `keys` (the issuer's current set) before?
    pub fn contains(&self, digest: &[u8; 32], keys: &Arc<KeySet>, now: i64) -> bool {
        let Some(slot) = self.slot(digest) else {
            return false;
        };
        let guard = slot.load();
        guard.as_ref().is_some_and(|e| {
            e.digest == *digest && std::ptr::eq(e.keys.as_ptr(), Arc::as_ptr(keys)) && now < e.exp
        })
    }

    /// Remember that this token's signature verified with `keys`.
    pub fn insert(&self, digest: [u8; 32], keys: &Arc<KeySet>, exp: i64) {
        if let Some(slot) = self.slot(&digest) {
            slot.store(Some(Arc::new(Entry {
                digest,
                keys: Arc::downgrade(keys),
                exp,
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
        assert!(!cache.contains(&d, &keys, 100));
        cache.insert(d, &keys, 200);
        assert!(cache.contains(&d, &keys, 100));
        assert!(
            !cache.contains(&d, &other_keys, 100),
            "another key set: check again"
        );
        assert!(!cache.contains(&d, &keys, 200), "expired");
        assert!(!cache.contains(&token_digest("a.b.d"), &keys, 100));
        let disabled = VerifiedCache::new(0);
        disabled.insert(d, &keys, 200);
        assert!(!disabled.contains(&d, &keys, 100));
    }
}
