//! [UID] THREAD (RFC 5256 §4; REFS as Dovecot has it): the search as SORT runs it (charset mandatory), the threads
//! built by the store ([`crate::store::threading`]), numbers given as UIDs or sequence
//! numbers.

use super::{Finish, ImapSession, Pending as SessionPending};
use crate::imap::command::{SearchProgram, Tag};
use crate::imap::response::{Data, Response, ThreadNode};
use crate::imap::types::ThreadAlgorithm;
use crate::store::threading::{Algorithm, Thread};
use crate::store::{StorageOp, StorageReply, StorageResult, Uid};

#[derive(Debug)]
pub(super) struct Pending {
    tag: Tag,
    uid: bool,
}

impl ImapSession {
    pub(super) fn thread(
        &mut self,
        tag: Tag,
        uid: bool,
        algorithm: &ThreadAlgorithm,
        program: SearchProgram,
    ) {
        let algorithm = match algorithm {
            ThreadAlgorithm::OrderedSubject => Algorithm::OrderedSubject,
            ThreadAlgorithm::References => Algorithm::References,
            ThreadAlgorithm::Other(name) if name.eq_ignore_ascii_case(b"REFS") => Algorithm::Refs,
            // RFC 5256 §3: "BAD - command unknown or arguments invalid", as Dovecot answers.
            ThreadAlgorithm::Other(_) => {
                return self.bad(Some(tag), None, "Unknown thread algorithm.");
            }
        };
        let Some((query, _)) = self.search_query(&tag, None, &program, true) else {
            return;
        };
        let Some(view) = self.selected_view() else {
            return;
        };
        let op = StorageOp::Thread {
            account: self.account_name().unwrap_or_default(),
            mailbox: view.id,
            uids: view.uids.to_vec(),
            query,
            algorithm,
        };
        self.request(op, SessionPending::Thread(Pending { tag, uid }));
    }

    pub(super) fn thread_reply(&mut self, p: Pending, reply: StorageResult) {
        let threads = match reply {
            Ok(StorageReply::Threads(threads)) => threads,
            Err(e) => return self.storage_failed(p.tag, &e),
            Ok(_) => return self.unexpected(p.tag),
        };
        let Some(view) = self.selected_view() else {
            return;
        };
        let number = |u: Uid| if p.uid { Some(u) } else { view.seq(u) };
        let nodes = threads.iter().flat_map(|t| node(t, &number)).collect();
        self.send(Response::Data(Data::Thread(nodes)));
        self.finish(Finish::ok(p.tag, "THREAD completed.").no_expunge());
    }
}

/// A thread as the response gives it. The store threads only messages of the view, so every
/// UID has a number; one that had none would leave its replies in its place. The recursion is
/// as deep as the tree, which [`crate::store::threading::MAX_DEPTH`] bounds.
fn node(t: &Thread, number: &dyn Fn(Uid) -> Option<u32>) -> Vec<ThreadNode> {
    let children = t.children.iter().flat_map(|c| node(c, number)).collect();
    match t.uid.map(number) {
        Some(None) => children,
        Some(seq) => vec![ThreadNode { seq, children }],
        None => vec![ThreadNode {
            seq: None,
            children,
        }],
    }
}
