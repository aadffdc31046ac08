//! Matching server output against `S:` lines with placeholders.
//!
//! A pattern is exact octets, values (`{{user}}`, captured values) and holes (`{{*}}`,
//! `{{number}}`, ...). Holes never match CR or LF, so a placeholder cannot swallow a line end
//! and hide a missing or extra line. Matching backtracks; patterns are a line or two long, so
//! the simple algorithm is plenty.

use std::collections::HashMap;
use std::ops::Range;

use crate::transcript::Var;

/// One expected response unit, final CRLF included.
pub type Pattern = Vec<PatPiece>;

/// Part of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatPiece {
    /// These octets exactly.
    Exact(Vec<u8>),
    /// The value of a variable or of an earlier capture, exactly.
    Var(Var),
    /// Any text of a class.
    Hole(Hole),
}

/// A placeholder that matches a class of text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hole {
    /// What it accepts.
    pub class: Class,
    /// Remember what it matched under this name (`{{uidvalidity}}`, `{{name:number}}`).
    pub bind: Option<String>,
}

/// The kinds of text a hole accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// `{{*}}`: anything on the line.
    Any,
    /// `{{text}}`: human-readable text, such as what follows OK/NO/BAD.
    Text,
    /// `{{number}}`: one or more digits.
    Number,
    /// `{{atom}}`: an IMAP atom.
    Atom,
    /// `{{base64}}`: base64 characters, possibly none.
    Base64,
    /// `{{date}}`: an IMAP date-time without its quotes, `17-Jul-1996 02:44:25 -0700`.
    Date,
    /// `{{caps A B !C}}`: a space-separated list of capabilities that contains every `must`
    /// and none of `must_not`, in any order, compared case-insensitively.
    Caps {
        /// Capabilities that must be present.
        must: Vec<String>,
        /// Capabilities that must be absent.
        must_not: Vec<String>,
    },
    /// `{{flags A B !C}}`: a space-separated list of flags or mailbox attributes (`\Seen`,
    /// `$Junk`, `\*`), possibly empty, that contains every `must` and none of `must_not`, in
    /// any order, compared case-insensitively. For FLAGS and LIST attributes, whose order
    /// the server chooses.
    Flags {
        /// Flags that must be present.
        must: Vec<String>,
        /// Flags that must be absent.
        must_not: Vec<String>,
    },
}

impl Class {
    /// How the class is written in a transcript.
    pub fn name(&self) -> &'static str {
        match self {
            Class::Any => "*",
            Class::Text => "text",
            Class::Number => "number",
            Class::Atom => "atom",
            Class::Base64 => "base64",
            Class::Date => "date",
            Class::Caps { .. } => "caps",
            Class::Flags { .. } => "flags",
        }
    }

    /// Whether what it matches legitimately differs between runs, and is therefore recorded in
    /// snapshots by name rather than by value. Text and capability lists are the server's own
    /// choice, stable from run to run, and worth recording as they are.
    fn volatile(&self) -> bool {
        matches!(self, Class::Number | Class::Base64 | Class::Date)
    }

    fn accepts(&self, text: &[u8]) -> bool {
        match self {
            Class::Any | Class::Text => true,
            Class::Number => !text.is_empty() && text.iter().all(u8::is_ascii_digit),
            Class::Atom => !text.is_empty() && text.iter().all(|&b| is_atom_char(b)),
            Class::Base64 => text
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')),
            Class::Date => is_date_time(text),
            Class::Caps { must, must_not } => {
                let Ok(text) = std::str::from_utf8(text) else {
                    return false;
                };
                let caps: Vec<&str> = text.split(' ').collect();
                let well_formed = caps
                    .iter()
                    .all(|c| !c.is_empty() && c.bytes().all(is_atom_char));
                well_formed
                    && must
                        .iter()
                        .all(|m| caps.iter().any(|c| c.eq_ignore_ascii_case(m)))
                    && !must_not
                        .iter()
                        .any(|m| caps.iter().any(|c| c.eq_ignore_ascii_case(m)))
            }
            Class::Flags { must, must_not } => {
                let Ok(text) = std::str::from_utf8(text) else {
                    return false;
                };
                let flags: Vec<&str> = if text.is_empty() {
                    Vec::new()
                } else {
                    text.split(' ').collect()
                };
                let well_formed = flags.iter().all(|f| {
                    let atom = f.strip_prefix('\\').unwrap_or(f);
                    *f == "\\*" || (!atom.is_empty() && atom.bytes().all(is_atom_char))
                });
                well_formed
                    && must
                        .iter()
                        .all(|m| flags.iter().any(|f| f.eq_ignore_ascii_case(m)))
                    && !must_not
                        .iter()
                        .any(|m| flags.iter().any(|f| f.eq_ignore_ascii_case(m)))
            }
        }
    }
}

