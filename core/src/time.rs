//! Timers as a table of deadlines.
//!
//! The core never reads a clock: every input carries `now`, and the session reports the
//! earliest armed deadline through [`crate::Output::Timeout`]. A driver waits for input or that
//! instant, whichever comes first, and then feeds [`crate::Input::Timeout`]. Keeping timers as a
//! table (rather than one future per timer) is what lets transcripts run on a virtual clock.

use std::time::Instant;

/// The timers a session can arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// No input for too long: IMAP autologout (RFC 9051 §5.4), re-armed on every byte
    /// received, or POP3's inactivity timer (RFC 1939 §3), re-armed on every complete command.
    Inactivity,
    /// No login within the pre-login time: armed when the connection opens, disarmed by a
    /// login, never re-armed, so a stranger cannot hold a connection open by trickling bytes.
    Login,
    /// A failed authentication is answered only when this expires (brute-force tarpit).
    AuthDelay,
    /// While idling, a keepalive `* OK` goes out when this expires.
    IdleKeepalive,
    /// A command has waited this long on storage: an IMAP `* OK [INPROGRESS ...]` tells the
    /// client it is still running (RFC 9585).
    Progress,
}

impl Timer {
    const ALL: [Timer; 5] = [
        Timer::Inactivity,
        Timer::Login,
        Timer::AuthDelay,
        Timer::IdleKeepalive,
        Timer::Progress,
    ];

    fn slot(self) -> usize {
        match self {
            Timer::Inactivity => 0,
            Timer::Login => 1,
            Timer::AuthDelay => 2,
            Timer::IdleKeepalive => 3,
            Timer::Progress => 4,
        }
    }
}

/// One optional deadline per [`Timer`].
#[derive(Debug, Default, Clone)]
pub(crate) struct Timers {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl Timers {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.slot()] = Some(at);
    }

    pub(crate) fn is_set(&self, timer: Timer) -> bool {
        self.deadlines[timer.slot()].is_some()
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        self.deadlines[timer.slot()] = None;
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the first timer whose deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL
            .into_iter()
            .find(|t| self.deadlines[t.slot()].is_some_and(|d| d <= now))?;
        self.clear(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn next_is_the_minimum_and_expiry_disarms() {
        #[allow(clippy::disallowed_methods)] // Any origin will do; the timers only compare.
        let t0 = Instant::now();
        let mut timers = Timers::default();
        assert_eq!(timers.next(), None);
        timers.set(Timer::Inactivity, t0 + Duration::from_secs(60));
        timers.set(Timer::AuthDelay, t0 + Duration::from_secs(2));
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(timers.pop_expired(t0 + Duration::from_secs(1)), None);
        assert_eq!(
            timers.pop_expired(t0 + Duration::from_secs(2)),
            Some(Timer::AuthDelay)
        );
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(60)));
    }
}
