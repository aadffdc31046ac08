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
//! - An attempt counts from the moment its password check starts, not when it fails: a client
//!   that opens many connections and sends one guess on each at once has its checks in flight
//!   counted with its failures, so no more than the limit are ever checked in one window.
//!   An attempt that succeeds gives its place back; one abandoned before any password was
//!   checked (a SCRAM exchange cancelled halfway) too.
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
    /// Attempts begun and not yet ended.
    in_flight: u32,
}

impl Counter {
    fn blocked(&self, now: Instant) -> bool {
        self.blocked_until.is_some_and(|until| now < until)
    }

    /// Whether one more attempt may start: not blocked, and the failures in the window plus
    /// the attempts under way stay below the limit.
    fn admits(&mut self, now: Instant, limit: u32, window: Duration) -> bool {
        if self.blocked(now) {
            return false;
        }
        if limit == 0 {
            return true;
        }
        self.expire(now, window);
        self.failures.len() + (self.in_flight as usize) < limit as usize
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
        self.failures.is_empty() && !self.blocked(now) && self.in_flight == 0
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

/// A login attempt under way, counted against its address and account name until it ends
/// (see [`AuthGuard::begin`]).
#[derive(Debug)]
#[must_use = "an attempt must be ended, or it keeps counting"]
pub struct Attempt {
    ip: IpAddr,
    account: Option<String>,
}

/// How an [`Attempt`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEnd {
    /// A wrong password or proof, or an unknown name: it counts as a failure.
    Failed,
    /// Logged in to the account with this lookup key: the address becomes trusted for it.
    Succeeded(String),
    /// Ended before any password was checked: it no longer counts.
    Abandoned,
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

    /// How many addresses (IPv6: /64 networks) and account names are blocked now, for the
    /// operator's metrics.
    pub fn blocked_counts(&self, now: Instant) -> (usize, usize) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (
            state.ips.values().filter(|c| c.blocked(now)).count(),
            state
                .accounts
                .values()
                .filter(|e| e.counter.blocked(now))
                .count(),
        )
    }

    /// Whether `ip` is blocked now (for the connection limits at accept, where no account
    /// name is known yet).
    pub fn address_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .ips
            .get(&IpKey::from(ip))
            .is_some_and(|c| c.blocked(now))
    }

    /// Starts an attempt from `ip` for the account with lookup key `account`, or refuses it:
    /// when the address or name is blocked, or when its failures in the window plus the
    /// attempts already under way reach the limit. Call before checking the password, so a
    /// refused client costs no hashing, and end the attempt with [`AuthGuard::end`].
    pub fn begin(
        &self,
        ip: IpAddr,
        account: Option<&str>,
        now: Instant,
    ) -> Result<Attempt, Blocked> {
        let key = IpKey::from(ip);
        let config = &self.config;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.make_room(&mut state, now);
        let ip_counter = if state.ips.len() >= MAX_TRACKED && !state.ips.contains_key(&key) {
            None
        } else {
            Some(state.ips.entry(key).or_default())
        };
        if let Some(c) = &ip_counter {
            if c.blocked(now) {
                return Err(Blocked::Address);
            }
        }
        if let Some(c) = ip_counter {
            if !c.admits(now, config.ip_limit, config.window) {
                return Err(Blocked::Address);
            }
        }
        if let Some(entry) = account.and_then(|a| state.accounts.get_mut(a)) {
            if !entry.trusts(key, now)
                && !entry
                    .counter
                    .admits(now, config.account_limit, config.window)
            {
                return Err(Blocked::Account);
            }
        }
        // Admitted: count it under way on both keys (unless a table is full, as for failures).
        if let Some(c) = state.ips.get_mut(&key) {
            c.in_flight += 1;
        }
        if let Some(name) = account {
            let full = state.accounts.len() >= MAX_TRACKED;
            if !full || state.accounts.contains_key(name) {
                state
                    .accounts
                    .entry(name.to_string())
                    .or_default()
                    .counter
                    .in_flight += 1;
            }
        }
        Ok(Attempt {
            ip,
            account: account.map(str::to_string),
        })
    }

    /// Ends an attempt begun with [`AuthGuard::begin`].
    pub fn end(&self, attempt: Attempt, end: AttemptEnd, now: Instant) {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = state.ips.get_mut(&IpKey::from(attempt.ip)) {
                c.in_flight = c.in_flight.saturating_sub(1);
            }
            if let Some(e) = attempt
                .account
                .as_deref()
                .and_then(|a| state.accounts.get_mut(a))
            {
                e.counter.in_flight = e.counter.in_flight.saturating_sub(1);
            }
        }
        match end {
            AttemptEnd::Failed => self.record_failure(attempt.ip, attempt.account.as_deref(), now),
            AttemptEnd::Succeeded(account) => self.record_success(attempt.ip, &account, now),
            AttemptEnd::Abandoned => {}
        }
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
    fn attempts_under_way_count_so_parallel_guesses_stay_within_the_limit() {
        let g = guard(3, 0);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        // Three connections start a check each at the same moment; a fourth must wait.
        let attempts: Vec<_> = (0..3)
            .map(|_| g.begin(a, Some("alice"), t0).unwrap())
            .collect();
        assert_eq!(g.begin(a, Some("alice"), t0).unwrap_err(), Blocked::Address);
        // Not a block yet: other addresses are unaffected, and neither is this one's future.
        assert!(!g.address_blocked(a, t0));
        assert!(g.begin(ip("192.0.2.2"), Some("alice"), t0).is_ok());
        let mut attempts = attempts.into_iter();
        g.end(attempts.next().unwrap(), AttemptEnd::Failed, t0);
        assert!(g.begin(a, None, t0).is_err(), "1 failure + 2 under way");
        g.end(
            attempts.next().unwrap(),
            AttemptEnd::Succeeded("alice".into()),
            t0,
        );
        g.end(attempts.next().unwrap(), AttemptEnd::Abandoned, t0);
        // One failure counted; the success and the abandoned attempt gave their places back.
        let again = g.begin(a, None, t0).unwrap();
        let twice = g.begin(a, None, t0).unwrap();
        assert!(g.begin(a, None, t0).is_err());
        g.end(again, AttemptEnd::Failed, t0);
        g.end(twice, AttemptEnd::Failed, t0);
        assert!(g.address_blocked(a, t0));
        assert_eq!(g.begin(a, None, t0).unwrap_err(), Blocked::Address);
    }

    #[test]
    fn an_account_counts_attempts_under_way_from_strangers_only() {
        let g = guard(0, 2);
        let t0 = Instant::now();
        let home = ip("198.51.100.7");
        let first = g.begin(home, Some("alice"), t0).unwrap();
        g.end(first, AttemptEnd::Succeeded("alice".into()), t0);
        let a = g.begin(ip("192.0.2.1"), Some("alice"), t0).unwrap();
        let b = g.begin(ip("192.0.2.2"), Some("alice"), t0).unwrap();
        assert_eq!(
            g.begin(ip("192.0.2.3"), Some("alice"), t0).unwrap_err(),
            Blocked::Account
        );
        assert!(g.begin(home, Some("alice"), t0).is_ok());
        g.end(a, AttemptEnd::Abandoned, t0);
        g.end(b, AttemptEnd::Abandoned, t0);
        assert!(g.begin(ip("192.0.2.3"), Some("alice"), t0).is_ok());
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
