//! The model-based property of issue 9 on the in-memory store: generated multi-session
//! histories against the real IMAP and POP3 state machines and the reference model in
//! `tests/model/` (see its docs for what is checked, the budget and how to replay a seed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use model::{Backend, Config, Shape};
use tern_core::MemStore;

struct Mem;

impl Backend for Mem {
    type S = MemStore;

    fn fresh(&mut self) -> MemStore {
        MemStore::new()
    }

    fn set_now(store: &mut MemStore, unix: i64) {
        store.set_now(unix);
    }
}

#[test]
fn imap_histories_three_sessions() {
    model::check(
        &mut Mem,
        &Config {
            name: "imap_histories_three_sessions",
            cases: 1500,
            shape: Shape {
                max_steps: 200,
                imap: 3,
                pop3: 0,
                crash: false,
            },
        },
    );
}

#[test]
fn imap_and_pop3_histories() {
    model::check(
        &mut Mem,
        &Config {
            name: "imap_and_pop3_histories",
            cases: 1500,
            shape: Shape {
                max_steps: 200,
                imap: 2,
                pop3: 2,
                crash: false,
            },
        },
    );
}

// ------------------------------------------------------------------------------------------
// Regression histories: each is the minimal history the property shrank a bug to.

use model::history::{Cmd, NewMsg};
use model::pool::{Fl, Pos};
use model::Step;

fn replay(steps: &[Step]) {
    let shape = Shape {
        max_steps: steps.len(),
        imap: 3,
        pop3: 2,
        crash: false,
    };
    if let Err(e) = model::replay(&mut Mem, &shape, steps) {
        panic!("{e}");
    }
}

fn append(c: usize, mailbox: usize, body: usize, flags: Vec<Fl>) -> Step {
    Step::Cmd {
        c,
        cmd: Cmd::Append(
            mailbox,
            vec![NewMsg {
                body,
                flags,
                date: None,
            }],
        ),
    }
}

/// The EXISTS after a synchronisation counted messages whose EXPUNGE went out just before
/// it: "* 1 EXPUNGE" then "* 2 EXISTS" for a mailbox of one message.
#[test]
fn exists_is_counted_after_the_expunges_sent_before_it() {
    replay(&[
        Step::Open { c: 0, rev2: false },
        Step::Open { c: 1, rev2: false },
        append(0, 0, 3, vec![]),
        Step::Cmd {
            c: 0,
            cmd: Cmd::Select(0),
        },
        append(1, 0, 5, vec![]),
        Step::Cmd {
            c: 0,
            cmd: Cmd::Move {
                uid: true,
                set: vec![(Pos::At(0), Pos::At(0))],
                to: 2,
            },
        },
    ]);
    // The same through IDLE, with the expunge made by another session.
    replay(&[
        Step::Open { c: 1, rev2: false },
        Step::Open { c: 0, rev2: false },
        append(1, 0, 5, vec![Fl::Deleted]),
        Step::Cmd {
            c: 0,
            cmd: Cmd::Select(0),
        },
        Step::Cmd {
            c: 1,
            cmd: Cmd::Select(0),
        },
        Step::Cmd {
            c: 1,
            cmd: Cmd::Expunge,
        },
        append(1, 0, 2, vec![]),
        Step::Idle { c: 0 },
    ]);
}

/// SELECT in an IMAP4rev2 session claimed `\Recent` (later synchronisations did not), so an
/// IMAP4rev1 session selecting next saw "* 0 RECENT" and STATUS RECENT dropped to 0.
#[test]
fn imap4rev2_select_leaves_recent_to_imap4rev1_sessions() {
    replay(&[
        Step::Open { c: 0, rev2: false },
        append(0, 0, 2, vec![]),
        Step::Open { c: 1, rev2: true },
        Step::Cmd {
            c: 1,
            cmd: Cmd::Select(0),
        },
        Step::Cmd {
            c: 0,
            cmd: Cmd::Status(0),
        },
        Step::Cmd {
            c: 0,
            cmd: Cmd::Select(0),
        },
    ]);
}

