//! Message octets as storage hands them out: in memory, or a handle a driver reads from in
//! bounded pieces, so that sending a large message never needs it whole in memory.
//!
//! The session never reads a [`BodySource`] to send it: it emits an [`crate::Output::TransmitBody`]
//! naming the source and a range, and the driver copies that range to the peer a chunk at a
//! time (through the [`BodyStream`] transform, which adds POP3's byte-stuffing). The session
//! reads a source itself only for what it must transform whole, and then only the part
//! concerned (a header for `HEADER.FIELDS`, a part for `BINARY` decoding).

use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

/// Octets a driver reads at offsets, like a file opened for reading. A source must keep
/// answering with the same octets for as long as it lives (a file that is unlinked meanwhile
/// stays readable through an open handle).
pub trait BodySource: Send + Sync + fmt::Debug {
    /// The total length.
    fn len(&self) -> u64;

    /// Whether it is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads into `buf` from `offset`; returns how many octets were read (0 only at or past
    /// the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

impl BodySource for Bytes {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let rest = usize::try_from(offset)
            .ok()
            .and_then(|o| self.get(o..))
            .unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(rest.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// The first `len` octets of a source.
#[derive(Debug)]
struct Prefix {
    source: Arc<dyn BodySource>,
    len: u64,
}

impl BodySource for Prefix {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.len.saturating_sub(offset)).unwrap_or(usize::MAX);
        let n = left.min(buf.len());
        self.source
            .read_at(offset, buf.get_mut(..n).unwrap_or_default())
    }
}

/// A message's octets.
#[derive(Clone)]
pub enum Body {
    /// In memory (small bodies, the in-memory store).
    Inline(Bytes),
    /// Read on demand.
    Source(Arc<dyn BodySource>),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Inline(b) => write!(f, "Inline({} octets)", b.len()),
            Body::Source(s) => write!(f, "Source({} octets)", s.len()),
        }
    }
}

/// Equal octets, however held (reading a source to compare it; a failed read is unequal).
impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        match (self, other) {
            (Body::Inline(a), Body::Inline(b)) => a == b,
            _ => match (self.to_bytes(), other.to_bytes()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            },
        }
    }
}

impl Eq for Body {}

impl Default for Body {
    fn default() -> Body {
        Body::Inline(Bytes::new())
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body::Inline(b)
    }
}

impl Body {
    /// The body cut after its header (`root.header.end`, the analysed message's top part),
    /// for a FETCH that needs only header octets ([`super::FetchWant::header_only`]). Nothing
    /// is read: a body read on demand becomes a shorter view of the same source.
    pub fn header_only(self, root: &crate::mail::analyze::Part) -> Body {
        let end = root.header.end;
        match self {
            Body::Inline(b) => Body::Inline(b.slice(..end.min(b.len()))),
            Body::Source(source) => Body::Source(Arc::new(Prefix {
                len: (end as u64).min(source.len()),
                source,
            })),
        }
    }

    /// The length in octets.
    pub fn len(&self) -> u64 {
        match self {
            Body::Inline(b) => b.len() as u64,
            Body::Source(s) => s.len(),
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The octets in `range` (clamped to the body), read from a source if need be. Only for
    /// what is needed whole anyway: everything else is sent with a [`BodyStream`].
    pub fn read_range(&self, range: Range<u64>) -> io::Result<Bytes> {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        match self {
            Body::Inline(b) => Ok(b.slice(start as usize..end as usize)),
            Body::Source(s) => {
                let want = usize::try_from(end - start)
                    .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "range too large"))?;
                let mut buf = vec![0u8; want];
                let mut got = 0;
                while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
                    let n = s.read_at(start + got as u64, rest)?;
                    if n == 0 {
                        return Err(short_read());
                    }
                    got += n;
                }
                Ok(Bytes::from(buf))
            }
        }
    }

    /// All the octets (tests, and stores comparing bodies).
    pub fn to_bytes(&self) -> io::Result<Bytes> {
        self.read_range(0..self.len())
    }
}

