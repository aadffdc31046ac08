//! Splits line-based input (POP3 commands, LMTP commands and DATA) into bounded lines.

use bytes::{Bytes, BytesMut};

/// One unit of line-based input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineFrame {
    /// No complete line yet.
    NeedMore,
    /// A line without its line end.
    Line(Bytes),
    /// A line longer than allowed; it has been skipped entirely.
    TooLong,
}

/// Buffers input and hands out lines. A line past the bound is dropped as it arrives, so a
/// peer that never sends a line end holds at most `max` octets here.
#[derive(Debug, Default)]
pub(crate) struct LineReader {
    buf: BytesMut,
    scanned: usize,
    skipping: bool,
    /// The last line handed out ended with CRLF, not a bare LF.
    crlf: bool,
}

impl LineReader {
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether the last line handed out ended with CRLF (LMTP's end of data must be
    /// CRLF.CRLF exactly: a bare LF around the dot must not end a message).
    pub(crate) fn ended_with_crlf(&self) -> bool {
        self.crlf
    }

    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Up to `max` buffered octets as they are (an LMTP BDAT chunk), for input that is not
    /// line-based.
    pub(crate) fn take(&mut self, max: usize) -> Bytes {
        let n = max.min(self.buf.len());
        self.scanned = 0;
        self.buf.split_to(n).freeze()
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.scanned = 0;
        self.skipping = false;
    }

    /// The next line of at most `max` octets, line end included in the count.
    pub(crate) fn next(&mut self, max: usize) -> LineFrame {
        let found = self
            .buf
            .get(self.scanned..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            .map(|i| self.scanned + i);
        match found {
            None => {
                if self.skipping || self.buf.len() > max {
                    self.skipping = true;
                    self.buf.clear();
                    self.scanned = 0;
                } else {
                    self.scanned = self.buf.len();
                }
                LineFrame::NeedMore
            }
            Some(lf) => {
                let line = self.buf.split_to(lf + 1).freeze();
                self.scanned = 0;
                if std::mem::take(&mut self.skipping) || line.len() > max {
                    return LineFrame::TooLong;
                }
                let mut end = line.len() - 1;
                self.crlf = end > 0 && line.get(end - 1) == Some(&b'\r');
                if self.crlf {
                    end -= 1;
                }
                LineFrame::Line(line.slice(..end))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_long_lines() {
        let mut r = LineReader::default();
        r.push(b"USER a\r\nNO");
        assert_eq!(r.next(16), LineFrame::Line(Bytes::from_static(b"USER a")));
        assert_eq!(r.next(16), LineFrame::NeedMore);
        r.push(b"OP\nxxxxxxxxxxxxxxxxxxxxxxxx");
        assert_eq!(r.next(16), LineFrame::Line(Bytes::from_static(b"NOOP")));
        assert_eq!(r.next(16), LineFrame::NeedMore);
        assert_eq!(r.buffered(), 0);
        r.push(b"xxxx\r\nQUIT\r\n");
        assert_eq!(r.next(16), LineFrame::TooLong);
        assert_eq!(r.next(16), LineFrame::Line(Bytes::from_static(b"QUIT")));
    }
}
