//! Tokens already verified. Callers reuse one token for up to an hour, so after the first
//! request a token's signature need not be checked again, nor its header and claims
//! decoded again, while the key set that verified it is still the issuer's current one.
//! What is remembered depends only on the token's bytes (its decoded algorithm and
//! claims, and that the signature held): issuer selection, the algorithm allow-list,
//! `exp`/`nbf`/`iat`/`aud` and the policy still run on every request.
//!
//! Lock-free: a fixed table of `ArcSwapOption` slots. A token's SHA-256 names two slots
//! (two-way set-associative), a hit needs the whole digest to match and the entry's key
//! set to be the current one (a refresh or rotation invalidates everything). A new token
//! takes whichever of its two slots holds nothing useful (empty, expired, or verified by
//! keys no longer current), else the one used least recently, so a caller that comes back
//! keeps its entry while tokens seen once (a caller fetching a token per call, or many
//! circulating tokens) replace each other. Only verified tokens are stored, so a flood of
//! forged tokens cannot evict anything, and costs what it costs without the table.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use jsonwebtoken::Algorithm;

use super::jwt::Claims;
use super::keys::KeySet;

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
    /// Milliseconds (see [`millis`]) of the last hit, or of the insert.
    used: AtomicU64,
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

    /// How many tokens it can hold.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// The two slots `digest` may live in.
    fn pair(&self, digest: &[u8; 32]) -> Option<[&ArcSwapOption<Entry>; 2]> {
        let n = self.slots.len() as u64;
        if n == 0 {
            return None;
        }
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest[at..at + 8]);
            u64::from_le_bytes(bytes)
        };
        let first = word(0) % n;
        let mut second = word(8) % n;
        if second == first {
            second = (first + 1) % n;
        }
        Some([&self.slots[first as usize], &self.slots[second as usize]])
    }

    /// This exact token as decoded when `keys` (the issuer's current set) verified it, if
    /// they did and it has not expired.
    pub fn get(&self, digest: &[u8; 32], keys: &Arc<KeySet>, now: i64) -> Option<Remembered> {
        for slot in self.pair(digest)? {
            let guard = slot.load();
            if let Some(entry) = guard
                .as_ref()
                .filter(|e| e.digest == *digest && e.live(keys, now))
            {
                entry.touch();
                return Some(entry.token.clone());
            }
        }
        None
    }

    /// Remember that this token's signature verified with `keys`, and what it decoded to.
    pub fn insert(&self, digest: [u8; 32], keys: &Arc<KeySet>, now: i64, exp: i64, token: Remembered) {
        let Some([a, b]) = self.pair(&digest) else {
            return;
        };
        // 0: free to take (empty, useless, or this very token); else 1 + when last used.
        let claim = |slot: &ArcSwapOption<Entry>| match slot.load().as_ref() {
            Some(e) if e.digest != digest && e.live(keys, now) => 1 + e.used.load(Ordering::Relaxed),
            _ => 0,
        };
        let target = if claim(a) <= claim(b) { a } else { b };
        target.store(Some(Arc::new(Entry {
            digest,
            keys: Arc::downgrade(keys),
            exp,
            token,
            used: AtomicU64::new(millis()),
        })));
    }
}

impl Entry {
    /// Verified by `keys` (the current set) and not expired.
    fn live(&self, keys: &Arc<KeySet>, now: i64) -> bool {
        std::ptr::eq(self.keys.as_ptr(), Arc::as_ptr(keys)) && now < self.exp
    }

    /// Mark a hit. At most one store per millisecond, so a hot token shared by every
    /// worker does not turn each hit into a write to one cache line.
    fn touch(&self) {
        let now = millis();
        if self.used.load(Ordering::Relaxed) != now {
            self.used.store(now, Ordering::Relaxed);
        }
    }
}

/// Milliseconds since the first call: a cheap, monotonic clock for "used least recently".
fn millis() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // sleeps on plain test threads, no runtime
mod tests {
    use super::*;

