//! Regression histories: each is the minimal history the model property shrank a bug to
//! (in one store or another); every backend replays them all.

use super::history::{Cmd, NewMsg};
use super::pool::{Fl, Pos};
use super::{Backend, Shape, Step};

type R = Result<(), String>;

/// Replays a pinned history with room for every connection it names.
fn replay(backend: &mut dyn Backend, steps: &[Step]) -> R {
    let shape = Shape {
        max_steps: steps.len(),
        imap: 3,
        pop3: 2,
        crash: backend.can_crash(),
    };
    super::replay(backend, &shape, steps)
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
fn exists_is_counted_after_the_expunges_sent_before_it(backend: &mut dyn Backend) -> R {
    replay(
        backend,
        &[
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
        ],
    )?;
    // The same through IDLE, with the expunge made by another session.
    replay(
        backend,
        &[
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
        ],
    )
}

/// SELECT in an IMAP4rev2 session claimed `\Recent` (later synchronisations did not), so an
/// IMAP4rev1 session selecting next saw "* 0 RECENT" and STATUS RECENT dropped to 0.
fn imap4rev2_select_leaves_recent_to_imap4rev1_sessions(backend: &mut dyn Backend) -> R {
    replay(
        backend,
        &[
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
        ],
    )
}

/// DELETE of a mailbox with children cleared its messages silently (no MODSEQ, no expunge
/// record); after CREATE of the same name, a session that still had it selected kept the
/// vanished messages for good, and HIGHESTMODSEQ did not move.
fn delete_with_children_then_create_tells_the_selected_session(backend: &mut dyn Backend) -> R {
    replay(
        backend,
        &[
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
        ],
    )
}

/// A keyword another session's STORE created reached this session first in a FETCH
/// response, its FLAGS announcement only at the end of the command (issue 14 item 2).
fn keyword_from_another_session_is_announced_before_fetch_shows_it(backend: &mut dyn Backend) -> R {
    use super::pool::{Item, StoreOp};
    replay(
        backend,
        &[
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
        ],
    )
}

/// A message another session expunged is answered to a session not yet told (RFC 2180
/// §4.1.2, issue 14 item 7); the in-memory store lost it when a later MOVE kept a second
/// expunged message out of UID order.
fn fetch_answers_messages_expunged_by_another_session(backend: &mut dyn Backend) -> R {
    use super::pool::{Item, StoreOp};
    replay(
        backend,
        &[
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
        ],
    )
}

/// A pinned history, replayed on a backend.
pub type Regression = fn(&mut dyn Backend) -> R;

/// Every pinned history, by name.
pub const ALL: &[(&str, Regression)] = &[
    (
        "exists_is_counted_after_the_expunges_sent_before_it",
        exists_is_counted_after_the_expunges_sent_before_it,
    ),
    (
        "imap4rev2_select_leaves_recent_to_imap4rev1_sessions",
        imap4rev2_select_leaves_recent_to_imap4rev1_sessions,
    ),
    (
        "delete_with_children_then_create_tells_the_selected_session",
        delete_with_children_then_create_tells_the_selected_session,
    ),
    (
        "keyword_from_another_session_is_announced_before_fetch_shows_it",
        keyword_from_another_session_is_announced_before_fetch_shows_it,
    ),
    (
        "fetch_answers_messages_expunged_by_another_session",
        fetch_answers_messages_expunged_by_another_session,
    ),
];
