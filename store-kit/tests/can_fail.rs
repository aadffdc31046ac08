//! The battery can fail: stores with one deliberate defect each must be caught by the checks
//! that claim to cover it. A kit that passes a broken store guards nothing.

use std::sync::Arc;

use tern_core::mail::flags::Flag;
use tern_core::store::query::Query;
use tern_core::store::threading::Thread;
use tern_core::store::{
    ChangeSink, EmailId, MailStore, SharedMemStore, StorageOp, StorageReply, ThreadId,
};
use tern_core::StorageResult;
use tern_store_kit::model::{self, history, Shape};
use tern_store_kit::{equivalence, header_search, object_ids};

/// The reference store with one defect.
struct Faulty {
    inner: SharedMemStore,
    defect: Defect,
}

#[derive(Clone, Copy)]
enum Defect {
    /// STORE silently leaves `\Flagged` out.
    DropsFlagged,
    /// SEARCH with a text criterion finds nothing (an index that lost its entries).
    LosesTextMatches,
    /// EMAILID is the message's place (mailbox and UID), so COPY and MOVE change it.
    EmailIdByPlace,
    /// Every message is a conversation of its own (THREADID is the EMAILID's number).
    NoThreads,
    /// Keeps the tombstones of expunged UIDs for three MODSEQs only: a client resynchronising
    /// from further back never hears of the older expunges (RFC 7162 §3.2.5.1).
    PrunesTombstones,
    /// THREAD answers every message as a thread of its own (no subject merging).
    FlatThreads,
    /// Runs a write held to a quota as if there were none (RFC 9208 never enforced).
    IgnoresQuota,
}

impl Faulty {
    fn new(defect: Defect) -> Arc<Faulty> {
        Arc::new(Faulty {
            inner: SharedMemStore::new(),
            defect,
        })
    }
}

impl MailStore for Faulty {
    fn execute(&self, mut op: StorageOp, now: i64, abandoned: &dyn Fn() -> bool) -> StorageResult {
        if matches!(self.defect, Defect::IgnoresQuota) {
            op = unwrap_quota(op);
        }
        // The session sends a STORE joined by its synchronisation: the defect hides inside.
        let target = match &mut op {
            StorageOp::Then { first, .. } => &mut **first,
            other => other,
        };
        match (self.defect, target) {
            (Defect::DropsFlagged, StorageOp::SetFlags { flags, .. }) => {
                flags.retain(|f| *f != Flag::Flagged);
            }
            (
                Defect::LosesTextMatches,
                StorageOp::Search {
                    query: Query::Text(_) | Query::Body(_) | Query::Header(..),
                    ..
                },
            ) => return Ok(StorageReply::Found(Vec::new())),
            _ => {}
        }
        let mailbox = match &op {
            StorageOp::Fetch { mailbox, .. } => mailbox.0,
            _ => 0,
        };
        let since = match &op {
            StorageOp::Changes { since, .. } => Some(*since),
            _ => None,
        };
        let mut reply = self.inner.execute(op, now, abandoned);
        if let Ok(StorageReply::Fetched(messages)) = &mut reply {
            for m in messages {
                match self.defect {
                    Defect::EmailIdByPlace => {
                        m.email_id = EmailId(mailbox * 1_000_000 + u64::from(m.uid));
                    }
                    Defect::NoThreads => m.thread_id = ThreadId(m.email_id.0),
                    _ => {}
                }
            }
        }
        if let (Defect::FlatThreads, Ok(StorageReply::Threads(threads))) = (self.defect, &mut reply)
        {
            let mut flat = Vec::new();
            let mut stack: Vec<Thread> = std::mem::take(threads);
            while let Some(t) = stack.pop() {
                stack.extend(t.children);
                flat.extend(t.uid.map(|uid| Thread {
                    uid: Some(uid),
                    children: Vec::new(),
                }));
            }
            flat.sort_by_key(|t| t.uid);
            *threads = flat;
        }
        if let (Defect::PrunesTombstones, Some(since), Ok(StorageReply::Changes(c))) =
            (self.defect, since, &mut reply)
        {
            if since.saturating_add(3) < c.highest_modseq {
                c.expunged.clear();
            }
        }
        reply
    }

    fn subscribe(&self, sink: Arc<dyn ChangeSink>) {
        self.inner.subscribe(sink);
    }
}

/// `op` with every [`StorageOp::WithinQuota`] taken off.
fn unwrap_quota(op: StorageOp) -> StorageOp {
    match op {
        StorageOp::WithinQuota { op, .. } => *op,
        StorageOp::Then { first, then } => StorageOp::Then {
            first: Box::new(unwrap_quota(*first)),
            then,
        },
        op => op,
    }
}

#[test]
fn equivalence_catches_a_store_that_ignores_quotas() {
    let mut backend = || Faulty::new(Defect::IgnoresQuota);
    let result = equivalence::check(&mut backend, 60, 120);
    let Err(report) = result else {
        panic!("a store that ignores quotas passed the equivalence check");
    };
    assert!(report.contains("OverQuota"), "{report}");
}

