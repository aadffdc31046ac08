//! RFC 5322 address lists as ENVELOPE wants them: display names unquoted but not decoded,
//! groups marked, and lenient about the many malformed forms real mail contains.
//!
//! Linear in the input: a header of 100,000 addresses is one pass.

use bytes::Bytes;

use super::header::is_wsp;
use super::structure::Address;

/// Dovecot's placeholders for an address lacking a part, so that a missing host is never
/// mistaken for group syntax (where NIL host has a meaning).
const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    /// An atom or dot-atom run.
    Atom(&'a [u8]),
    /// A quoted string's content, unescaped.
    Quoted(Vec<u8>),
    /// A comment's content (outermost parentheses removed).
    Comment(&'a [u8]),
    /// A domain literal `[...]`, brackets included.
    Literal(&'a [u8]),
    /// One of `< > @ , ; : .`.
    Special(u8),
}

fn tokenize(input: &[u8]) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' => {
                let mut value = Vec::new();
                i += 1;
                while let Some(&c) = input.get(i) {
                    i += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            if let Some(&n) = input.get(i) {
                                value.push(n);
                                i += 1;
                            }
                        }
                        b'\r' | b'\n' => {}
                        _ => value.push(c),
                    }
                }
                out.push(Token::Quoted(value));
            }
            b'(' => {
                let start = i + 1;
                let mut depth = 0usize;
                while let Some(&c) = input.get(i) {
                    i += 1;
                    match c {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        b'\\' => i += 1,
                        _ => {}
                    }
                }
                let end = if depth == 0 { i - 1 } else { input.len() };
                out.push(Token::Comment(input.get(start..end).unwrap_or_default()));
            }
            b'[' => {
                let start = i;
                while let Some(&c) = input.get(i) {
                    i += 1;
                    if c == b']' {
                        break;
                    }
                }
                out.push(Token::Literal(input.get(start..i).unwrap_or_default()));
            }
            b'<' | b'>' | b'@' | b',' | b';' | b':' | b'.' => {
                out.push(Token::Special(b));
                i += 1;
            }
            _ => {
                let start = i;
                while let Some(&c) = input.get(i) {
                    if matches!(
                        c,
                        b' ' | b'\t'
                            | b'\r'
                            | b'\n'
                            | b'"'
                            | b'('
                            | b')'
                            | b'<'
                            | b'>'
                            | b'@'
                            | b','
                            | b';'
                            | b':'
                            | b'['
                            | b']'
                    ) {
                        break;
                    }
                    i += 1;
                }
                if i == start {
                    // A stray ')' or ']': skip it.
                    i += 1;
                    continue;
                }
                out.push(Token::Atom(input.get(start..i).unwrap_or_default()));
            }
        }
    }
    out
}

/// Parses a raw (possibly folded) address-list header value.
pub fn parse_list(raw: &[u8]) -> Vec<Address> {
    let tokens = tokenize(raw);
    let mut out = Vec::new();
    let mut rest: &[Token<'_>] = &tokens;
    while !rest.is_empty() {
        rest = parse_one(rest, &mut out);
    }
    out
}

/// Parses one address or group; returns the remaining tokens after its separator.
fn parse_one<'t, 'a>(tokens: &'t [Token<'a>], out: &mut Vec<Address>) -> &'t [Token<'a>] {
    // A group is a phrase followed by ':' before any '<', '@' or ','.
    let colon = tokens
        .iter()
        .position(|t| matches!(t, Token::Special(b':' | b'<' | b'@' | b',' | b';')));
    if let Some(i) = colon {
        if tokens.get(i) == Some(&Token::Special(b':')) {
            let name = phrase(tokens.get(..i).unwrap_or_default());
            out.push(Address {
                name: None,
                adl: None,
                mailbox: Some(Bytes::from(name)),
                host: None,
            });
            let mut rest = tokens.get(i + 1..).unwrap_or_default();
            loop {
                match rest.first() {
                    None => break,
                    Some(Token::Special(b';')) => {
                        rest = rest.get(1..).unwrap_or_default();
                        break;
                    }
                    Some(Token::Special(b',')) => rest = rest.get(1..).unwrap_or_default(),
                    Some(_) => {
                        let end = rest
                            .iter()
                            .position(|t| matches!(t, Token::Special(b',' | b';')))
                            .unwrap_or(rest.len());
                        mailbox(rest.get(..end).unwrap_or_default(), out);
                        rest = rest.get(end..).unwrap_or_default();
                    }
                }
            }
            out.push(Address::default());
            // Skip to after the next comma.
            return match rest.iter().position(|t| *t == Token::Special(b',')) {
                Some(c) => rest.get(c + 1..).unwrap_or_default(),
                None => &[],
            };
        }
    }
    let end = top_level_comma(tokens).unwrap_or(tokens.len());
    mailbox(tokens.get(..end).unwrap_or_default(), out);
    tokens.get(end + 1..).unwrap_or_default()
}