/// RFC 9051 ATOM-CHAR, except that `]` is excluded too so that a hole before `]` stops there.
fn is_atom_char(b: u8) -> bool {
    b > b' ' && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `dd-Mon-yyyy hh:mm:ss +zzzz`, the day possibly space-padded (RFC 9051 date-time).
fn is_date_time(text: &[u8]) -> bool {
    let text = text.strip_prefix(b" ").unwrap_or(text);
    let shape: &[u8] = if text.get(1) == Some(&b'-') {
        b"9-Aaa-9999 99:99:99 s9999"
    } else {
        b"99-Aaa-9999 99:99:99 s9999"
    };
    text.len() == shape.len()
        && text.iter().zip(shape).all(|(&c, &s)| match s {
            b'9' => c.is_ascii_digit(),
            b'A' => c.is_ascii_uppercase(),
            b'a' => c.is_ascii_lowercase(),
            b's' => c == b'+' || c == b'-',
            other => c == other,
        })
}

/// Values known when matching: variables and earlier captures.
pub trait Values {
    /// The value of `var`, if it has one.
    fn value(&self, var: &Var) -> Option<Vec<u8>>;
}

/// A successful match: where each hole (and each captured value) matched, by piece index.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Matched {
    /// (piece index, matched range), in order.
    pub holes: Vec<(usize, Range<usize>)>,
}

impl Matched {
    /// The values captured by binding holes.
    pub fn captures(&self, pattern: &Pattern, input: &[u8]) -> HashMap<String, Vec<u8>> {
        let mut out = HashMap::new();
        for (index, range) in &self.holes {
            if let Some(PatPiece::Hole(Hole {
                bind: Some(name), ..
            })) = pattern.get(*index)
            {
                out.insert(
                    name.clone(),
                    input.get(range.clone()).unwrap_or_default().to_vec(),
                );
            }
        }
        out
    }

    /// `input` with volatile values replaced by their placeholders, as snapshots record it.
    pub fn redact(&self, pattern: &Pattern, input: &[u8]) -> Vec<Segment> {
        let mut out = Vec::new();
        let mut pos = 0;
        for (index, range) in &self.holes {
            let name = match pattern.get(*index) {
                Some(PatPiece::Hole(hole)) => match (&hole.bind, hole.class.volatile()) {
                    (Some(name), _) => name.clone(),
                    (None, true) => hole.class.name().to_string(),
                    (None, false) => continue,
                },
                Some(PatPiece::Var(Var::Captured(name))) => name.clone(),
                _ => continue,
            };
            out.push(Segment::Raw(
                input.get(pos..range.start).unwrap_or_default().to_vec(),
            ));
            out.push(Segment::Placeholder(name));
            pos = range.end;
        }
        out.push(Segment::Raw(input.get(pos..).unwrap_or_default().to_vec()));
        out
    }
}

/// Part of a recorded unit: octets as received, or a placeholder standing for a value that
/// varies between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Octets as received.
    Raw(Vec<u8>),
    /// A value recorded by its placeholder's name.
    Placeholder(String),
}

/// Matches `input` (one whole unit, final CRLF included) against `pattern`.
pub fn matches(pattern: &Pattern, input: &[u8], values: &dyn Values) -> Option<Matched> {
    let mut m = Matched::default();
    if step(pattern, 0, input, 0, values, &mut m) {
        Some(m)
    } else {
        None
    }
}

fn step(
    pattern: &Pattern,
    index: usize,
    input: &[u8],
    pos: usize,
    values: &dyn Values,
    m: &mut Matched,
) -> bool {
    let Some(piece) = pattern.get(index) else {
        return pos == input.len();
    };
    let rest = input.get(pos..).unwrap_or_default();
    match piece {
        PatPiece::Exact(bytes) => {
            rest.starts_with(bytes) && step(pattern, index + 1, input, pos + bytes.len(), values, m)
        }
        PatPiece::Var(var) => {
            let value = local_capture(pattern, input, m, var).or_else(|| values.value(var));
            let Some(v) = value.filter(|v| rest.starts_with(v)) else {
                return false;
            };
            // Captured values vary between runs: the record names them, as it does holes.
            let captured = matches!(var, Var::Captured(_));
            if captured {
                m.holes.push((index, pos..pos + v.len()));
            }
            if step(pattern, index + 1, input, pos + v.len(), values, m) {
                return true;
            }
            if captured {
                m.holes.pop();
            }
            false
        }
        PatPiece::Hole(hole) => {
            let line_len = rest
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .unwrap_or(rest.len());
            // Longest first: a capability list or text runs to the next fixed part.
            for len in (0..=line_len).rev() {
                if !hole.class.accepts(&rest[..len]) {
                    continue;
                }
                m.holes.push((index, pos..pos + len));
                if step(pattern, index + 1, input, pos + len, values, m) {
                    return true;
                }
                m.holes.pop();
            }
            false
        }
    }
}

