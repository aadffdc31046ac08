//! Splits the IMAP input stream into complete commands, literals included, under bounds.
//!
//! Frame first, parse once: the framer only looks for line ends and literal announcements
//! (`{n}`, `{n+}`, `~{n}`), so the grammar runs exactly once per complete command however many
//! reads it arrived in. A complete command is handed out as one `Bytes` (line parts and literal
//! bodies in wire order) split off the receive buffer without copying; the parser then takes
//! literal bodies as slices of it.
//!
//! Oversized input never accumulates: a line past the limit is dropped while it is scanned
//! (only the tag is kept, to answer with), and a rejected non-synchronising literal is answered
//! as soon as it is announced and then skipped octet by octet without being stored.

use bytes::{Buf, Bytes, BytesMut};

/// Bounds the framer enforces; the session fills them from [`crate::Limits`] and the state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameLimits {
    /// Longest line part (text between literals).
    pub(crate) max_line: usize,
    /// Largest non-synchronising literal that is buffered as part of a command.
    pub(crate) max_literal: u64,
    /// Largest rejected non-synchronising literal that is skipped to stay in step.
    pub(crate) max_discard: u64,
    /// Largest complete command (line parts and literals together).
    pub(crate) max_command: u64,
    /// Whether `{n+}` is allowed beyond 4096 octets (LITERAL+ rather than LITERAL-).
    pub(crate) literal_plus: bool,
}

/// RFC 7888 §5: LITERAL- allows non-synchronising literals of at most 4096 octets.
const LITERAL_MINUS_MAX: u64 = 4096;

/// What the framer found in the buffered input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// No complete unit yet: read more.
    NeedMore,
    /// A line ended with a synchronising literal announcement `{len}` (or `~{len}`). The
    /// session must call [`Framer::accept_literal`] (and send a continuation request) or
    /// [`Framer::reject_literal`] (and answer the command) before asking for the next frame.
    LiteralAnnounced {
        len: u64,
        /// The command's size once the literal is in.
        total: u64,
        tag: Option<Bytes>,
    },
    /// A complete command, its final line end included.
    Command(Bytes),
    /// A complete line read in line mode (AUTHENTICATE responses, IDLE's DONE), without its
    /// line end.
    Line(Bytes),
    /// The command was abandoned while framing; it has been skipped entirely.
    Rejected { tag: Option<Bytes>, why: Rejection },
    /// The peer announced something so large that staying in step is not worth it.
    Hostile,
}

/// Why a command was abandoned by the framer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// A line part exceeded the line limit.
    LineTooLong,
    /// A non-synchronising literal beyond the literal limit, or a command larger than the
    /// command limit.
    TooLarge,
    /// A non-synchronising literal beyond LITERAL-'s 4096 octets: a protocol violation, which
    /// RFC 7888 §5 answers with `BAD [TOOBIG]`.
    OverLiteralMinus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Scanning a line part for its end; `line_start` is where it began in the buffer.
    Line,
    /// Taking `remaining` literal octets into the command.
    Literal { remaining: usize },
    /// A synchronising literal was announced; waiting for the session's decision.
    AwaitDecision { len: u64 },
    /// Dropping an over-long line until its end.
    SkipLine,
    /// Dropping `remaining` octets of a rejected non-synchronising literal.
    Discard { remaining: u64 },
}

/// Whether the next frame is a command (with literals) or a bare line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Command,
    Line,
}

#[derive(Debug)]
pub(crate) struct Framer {
    buf: BytesMut,
    state: State,
    /// Offset in `buf` where the current line part starts.
    line_start: usize,
    /// Offset in `buf` up to which the current line part has been searched for LF.
    scanned: usize,
    /// Set once the current command is being skipped: its tag and the reason.
    rejected: Option<(Option<Bytes>, Rejection)>,
    /// The last octets of a line being skipped, to spot a `{n+}` announcement at its end.
    skip_tail: Vec<u8>,
    /// The command being skipped has been answered already (its literal was too large).
    answered: bool,
}

/// A command larger than this leaves the input that follows it in a fresh buffer.
const FRESH_BUFFER_AFTER: usize = 64 * 1024;