#[test]
fn equivalence_catches_a_dropped_flag() {
    let mut backend = || Faulty::new(Defect::DropsFlagged);
    let result = equivalence::check(&mut backend, 60, 120);
    let Err(report) = result else {
        panic!("a store that drops \\Flagged passed the equivalence check");
    };
    assert!(report.contains("differ"), "{report}");
}

#[test]
fn equivalence_of_the_reference_with_itself_passes() {
    let mut backend = || Arc::new(SharedMemStore::new());
    equivalence::check(&mut backend, 5, 120).unwrap();
}

#[test]
fn header_search_catches_lost_text_matches() {
    let mut backend = || Faulty::new(Defect::LosesTextMatches);
    let result = header_search::check(&mut backend, 200);
    let Err(report) = result else {
        panic!("a store whose SEARCH loses text matches passed the header search check");
    };
    assert!(report.contains("backend []"), "{report}");
}

#[test]
fn model_histories_catch_a_dropped_flag() {
    let mut backend = || Faulty::new(Defect::DropsFlagged);
    let shape = Shape {
        max_steps: 200,
        imap: 3,
        pop3: 0,
        crash: false,
    };
    let caught = (0..100u64).find_map(|seed| {
        let steps = history::generate(seed, &shape);
        model::run(&mut backend, &shape, &steps).0.err()
    });
    assert!(
        caught.is_some(),
        "100 model histories passed a store that drops \\Flagged"
    );
}

/// The model threads what it found (RFC 5256 §4): a store that never merges a reply into
/// the thread of its subject ("Re: Lunch plans" under "Lunch plans") is caught.
#[test]
fn model_histories_catch_unthreaded_replies() {
    let mut backend = || Faulty::new(Defect::FlatThreads);
    let shape = Shape {
        max_steps: 200,
        imap: 3,
        pop3: 0,
        crash: false,
    };
    let caught = (0..100u64).find_map(|seed| {
        let steps = history::generate(seed, &shape);
        model::run(&mut backend, &shape, &steps).0.err()
    });
    let report = caught.expect("100 model histories passed a store that never threads replies");
    assert!(report.contains("THREAD"), "{report}");
}

#[test]
fn model_histories_catch_forgotten_expunges_through_qresync() {
    let mut backend = || Faulty::new(Defect::PrunesTombstones);
    let shape = Shape {
        max_steps: 200,
        imap: 3,
        pop3: 0,
        crash: false,
    };
    let caught = (0..100u64).find_map(|seed| {
        let steps = history::generate(seed, &shape);
        model::run(&mut backend, &shape, &steps).0.err()
    });
    let Some(why) = caught else {
        panic!("100 model histories passed a store that forgets old expunges");
    };
    assert!(why.contains("QRESYNC"), "{why}");
}

/// Claims to restart and crash but comes back empty: what a store that acknowledges writes
/// before they are durable looks like after a crash.
struct Amnesiac;

impl tern_store_kit::Backend for Amnesiac {
    fn fresh(&mut self, _variant: Option<u64>) -> Arc<dyn MailStore> {
        Arc::new(SharedMemStore::new())
    }

    fn can_restart(&self) -> bool {
        true
    }

    fn restart(&mut self, _running: Arc<dyn MailStore>) -> Arc<dyn MailStore> {
        Arc::new(SharedMemStore::new())
    }

    fn can_crash(&self) -> bool {
        true
    }

    fn crash(&mut self, _running: Arc<dyn MailStore>) -> Arc<dyn MailStore> {
        Arc::new(SharedMemStore::new())
    }
}

#[test]
fn equivalence_catches_a_store_that_forgets_across_restarts() {
    let result = equivalence::check(&mut Amnesiac, 60, 120);
    assert!(
        result.is_err(),
        "a store that comes back empty after a restart passed the equivalence check"
    );
}

#[test]
fn model_histories_catch_a_store_that_forgets_across_crashes() {
    let shape = Shape {
        max_steps: 200,
        imap: 2,
        pop3: 1,
        crash: true,
    };
    let caught = (0..100u64).find_map(|seed| {
        let steps = history::generate(seed, &shape);
        model::run(&mut Amnesiac, &shape, &steps).0.err()
    });
    let Some(report) = caught else {
        panic!("100 model histories with crashes passed a store that forgets everything");
    };
    assert!(report.contains("Crash"), "{report}");
}

#[test]
fn object_ids_catch_identifiers_that_do_not_follow_their_messages() {
    for defect in [Defect::EmailIdByPlace, Defect::NoThreads] {
        let mut backend = || Faulty::new(defect);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            object_ids(&mut backend);
        }));
        assert!(
            caught.is_err(),
            "a store with a defect passed the object id check"
        );
    }
}

#[test]
fn equivalence_catches_lost_conversations() {
    let mut backend = || Faulty::new(Defect::NoThreads);
    assert!(
        equivalence::check(&mut backend, 60, 120).is_err(),
        "a store that threads nothing passed the equivalence check"
    );
}
