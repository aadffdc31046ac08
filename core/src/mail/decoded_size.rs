//! The size of a part after its Content-Transfer-Encoding is undone (`BINARY.SIZE`, RFC 3516
//! §4.2), counted as the encoded octets pass by in pieces of any size: a part is never held
//! whole to be measured.
//!
//! The count is what [`BinaryExtent::decode`] would produce for the same octets, and the same
//! octets are refused: what Dovecot 2.3 refuses (the validity rules beside `decode`) and what
//! the decoder behind `decode` refuses. The property test below checks the two agree on random
//! inputs cut at random places.

use super::section::{BinaryError, BinaryExtent};

/// Counts the decoded size of one part, fed its encoded octets in order.
#[derive(Debug, Clone)]
pub struct DecodedSize {
    kind: Kind,
    size: u64,
    /// Something was met that decoding refuses.
    corrupt: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Nothing to undo: the size is the octets' count.
    Identity,
    Base64 {
        /// Alphabet characters of the quantum under way (0 to 3).
        pending: u8,
        /// An `=` was met: only padding and white space may follow.
        padding: bool,
    },
    QuotedPrintable {
        /// Where the decoder is.
        state: Qp,
        /// Where the check that every `=` starts a hex pair or a soft line break is.
        check: QpCheck,
        /// White space written since the last other octet: dropped at a line end.
        blanks: u64,
        /// A line end is written as CRLF once a CR was met, as LF before.
        crlf: bool,
    },
}

/// The decoder's state after `=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qp {
    Text,
    /// After `=` (white space may follow before a hex digit or the line end).
    Equals,
    /// After `=` and one hex digit.
    Hex,
}

/// What may follow an `=` for the octets to be valid quoted-printable (as Dovecot reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QpCheck {
    Free,
    /// Right after `=`: two hex digits, or white space and a line end.
    Equals,
    /// One hex digit seen: a second must follow.
    Hex,
    /// White space after `=`: more, or a line end (or the end of the part).
    Blank,
    /// CR after `=`: LF must follow.
    Cr,
}

impl DecodedSize {
    /// A count for the part `extent` locates.
    pub fn new(extent: &BinaryExtent) -> Self {
        let kind = match extent {
            BinaryExtent::Range(_) => Kind::Identity,
            BinaryExtent::Base64(_) => Kind::Base64 {
                pending: 0,
                padding: false,
            },
            BinaryExtent::QuotedPrintable(_) => Kind::QuotedPrintable {
                state: Qp::Text,
                check: QpCheck::Free,
                blanks: 0,
                crlf: false,
            },
        };
        DecodedSize {
            kind,
            size: 0,
            corrupt: false,
        }
    }

    /// Takes the next encoded octets.
    pub fn push(&mut self, octets: &[u8]) {
        if self.corrupt {
            return;
        }
        match &mut self.kind {
            Kind::Identity => self.size += octets.len() as u64,
            Kind::Base64 { pending, padding } => {
                for &b in octets {
                    match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if !*padding => {
                            *pending = (*pending + 1) & 3;
                            if *pending == 0 {
                                self.size += 3;
                            }
                        }
                        b'=' => {
                            self.size += quantum_tail(*pending);
                            *pending = 0;
                            *padding = true;
                        }
                        b' ' | b'\t' | b'\r' | b'\n' => {}
                        _ => {
                            self.corrupt = true;
                            return;
                        }
                    }
                }
            }
            Kind::QuotedPrintable {
                state,
                check,
                blanks,
                crlf,
            } => {
                for &b in octets {
                    let ok =
                        qp_check(check, b) && qp_decode(state, blanks, crlf, &mut self.size, b);
                    if !ok {
                        self.corrupt = true;
                        return;
                    }
                }
            }
        }
    }

    /// The decoded size, once every octet was pushed.
    pub fn finish(self) -> Result<u64, BinaryError> {
        if self.corrupt {
            return Err(BinaryError::Corrupt);
        }
        match self.kind {
            Kind::Identity => Ok(self.size),
            Kind::Base64 { pending, .. } => Ok(self.size + quantum_tail(pending)),
            // The end of the part ends a soft line break, not a hex pair.
            Kind::QuotedPrintable { check, .. } => match check {
                QpCheck::Hex | QpCheck::Cr => Err(BinaryError::Corrupt),
                QpCheck::Free | QpCheck::Equals | QpCheck::Blank => Ok(self.size),
            },
        }
    }
}