/// DELETE of a mailbox with children cleared its messages silently (no MODSEQ, no expunge
/// record); after CREATE of the same name, a session that still had it selected kept the
/// vanished messages for good, and HIGHESTMODSEQ did not move.
#[test]
fn delete_with_children_then_create_tells_the_selected_session() {
    replay(&[
        Step::Open { c: 0, rev2: false },
        Step::Open { c: 1, rev2: false },
        Step::Cmd {
            c: 0,
            cmd: Cmd::Create(4),
        },
        append(0, 3, 0, vec![]),
        Step::Cmd {
            c: 1,
            cmd: Cmd::Select(3),
        },
        Step::Cmd {
            c: 0,
            cmd: Cmd::Delete(3),
        },
        Step::Cmd {
            c: 0,
            cmd: Cmd::Create(3),
        },
        Step::Cmd {
            c: 1,
            cmd: Cmd::Noop,
        },
        Step::Cmd {
            c: 0,
            cmd: Cmd::Status(3),
        },
    ]);
}

/// A keyword another session's STORE created reached this session first in a FETCH
/// response, its FLAGS announcement only at the end of the command (issue 14 item 2).
#[test]
fn keyword_from_another_session_is_announced_before_fetch_shows_it() {
    use model::pool::{Item, StoreOp};
    replay(&[
        Step::Open { c: 2, rev2: false },
        Step::Open { c: 0, rev2: false },
        append(0, 0, 1, vec![]),
        Step::Cmd {
            c: 2,
            cmd: Cmd::Select(0),
        },
        Step::Cmd {
            c: 0,
            cmd: Cmd::Select(0),
        },
        Step::Cmd {
            c: 0,
            cmd: Cmd::Store {
                uid: true,
                set: vec![(Pos::At(48), Pos::At(86))],
                op: StoreOp::Add,
                silent: false,
                flags: vec![Fl::Label4],
            },
        },
        Step::Cmd {
            c: 2,
            cmd: Cmd::Fetch {
                uid: true,
                set: vec![(Pos::At(195), Pos::At(21))],
                items: vec![Item::Body],
            },
        },
    ]);
}

/// A message another session expunged is answered to a session not yet told (RFC 2180
/// §4.1.2, issue 14 item 7); the in-memory store lost it when a later MOVE kept a second
/// expunged message out of UID order.
#[test]
fn fetch_answers_messages_expunged_by_another_session() {
    use model::pool::{Item, StoreOp};
    replay(&[
        Step::Open { c: 0, rev2: false },
        Step::Open { c: 1, rev2: false },
        Step::Open { c: 2, rev2: false },
        append(0, 0, 3, vec![]),
        append(2, 0, 3, vec![]),
        append(2, 0, 3, vec![]),
        Step::Cmd {
            c: 1,
            cmd: Cmd::Select(0),
        },
        Step::Cmd {
            c: 2,
            cmd: Cmd::Select(0),
        },
        Step::Cmd {
            c: 1,
            cmd: Cmd::Store {
                uid: false,
                set: vec![(Pos::At(199), Pos::At(52))],
                op: StoreOp::Add,
                silent: false,
                flags: vec![Fl::Deleted],
            },
        },
        Step::Cmd {
            c: 2,
            cmd: Cmd::Expunge,
        },
        Step::Cmd {
            c: 2,
            cmd: Cmd::Move {
                uid: false,
                set: vec![(Pos::At(2), Pos::At(2))],
                to: 0,
            },
        },
        Step::Cmd {
            c: 1,
            cmd: Cmd::Fetch {
                uid: false,
                set: vec![(Pos::At(136), Pos::At(136))],
                items: vec![Item::Uid],
            },
        },
    ]);
}