fn short_read() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "message body shorter than stored",
    )
}

/// How the octets of a [`BodyStream`] go on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// As they are (an IMAP literal, whose prefix the session has sent).
    Verbatim,
    /// A POP3 multi-line response body (RFC 1939 §3): byte-stuffed, the last line ended, the
    /// terminating `.` line added; for TOP, only the header and the first lines of the body.
    Pop3(DotStuffer),
}

/// A range of a body to send, chunk by chunk: the driver asks [`BodyStream::next_read`] what to
/// read, hands the octets to [`BodyStream::consume`], and writes what that produced, until
/// `next_read` says it is done; then [`BodyStream::finish`] gives the last octets.
#[derive(Clone, Debug)]
pub struct BodyStream {
    source: Arc<dyn BodySource>,
    /// What is still to read.
    range: Range<u64>,
    transfer: Transfer,
}

impl BodyStream {
    /// Sends `range` of `source` (clamped to its length) as `transfer` says.
    pub fn new(source: Arc<dyn BodySource>, range: Range<u64>, transfer: Transfer) -> BodyStream {
        let end = range.end.min(source.len());
        let start = range.start.min(end);
        BodyStream {
            source,
            range: start..end,
            transfer,
        }
    }

    /// What to read from.
    pub fn source(&self) -> &Arc<dyn BodySource> {
        &self.source
    }

    /// The octets still to read.
    pub fn remaining(&self) -> u64 {
        self.range.end - self.range.start
    }

    /// The next read: its offset, and at most `max` octets; `None` once everything was read
    /// (or the transfer needs no more, as TOP after its lines).
    pub fn next_read(&self, max: usize) -> Option<(u64, usize)> {
        if self.range.is_empty() {
            return None;
        }
        if let Transfer::Pop3(s) = &self.transfer {
            if s.done() {
                return None;
            }
        }
        let n = usize::try_from(self.remaining()).map_or(max, |r| r.min(max));
        Some((self.range.start, n))
    }

    /// Takes octets read at the offset `next_read` gave, appending what to send to `out`.
    /// An empty read before the end is an error: the stored body is shorter than its size,
    /// and the peer was promised that many octets.
    pub fn consume(&mut self, data: &[u8], out: &mut BytesMut) -> io::Result<()> {
        let n = (data.len() as u64).min(self.remaining());
        if n == 0 && !self.range.is_empty() {
            return Err(short_read());
        }
        let data = data.get(..n as usize).unwrap_or_default();
        self.range.start += n;
        match &mut self.transfer {
            Transfer::Verbatim => out.put_slice(data),
            Transfer::Pop3(s) => s.push(data, out),
        }
        Ok(())
    }

    /// The octets that follow the last chunk (POP3's terminator).
    pub fn finish(self, out: &mut BytesMut) {
        if let Transfer::Pop3(s) = self.transfer {
            s.finish(out);
        }
    }

    /// Sends the whole stream through `wire`, reading `chunk` octets at a time on the calling
    /// thread: for drivers whose storage is synchronous anyway (tests, [`crate::drive`]).
    pub fn write_all(mut self, chunk: usize, wire: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        let mut buf = vec![0u8; chunk.max(1)];
        let mut out = BytesMut::new();
        while let Some((offset, n)) = self.next_read(buf.len()) {
            let into = buf.get_mut(..n).unwrap_or_default();
            let got = self.source.read_at(offset, into)?;
            self.consume(into.get(..got).unwrap_or_default(), &mut out)?;
            wire(&out);
            out.clear();
        }
        self.finish(&mut out);
        wire(&out);
        Ok(())
    }
}

