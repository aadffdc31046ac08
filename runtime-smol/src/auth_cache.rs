//! Remembers successful password checks for a while, so a client that reconnects often (a
//! phone, a webmail front end logging in per request) does not pay a full argon2 check each
//! time, as Dovecot's auth cache does.
//!
//! What is kept per entry: a keyed hash (HMAC-SHA256 under a key drawn at start and never
//! written anywhere) of the account's lookup key and the password as sent, the account it
//! named, and when the entry expires. The password itself is never stored; without the
//! in-memory key the hashes cannot even be used to test guesses offline.
//!
//! Only successes are cached: a wrong password always goes to the full check (and counts
//! against the failure limits). An entry is used only while the directory still holds the
//! very account record it was made for, so a passwd-file that changes (a new password, a
//! removed user) invalidates its entries at once, with no explicit flush.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;

use crate::directory::Account;

struct Entry {
    account: Arc<Account>,
    expires: Instant,
}

/// The cache; shared by every connection.
pub struct AuthCache {
    key: [u8; 32],
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl AuthCache {
    /// A cache of at most `capacity` entries, each valid for `ttl`; either 0 turns it off.
    pub fn new(ttl: Duration, capacity: usize) -> AuthCache {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        AuthCache {
            key,
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        self.capacity > 0 && !self.ttl.is_zero()
    }

    fn digest(&self, account: &Account, password: &[u8]) -> [u8; 32] {
        // HMAC zero-pads a short key to its block (RFC 2104 §2), so any 32 bytes are a key.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return [0; 32],
        };
        // Length-prefixed, so no name/password split can collide with another.
        mac.update(&(account.key.len() as u64).to_be_bytes());
        mac.update(account.key.as_bytes());
        mac.update(password);
        mac.finalize().into_bytes().into()
    }

    /// Whether `password` was verified for `account` (the directory's current record for the
    /// name) within the TTL.
    pub fn hit(&self, account: &Arc<Account>, password: &[u8], now: Instant) -> bool {
        if !self.enabled() {
            return false;
        }
        let digest = self.digest(account, password);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(&digest) {
            Some(e) if now < e.expires && Arc::ptr_eq(&e.account, account) => true,
            Some(_) => {
                entries.remove(&digest);
                false
            }
            None => false,
        }
    }

    /// Remembers a successful check.
    pub fn insert(&self, account: &Arc<Account>, password: &[u8], now: Instant) {
        if !self.enabled() {
            return;
        }
        let digest = self.digest(account, password);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&digest) {
            entries.retain(|_, e| now < e.expires);
            if entries.len() >= self.capacity {
                // Full of live entries: make room by dropping any one (the map's order is
                // effectively random), which costs its owner one full check later.
                if let Some(victim) = entries.keys().next().copied() {
                    entries.remove(&victim);
                }
            }
        }
        entries.insert(
            digest,
            Entry {
                account: account.clone(),
                expires: now + self.ttl,
            },
        );
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn account(name: &str) -> Arc<Account> {
        Arc::new(Account::new(name, "{plain}pw").unwrap())
    }

    #[test]
    fn only_the_same_password_for_the_same_record_hits_until_it_expires() {
        let cache = AuthCache::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        let alice = account("alice");
        assert!(!cache.hit(&alice, b"pw", t0));
        cache.insert(&alice, b"pw", t0);
        assert!(cache.hit(&alice, b"pw", t0 + Duration::from_secs(59)));
        assert!(!cache.hit(&alice, b"pw2", t0));
        assert!(!cache.hit(&account("bob"), b"pw", t0));
        // A reloaded passwd-file makes new records: the old entry no longer counts.
        assert!(!cache.hit(&account("alice"), b"pw", t0));
        cache.insert(&alice, b"pw", t0);
        assert!(!cache.hit(&alice, b"pw", t0 + Duration::from_secs(60)));
        assert!(cache.is_empty());
    }

    #[test]
    fn the_size_is_bounded_and_zero_turns_it_off() {
        let cache = AuthCache::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        let alice = account("alice");
        for i in 0..10u8 {
            cache.insert(&alice, &[i], t0);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.hit(&alice, &[9], t0));
        let off = AuthCache::new(Duration::from_secs(60), 0);
        off.insert(&alice, b"pw", t0);
        assert!(!off.hit(&alice, b"pw", t0));
        let off = AuthCache::new(Duration::ZERO, 10);
        off.insert(&alice, b"pw", t0);
        assert!(!off.hit(&alice, b"pw", t0));
    }
}
