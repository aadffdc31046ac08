//! Connection limits: in total, per client address, before login, and per account and
//! protocol.
//!
//! The first two are checked when a connection is accepted; the account is known only after
//! login, so its limit is checked when a login succeeds (a refused login is answered
//! `NO [UNAVAILABLE]` / `-ERR [SYS/TEMP]`, or `[IN-USE]` once the POP3 session maps it).
//! Every count is held by a [`ConnectionSlot`] and given back when the slot drops, however
//! the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tern_core::Protocol;

use crate::guard::IpKey;

/// The limits; 0 means unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimitsConfig {
    /// Open connections in all.
    pub total: usize,
    /// Open connections from one address (IPv6: one /64).
    pub per_ip: usize,
    /// Open connections that have not logged in (yet).
    pub unauthenticated: usize,
    /// Logged-in IMAP connections of one account.
    pub imap_per_account: usize,
    /// Logged-in POP3 connections of one account.
    pub pop3_per_account: usize,
}

impl Default for ConnectionLimitsConfig {
    fn default() -> Self {
        ConnectionLimitsConfig {
            // Below the usual 1024-descriptor soft limit, which also holds files and listeners.
            total: 1000,
            // Enough for a household or office behind one NAT address, each client holding
            // several IMAP connections (one per watched folder).
            per_ip: 50,
            // A quarter of the total: strangers that connect and never log in (each for at
            // most the login timeout) cannot take the places of the users who do.
            unauthenticated: 250,
            // Thunderbird keeps up to 5 per account per device; a few devices fit.
            imap_per_account: 32,
            // RFC 1939 §8: one POP3 session per maildrop at a time is the norm.
            pop3_per_account: 1,
        }
    }
}

/// Why a connection is turned away at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `limits.max-connections` reached.
    #[error("connection limit reached")]
    Total,
    /// `limits.max-connections-per-ip` reached for this address.
    #[error("per-address connection limit reached")]
    PerIp,
    /// `limits.max-unauthenticated-connections` reached.
    #[error("limit of connections not logged in reached")]
    Unauthenticated,
    /// The address is blocked after repeated failed logins (`auth.ip-failure-limit`).
    #[error("address blocked after failed logins")]
    Blocked,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    unauthenticated: usize,
    per_ip: HashMap<IpKey, usize>,
    per_account: HashMap<(Protocol, String), usize>,
}

/// The counters, shared by every listener.
#[derive(Debug)]
pub struct ConnectionLimits {
    config: ConnectionLimitsConfig,
    counts: Mutex<Counts>,
}

/// One admitted connection's share of the counts.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    ip: IpKey,
    account: Mutex<Option<(Protocol, String)>>,
    /// Counted among the connections not logged in.
    unauthenticated: std::sync::atomic::AtomicBool,
}

fn within(count: usize, limit: usize) -> bool {
    limit == 0 || count < limit
}

