//! A fixed set of threads for password checks, with a bounded queue in front.
//!
//! A password check is deliberately expensive: argon2id with the default parameters takes tens
//! of milliseconds and 19 MiB. Run on a pool that grows with demand (smol's blocking pool),
//! a burst of simultaneous wrong logins became hundreds of threads each holding a hash's
//! memory, and the allocator kept it afterwards (8.8 GB after five bursts of 200 before this
//! module existed). Here at most `threads` checks run at once, each thread keeps one
//! [`HashScratch`] that it reuses for every check, and at most `queue` more wait; a check
//! beyond that is refused at once with [`Busy`], which the login answers as a temporary
//! failure. Memory for hashing is therefore bounded by `threads` × the largest configured
//! hash's memory, whatever arrives, and is allocated once instead of per login.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::passwords::HashScratch;

/// The queue is full: the check was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks are waiting")]
pub struct Busy;

type Job = Box<dyn FnOnce(&mut HashScratch) + Send>;

/// The pool; dropping it lets its threads finish the queued checks and end.
#[derive(Debug)]
pub struct CheckPool {
    jobs: smol::channel::Sender<Job>,
    /// Checks queued or running, for tests and logs.
    pending: Arc<AtomicUsize>,
    threads: usize,
}

impl CheckPool {
    /// Starts `threads` checking threads (at least one) with room for `queue` waiting checks.
    pub fn new(threads: usize, queue: usize) -> CheckPool {
        let threads = threads.max(1);
        // The channel holds the waiting checks only: each thread has taken its own out.
        let (tx, rx) = smol::channel::bounded::<Job>(queue.max(1));
        let pending = Arc::new(AtomicUsize::new(0));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("tern-auth-{i}"))
                .spawn(move || {
                    let mut scratch = HashScratch::default();
                    while let Ok(job) = rx.recv_blocking() {
                        job(&mut scratch);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-check thread");
            }
        }
        CheckPool {
            jobs: tx,
            pending,
            threads,
        }
    }

    /// How many checks may run at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Checks queued or running now.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Queues `check`; its result arrives through the returned future. Refused at once with
    /// [`Busy`] when the queue is full. If the pool has no thread left (none could be
    /// started), the future resolves to `None`.
    pub fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce(&mut HashScratch) -> T + Send + 'static,
    ) -> Result<impl std::future::Future<Output = Option<T>>, Busy> {
        let (tx, rx) = smol::channel::bounded(1);
        let pending = self.pending.clone();
        pending.fetch_add(1, Ordering::Relaxed);
        let job: Job = Box::new(move |scratch| {
            let result = check(scratch);
            pending.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.try_send(result);
        });
        if self.jobs.try_send(job).is_err() {
            // The job was handed back and dropped unrun.
            self.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(Busy);
        }
        Ok(async move { rx.recv().await.ok() })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn at_most_threads_run_and_at_most_queue_wait() {
        let pool = CheckPool::new(2, 3);
        let (release, held) = smol::channel::unbounded::<()>();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let submit = || {
            let (held, running, most) = (held.clone(), running.clone(), most.clone());
            pool.run(move |_| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _ = held.recv_blocking();
                running.fetch_sub(1, Ordering::SeqCst);
                7
            })
        };
        let mut accepted: Vec<_> = (0..2).map(|_| submit().unwrap()).collect();
        // Both threads have taken a check and are held: the queue is empty again.
        while !pool.jobs.is_empty() || running.load(Ordering::SeqCst) < 2 {
            std::thread::yield_now();
        }
        let later: Vec<_> = (0..8).map(|_| submit()).collect();
        let refused = later.iter().filter(|r| r.is_err()).count();
        accepted.extend(later.into_iter().flatten());
        // Two running plus three waiting; the other five were refused at once.
        assert_eq!((accepted.len(), refused), (5, 5));
        assert_eq!(pool.pending(), 5);
        for _ in 0..5 {
            release.try_send(()).unwrap();
        }
        for f in accepted {
            assert_eq!(smol::block_on(f), Some(7));
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(pool.pending(), 0);
    }

    #[test]
    fn the_scratch_is_kept_between_checks() {
        let pool = CheckPool::new(1, 4);
        let first = pool
            .run(|scratch| {
                let secret = crate::passwords::StoredSecret::parse(
                    &crate::directory::hash_password(b"pw").unwrap(),
                )
                .unwrap();
                (secret.verify_with(b"pw", scratch), scratch.len_bytes())
            })
            .unwrap();
        let (ok, held) = smol::block_on(first).unwrap();
        assert!(ok);
        // argon2id's default: 19 MiB of 1 KiB blocks.
        assert_eq!(held, 19 * 1024 * 1024);
        let second = pool.run(|scratch| scratch.len_bytes()).unwrap();
        assert_eq!(smol::block_on(second), Some(19 * 1024 * 1024));
    }
}
