//! The test battery every tern mail store must pass, written against the storage contract
//! ([`MailStore`]) only, so that a backend gets all of it by writing one line in its tests:
//!
//! ```ignore
//! tern_store_kit::battery!(|| std::sync::Arc::new(MyStore::new()));
//! ```
//!
//! The checks (each also a function taking a [`Backend`], for a backend that wants its own
//! test names or budgets):
//! - [`equivalence`] and [`long_history`]: random histories of requests give the same replies
//!   and the same change notices as the reference, [`SharedMemStore`] (restarts included when
//!   the backend can restart);
//! - [`import_identifiers`]: `ImportMessages` keeps given UIDVALIDITY, UIDs and UIDNEXT and
//!   refuses conflicting ones;
//! - [`header_search`]: SEARCH HEADER/BODY/TEXT finds what the evaluator finds in raw text,
//!   whatever index narrows it, before and after the backend settles ([`Backend::settle`]);
//! - [`model_histories`] and [`model_regressions`]: many IMAP and POP3 sessions over the
//!   store against a reference model of the account (crashes included when the backend can
//!   crash), see [`model`].
//!
//! A backend is anything implementing [`Backend`]: a closure making a fresh store is one; a
//! durable backend implements the trait to add its optional capabilities (restart, crash,
//! per-history configuration, settling deferred work such as indexing, an integrity check).
//!
//! This crate is test support: it panics with a report when a check fails.

// Test support: a panic is how a check reports, and the generators index their own tables.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod driven;
pub mod equivalence;
pub mod gen;
pub mod header_search;
pub mod import;
pub mod model;
pub mod objectid;

use std::sync::Arc;

use tern_core::store::MailStore;

pub use driven::Driven;
pub use equivalence::{equivalence, long_history};
pub use header_search::header_search;
pub use import::import_identifiers;
pub use model::{model_histories, model_regressions};
pub use objectid::object_ids;
pub use tern_core::store::SharedMemStore;

/// A store under test, with its optional capabilities. A closure returning a fresh store
/// (`|| Arc::new(MyStore::new())`) is a `Backend` with none of them.
pub trait Backend {
    /// A fresh, empty store. `variant` is `Some` for histories that may vary the backend's own
    /// configuration (body size thresholds, background work paused or running, …): the same
    /// value must give the same configuration, so a failing seed replays. `None`: defaults.
    fn fresh(&mut self, variant: Option<u64>) -> Arc<dyn MailStore>;

    /// Whether [`Backend::restart`] is supported (equivalence histories then include
    /// restarts).
    fn can_restart(&self) -> bool {
        false
    }

    /// A clean restart on the same storage with the same configuration: `running` (the only
    /// handle the kit has) is shut down, and the store started again on what it left.
    fn restart(&mut self, running: Arc<dyn MailStore>) -> Arc<dyn MailStore> {
        running
    }

    /// Whether [`Backend::crash`] is supported (model histories then include crashes).
    fn can_crash(&self) -> bool {
        false
    }

    /// The process dies at this moment, nothing flushed on the way out (what `kill -9`
    /// leaves), and starts again on what it left. `running` is the only handle the kit has.
    fn crash(&mut self, running: Arc<dyn MailStore>) -> Arc<dyn MailStore> {
        running
    }

    /// Does the store's deferred work for an account now, as enough idle time would (the SQLite
    /// store indexes every body its background indexer has queued and reclaims unreferenced
    /// ones). Replies must not depend on it: the kit runs searches both before and after
    /// settling, so that an index's path is compared as well as the path for what it does not
    /// cover yet (histories end long before a background indexer would start on its own). The
    /// default, for a store with no deferred work, does nothing.
    fn settle(&mut self, account: &str) {
        let _ = account;
    }

    /// A consistency check of the backend's own storage for an account (database integrity,
    /// index against content), run at the end of equivalence histories.
    fn check(&mut self, account: &str) -> Result<(), String> {
        let _ = account;
        Ok(())
    }

    /// Every how many model steps the store's whole content is compared with the model
    /// (probing costs more than steps on a slow store); 0 only at the end and after crashes.
    fn probe_every(&self) -> usize {
        1
    }

    /// Histories per model-history check: fewer for a slow backend (durable commits), more
    /// for one in memory.
    fn model_cases(&self) -> u64 {
        150
    }
}

impl<F, S> Backend for F
where
    F: FnMut() -> Arc<S>,
    S: MailStore + 'static,
{
    fn fresh(&mut self, _variant: Option<u64>) -> Arc<dyn MailStore> {
        self()
    }
}

/// The reference every answer is compared with.
pub fn reference() -> Arc<dyn MailStore> {
    Arc::new(SharedMemStore::new())
}

/// One `#[test]` per check of the battery for `$backend` (an expression giving a
/// [`Backend`], evaluated once per test), named `store_kit_*`.
#[macro_export]
macro_rules! battery {
    ($backend:expr) => {
        #[test]
        fn store_kit_equivalence() {
            let mut backend = $backend;
            $crate::equivalence(&mut backend);
        }

        #[test]
        fn store_kit_long_history() {
            let mut backend = $backend;
            $crate::long_history(&mut backend);
        }

        #[test]
        fn store_kit_import_identifiers() {
            let mut backend = $backend;
            $crate::import_identifiers(&mut backend);
        }

        #[test]
        fn store_kit_object_ids() {
            let mut backend = $backend;
            $crate::object_ids(&mut backend);
        }

        #[test]
        fn store_kit_header_search() {
            let mut backend = $backend;
            $crate::header_search(&mut backend);
        }

        #[test]
        fn store_kit_model_imap_histories() {
            let mut backend = $backend;
            $crate::model_histories(&mut backend, $crate::model::Sessions::Imap);
        }

        #[test]
        fn store_kit_model_imap_and_pop3_histories() {
            let mut backend = $backend;
            $crate::model_histories(&mut backend, $crate::model::Sessions::ImapAndPop3);
        }

        #[test]
        fn store_kit_model_regressions() {
            let mut backend = $backend;
            $crate::model_regressions(&mut backend);
        }
    };
}