/// Enough trailing octets to hold `~{4294967295+}\r\n`.
const TAIL: usize = 20;

impl Framer {
    pub(crate) fn new() -> Self {
        Framer {
            buf: BytesMut::new(),
            state: State::Line,
            line_start: 0,
            scanned: 0,
            rejected: None,
            skip_tail: Vec::new(),
            answered: false,
        }
    }

    /// Appends received octets.
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Octets held, complete or not.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Forgets everything buffered (STARTTLS: plaintext after the command must not survive).
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.reset_command();
    }

    fn reset_command(&mut self) {
        self.state = State::Line;
        self.line_start = 0;
        self.scanned = 0;
        self.rejected = None;
        self.skip_tail.clear();
        self.answered = false;
    }

    /// The tag of the command being framed, when its first octets form one. Only the first
    /// `max_line` octets are searched: that much of an over-long line is all that is buffered
    /// when it is rejected piecemeal, so the answer must not depend on how it was split (and a
    /// tag cannot exceed the line limit).
    fn current_tag(&self, max_line: usize) -> Option<Bytes> {
        let head = &self.buf[..self.buf.len().min(max_line)];
        let end = head.iter().position(|&b| !super::is_tag_char(b))?;
        (end > 0 && self.buf.get(end) == Some(&b' '))
            .then(|| Bytes::copy_from_slice(&self.buf[..end]))
    }

    /// Whether the command being framed names a command tern knows (looked at when a
    /// literal is announced: an unknown command is refused before its data is asked for).
    pub(crate) fn names_known_command(&self, max_line: usize) -> bool {
        let head = &self.buf[..self.buf.len().min(max_line)];
        let Some(space) = head.iter().position(|&b| b == b' ') else {
            return false;
        };
        let rest = head.get(space + 1..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| !super::is_atom_char(b))
            .unwrap_or(rest.len());
        super::is_command_name(rest.get(..end).unwrap_or_default())
    }

    /// Takes the session's yes to an announced synchronising literal.
    pub(crate) fn accept_literal(&mut self) {
        if let State::AwaitDecision { len } = self.state {
            // The session only accepts literals within its limit, which is far below usize::MAX.
            let remaining = usize::try_from(len).unwrap_or(usize::MAX);
            self.state = State::Literal { remaining };
        }
    }

    /// Takes the session's no to an announced synchronising literal: the client will not send
    /// it, so the command ends here (RFC 9051 §2.2.2 / RFC 7888 §4).
    pub(crate) fn reject_literal(&mut self) {
        if let State::AwaitDecision { .. } = self.state {
            self.buf.advance(self.line_start.min(self.buf.len()));
            self.reset_command();
        }
    }

    /// Looks for the next complete unit. Call repeatedly until [`Frame::NeedMore`].
    pub(crate) fn next(&mut self, mode: Mode, limits: &FrameLimits) -> Frame {
        loop {
            match self.state {
                State::AwaitDecision { len } => {
                    return Frame::LiteralAnnounced {
                        len,
                        total: self.line_start as u64 + len,
                        tag: self.current_tag(limits.max_line),
                    }
                }
                State::Literal { remaining } => {
                    let have = self.buf.len() - self.line_start;
                    if have < remaining {
                        return Frame::NeedMore;
                    }
                    self.line_start += remaining;
                    self.scanned = self.line_start;
                    self.state = State::Line;
                }
                State::Discard { remaining } => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.buf.len() - self.line_start);
                    // Discarded octets are never kept: cut them out of the buffer.
                    let tail = self.buf.split_off(self.line_start);
                    let mut tail = tail;
                    tail.advance(take);
                    self.buf.unsplit(tail);
                    let left = remaining - take as u64;
                    if left > 0 {
                        self.state = State::Discard { remaining: left };
                        return Frame::NeedMore;
                    }
                    self.scanned = self.line_start;
                    self.state = State::SkipLine;
                }
                State::SkipLine => {
                    match self.find_lf() {
                        None => {
                            self.remember_tail(self.line_start, self.buf.len());
                            self.buf.truncate(self.line_start);
                            self.scanned = self.line_start;
                            return Frame::NeedMore;
                        }
                        Some(lf) => {
                            self.remember_tail(self.line_start, lf + 1);
                            let tail = std::mem::take(&mut self.skip_tail);
                            // Drop the skipped line, keeping what follows it.
                            let rest = self.buf.split_off(lf + 1);
                            self.buf.truncate(self.line_start);
                            self.buf.unsplit(rest);
                            self.scanned = self.line_start;
                            let announcement = match mode {
                                Mode::Command => literal_announcement(&tail),
                                Mode::Line => None,
                            };
                            if let Some(ann) = announcement {
                                if ann.non_sync {
                                    if ann.len > limits.max_discard {
                                        return Frame::Hostile;
                                    }
                                    self.state = State::Discard { remaining: ann.len };
                                    continue;
                                }
                            }
                            let (tag, why) = self
                                .rejected
                                .take()
                                .unwrap_or((None, Rejection::LineTooLong));
                            let answered = self.answered;
                            self.buf.advance(self.line_start.min(self.buf.len()));
                            self.reset_command();
                            if answered {
                                continue;
                            }
                            return Frame::Rejected { tag, why };
                        }
                    }
                }
                State::Line => {
                    let Some(lf) = self.find_lf() else {
                        if self.buf.len() - self.line_start > limits.max_line {
                            self.start_skipping(Rejection::LineTooLong, limits);
                            continue;
                        }
                        self.scanned = self.buf.len();
                        return Frame::NeedMore;
                    };
                    if lf - self.line_start > limits.max_line {
                        self.start_skipping(Rejection::LineTooLong, limits);
                        continue;
                    }
                    if lf as u64 >= limits.max_command {
                        self.start_skipping(Rejection::TooLarge, limits);
                        continue;
                    }
                    let line = &self.buf[self.line_start..=lf];
                    let announcement = match mode {
                        Mode::Command => literal_announcement(line),
                        Mode::Line => None,
                    };
                    match announcement {
                        None => {
                            let end = match mode {
                                Mode::Command => lf + 1,
                                Mode::Line => strip_line_end(&self.buf[..=lf]),
                            };
                            let unit = self.buf.split_to(lf + 1).freeze();
                            if unit.len() > FRESH_BUFFER_AFTER {
                                // What remains shares the command's allocation, and would
                                // keep a large literal alive after the command is done with
                                // it: move it to a buffer of its own.
                                self.buf = BytesMut::from(&self.buf[..]);
                            }
                            self.reset_command();
                            let unit = unit.slice(..end);
                            return match mode {
                                Mode::Command => Frame::Command(unit),
                                Mode::Line => Frame::Line(unit),
                            };
                        }
                        Some(ann) => {
                            self.line_start = lf + 1;
                            self.scanned = self.line_start;
                            if !ann.non_sync {
                                self.state = State::AwaitDecision { len: ann.len };
                                continue;
                            }
                            let total = self.line_start as u64 + ann.len;
                            let over_minus = !limits.literal_plus && ann.len > LITERAL_MINUS_MAX;
                            if !over_minus
                                && ann.len <= limits.max_literal
                                && total <= limits.max_command
                            {
                                let remaining = usize::try_from(ann.len).unwrap_or(usize::MAX);
                                self.state = State::Literal { remaining };
                            } else if ann.len <= limits.max_discard {
                                // Keep only the tag's line; the literal is skipped unbuffered.
                                // The answer goes now, not once the octets are in (RFC 7888 §4
                                // allows the tagged response before the whole literal is read):
                                // a client that announced more than it will send must not wait
                                // for it.
                                let why = if over_minus {
                                    Rejection::OverLiteralMinus
                                } else {
                                    Rejection::TooLarge
                                };
                                let tag = self.current_tag(limits.max_line);
                                self.rejected = Some((tag.clone(), why));
                                self.answered = true;
                                self.state = State::Discard { remaining: ann.len };
                                return Frame::Rejected { tag, why };
                            } else {
                                return Frame::Hostile;
                            }
                        }
                    }
                }
            }
        }
    }

    fn find_lf(&self) -> Option<usize> {
        let from = self.scanned.max(self.line_start);
        self.buf
            .get(from..)?
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| from + i)
    }

    fn start_skipping(&mut self, why: Rejection, limits: &FrameLimits) {
        if self.rejected.is_none() {
            self.rejected = Some((self.current_tag(limits.max_line), why));
        }
        self.scanned = self.line_start;
        self.state = State::SkipLine;
    }

    fn remember_tail(&mut self, from: usize, to: usize) {
        let part = self.buf.get(from..to).unwrap_or_default();
        self.skip_tail.extend_from_slice(part);
        if self.skip_tail.len() > TAIL {
            let cut = self.skip_tail.len() - TAIL;
            self.skip_tail.drain(..cut);
        }
    }
}