/// A value captured earlier in the same pattern.
fn local_capture(pattern: &Pattern, input: &[u8], m: &Matched, var: &Var) -> Option<Vec<u8>> {
    let Var::Captured(name) = var else {
        return None;
    };
    m.holes
        .iter()
        .find_map(|(index, range)| match pattern.get(*index) {
            Some(PatPiece::Hole(Hole { bind: Some(b), .. })) if b == name => {
                input.get(range.clone()).map(<[u8]>::to_vec)
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoValues;
    impl Values for NoValues {
        fn value(&self, _: &Var) -> Option<Vec<u8>> {
            None
        }
    }

    fn hole(class: Class) -> PatPiece {
        PatPiece::Hole(Hole { class, bind: None })
    }

    fn exact(s: &str) -> PatPiece {
        PatPiece::Exact(s.as_bytes().to_vec())
    }

    #[test]
    fn holes_stop_at_line_ends() {
        let p = vec![exact("a OK "), hole(Class::Text), exact("\r\n")];
        assert!(matches(&p, b"a OK done\r\n", &NoValues).is_some());
        assert!(matches(&p, b"a OK done\r\nb OK\r\n", &NoValues).is_none());
    }

    #[test]
    fn caps_are_a_set() {
        let caps = Class::Caps {
            must: vec!["AUTH=PLAIN".into(), "imap4rev1".into()],
            must_not: vec!["LOGINDISABLED".into()],
        };
        let p = vec![exact("* CAPABILITY "), hole(caps), exact("\r\n")];
        assert!(matches(
            &p,
            b"* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\n",
            &NoValues
        )
        .is_some());
        assert!(matches(&p, b"* CAPABILITY AUTH=PLAIN IMAP4rev1\r\n", &NoValues).is_some());
        assert!(matches(
            &p,
            b"* CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN\r\n",
            &NoValues
        )
        .is_none());
        assert!(matches(&p, b"* CAPABILITY IMAP4rev1\r\n", &NoValues).is_none());
        assert!(matches(&p, b"* CAPABILITY IMAP4rev1  AUTH=PLAIN\r\n", &NoValues).is_none());
    }

    #[test]
    fn flags_are_a_set_and_may_be_empty() {
        let flags = Class::Flags {
            must: vec!["\\Seen".into()],
            must_not: vec!["\\deleted".into()],
        };
        let p = vec![exact("* FLAGS ("), hole(flags), exact(")\r\n")];
        assert!(matches(&p, b"* FLAGS (\\Answered \\seen $Junk \\*)\r\n", &NoValues).is_some());
        assert!(matches(&p, b"* FLAGS (\\Seen \\Deleted)\r\n", &NoValues).is_none());
        assert!(matches(&p, b"* FLAGS ()\r\n", &NoValues).is_none());
        assert!(matches(&p, b"* FLAGS (\\Seen  \\Draft)\r\n", &NoValues).is_none());
        let any = Class::Flags {
            must: Vec::new(),
            must_not: vec!["\\Noselect".into()],
        };
        let p = vec![exact("* LIST ("), hole(any), exact(") \"/\" foo\r\n")];
        assert!(matches(&p, b"* LIST () \"/\" foo\r\n", &NoValues).is_some());
        assert!(matches(&p, b"* LIST (\\HasNoChildren) \"/\" foo\r\n", &NoValues).is_some());
        assert!(matches(&p, b"* LIST (\\NoSelect) \"/\" foo\r\n", &NoValues).is_none());
    }

    #[test]
    fn dates_and_numbers() {
        assert!(is_date_time(b"17-Jul-1996 02:44:25 -0700"));
        assert!(is_date_time(b" 7-Jul-1996 02:44:25 +0000"));
        assert!(is_date_time(b"7-Jul-1996 02:44:25 +0000"));
        assert!(!is_date_time(b"17-jul-1996 02:44:25 -0700"));
        assert!(Class::Number.accepts(b"42"));
        assert!(!Class::Number.accepts(b""));
    }

    #[test]
    fn captures_bind_and_redact() {
        let p = vec![
            exact("* OK [UIDVALIDITY "),
            PatPiece::Hole(Hole {
                class: Class::Number,
                bind: Some("uidvalidity".into()),
            }),
            exact("] "),
            hole(Class::Text),
            exact(" "),
            PatPiece::Var(Var::Captured("uidvalidity".into())),
            exact("\r\n"),
        ];
        let input = b"* OK [UIDVALIDITY 123] valid 123\r\n";
        let m = matches(&p, input, &NoValues).unwrap();
        assert_eq!(m.captures(&p, input)["uidvalidity"], b"123");
        assert_eq!(
            m.redact(&p, input),
            [
                Segment::Raw(b"* OK [UIDVALIDITY ".to_vec()),
                Segment::Placeholder("uidvalidity".into()),
                Segment::Raw(b"] valid ".to_vec()),
                Segment::Placeholder("uidvalidity".into()),
                Segment::Raw(b"\r\n".to_vec()),
            ]
        );
        assert!(matches(&p, b"* OK [UIDVALIDITY 123] valid 124\r\n", &NoValues).is_none());
    }
}