/// POP3's byte-stuffing (RFC 1939 §3) as a transform over chunks: the result is the same
/// however the message is split, because what it needs from earlier chunks (whether a line
/// has just begun, how far the header's end has been matched, how many lines TOP still
/// takes) is carried from one chunk to the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DotStuffer {
    /// The next octet starts a line.
    line_start: bool,
    /// How much of the header's end (`CRLF CRLF`) the octets so far end with; starts as if
    /// after a CRLF, so that a message beginning with one has an empty header.
    header_match: u8,
    /// For TOP: body lines still to send once the header has ended.
    lines_left: Option<u64>,
    in_body: bool,
    done: bool,
    /// Something was sent: the terminator then needs the last line ended.
    sent_any: bool,
}

/// `CRLF CRLF`, the end of a header.
const HEADER_END: &[u8; 4] = b"\r\n\r\n";

impl DotStuffer {
    /// For RETR (`top` none) or `TOP n`.
    pub fn new(top: Option<u64>) -> DotStuffer {
        DotStuffer {
            line_start: true,
            header_match: 2,
            lines_left: top,
            in_body: false,
            done: false,
            sent_any: false,
        }
    }

    /// Whether TOP has sent all it takes: further octets are ignored.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Appends the next chunk, stuffed, to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut BytesMut) {
        if self.done {
            return;
        }
        let take = self.take(chunk);
        let chunk = chunk.get(..take).unwrap_or_default();
        if chunk.is_empty() {
            return;
        }
        self.sent_any = true;
        if self.line_start && chunk.first() == Some(&b'.') {
            out.put_u8(b'.');
        }
        let mut from = 0;
        for at in memchr::memmem::find_iter(chunk, b"\n.") {
            // Through the line feed, then the extra dot; the line's own dot starts the next run.
            out.put_slice(chunk.get(from..=at).unwrap_or_default());
            out.put_u8(b'.');
            from = at + 1;
        }
        out.put_slice(chunk.get(from..).unwrap_or_default());
        self.line_start = chunk.last() == Some(&b'\n');
    }

    /// How much of `chunk` TOP sends (all of it for RETR); updates the header and line counts.
    fn take(&mut self, chunk: &[u8]) -> usize {
        let Some(mut left) = self.lines_left else {
            return chunk.len();
        };
        let mut at = 0;
        if !self.in_body {
            for &b in chunk {
                at += 1;
                self.header_match = match HEADER_END.get(self.header_match as usize) {
                    Some(&want) if want == b => self.header_match + 1,
                    _ if b == b'\r' => 1,
                    _ => 0,
                };
                if self.header_match == 4 {
                    self.in_body = true;
                    break;
                }
            }
            if !self.in_body {
                return chunk.len();
            }
        }
        if left == 0 {
            self.done = true;
            return at;
        }
        let rest = chunk.get(at..).unwrap_or_default();
        for lf in memchr::memchr_iter(b'\n', rest) {
            left -= 1;
            if left == 0 {
                self.done = true;
                self.lines_left = Some(0);
                return at + lf + 1;
            }
        }
        self.lines_left = Some(left);
        chunk.len()
    }

    /// Ends the response: the last line's CRLF if it lacked one, then the `.` line.
    pub fn finish(self, out: &mut BytesMut) {
        if self.sent_any && !self.line_start {
            out.put_slice(b"\r\n");
        }
        out.put_slice(b".\r\n");
    }

    /// The whole response body for `data` at once.
    pub fn stuff_all(data: &[u8], top: Option<u64>, out: &mut BytesMut) {
        let mut s = DotStuffer::new(top);
        out.reserve(data.len() + data.len() / 32 + 8);
        s.push(data, out);
        s.finish(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: RFC 1939 §3 line by line, TOP as the session always cut it (the header
    /// through its blank line, then `top` lines).
    fn reference(data: &[u8], top: Option<u64>) -> Vec<u8> {
        let data = match top {
            None => data,
            Some(lines) => {
                let body_start = if data.starts_with(b"\r\n") {
                    2
                } else {
                    data.windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map_or(data.len(), |p| p + 4)
                };
                let mut end = body_start;
                for _ in 0..lines {
                    match data
                        .get(end..)
                        .and_then(|r| r.iter().position(|&b| b == b'\n'))
                    {
                        Some(lf) => end += lf + 1,
                        None => {
                            end = data.len();
                            break;
                        }
                    }
                }
                &data[..end.min(data.len())]
            }
        };
        let mut out = Vec::new();
        for line in data.split_inclusive(|&b| b == b'\n') {
            if line.first() == Some(&b'.') {
                out.push(b'.');
            }
            out.extend_from_slice(line);
        }
        if !data.is_empty() && !data.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        out
    }

    fn chunked(data: &[u8], top: Option<u64>, cuts: &[usize]) -> Vec<u8> {
        let mut s = DotStuffer::new(top);
        let mut out = BytesMut::new();
        let mut rest = data;
        for &c in cuts {
            let (a, b) = rest.split_at(c.min(rest.len()));
            s.push(a, &mut out);
            rest = b;
        }
        s.push(rest, &mut out);
        s.finish(&mut out);
        out.to_vec()
    }

    #[test]
    fn examples() {
        for data in [
            &b""[..],
            b".",
            b"..\r\n",
            b"a\r\n.b\r\n..c\r\n.",
            b"\n\n.\n.",
            b"\r\nbody\r\n.x\r\n",
            b"H: 1\r\n\r\n.a\r\nb\r\nc",
            b"x.\r\n.y",
        ] {
            for top in [None, Some(0), Some(1), Some(2), Some(9)] {
                for cut in 0..=data.len() {
                    assert_eq!(
                        chunked(data, top, &[cut]),
                        reference(data, top),
                        "{data:?} top {top:?} cut {cut}"
                    );
                }
            }
        }
    }

    /// Chunked stuffing equals stuffing the whole, for any data and any split.
    #[test]
    fn any_split_stuffs_as_the_whole() {
        fn prop(data: Vec<u8>, cuts: Vec<u8>, top: Option<u8>) -> bool {
            // Dots, CRs and LFs often, so that dotted lines and header ends are common.
            let data: Vec<u8> = data
                .iter()
                .map(|b| match b % 6 {
                    0 => b'.',
                    1 => b'\n',
                    2 => b'\r',
                    _ => *b,
                })
                .collect();
            let cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c % 8)).collect();
            let top = top.map(|t| u64::from(t % 5));
            chunked(&data, top, &cuts) == reference(&data, top)
        }
        quickcheck::quickcheck(prop as fn(Vec<u8>, Vec<u8>, Option<u8>) -> bool);
    }

    #[test]
    fn stream_reads_in_chunks_and_stops_after_top() {
        let data = Bytes::from_static(b"A: b\r\n\r\n1\r\n.2\r\n3\r\n4\r\n");
        let stream = BodyStream::new(
            Arc::new(data.clone()),
            0..1000,
            Transfer::Pop3(DotStuffer::new(Some(2))),
        );
        let mut wire = Vec::new();
        stream
            .write_all(3, &mut |b| wire.extend_from_slice(b))
            .unwrap();
        assert_eq!(wire, b"A: b\r\n\r\n1\r\n..2\r\n.\r\n");

        let stream = BodyStream::new(Arc::new(data.clone()), 2..9, Transfer::Verbatim);
        let mut wire = Vec::new();
        stream
            .write_all(2, &mut |b| wire.extend_from_slice(b))
            .unwrap();
        assert_eq!(wire, &data[2..9]);
    }

    /// A source shorter than it claims is an error, never fewer octets than promised.
    #[test]
    fn short_source_is_an_error() {
        #[derive(Debug)]
        struct Liar;
        impl BodySource for Liar {
            fn len(&self) -> u64 {
                10
            }
            fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
                Bytes::from_static(b"abc").read_at(offset, buf)
            }
        }
        let stream = BodyStream::new(Arc::new(Liar), 0..10, Transfer::Verbatim);
        assert!(stream.write_all(4, &mut |_| {}).is_err());
        assert!(Body::Source(Arc::new(Liar)).to_bytes().is_err());
    }
}
