//! The ordered queue of what a session wants the driver to do.

use std::collections::VecDeque;

use bytes::BytesMut;

use crate::session::Output;

/// Response bytes and actions, in the order they must happen: bytes written before an action
/// (say, the OK before a TLS upgrade) are handed out before it.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: VecDeque<Pending>,
}

#[derive(Debug)]
enum Pending {
    Bytes(BytesMut),
    Action(Output),
}

impl Outbox {
    /// The buffer to append response bytes to; consecutive writes coalesce into one transmit.
    pub(crate) fn bytes(&mut self) -> &mut BytesMut {
        if !matches!(self.queue.back(), Some(Pending::Bytes(_))) {
            self.queue
                .push_back(Pending::Bytes(BytesMut::with_capacity(256)));
        }
        match self.queue.back_mut() {
            Some(Pending::Bytes(buf)) => buf,
            // Just ensured the back is a byte buffer.
            _ => unreachable!("outbox back is a byte buffer"),
        }
    }

    /// Queues an action after everything written so far.
    pub(crate) fn push(&mut self, action: Output) {
        self.queue.push_back(Pending::Action(action));
    }

    /// The next output, oldest first.
    /// What a session's `poll_output` answers: the next queued output, else `Close` once the
    /// session is closed or has no timer left, else a wait until its next timer.
    pub(crate) fn next(&mut self, closed: bool, timer: Option<std::time::Instant>) -> Output {
        if let Some(out) = self.pop() {
            return out;
        }
        match timer {
            Some(at) if !closed => Output::Timeout(at),
            _ => Output::Close,
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Output> {
        loop {
            match self.queue.pop_front()? {
                Pending::Bytes(buf) if buf.is_empty() => continue,
                Pending::Bytes(buf) => return Some(Output::Transmit(buf.freeze())),
                Pending::Action(action) => return Some(action),
            }
        }
    }
}