/// Octets a quantum cut short by `=` or the end yields: two characters make one octet, three
/// make two (one alone makes none).
fn quantum_tail(pending: u8) -> u64 {
    match pending {
        2 => 1,
        3 => 2,
        _ => 0,
    }
}

/// Dovecot's rule: every `=` starts two hex digits or a soft line break (white space allowed
/// before the line end, or the end of the part). Returns whether `b` may come next.
fn qp_check(check: &mut QpCheck, b: u8) -> bool {
    let (next, ok) = match (*check, b) {
        (QpCheck::Free, b'=') => (QpCheck::Equals, true),
        (QpCheck::Free, _) => (QpCheck::Free, true),
        (QpCheck::Equals, h) if h.is_ascii_hexdigit() => (QpCheck::Hex, true),
        (QpCheck::Hex, h) if h.is_ascii_hexdigit() => (QpCheck::Free, true),
        (QpCheck::Equals | QpCheck::Blank, b' ' | b'\t') => (QpCheck::Blank, true),
        (QpCheck::Equals | QpCheck::Blank | QpCheck::Cr, b'\n') => (QpCheck::Free, true),
        (QpCheck::Equals | QpCheck::Blank, b'\r') => (QpCheck::Cr, true),
        _ => (*check, false),
    };
    *check = next;
    ok
}