    #[test]
    fn a_hit_needs_the_same_token_the_same_key_set_and_an_unexpired_token() {
        let cache = VerifiedCache::new(16);
        let keys = Arc::new(KeySet::default());
        let other_keys = Arc::new(KeySet::default());
        let d = token_digest("a.b.c");
        let claims: Claims = [("sub".to_string(), serde_json::Value::from("s"))]
            .into_iter()
            .collect();
        let token = Remembered {
            alg: Algorithm::RS256,
            claims: Arc::new(claims),
        };
        assert!(cache.get(&d, &keys, 100).is_none());
        cache.insert(d, &keys, 100, 200, token.clone());
        let hit = cache.get(&d, &keys, 100).expect("a hit");
        assert_eq!(hit.alg, Algorithm::RS256);
        assert_eq!(hit.claims.get("sub"), Some(&serde_json::Value::from("s")));
        assert!(
            cache.get(&d, &other_keys, 100).is_none(),
            "another key set: check again"
        );
        assert!(cache.get(&d, &keys, 200).is_none(), "expired");
        assert!(cache.get(&token_digest("a.b.d"), &keys, 100).is_none());
        let disabled = VerifiedCache::new(0);
        disabled.insert(d, &keys, 100, 200, token);
        assert!(disabled.get(&d, &keys, 100).is_none());
    }

    fn remembered() -> Remembered {
        Remembered {
            alg: Algorithm::RS256,
            claims: Arc::new(Claims::new()),
        }
    }

    /// A digest whose two slots (in a table of `n`) are `first` and `second`.
    fn digest(first: u64, second: u64, tag: u8) -> [u8; 32] {
        let mut d = [tag; 32];
        d[..8].copy_from_slice(&first.to_le_bytes());
        d[8..16].copy_from_slice(&second.to_le_bytes());
        d
    }

    #[test]
    fn two_tokens_on_one_slot_both_stay() {
        let cache = VerifiedCache::new(8);
        let keys = Arc::new(KeySet::default());
        let (a, b) = (digest(3, 5, 1), digest(3, 5, 2));
        cache.insert(a, &keys, 0, 100, remembered());
        cache.insert(b, &keys, 0, 100, remembered());
        assert!(cache.get(&a, &keys, 0).is_some() && cache.get(&b, &keys, 0).is_some());
    }

    #[test]
    fn a_new_token_takes_a_useless_slot_first_then_the_least_recently_used() {
        let cache = VerifiedCache::new(8);
        let keys = Arc::new(KeySet::default());
        let old_keys = Arc::new(KeySet::default());
        let (stale, live, new) = (digest(1, 2, 1), digest(1, 2, 2), digest(1, 2, 3));
        cache.insert(stale, &old_keys, 0, 100, remembered());
        cache.insert(live, &keys, 0, 100, remembered());
        cache.insert(new, &keys, 0, 100, remembered());
        assert!(cache.get(&live, &keys, 0).is_some(), "the live entry was kept");
        assert!(cache.get(&new, &keys, 0).is_some());
        std::thread::sleep(std::time::Duration::from_millis(3));
        assert!(
            cache.get(&live, &keys, 0).is_some(),
            "live is now the more recent"
        );
        let newest = digest(1, 2, 4);
        cache.insert(newest, &keys, 0, 100, remembered());
        assert!(
            cache.get(&live, &keys, 0).is_some(),
            "the recently used entry stays"
        );
        assert!(
            cache.get(&new, &keys, 0).is_none(),
            "the least recently used one went"
        );
    }

    #[test]
    fn a_caller_that_comes_back_keeps_its_entry_while_ten_thousand_tokens_pass() {
        let cache = VerifiedCache::new(crate::config::DEFAULT_REMEMBERED_TOKENS);
        let keys = Arc::new(KeySet::default());
        let hot = token_digest("hot");
        let mut misses = 0;
        for i in 0..10_000 {
            if cache.get(&hot, &keys, 0).is_none() {
                misses += 1;
                cache.insert(hot, &keys, 0, 100, remembered());
            }
            cache.insert(token_digest(&format!("once-{i}")), &keys, 0, 100, remembered());
            if i % 500 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        assert!(misses <= 20, "the hot token was evicted {misses} times");
    }
}
