//! Which expunged messages some session may still ask for.
//!
//! A session learns of another session's EXPUNGE only when it may be told (RFC 9051 §7.5.1:
//! not during FETCH, STORE or SEARCH), and until then its message numbers still include the
//! message: a FETCH of it must be answered with its data (RFC 2180 §4.1.2, as Dovecot does).
//! So a store keeps an expunged message's row and content while a session that has not been
//! told of the expunge has the mailbox selected, and lets them go afterwards.
//!
//! Each SELECT takes a [`ViewPin`] (in [`super::Snapshot`]); the session moves it forward as
//! it announces expunges, and drops it when it leaves the mailbox, however it ends. The store
//! holds only weak references ([`Pins`]), so it never keeps a view alive, and needs no
//! request to hear that a session went away. Pins live in memory: after a restart no session
//! sees anything, and a store releases everything it kept.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::ModSeq;

/// One session's view of one mailbox, as the store sees it.
#[derive(Clone)]
pub struct ViewPin(Arc<AtomicU64>);

impl ViewPin {
    /// A pin that no store watches: for views made without a store (tests).
    pub fn detached(told: ModSeq) -> ViewPin {
        ViewPin(Arc::new(AtomicU64::new(told)))
    }

    /// The session has announced every expunge up to `modseq` (or never saw the messages).
    pub fn told(&self, modseq: ModSeq) {
        self.0.fetch_max(modseq, Ordering::Relaxed);
    }
}

impl fmt::Debug for ViewPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ViewPin(told {})", self.0.load(Ordering::Relaxed))
    }
}

/// A pin is a handle, not data: two snapshots of the same state are equal whoever holds them
/// (the store equivalence property compares replies).
impl PartialEq for ViewPin {
    fn eq(&self, _: &ViewPin) -> bool {
        true
    }
}

impl Eq for ViewPin {}

/// The pins of one mailbox.
#[derive(Default)]
pub struct Pins(Vec<Weak<AtomicU64>>);

impl fmt::Debug for Pins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pins({})", self.0.len())
    }
}

impl Pins {
    /// A new pin for a view synchronised to `modseq`.
    pub fn pin(&mut self, modseq: ModSeq) -> ViewPin {
        // Pruned here too, so sessions that SELECT and leave without anything ever being
        // expunged do not grow the list.
        self.0.retain(|w| w.strong_count() > 0);
        let pin = Arc::new(AtomicU64::new(modseq));
        self.0.push(Arc::downgrade(&pin));
        ViewPin(pin)
    }

    /// The lowest MODSEQ up to which every live view has been told of expunges; `None` when
    /// no view is open. An expunge at a MODSEQ above it may still be unknown to a session.
    pub fn oldest(&mut self) -> Option<ModSeq> {
        self.0.retain(|w| w.strong_count() > 0);
        self.0
            .iter()
            .filter_map(Weak::upgrade)
            .map(|p| p.load(Ordering::Relaxed))
            .min()
    }

    /// Whether some live view may not yet know of an expunge at `modseq`.
    pub fn holds(&mut self, modseq: ModSeq) -> bool {
        self.oldest().is_some_and(|told| told < modseq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_holds_until_told_or_dropped() {
        let mut pins = Pins::default();
        assert!(!pins.holds(5));
        let a = pins.pin(3);
        let b = pins.pin(4);
        assert!(pins.holds(5));
        assert_eq!(pins.oldest(), Some(3));
        a.told(5);
        assert_eq!(pins.oldest(), Some(4));
        // Never backwards.
        a.told(1);
        drop(b);
        assert_eq!(pins.oldest(), Some(5));
        assert!(!pins.holds(5));
        drop(a);
        assert_eq!(pins.oldest(), None);
        assert_eq!(pins.0.len(), 0);
    }
}