/// Offset of the line end: before `\r\n`, or before a bare `\n` that lenient clients send.
fn strip_line_end(line: &[u8]) -> usize {
    let mut end = line.len();
    if line.get(end.wrapping_sub(1)) == Some(&b'\n') {
        end -= 1;
        if line.get(end.wrapping_sub(1)) == Some(&b'\r') {
            end -= 1;
        }
    }
    end
}

#[derive(Debug, PartialEq, Eq)]
struct Announcement {
    len: u64,
    non_sync: bool,
}

/// Recognises `{n}`, `{n+}` (and the literal8 forms `~{n}`, `~{n+}`) at the end of a line.
fn literal_announcement(line: &[u8]) -> Option<Announcement> {
    let body = line.get(..strip_line_end(line))?;
    let body = body.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let inner = body.get(open + 1..)?;
    let (digits, non_sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, true),
        None => (inner, false),
    };
    // RFC 9051 §9: number is at most 4,294,967,295; more digits than that cannot be a literal.
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(Announcement { len, non_sync })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> FrameLimits {
        FrameLimits {
            max_line: 64,
            max_literal: 1000,
            max_discard: 100_000,
            max_command: 5000,
            literal_plus: true,
        }
    }

    fn frames(f: &mut Framer, input: &[u8]) -> Vec<Frame> {
        f.push(input);
        let mut out = Vec::new();
        loop {
            match f.next(Mode::Command, &limits()) {
                Frame::NeedMore => return out,
                Frame::LiteralAnnounced { len, total, tag } => {
                    out.push(Frame::LiteralAnnounced { len, total, tag });
                    if len <= 100 {
                        f.accept_literal();
                    } else {
                        f.reject_literal();
                    }
                }
                other => out.push(other),
            }
        }
    }

    #[test]
    fn announcements() {
        assert_eq!(
            literal_announcement(b"a LOGIN {5}\r\n"),
            Some(Announcement {
                len: 5,
                non_sync: false
            })
        );
        assert_eq!(
            literal_announcement(b"a APPEND x ~{12+}\r\n"),
            Some(Announcement {
                len: 12,
                non_sync: true
            })
        );
        assert_eq!(literal_announcement(b"a NOOP\r\n"), None);
        assert_eq!(literal_announcement(b"a x {}\r\n"), None);
        assert_eq!(literal_announcement(b"a x {12345678901}\r\n"), None);
        assert_eq!(literal_announcement(b"a x {-1}\r\n"), None);
    }

    #[test]
    fn commands_split_across_reads_are_framed_once() {
        let mut f = Framer::new();
        assert!(frames(&mut f, b"a1 NO").is_empty());
        assert_eq!(
            frames(&mut f, b"OP\r\na2 LOGIN {3}\r\n"),
            vec![
                Frame::Command(Bytes::from_static(b"a1 NOOP\r\n")),
                Frame::LiteralAnnounced {
                    len: 3,
                    total: 17,
                    tag: Some(Bytes::from_static(b"a2"))
                }
            ]
        );
        assert!(frames(&mut f, b"bo").is_empty());
        assert_eq!(
            frames(&mut f, b"b {2+}\r\npw\r\n"),
            vec![Frame::Command(Bytes::from_static(
                b"a2 LOGIN {3}\r\nbob {2+}\r\npw\r\n"
            ))]
        );
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn a_literal_may_contain_line_ends() {
        let mut f = Framer::new();
        assert_eq!(
            frames(&mut f, b"t APPEND x {4+}\r\n\r\n\r\n\r\n"),
            vec![Frame::Command(Bytes::from_static(
                b"t APPEND x {4+}\r\n\r\n\r\n\r\n"
            ))]
        );
    }

    #[test]
    fn rejected_sync_literal_ends_the_command() {
        let mut f = Framer::new();
        assert_eq!(
            frames(&mut f, b"t APPEND x {5000}\r\nu NOOP\r\n"),
            vec![
                Frame::LiteralAnnounced {
                    len: 5000,
                    total: 5019,
                    tag: Some(Bytes::from_static(b"t"))
                },
                Frame::Command(Bytes::from_static(b"u NOOP\r\n")),
            ]
        );
    }

    #[test]
    fn oversized_non_sync_literal_is_skipped_without_buffering() {
        let mut f = Framer::new();
        let mut out = frames(&mut f, b"t APPEND x {5000+}\r\n");
        // Answered at once, before any of the literal arrives.
        assert_eq!(out.len(), 1);
        for _ in 0..50 {
            out.extend(frames(&mut f, &[b'x'; 100]));
            assert!(f.buffered() < 100);
        }
        out.extend(frames(&mut f, b" more\r\nu NOOP\r\n"));
        assert_eq!(
            out,
            vec![
                Frame::Rejected {
                    tag: Some(Bytes::from_static(b"t")),
                    why: Rejection::TooLarge
                },
                Frame::Command(Bytes::from_static(b"u NOOP\r\n")),
            ]
        );
    }

    #[test]
    fn literal_minus_caps_non_sync_at_4096() {
        let mut f = Framer::new();
        let lim = FrameLimits {
            literal_plus: false,
            max_literal: 10_000,
            ..limits()
        };
        f.push(b"t APPEND x {4097+}\r\n");
        assert_eq!(
            f.next(Mode::Command, &lim),
            Frame::Rejected {
                tag: Some(Bytes::from_static(b"t")),
                why: Rejection::OverLiteralMinus
            }
        );
        assert_eq!(f.next(Mode::Command, &lim), Frame::NeedMore);
        f.push(&[b'x'; 4097]);
        f.push(b" {3+}\r\nabc\r\nu NOOP\r\n");
        // The rest of the command (another literal included) is skipped without a second
        // answer.
        assert_eq!(
            f.next(Mode::Command, &lim),
            Frame::Command(Bytes::from_static(b"u NOOP\r\n"))
        );
    }

    #[test]
    fn absurd_non_sync_literal_is_hostile() {
        let mut f = Framer::new();
        assert_eq!(
            frames(&mut f, b"t APPEND x {4294967295+}\r\n"),
            vec![Frame::Hostile]
        );
    }

    #[test]
    fn long_lines_are_dropped_as_they_arrive_and_answered_at_their_end() {
        let mut f = Framer::new();
        let mut out = frames(&mut f, b"tag1 SEARCH ");
        for _ in 0..100 {
            out.extend(frames(&mut f, b"1,2,3,4,5,6,7,8,9,"));
            assert!(f.buffered() <= 64 + 18);
        }
        out.extend(frames(&mut f, b"10 {3+}\r\nabc\r\nt2 NOOP\r\n"));
        assert_eq!(
            out,
            vec![
                Frame::Rejected {
                    tag: Some(Bytes::from_static(b"tag1")),
                    why: Rejection::LineTooLong
                },
                Frame::Command(Bytes::from_static(b"t2 NOOP\r\n")),
            ]
        );
    }

    #[test]
    fn line_mode_ignores_braces_and_strips_line_end() {
        let mut f = Framer::new();
        f.push(b"dGVzdA=={5}\r\nDONE\n");
        assert_eq!(
            f.next(Mode::Line, &limits()),
            Frame::Line(Bytes::from_static(b"dGVzdA=={5}"))
        );
        assert_eq!(
            f.next(Mode::Line, &limits()),
            Frame::Line(Bytes::from_static(b"DONE"))
        );
    }
}
