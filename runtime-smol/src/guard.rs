//! `AuthGuard`: counts failed logins per client address and per account name in a sliding
//! window, and blocks further attempts for a while once either count is reached.
//!
//! The per-connection tarpit in the core (`auth.failure-delay`, `auth.max-failures`) slows one
//! connection; this stops a client that simply opens more connections, and a botnet that
//! spreads guesses for one account over many addresses.
//!
//! - Addresses are counted as they are for IPv4, and by their /64 prefix for IPv6, since one
//!   host usually controls a whole /64.
//! - Account names are counted by their lookup key (SASLprep, lower case) whether or not the
//!   account exists: counting only real accounts would make "blocked" an answer that tells
//!   which names exist.
//! - A blocked account stays open to addresses that logged into it successfully within the
//!   last week, so an attack on a name does not lock its owner out of their usual devices.
//! - A success does not reset an address's failures: an attacker with one valid account
//!   could otherwise interleave it with guesses at others.
//! - Memory is bounded: at most `MAX_TRACKED` addresses and as many names; when full, idle
//!   entries are dropped, and if none are idle, new keys go uncounted (logged) rather than
//!   growing without limit.
//!
//! The clock is an argument everywhere, so tests drive it.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many addresses (and, separately, names) are tracked at most.
const MAX_TRACKED: usize = 100_000;

/// How long a successful login keeps an address trusted for that account.
const TRUST_PERIOD: Duration = Duration::from_secs(7 * 24 * 3600);

/// Trusted addresses remembered per account; the oldest goes first.
const MAX_TRUSTED_PER_ACCOUNT: usize = 32;

/// Thresholds; a limit of 0 turns that counter off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// Failures from one address within `window` that block it.
    pub ip_limit: u32,
    /// Failures for one account name within `window` that block it.
    pub account_limit: u32,
    /// The sliding window failures are counted in.
    pub window: Duration,
    /// How long a block lasts.
    pub block: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            ip_limit: 10,
            account_limit: 30,
            window: Duration::from_secs(15 * 60),
            block: Duration::from_secs(15 * 60),
        }
    }
}

/// Why an attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    /// Too many failures from this address.
    #[error("too many failed logins from this address")]
    Address,
    /// Too many failures for this account name, from addresses it has not seen succeed.
    #[error("too many failed logins for this account")]
    Account,
}

/// An address as counted: IPv4 whole, IPv6 by /64 (an IPv4-mapped IPv6 address as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpKey {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> IpKey {
        match ip {
            IpAddr::V4(v4) => IpKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpKey::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    IpKey::V6Prefix([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
                }
            },
        }
    }
}

/// Failures of one key within the window, and a block if one is in force.
#[derive(Debug, Default)]
struct Counter {
    failures: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl Counter {
    fn blocked(&self, now: Instant) -> bool {
        self.blocked_until.is_some_and(|until| now < until)
    }

    /// Records a failure; returns true when it starts a block.
    fn fail(&mut self, now: Instant, limit: u32, config: &GuardConfig) -> bool {
        if limit == 0 || self.blocked(now) {
            return false;
        }
        self.expire(now, config.window);
        self.failures.push_back(now);
        if self.failures.len() >= limit as usize {
            self.failures.clear();
            self.blocked_until = Some(now + config.block);
            return true;
        }
        false
    }

    fn expire(&mut self, now: Instant, window: Duration) {
        while self
            .failures
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= window)
        {
            self.failures.pop_front();
        }
    }

    fn idle(&mut self, now: Instant, window: Duration) -> bool {
        self.expire(now, window);
        self.failures.is_empty() && !self.blocked(now)
    }
}

#[derive(Debug, Default)]
struct AccountEntry {
    counter: Counter,
    /// Addresses that logged in successfully, with when they last did.
    trusted: Vec<(IpKey, Instant)>,
}

impl AccountEntry {
    fn trusts(&self, ip: IpKey, now: Instant) -> bool {
        self.trusted
            .iter()
            .any(|(k, at)| *k == ip && now.saturating_duration_since(*at) < TRUST_PERIOD)
    }

    fn idle(&mut self, now: Instant, window: Duration) -> bool {
        self.trusted
            .retain(|(_, at)| now.saturating_duration_since(*at) < TRUST_PERIOD);
        self.counter.idle(now, window) && self.trusted.is_empty()
    }
}