/// The decoder behind [`BinaryExtent::decode`], counting instead of writing: returns whether
/// it accepts `b`.
fn qp_decode(state: &mut Qp, blanks: &mut u64, crlf: &mut bool, size: &mut u64, b: u8) -> bool {
    match b {
        b'=' => {
            if *state != Qp::Text {
                return false;
            }
            *state = Qp::Equals;
        }
        b'\n' => {
            if *state == Qp::Equals {
                *state = Qp::Text;
            } else {
                *size = size.saturating_sub(*blanks) + if *crlf { 2 } else { 1 };
            }
            *blanks = 0;
        }
        b'\r' => *crlf = true,
        _ => match *state {
            Qp::Text => {
                if b.is_ascii_whitespace() {
                    *blanks += 1;
                } else {
                    *blanks = 0;
                }
                *size += 1;
            }
            Qp::Equals => {
                if b.is_ascii_hexdigit() {
                    *state = Qp::Hex;
                } else if !b.is_ascii_whitespace() {
                    return false;
                }
            }
            Qp::Hex => {
                if !b.is_ascii_hexdigit() {
                    return false;
                }
                *state = Qp::Text;
                *size += 1;
                *blanks = 0;
            }
        },
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use quickcheck::{Arbitrary, Gen, QuickCheck};

    /// Octets drawn mostly from what matters to each encoding.
    #[derive(Clone, Debug)]
    struct Encoded {
        octets: Vec<u8>,
        /// Where the octets are cut before they are pushed.
        cuts: Vec<usize>,
    }

    impl Arbitrary for Encoded {
        fn arbitrary(g: &mut Gen) -> Self {
            // Valid base64 often, valid quoted-printable often, and anything.
            const BASE64: &[&[u8]] = &[b"QUJD", b"aGk", b"+/", b"9", b"\r\n", b" ", b"\t"];
            const QP: &[&[u8]] = &[
                b"ab",
                b"=3D",
                b"=3d",
                b"=0A",
                b"=\r\n",
                b"=  \r\n",
                b"=\n",
                b" ",
                b"\t",
                b"\r\n",
                b"\n",
                b"\xc3\xa9",
                b"\x0c",
            ];
            const ANY: &[&[u8]] = &[
                b"A", b"z", b"0", b"=", b"==", b" ", b"\r\n", b"\r", b"\n", b"=G", b"=4", b"\x00",
                b"\xff", b"\x0b", b"!", b"=\r", b"= x",
            ];
            const ENDS: &[&[u8]] = &[b"", b"=", b"==\r\n", b"\r\n", b" "];
            let pieces = *g.choose(&[BASE64, QP, ANY]).unwrap_or(&ANY);
            let mut octets: Vec<u8> = (0..usize::arbitrary(g) % 80)
                .flat_map(|_| g.choose(pieces).copied().unwrap_or_default().to_vec())
                .collect();
            // An ending as such parts have: padding, a bare `=`, a line end.
            octets.extend_from_slice(g.choose(ENDS).copied().unwrap_or_default());
            let len = octets.len();
            let mut cuts: Vec<usize> = (0..usize::arbitrary(g) % 6)
                .map(|_| usize::arbitrary(g) % (len + 1))
                .collect();
            cuts.sort_unstable();
            Encoded { octets, cuts }
        }

        fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
            let cuts = self.cuts.clone();
            Box::new(self.octets.shrink().map(move |octets| Encoded {
                cuts: cuts.iter().map(|&c| c.min(octets.len())).collect(),
                octets,
            }))
        }
    }

    fn counted(extent: &BinaryExtent, e: &Encoded) -> Result<u64, BinaryError> {
        let mut size = DecodedSize::new(extent);
        let mut from = 0;
        for &cut in &e.cuts {
            size.push(&e.octets[from..cut]);
            from = cut;
        }
        size.push(&e.octets[from..]);
        size.finish()
    }

    /// Whether the count agrees with decoding for each encoding; which of base64 and
    /// quoted-printable decoded.
    fn agreement(e: &Encoded) -> (bool, [bool; 2]) {
        let n = e.octets.len();
        let mut decoded = [false; 2];
        let extents = [
            BinaryExtent::Base64(0..n),
            BinaryExtent::QuotedPrintable(0..n),
            BinaryExtent::Range(0..n),
        ];
        let agrees = extents.iter().enumerate().all(|(i, extent)| {
            let want = extent
                .decode(Bytes::from(e.octets.clone()))
                .map(|d| d.len() as u64);
            if let Some(d) = decoded.get_mut(i) {
                *d = want.is_ok();
            }
            counted(extent, e) == want
        });
        (agrees, decoded)
    }

    #[test]
    fn counts_what_decoding_produces_however_the_octets_are_cut() {
        QuickCheck::new()
            .tests(5000)
            .quickcheck((|e: Encoded| agreement(&e).0) as fn(Encoded) -> bool);
        // The inputs are not mostly refused: each encoding decodes often.
        let mut g = Gen::new(100);
        let mut decoded = [0; 2];
        for _ in 0..1000 {
            let (_, ok) = agreement(&Encoded::arbitrary(&mut g));
            for (n, ok) in decoded.iter_mut().zip(ok) {
                *n += usize::from(ok);
            }
        }
        assert!(
            decoded.iter().all(|&n| n > 250),
            "{decoded:?} of 1000 decoded"
        );
    }

    #[test]
    fn rfc2045_examples() {
        let size = |extent: BinaryExtent, octets: &[u8]| {
            let mut s = DecodedSize::new(&extent);
            for b in octets {
                s.push(std::slice::from_ref(b));
            }
            s.finish()
        };
        let b64 = |o: &[u8]| size(BinaryExtent::Base64(0..o.len()), o);
        let qp = |o: &[u8]| size(BinaryExtent::QuotedPrintable(0..o.len()), o);
        assert_eq!(b64(b"aGVsbG8=\r\n"), Ok(5));
        assert_eq!(b64(b"aGVs\r\nbG8gd29y\r\nbGQ="), Ok(11));
        assert_eq!(b64(b"AAEC!!!AwQ="), Err(BinaryError::Corrupt));
        assert_eq!(b64(b"AQ==AQ=="), Err(BinaryError::Corrupt));
        assert_eq!(qp(b"a=3Db=\r\nc\r\n"), Ok(6));
        assert_eq!(qp(b"trailing  \r\nx"), Ok(11));
        assert_eq!(qp(b"ab=ZZcd"), Err(BinaryError::Corrupt));
        assert_eq!(qp(b"ab=4"), Err(BinaryError::Corrupt));
        assert_eq!(qp(b"soft=  "), Ok(4));
    }
}