impl ConnectionLimits {
    pub fn new(config: ConnectionLimitsConfig) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            config,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Admits a connection from `ip`, or says which limit it would exceed.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refused> {
        let key = IpKey::from(ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if !within(counts.total, self.config.total) {
            return Err(Refused::Total);
        }
        let from_ip = counts.per_ip.get(&key).copied().unwrap_or(0);
        if !within(from_ip, self.config.per_ip) {
            return Err(Refused::PerIp);
        }
        if !within(counts.unauthenticated, self.config.unauthenticated) {
            return Err(Refused::Unauthenticated);
        }
        counts.total += 1;
        counts.unauthenticated += 1;
        *counts.per_ip.entry(key).or_default() += 1;
        Ok(ConnectionSlot {
            limits: self.clone(),
            ip: key,
            account: Mutex::new(None),
            unauthenticated: std::sync::atomic::AtomicBool::new(true),
        })
    }

    fn account_limit(&self, protocol: Protocol) -> usize {
        match protocol {
            Protocol::Pop3 => self.config.pop3_per_account,
            _ => self.config.imap_per_account,
        }
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl ConnectionSlot {
    /// Counts this connection against `account` (its lookup key) for `protocol`; false if the
    /// account already has as many as allowed. A connection holds at most one account.
    pub fn claim_account(&self, protocol: Protocol, account: &str) -> bool {
        let key = (protocol, account.to_string());
        let mut mine = self.account.lock().unwrap_or_else(PoisonError::into_inner);
        if mine.as_ref() == Some(&key) {
            return true;
        }
        let mut counts = self
            .limits
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = counts.per_account.get(&key).copied().unwrap_or(0);
        if !within(current, self.limits.account_limit(protocol)) {
            return false;
        }
        *counts.per_account.entry(key.clone()).or_default() += 1;
        if let Some(old) = mine.replace(key) {
            release(&mut counts.per_account, &old);
        }
        true
    }
}

impl ConnectionSlot {
    /// The connection has logged in: it no longer counts among those that have not.
    pub fn logged_in(&self) {
        if self
            .unauthenticated
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            let mut counts = self
                .limits
                .counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            counts.unauthenticated = counts.unauthenticated.saturating_sub(1);
        }
    }

    /// The connection went back to the not-authenticated state (IMAP UNAUTHENTICATE): it
    /// gives up its account share, so a later login claims one afresh (as another account,
    /// perhaps), and counts among the connections that have not logged in again.
    pub fn unauthenticated(&self) {
        self.release_account();
        if !self
            .unauthenticated
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            let mut counts = self
                .limits
                .counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            counts.unauthenticated += 1;
        }
    }

    /// Gives up the account share early: when the session has ended but its last bytes are
    /// still being flushed, a client that reconnects at once must not find the account full.
    pub fn release_account(&self) {
        let account = self
            .account
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(account) = account {
            let mut counts = self
                .limits
                .counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            release(&mut counts.per_account, &account);
        }
    }
}

fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let account = self
            .account
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let mut counts = self
            .limits
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if *self.unauthenticated.get_mut() {
            counts.unauthenticated = counts.unauthenticated.saturating_sub(1);
        }
        release(&mut counts.per_ip, &self.ip);
        if let Some(account) = account {
            release(&mut counts.per_account, &account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize, imap: usize, pop3: usize) -> Arc<ConnectionLimits> {
        ConnectionLimits::new(ConnectionLimitsConfig {
            total,
            per_ip,
            unauthenticated: 0,
            imap_per_account: imap,
            pop3_per_account: pop3,
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_address_and_total_limits_and_release_on_drop() {
        let l = limits(3, 2, 0, 0);
        let a1 = l.admit(ip("192.0.2.1")).unwrap();
        let a2 = l.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(l.admit(ip("192.0.2.1")).unwrap_err(), Refused::PerIp);
        let b1 = l.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(l.admit(ip("192.0.2.3")).unwrap_err(), Refused::Total);
        drop(a1);
        assert_eq!(l.open(), 2);
        let a3 = l.admit(ip("192.0.2.1")).unwrap();
        drop((a2, a3, b1));
        assert_eq!(l.open(), 0);
        assert!(l.counts.lock().unwrap().per_ip.is_empty());
    }

    #[test]
    fn account_limits_are_per_protocol() {
        let l = limits(0, 0, 2, 1);
        let s: Vec<_> = (0..4).map(|_| l.admit(ip("192.0.2.1")).unwrap()).collect();
        assert!(s[0].claim_account(Protocol::Imap, "alice"));
        assert!(
            s[0].claim_account(Protocol::Imap, "alice"),
            "a second claim is idempotent"
        );
        assert!(s[1].claim_account(Protocol::Imap, "alice"));
        assert!(!s[2].claim_account(Protocol::Imap, "alice"));
        assert!(s[2].claim_account(Protocol::Pop3, "alice"));
        assert!(!s[3].claim_account(Protocol::Pop3, "alice"));
        assert!(s[3].claim_account(Protocol::Imap, "bob"));
        drop(s);
        let t = l.admit(ip("192.0.2.1")).unwrap();
        assert!(t.claim_account(Protocol::Pop3, "alice"));
        drop(t);
        assert!(l.counts.lock().unwrap().per_account.is_empty());
    }

    #[test]
    fn connections_not_logged_in_have_their_own_cap() {
        let l = ConnectionLimits::new(ConnectionLimitsConfig {
            total: 4,
            per_ip: 0,
            unauthenticated: 2,
            imap_per_account: 0,
            pop3_per_account: 0,
        });
        let a = l.admit(ip("192.0.2.1")).unwrap();
        let b = l.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(
            l.admit(ip("192.0.2.3")).unwrap_err(),
            Refused::Unauthenticated
        );
        // A login frees a place among the strangers, not in the total.
        a.logged_in();
        a.logged_in();
        let c = l.admit(ip("192.0.2.3")).unwrap();
        c.logged_in();
        let d = l.admit(ip("192.0.2.4")).unwrap();
        assert_eq!(l.admit(ip("192.0.2.5")).unwrap_err(), Refused::Total);
        drop((a, c));
        // b and d never logged in: still two strangers.
        let e = l.admit(ip("192.0.2.5"));
        assert_eq!(e.unwrap_err(), Refused::Unauthenticated);
        drop((b, d));
        assert_eq!(l.counts.lock().unwrap().unauthenticated, 0);
        assert_eq!(l.open(), 0);
    }

    #[test]
    fn unauthenticate_gives_back_the_account_and_counts_as_a_stranger_again() {
        let l = ConnectionLimits::new(ConnectionLimitsConfig {
            total: 0,
            per_ip: 0,
            unauthenticated: 1,
            imap_per_account: 1,
            pop3_per_account: 0,
        });
        let a = l.admit(ip("192.0.2.1")).unwrap();
        assert!(a.claim_account(Protocol::Imap, "alice"));
        a.logged_in();
        let b = l.admit(ip("192.0.2.2")).unwrap();
        assert!(!b.claim_account(Protocol::Imap, "alice"));
        a.unauthenticated();
        a.unauthenticated();
        assert_eq!(l.counts.lock().unwrap().unauthenticated, 2);
        assert!(b.claim_account(Protocol::Imap, "alice"));
        b.logged_in();
        assert!(!a.claim_account(Protocol::Imap, "alice"));
        assert!(a.claim_account(Protocol::Imap, "bob"));
        a.logged_in();
        drop((a, b));
        let counts = l.counts.lock().unwrap();
        assert_eq!(counts.unauthenticated, 0);
        assert!(counts.per_account.is_empty());
    }

    #[test]
    fn zero_means_unlimited() {
        let l = limits(0, 0, 0, 0);
        let slots: Vec<_> = (0..100)
            .map(|_| l.admit(ip("192.0.2.1")).unwrap())
            .collect();
        assert!(slots.iter().all(|s| s.claim_account(Protocol::Pop3, "a")));
    }
}
