//! Authentication policy shared by the IMAP and POP3 sessions.

use std::time::Duration;

use crate::limits::Limits;

/// Counts failed authentications on one connection and prices the next one.
#[derive(Debug, Default)]
pub(crate) struct FailureCounter {
    failures: u32,
}

impl FailureCounter {
    /// Records a failure and returns how long to wait before answering it: the configured delay,
    /// doubled for each earlier failure on this connection (capped so it stays finite).
    pub(crate) fn record(&mut self, limits: &Limits) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(6);
        limits.auth_failure_delay.saturating_mul(1 << doublings)
    }

    /// Whether the connection has used up its attempts.
    pub(crate) fn exhausted(&self, limits: &Limits) -> bool {
        self.failures >= limits.max_auth_failures
    }
}

/// Whether a mechanism that reveals the password may be used on this connection.
pub(crate) fn plaintext_allowed(tls_active: bool, without_tls: bool) -> bool {
    tls_active || without_tls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_and_attempts_run_out() {
        let limits = Limits::default();
        let mut c = FailureCounter::default();
        assert_eq!(c.record(&limits), Duration::from_secs(2));
        assert_eq!(c.record(&limits), Duration::from_secs(4));
        assert!(!c.exhausted(&limits));
        assert_eq!(c.record(&limits), Duration::from_secs(8));
        assert!(c.exhausted(&limits));
    }
}
