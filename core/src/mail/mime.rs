//! MIME header values: Content-Type, Content-Disposition and their parameters (RFC 2045 §5.1,
//! RFC 2183), kept as written. RFC 2231 parameters keep their `name*` form and RFC 2047
//! words stay encoded, as BODYSTRUCTURE requires.

use bytes::Bytes;

use super::header::unfold;

/// `type/subtype; params` or `disposition; params`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderValue {
    /// The leading token (`text/plain` splits into [`HeaderValue::main`] and
    /// [`HeaderValue::sub`]).
    pub main: Bytes,
    /// The subtype, for Content-Type.
    pub sub: Bytes,
    /// Parameters in order of appearance.
    pub params: Vec<(Bytes, Bytes)>,
}

impl HeaderValue {
    /// The value of the first parameter with this name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Bytes> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// Parses `type/subtype *(; name=value)`; `None` when there is no usable type.
pub fn content_type(raw: &[u8]) -> Option<HeaderValue> {
    let v = parse(raw, true)?;
    (!v.main.is_empty() && !v.sub.is_empty()).then_some(v)
}

/// Parses `disposition *(; name=value)`.
pub fn disposition(raw: &[u8]) -> Option<HeaderValue> {
    let v = parse(raw, false)?;
    (!v.main.is_empty()).then_some(v)
}

fn parse(raw: &[u8], with_subtype: bool) -> Option<HeaderValue> {
    let text = strip_comments(&unfold(raw));
    let mut p = Cursor { s: &text, i: 0 };
    p.skip_ws();
    let main = p.token();
    let mut sub = Vec::new();
    if with_subtype {
        p.skip_ws();
        if p.eat(b'/') {
            p.skip_ws();
            sub = p.token();
        }
    }
    let mut params = Vec::new();
    loop {
        // Skip to the next ';' (tolerating junk between parameters).
        while let Some(&c) = p.peek() {
            if c == b';' {
                break;
            }
            if c == b'"' {
                p.quoted();
            } else {
                p.i += 1;
            }
        }
        if !p.eat(b';') {
            break;
        }
        p.skip_ws();
        let name = p.token();
        p.skip_ws();
        if name.is_empty() || !p.eat(b'=') {
            continue;
        }
        p.skip_ws();
        let value = if p.peek() == Some(&b'"') {
            p.quoted()
        } else {
            p.token()
        };
        params.push((Bytes::from(name), Bytes::from(value)));
    }
    Some(HeaderValue {
        main: Bytes::from(main),
        sub: Bytes::from(sub),
        params: join_continuations(params),
    })
}

/// RFC 2231 §3: `name*0`, `name*1`... (and `name*0*`... for encoded parts) are pieces of one
/// value. They are joined in order into `name` (or `name*` when the first piece is encoded),
/// still undecoded, which is what Dovecot reports.
fn join_continuations(params: Vec<(Bytes, Bytes)>) -> Vec<(Bytes, Bytes)> {
    if !params.iter().any(|(n, _)| n.contains(&b'*')) {
        return params;
    }
    let mut out: Vec<(Bytes, Bytes)> = Vec::with_capacity(params.len());
    let mut joined: Vec<Joined> = Vec::new();
    for (name, value) in params {
        let Some((base, section, encoded)) = continuation(&name) else {
            out.push((name, value));
            continue;
        };
        let key = base.to_ascii_lowercase();
        match joined.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, _, pieces)) => pieces.push((section, value)),
            None => {
                let mut out_name = base.to_vec();
                if section == 0 && encoded {
                    out_name.push(b'*');
                }
                out.push((Bytes::from(out_name), Bytes::new()));
                joined.push((key, out.len() - 1, vec![(section, value)]));
            }
        }
    }
    for (_, index, mut pieces) in joined {
        pieces.sort_by_key(|(n, _)| *n);
        let mut value = Vec::new();
        for (_, piece) in pieces {
            value.extend_from_slice(&piece);
        }
        if let Some(slot) = out.get_mut(index) {
            slot.1 = Bytes::from(value);
        }
    }
    out
}

/// A parameter being joined: lower-cased base name, its slot in the output, and its pieces
/// by section number.
type Joined = (Vec<u8>, usize, Vec<(u32, Bytes)>);

/// Splits `name*N` / `name*N*` into (name, N, encoded).
fn continuation(name: &[u8]) -> Option<(&[u8], u32, bool)> {
    let (name, encoded) = match name.strip_suffix(b"*") {
        Some(n) => (n, true),
        None => (name, false),
    };
    let star = name.iter().rposition(|&b| b == b'*')?;
    let digits = name.get(star + 1..)?;
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    Some((name.get(..star)?, n, encoded))
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<&u8> {
        self.s.get(self.i)
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// An RFC 2045 token: anything but white space, controls and tspecials.
    fn token(&mut self) -> Vec<u8> {
        let start = self.i;
        while let Some(&c) = self.peek() {
            if c <= b' '
                || c == 0x7f
                || matches!(
                    c,
                    b'(' | b')'
                        | b'<'
                        | b'>'
                        | b'@'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                        | b'"'
                        | b'/'
                        | b'['
                        | b']'
                        | b'?'
                        | b'='
                )
            {
                break;
            }
            self.i += 1;
        }
        self.s.get(start..self.i).unwrap_or_default().to_vec()
    }

    fn quoted(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.i += 1;
        while let Some(&c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(&n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        out
    }
}

/// Removes RFC 5322 comments outside quoted strings.
fn strip_comments(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for &c in s {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            b'\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            b'"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            b'(' if !quoted => depth += 1,
            b')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let v = content_type(b" text/plain; charset=\"utf-8\"; format=flowed (c)").unwrap();
        assert_eq!(&v.main[..], b"text");
        assert_eq!(&v.sub[..], b"plain");
        assert_eq!(v.params.len(), 2);
        assert_eq!(v.param("CHARSET").map(|b| &b[..]), Some(&b"utf-8"[..]));
        let v = content_type(b"multipart/mixed;\r\n\tboundary=\"a;b\\\"c\"").unwrap();
        assert_eq!(v.param("boundary").map(|b| &b[..]), Some(&b"a;b\"c"[..]));
        assert_eq!(content_type(b"text"), None);
        assert_eq!(content_type(b""), None);
        let v = content_type(b"application/x; filename*=utf-8''%C3%A9.txt").unwrap();
        assert_eq!(&v.params[0].0[..], b"filename*");
    }

    #[test]
    fn rfc2231_continuations_are_joined_undecoded() {
        let v = disposition(
            b"attachment; filename*0*=utf-8''Ma%C3%9Fna; filename*1*=hm; filename*2*=en.html; size=3",
        )
        .unwrap();
        assert_eq!(
            v.params,
            vec![
                (
                    Bytes::from_static(b"filename*"),
                    Bytes::from_static(b"utf-8''Ma%C3%9Fnahmen.html")
                ),
                (Bytes::from_static(b"size"), Bytes::from_static(b"3")),
            ]
        );
        let v = disposition(b"inline; name*1=\"b\"; name*0=\"a\"").unwrap();
        assert_eq!(
            v.params,
            vec![(Bytes::from_static(b"name"), Bytes::from_static(b"ab"))]
        );
    }

    #[test]
    fn dispositions() {
        let v = disposition(b"attachment; filename=\"a b.pdf\"").unwrap();
        assert_eq!(&v.main[..], b"attachment");
        assert_eq!(v.param("filename").map(|b| &b[..]), Some(&b"a b.pdf"[..]));
    }
}
