//! Raw header blocks: fields as they appear in the message, for ENVELOPE, BODYSTRUCTURE and
//! `BODY[HEADER.FIELDS ...]`, which must not see decoded values.

/// One header field: its name and raw value (after the colon, folding kept, line end dropped),
/// plus the octets of the whole field including its line end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field name as written.
    pub name: &'a [u8],
    /// The raw value.
    pub value: &'a [u8],
    /// The complete field, name to line end inclusive.
    pub raw: &'a [u8],
}

/// Iterates the fields of a header block (which may include the blank line ending it).
/// Lines that are neither fields nor continuations (malformed input) are skipped, as
/// RFC 5322 parsers commonly do.
pub fn fields(block: &[u8]) -> impl Iterator<Item = Field<'_>> {
    let mut pos = 0;
    std::iter::from_fn(move || loop {
        let rest = block.get(pos..)?;
        if rest.is_empty() || rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            return None;
        }
        // The field runs until a line end not followed by white space.
        let mut end = 0;
        loop {
            match rest
                .get(end..)
                .and_then(|r| r.iter().position(|&b| b == b'\n'))
            {
                Some(lf) => {
                    end += lf + 1;
                    match rest.get(end) {
                        Some(b' ' | b'\t') => continue,
                        _ => break,
                    }
                }
                None => {
                    end = rest.len();
                    break;
                }
            }
        }
        let raw = rest.get(..end).unwrap_or(rest);
        pos += end;
        let Some(colon) = raw.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = raw.get(..colon).unwrap_or_default();
        // A field name is printable ASCII without spaces (RFC 5322 §2.2); anything else is junk.
        if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
            continue;
        }
        let value = raw.get(colon + 1..).unwrap_or_default();
        let value = strip_line_end(value);
        return Some(Field { name, value, raw });
    })
}

/// The raw value of the first field with this name (case-insensitive).
pub fn first<'a>(block: &'a [u8], name: &str) -> Option<&'a [u8]> {
    fields(block)
        .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| f.value)
}

/// Removes folding line ends (RFC 5322 §2.2.3) and the white space that follows the colon.
/// Other white space is kept as Dovecot keeps it: a folded `\t<id>` after an empty first line
/// stays `\t<id>`, and trailing spaces stay.
pub fn unfold(value: &[u8]) -> Vec<u8> {
    let first_line = value
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(value.len());
    let lead = value
        .iter()
        .take(first_line)
        .take_while(|b| is_wsp(**b))
        .count();
    let out: Vec<u8> = value
        .get(lead..)
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    out
}

pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn strip_line_end(v: &[u8]) -> &[u8] {
    let v = v.strip_suffix(b"\n").unwrap_or(v);
    v.strip_suffix(b"\r").unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_fields_and_junk_lines() {
        let block = b"Subject: a\r\n b\r\nX-Junk line\r\nFrom:  x@y\r\n\r\nbody: no\r\n";
        let f: Vec<_> = fields(block).collect();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, b"Subject");
        assert_eq!(f[0].value, b" a\r\n b");
        assert_eq!(f[0].raw, b"Subject: a\r\n b\r\n");
        assert_eq!(unfold(f[0].value), b"a b");
        assert_eq!(unfold(b" x \r\n\ty "), b"x \ty ");
        assert_eq!(first(block, "from"), Some(&b"  x@y"[..]));
        assert_eq!(first(block, "body"), None);
    }
}
