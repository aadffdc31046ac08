//! Store size per account for the metrics (`tern_account_messages`, `tern_account_octets`),
//! without reading every account at every scrape.
//!
//! The figures are kept between scrapes. An account is read again
//! ([`StorageOp::Usage`], which a store answers from the totals its mailboxes keep) only
//! when the store has announced a change in it since ([`ChangeSink`]), and accounts of the
//! directory not read yet are read a few per scrape, so after a restart every account shows
//! its stored size within a few scrapes (as `doveadm quota get` reads stored usage, never
//! counting messages). Each scrape reads at most [`READS_PER_SCRAPE`] accounts and stops
//! after [`SCRAPE_BUDGET`]; what is left waits for the next scrape, showing its last figure
//! meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tern_core::store::{AccountUsage, ChangeSink, Changed, MailStore};
use tern_core::{StorageOp, StorageReply};

/// Accounts read in one scrape at most: opening an account database that is closed costs
/// milliseconds.
pub const READS_PER_SCRAPE: usize = 256;
/// Time one scrape spends reading accounts at most (the scrape itself must end within the
/// metrics listener's 5 s).
pub const SCRAPE_BUDGET: Duration = Duration::from_secs(1);

/// The figures, and which of them are out of date.
#[derive(Debug, Default)]
pub struct AccountSizes {
    state: Mutex<State>,
    /// One refresh at a time: two scrapes at once would read the same accounts twice.
    refreshing: Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    known: HashMap<String, AccountUsage>,
    /// Changed since last read (or never read though something changed).
    stale: BTreeSet<String>,
}

impl ChangeSink for AccountSizes {
    fn changed(&self, change: &Changed) {
        self.state().stale.insert(change.account.clone());
    }
}

impl AccountSizes {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads what changed, then accounts of `accounts` (the directory's) not read yet,
    /// within the bounds; returns every figure known, by account name.
    pub fn refresh(
        &self,
        store: &dyn MailStore,
        accounts: impl IntoIterator<Item = String>,
        now: i64,
    ) -> Vec<(String, AccountUsage)> {
        let _one = self
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let started = Instant::now();
        let todo: Vec<String> = {
            let state = self.state();
            let mut todo: Vec<String> = state.stale.iter().cloned().collect();
            let unread = accounts
                .into_iter()
                .filter(|a| !state.known.contains_key(a) && !state.stale.contains(a));
            todo.extend(unread);
            todo.truncate(READS_PER_SCRAPE);
            todo
        };
        for account in todo {
            if started.elapsed() >= SCRAPE_BUDGET {
                break;
            }
            // Unmarked before the read: a change committed during it marks it again.
            self.state().stale.remove(&account);
            let op = StorageOp::Usage {
                account: account.clone(),
            };
            match store.execute(op, now, &|| false) {
                Ok(StorageReply::Usage(usage)) => {
                    self.state().known.insert(account, usage);
                }
                // Tried again at the next scrape; the last figure stands meanwhile.
                Ok(_) | Err(_) => {
                    tracing::debug!(%account, "account size not read");
                    self.state().stale.insert(account);
                }
            }
        }
        let mut figures: Vec<(String, AccountUsage)> = self
            .state()
            .known
            .iter()
            .map(|(a, u)| (a.clone(), *u))
            .collect();
        figures.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        figures
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use bytes::Bytes;
    use tern_core::store::{NewMessage, SharedMemStore};
    use tern_core::StorageResult;

    use super::*;

    /// Counts the usage requests that reach the store.
    struct Counting {
        inner: SharedMemStore,
        reads: AtomicUsize,
    }

    impl MailStore for Counting {
        fn execute(&self, op: StorageOp, now: i64, a: &dyn Fn() -> bool) -> StorageResult {
            if matches!(op, StorageOp::Usage { .. }) {
                self.reads.fetch_add(1, Ordering::SeqCst);
            }
            self.inner.execute(op, now, a)
        }
        fn subscribe(&self, sink: Arc<dyn ChangeSink>) {
            self.inner.subscribe(sink);
        }
    }

    fn append(store: &Counting, account: &str, data: &'static [u8]) {
        let op = StorageOp::Append {
            account: account.into(),
            name: "INBOX".into(),
            messages: vec![NewMessage {
                flags: Vec::new(),
                internal_date: None,
                data: Bytes::from_static(data),
            }],
        };
        store.execute(op, 0, &|| false).unwrap();
    }

    #[test]
    fn only_changed_and_unread_accounts_are_read() {
        let store = Counting {
            inner: SharedMemStore::new(),
            reads: AtomicUsize::new(0),
        };
        let sizes = Arc::new(AccountSizes::default());
        store.subscribe(sizes.clone());
        append(&store, "alice", b"Subject: a\r\n\r\n12345\r\n");
        let names = || ["alice".to_string(), "bob".to_string()];
        let figures = sizes.refresh(&store, names(), 0);
        assert_eq!(
            figures,
            vec![
                (
                    "alice".to_string(),
                    AccountUsage {
                        messages: 1,
                        octets: 21
                    }
                ),
                ("bob".to_string(), AccountUsage::default()),
            ]
        );
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);
        // Nothing changed: nothing is read again.
        assert_eq!(sizes.refresh(&store, names(), 0), figures);
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);
        // A change in bob's account: only bob's is read.
        append(&store, "bob", b"x\r\n");
        let figures = sizes.refresh(&store, names(), 0);
        assert_eq!(store.reads.load(Ordering::SeqCst), 3);
        assert_eq!(
            figures[1].1,
            AccountUsage {
                messages: 1,
                octets: 3
            }
        );
    }

    #[test]
    fn a_scrape_reads_a_bounded_number_of_accounts() {
        let store = Counting {
            inner: SharedMemStore::new(),
            reads: AtomicUsize::new(0),
        };
        let sizes = AccountSizes::default();
        let names: Vec<String> = (0..READS_PER_SCRAPE + 10)
            .map(|i| format!("user{i:04}"))
            .collect();
        assert_eq!(
            sizes.refresh(&store, names.clone(), 0).len(),
            READS_PER_SCRAPE
        );
        assert_eq!(sizes.refresh(&store, names, 0).len(), READS_PER_SCRAPE + 10);
        assert_eq!(store.reads.load(Ordering::SeqCst), READS_PER_SCRAPE + 10);
    }
}
