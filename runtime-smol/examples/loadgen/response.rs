//! Just enough of IMAP's response grammar (RFC 3501 §9) for the mixed workload's checks: a
//! response line (literals inline, as `Imap::read_line` collects them) split into values.

use std::borrow::Cow;

/// One value of a response.
#[derive(Debug)]
pub enum Val<'a> {
    /// An atom, a number or a FETCH item name (`BODY[HEADER.FIELDS (FROM)]<0>` is one).
    Atom(&'a [u8]),
    /// A quoted string (unescaped) or a literal.
    Str(Cow<'a, [u8]>),
    /// A parenthesised list; `raw` is its text, parentheses included.
    List(Vec<Val<'a>>, &'a [u8]),
    Nil,
}

impl Val<'_> {
    /// A value as octets for comparison: a string's content, otherwise the text as sent.
    pub fn octets(&self) -> &[u8] {
        match self {
            Val::Atom(a) => a,
            Val::Str(s) => s,
            Val::List(_, raw) => raw,
            Val::Nil => b"NIL",
        }
    }

    pub fn number(&self) -> Option<u64> {
        match self {
            Val::Atom(a) => std::str::from_utf8(a).ok()?.parse().ok(),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unparsable response at offset {0}")]
pub struct ParseError(pub usize);

/// Lists nest at most this deep (BODYSTRUCTURE of a message inside a message inside … stays
/// far below); deeper input is refused rather than recursed into.
const MAX_DEPTH: usize = 64;

pub struct Parser<'a> {
    s: &'a [u8],
    pub at: usize,
}

impl<'a> Parser<'a> {
    pub fn new(s: &'a [u8], at: usize) -> Parser<'a> {
        Parser { s, at }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    /// The next value, or `None` at the end of the line or a closing parenthesis.
    pub fn value(&mut self) -> Result<Option<Val<'a>>, ParseError> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Option<Val<'a>>, ParseError> {
        self.skip_spaces();
        let start = self.at;
        match self.peek() {
            None | Some(b')' | b'\r' | b'\n') => Ok(None),
            Some(b'(') => {
                if depth >= MAX_DEPTH {
                    return Err(ParseError(start));
                }
                self.at += 1;
                let mut items = Vec::new();
                // Bounded: every round consumes a value or ends the list.
                while let Some(v) = self.value_at(depth + 1)? {
                    items.push(v);
                }
                if self.peek() != Some(b')') {
                    return Err(ParseError(self.at));
                }
                self.at += 1;
                Ok(Some(Val::List(items, &self.s[start..self.at])))
            }
            Some(b'"') => {
                self.at += 1;
                let mut out: Option<Vec<u8>> = None;
                let from = self.at;
                loop {
                    match self.peek() {
                        None => return Err(ParseError(start)),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            let o = out.get_or_insert_with(|| self.s[from..self.at].to_vec());
                            let c = *self.s.get(self.at + 1).ok_or(ParseError(self.at))?;
                            o.push(c);
                            self.at += 2;
                        }
                        Some(c) => {
                            if let Some(o) = out.as_mut() {
                                o.push(c);
                            }
                            self.at += 1;
                        }
                    }
                }
                let text = match out {
                    Some(o) => Cow::Owned(o),
                    None => Cow::Borrowed(&self.s[from..self.at]),
                };
                self.at += 1;
                Ok(Some(Val::Str(text)))
            }
            Some(b'{') => {
                let close = self.s[self.at..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or(ParseError(start))?;
                let digits = &self.s[self.at + 1..self.at + close];
                let digits = digits.strip_suffix(b"+").unwrap_or(digits);
                let n: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or(ParseError(start))?;
                let body = self.at + close + 1;
                if self.s.get(body..body + 2) != Some(b"\r\n") {
                    return Err(ParseError(body));
                }
                let data = self.s.get(body + 2..body + 2 + n).ok_or(ParseError(body))?;
                self.at = body + 2 + n;
                Ok(Some(Val::Str(Cow::Borrowed(data))))
            }
            Some(_) => {
                // An atom; a `[` opens a section that may hold spaces and parentheses.
                let mut brackets = 0usize;
                while let Some(c) = self.peek() {
                    match c {
                        b'[' => brackets += 1,
                        b']' => brackets = brackets.saturating_sub(1),
                        b' ' | b'(' | b')' | b'\r' | b'\n' if brackets == 0 => break,
                        b'\r' | b'\n' => return Err(ParseError(start)),
                        _ => {}
                    }
                    self.at += 1;
                }
                let atom = &self.s[start..self.at];
                if atom.eq_ignore_ascii_case(b"NIL") {
                    Ok(Some(Val::Nil))
                } else {
                    Ok(Some(Val::Atom(atom)))
                }
            }
        }
    }
}

/// The parts of a response line that the model reads.
pub enum Response<'a> {
    /// `* n WORD [rest]`: EXISTS, EXPUNGE, FETCH (rest at `at`), RECENT.
    Numbered { n: u64, word: &'a [u8], at: usize },
    /// `* WORD rest`: FLAGS, OK, BYE, LIST, STATUS, CAPABILITY …
    Untagged { word: &'a [u8], at: usize },
    /// `+ …`
    Continuation,
    /// `tag STATUS text`
    Tagged {
        tag: &'a [u8],
        status: &'a [u8],
        at: usize,
    },
}

pub fn classify(line: &[u8]) -> Option<Response<'_>> {
    if line.starts_with(b"+") {
        return Some(Response::Continuation);
    }
    let word_end = |from: usize| {
        line[from..]
            .iter()
            .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
            .map_or(line.len(), |p| from + p)
    };
    let skip = |at: usize| {
        if line.get(at) == Some(&b' ') {
            at + 1
        } else {
            at
        }
    };
    if let Some(rest) = line.strip_prefix(b"* ") {
        let first_end = word_end(2);
        let first = &line[2..first_end];
        if !rest.is_empty() && first.iter().all(u8::is_ascii_digit) {
            let n = std::str::from_utf8(first).ok()?.parse().ok()?;
            let w = skip(first_end);
            let w_end = word_end(w);
            return Some(Response::Numbered {
                n,
                word: &line[w..w_end],
                at: skip(w_end),
            });
        }
        return Some(Response::Untagged {
            word: first,
            at: skip(first_end),
        });
    }
    let tag_end = word_end(0);
    let s = skip(tag_end);
    let s_end = word_end(s);
    Some(Response::Tagged {
        tag: &line[..tag_end],
        status: &line[s..s_end],
        at: skip(s_end),
    })
}

/// The response code at `at` (`[APPENDUID 1 5]` → ("APPENDUID", "1 5")).
pub fn code(line: &[u8], at: usize) -> Option<(&[u8], &[u8])> {
    let rest = line.get(at..)?.strip_prefix(b"[")?;
    let close = rest.iter().position(|&b| b == b']')?;
    let inner = &rest[..close];
    match inner.iter().position(|&b| b == b' ') {
        Some(sp) => Some((&inner[..sp], &inner[sp + 1..])),
        None => Some((inner, &[])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_items_with_sections_and_literals() {
        let line =
            b"* 3 FETCH (UID 7 BODY[HEADER.FIELDS (FROM TO)] {5}\r\nab\"c) FLAGS (\\Seen $x))\r\n";
        let Some(Response::Numbered { n, word, at }) = classify(line) else {
            panic!()
        };
        assert_eq!((n, word), (3, &b"FETCH"[..]));
        let mut p = Parser::new(line, at);
        let Some(Val::List(items, _)) = p.value().unwrap() else {
            panic!()
        };
        assert_eq!(items.len(), 6);
        assert_eq!(items[2].octets(), b"BODY[HEADER.FIELDS (FROM TO)]");
        assert_eq!(items[3].octets(), b"ab\"c)");
        assert_eq!(items[5].octets(), b"(\\Seen $x)");
    }

    #[test]
    fn quoted_strings_unescape_and_codes_split() {
        let line = b"* LIST (\\HasNoChildren) \"/\" \"a\\\"b\"\r\n";
        let Some(Response::Untagged { at, .. }) = classify(line) else {
            panic!()
        };
        let mut p = Parser::new(line, at);
        p.value().unwrap();
        p.value().unwrap();
        assert_eq!(p.value().unwrap().unwrap().octets(), b"a\"b");
        assert_eq!(
            code(b"a1 OK [APPENDUID 9 12] done", 6),
            Some((&b"APPENDUID"[..], &b"9 12"[..]))
        );
    }
}