/// The first comma outside angle brackets (a source route has commas inside them).
fn top_level_comma(tokens: &[Token<'_>]) -> Option<usize> {
    let mut in_angle = false;
    tokens.iter().position(|t| {
        match t {
            Token::Special(b'<') => in_angle = true,
            Token::Special(b'>') => in_angle = false,
            Token::Special(b',') => return !in_angle,
            _ => {}
        }
        false
    })
}

/// One mailbox: `[phrase] <[route:]addr-spec>` or `addr-spec [(comment)]`.
fn mailbox(tokens: &[Token<'_>], out: &mut Vec<Address>) {
    if tokens.iter().all(|t| matches!(t, Token::Comment(_))) {
        return;
    }
    let open = tokens.iter().position(|t| *t == Token::Special(b'<'));
    let (name, spec) = match open {
        Some(o) => {
            let close = tokens
                .iter()
                .skip(o)
                .position(|t| *t == Token::Special(b'>'))
                .map_or(tokens.len(), |c| o + c);
            let name = phrase(tokens.get(..o).unwrap_or_default());
            (name, tokens.get(o + 1..close).unwrap_or_default())
        }
        None => {
            // The obsolete "addr (Name)" form: the comment stands in for the display name.
            let comment = tokens.iter().find_map(|t| match t {
                Token::Comment(c) => Some(collapse(c)),
                _ => None,
            });
            (comment.unwrap_or_default(), tokens)
        }
    };
    // A source route `@a,@b:` before the addr-spec.
    let (adl, spec) = match spec.iter().position(|t| *t == Token::Special(b':')) {
        Some(c) if spec.first() == Some(&Token::Special(b'@')) => (
            Some(render(spec.get(..c).unwrap_or_default())),
            spec.get(c + 1..).unwrap_or_default(),
        ),
        _ => (None, spec),
    };
    let spec: Vec<&Token<'_>> = spec
        .iter()
        .filter(|t| !matches!(t, Token::Comment(_)))
        .collect();
    if spec.is_empty() && name.is_empty() {
        return;
    }
    let at = spec.iter().rposition(|t| **t == Token::Special(b'@'));
    let (local, domain) = match at {
        Some(a) => (
            spec.get(..a).unwrap_or_default(),
            spec.get(a + 1..).unwrap_or_default(),
        ),
        None => (&spec[..], &[][..]),
    };
    let local = render_refs(local);
    let domain = render_refs(domain);
    out.push(Address {
        name: (!name.is_empty()).then(|| Bytes::from(name)),
        adl: adl.map(Bytes::from),
        mailbox: Some(Bytes::from(if local.is_empty() {
            MISSING_MAILBOX.to_vec()
        } else {
            local
        })),
        host: Some(Bytes::from(if domain.is_empty() {
            MISSING_DOMAIN.to_vec()
        } else {
            domain
        })),
    });
}

/// A display name: words joined by single spaces (a `.` sticks to the word before it, as in
/// `M. Last`), quotes removed, runs of white space inside quotes collapsed, comments dropped.
/// This is how Dovecot presents names.
fn phrase(tokens: &[Token<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tokens {
        let word: Vec<u8> = match t {
            Token::Atom(a) => a.to_vec(),
            Token::Quoted(q) => collapse(q),
            Token::Literal(l) => l.to_vec(),
            Token::Special(b'.') => {
                out.push(b'.');
                continue;
            }
            _ => continue,
        };
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(&word);
    }
    out
}

/// An addr-spec or route rendered back to text without white space.
fn render(tokens: &[Token<'_>]) -> Vec<u8> {
    render_refs(&tokens.iter().collect::<Vec<_>>())
}

fn render_refs(tokens: &[&Token<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tokens {
        match t {
            Token::Atom(a) => out.extend_from_slice(a),
            Token::Literal(l) => out.extend_from_slice(l),
            Token::Quoted(q) => {
                // A quoted local part keeps its quotes, as it must to stay one address.
                out.push(b'"');
                for &b in q {
                    if b == b'"' || b == b'\\' {
                        out.push(b'\\');
                    }
                    out.push(b);
                }
                out.push(b'"');
            }
            Token::Special(s) => out.push(*s),
            Token::Comment(_) => {}
        }
    }
    out
}

fn collapse(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in text
        .split(|&b| is_wsp(b) || b == b'\r' || b == b'\n')
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, mailbox: &str, host: &str) -> Address {
        Address {
            name: name.map(|n| Bytes::copy_from_slice(n.as_bytes())),
            adl: None,
            mailbox: Some(Bytes::copy_from_slice(mailbox.as_bytes())),
            host: Some(Bytes::copy_from_slice(host.as_bytes())),
        }
    }

    #[test]
    fn common_forms() {
        assert_eq!(
            parse_list(b"\"Doe, John\" <john@example.com>, jane@example.org (Jane Roe)"),
            vec![
                a(Some("Doe, John"), "john", "example.com"),
                a(Some("Jane Roe"), "jane", "example.org")
            ]
        );
        assert_eq!(
            parse_list(b"=?utf-8?q?J=C3=B6rg?= <j@x.de>"),
            vec![a(Some("=?utf-8?q?J=C3=B6rg?="), "j", "x.de")]
        );
        assert_eq!(
            parse_list(b"<@route.a,@route.b:u@h>")[0].adl.as_deref(),
            Some(&b"@route.a,@route.b"[..])
        );
        assert_eq!(
            parse_list(b"undisclosed"),
            vec![a(None, "undisclosed", "MISSING_DOMAIN")]
        );
        assert_eq!(parse_list(b""), vec![]);
    }

    #[test]
    fn rfc5322_groups() {
        let got = parse_list(b"A Group:Chris Jones <c@a.test>,joe@where.test;, x@y");
        assert_eq!(got.len(), 5);
        assert_eq!(got[0].mailbox.as_deref(), Some(&b"A Group"[..]));
        assert_eq!(got[0].host, None);
        assert_eq!(got[3], Address::default());
        assert_eq!(got[4], a(None, "x", "y"));
        let empty = parse_list(b"undisclosed-recipients:;");
        assert_eq!(empty.len(), 2);
    }

    #[test]
    fn a_hundred_thousand_addresses_parse_linearly() {
        let mut raw = Vec::new();
        for i in 0..100_000 {
            raw.extend_from_slice(format!("u{i}@example.com, ").as_bytes());
        }
        assert_eq!(parse_list(&raw).len(), 100_000);
    }
}