#[derive(Debug, Default)]
struct State {
    ips: HashMap<IpKey, Counter>,
    accounts: HashMap<String, AccountEntry>,
    last_prune: Option<Instant>,
}

/// The failure counters; shared by every connection.
#[derive(Debug)]
pub struct AuthGuard {
    config: GuardConfig,
    state: Mutex<State>,
}

impl AuthGuard {
    pub fn new(config: GuardConfig) -> AuthGuard {
        AuthGuard {
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether an attempt from `ip` for the account with lookup key `account` may proceed.
    /// Call before checking the password, so a blocked client costs no hashing.
    pub fn check(&self, ip: IpAddr, account: Option<&str>, now: Instant) -> Result<(), Blocked> {
        let ip = IpKey::from(ip);
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.ips.get(&ip).is_some_and(|c| c.blocked(now)) {
            return Err(Blocked::Address);
        }
        if let Some(entry) = account.and_then(|a| state.accounts.get(a)) {
            if entry.counter.blocked(now) && !entry.trusts(ip, now) {
                return Err(Blocked::Account);
            }
        }
        Ok(())
    }

    /// Records a failed login (wrong password or unknown name).
    pub fn record_failure(&self, ip: IpAddr, account: Option<&str>, now: Instant) {
        let key = IpKey::from(ip);
        let config = &self.config;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.make_room(&mut state, now);
        let ip_full = state.ips.len() >= MAX_TRACKED;
        let counter = if ip_full && !state.ips.contains_key(&key) {
            None
        } else {
            Some(state.ips.entry(key).or_default())
        };
        match counter.map(|c| c.fail(now, config.ip_limit, config)) {
            Some(true) => {
                tracing::warn!(ip = %ip, minutes = config.block.as_secs() / 60, "address blocked after repeated failed logins");
            }
            Some(false) => {}
            None => tracing::warn!(ip = %ip, "failed-login table full; not counting a new address"),
        }
        let Some(account) = account else { return };
        let accounts_full = state.accounts.len() >= MAX_TRACKED;
        let entry = if accounts_full && !state.accounts.contains_key(account) {
            None
        } else {
            Some(state.accounts.entry(account.to_string()).or_default())
        };
        match entry.map(|e| e.counter.fail(now, config.account_limit, config)) {
            Some(true) => {
                // The name as typed may be anything; the key is what was counted.
                tracing::warn!(account = %account, minutes = config.block.as_secs() / 60, "account blocked for untrusted addresses after repeated failed logins");
            }
            Some(false) => {}
            None => tracing::warn!("failed-login table full; not counting a new account name"),
        }
    }

    /// Records a successful login: the address becomes trusted for the account.
    pub fn record_success(&self, ip: IpAddr, account: &str, now: Instant) {
        let key = IpKey::from(ip);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.make_room(&mut state, now);
        if !state.accounts.contains_key(account) && state.accounts.len() >= MAX_TRACKED {
            return;
        }
        let entry = state.accounts.entry(account.to_string()).or_default();
        entry.trusted.retain(|(k, _)| *k != key);
        if entry.trusted.len() >= MAX_TRUSTED_PER_ACCOUNT {
            entry.trusted.remove(0);
        }
        entry.trusted.push((key, now));
    }

    /// Drops idle entries when a table is full, at most once a second (a sweep is O(n)).
    fn make_room(&self, state: &mut State, now: Instant) {
        let full = state.ips.len() >= MAX_TRACKED || state.accounts.len() >= MAX_TRACKED;
        if !full
            || state
                .last_prune
                .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        state.last_prune = Some(now);
        let window = self.config.window;
        state.ips.retain(|_, c| !c.idle(now, window));
        state.accounts.retain(|_, e| !e.idle(now, window));
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (state.ips.len(), state.accounts.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn guard(ip_limit: u32, account_limit: u32) -> AuthGuard {
        AuthGuard::new(GuardConfig {
            ip_limit,
            account_limit,
            window: Duration::from_secs(60),
            block: Duration::from_secs(300),
        })
    }

    #[test]
    fn an_address_is_blocked_after_the_limit_within_the_window() {
        let g = guard(3, 0);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for i in 0..2 {
            g.record_failure(a, Some("alice"), t0 + Duration::from_secs(i));
            assert_eq!(
                g.check(a, Some("alice"), t0 + Duration::from_secs(i)),
                Ok(())
            );
        }
        g.record_failure(a, Some("bob"), t0 + Duration::from_secs(2));
        // Blocked for every account, and only this address.
        assert_eq!(
            g.check(a, Some("carol"), t0 + Duration::from_secs(3)),
            Err(Blocked::Address)
        );
        assert_eq!(
            g.check(a, None, t0 + Duration::from_secs(3)),
            Err(Blocked::Address)
        );
        assert_eq!(g.check(ip("192.0.2.2"), Some("alice"), t0), Ok(()));
        // The block lasts `block` from the failure that started it, then lifts.
        assert_eq!(
            g.check(a, None, t0 + Duration::from_secs(301)),
            Err(Blocked::Address)
        );
        assert_eq!(g.check(a, None, t0 + Duration::from_secs(302)), Ok(()));
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let g = guard(3, 0);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        g.record_failure(a, None, t0);
        g.record_failure(a, None, t0 + Duration::from_secs(30));
        // The first failure has left the 60 s window by now.
        g.record_failure(a, None, t0 + Duration::from_secs(61));
        assert_eq!(g.check(a, None, t0 + Duration::from_secs(61)), Ok(()));
        g.record_failure(a, None, t0 + Duration::from_secs(62));
        assert_eq!(
            g.check(a, None, t0 + Duration::from_secs(62)),
            Err(Blocked::Address)
        );
    }

    #[test]
    fn attempts_while_blocked_do_not_extend_the_block() {
        let g = guard(2, 0);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        g.record_failure(a, None, t0);
        g.record_failure(a, None, t0);
        g.record_failure(a, None, t0 + Duration::from_secs(299));
        assert_eq!(g.check(a, None, t0 + Duration::from_secs(300)), Ok(()));
    }

    #[test]
    fn an_account_is_blocked_for_untrusted_addresses_only() {
        let g = guard(0, 3);
        let t0 = Instant::now();
        let home = ip("198.51.100.7");
        g.record_success(home, "alice", t0);
        for (i, attacker) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
            g.record_failure(
                ip(attacker),
                Some("alice"),
                t0 + Duration::from_secs(i as u64),
            );
        }
        let t = t0 + Duration::from_secs(10);
        assert_eq!(
            g.check(ip("192.0.2.9"), Some("alice"), t),
            Err(Blocked::Account)
        );
        assert_eq!(g.check(home, Some("alice"), t), Ok(()));
        assert_eq!(g.check(ip("192.0.2.9"), Some("bob"), t), Ok(()));
        // Unknown names are counted like real ones, so a block reveals nothing.
        for i in 0..3 {
            g.record_failure(ip("192.0.2.1"), Some("nobody"), t + Duration::from_secs(i));
        }
        assert_eq!(
            g.check(ip("192.0.2.9"), Some("nobody"), t + Duration::from_secs(5)),
            Err(Blocked::Account)
        );
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let g = guard(2, 0);
        let t0 = Instant::now();
        g.record_failure(ip("2001:db8:1:2::1"), None, t0);
        g.record_failure(ip("2001:db8:1:2:ffff::9"), None, t0);
        assert_eq!(
            g.check(ip("2001:db8:1:2::77"), None, t0),
            Err(Blocked::Address)
        );
        assert_eq!(g.check(ip("2001:db8:1:3::1"), None, t0), Ok(()));
        assert_eq!(
            IpKey::from(ip("::ffff:192.0.2.1")),
            IpKey::from(ip("192.0.2.1"))
        );
    }

    #[test]
    fn zero_limits_turn_counting_off() {
        let g = guard(0, 0);
        let t0 = Instant::now();
        for _ in 0..100 {
            g.record_failure(ip("192.0.2.1"), Some("alice"), t0);
        }
        assert_eq!(g.check(ip("192.0.2.1"), Some("alice"), t0), Ok(()));
    }

    #[test]
    fn idle_entries_are_swept_when_the_table_fills() {
        let g = guard(5, 5);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED as u32 {
            let a = IpAddr::from(i.to_be_bytes());
            g.record_failure(a, None, t0);
        }
        assert_eq!(g.tracked().0, MAX_TRACKED);
        // Still within the window: nothing is idle, so the new address goes uncounted.
        g.record_failure(ip("203.0.113.1"), None, t0 + Duration::from_secs(1));
        assert_eq!(g.tracked().0, MAX_TRACKED);
        // After the window, the sweep frees everything and the new address is counted.
        g.record_failure(ip("203.0.113.1"), None, t0 + Duration::from_secs(120));
        assert_eq!(g.tracked().0, 1);
    }
}
