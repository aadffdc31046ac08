//! Cutting server output into response units, and writing units back as transcript lines.

use crate::pattern::Segment;
use crate::transcript::trailing_literal;

/// Server literals larger than this are not believed: the line is taken as it is.
const MAX_SERVER_LITERAL: u64 = 1 << 30;

/// Takes one complete response unit — a line, and for IMAP the literals it announces with the
/// rest of the response after them — from the front of `buf`, its final line end included.
pub fn take_unit(buf: &mut Vec<u8>, imap: bool) -> Option<Vec<u8>> {
    let end = unit_end(buf, imap)?;
    Some(buf.drain(..end).collect())
}

fn unit_end(buf: &[u8], imap: bool) -> Option<usize> {
    let mut pos = 0;
    loop {
        let nl = pos + buf.get(pos..)?.iter().position(|&b| b == b'\n')?;
        let line_end = nl + 1;
        let text = buf.get(pos..nl).unwrap_or_default();
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let literal = if imap { trailing_literal(text) } else { None };
        match literal {
            Some(ann) if !ann.plus && ann.len <= MAX_SERVER_LITERAL => {
                pos = line_end + usize::try_from(ann.len).ok()?;
                if pos > buf.len() {
                    return None;
                }
            }
            _ => return Some(line_end),
        }
    }
}

/// Writes a unit as the `S:` lines of a transcript that would match it exactly. Octets that a
/// transcript line cannot hold (control characters, invalid UTF-8, `{{`) become `{{hex ..}}`.
pub fn render_lines(prefix: &str, unit: &[u8]) -> Vec<String> {
    render_segments(prefix, &[Segment::Raw(unit.to_vec())])
}

/// Like [`render_lines`], with some values standing as placeholders.
pub fn render_segments(prefix: &str, segments: &[Segment]) -> Vec<String> {
    let terminated = matches!(segments.last(), Some(Segment::Raw(r)) if r.ends_with(b"\r\n"));
    let mut lines = Vec::new();
    let mut current = prefix.to_string();
    let count = segments.len();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Raw(raw) => {
                let raw = if terminated && i + 1 == count {
                    raw.strip_suffix(b"\r\n").unwrap_or(raw)
                } else {
                    raw
                };
                let mut rest = raw;
                loop {
                    match find(rest, b"\r\n") {
                        Some(at) => {
                            current.push_str(&escape(&rest[..at]));
                            lines.push(std::mem::replace(&mut current, prefix.to_string()));
                            rest = &rest[at + 2..];
                        }
                        None => {
                            current.push_str(&escape(rest));
                            break;
                        }
                    }
                }
            }
            Segment::Placeholder(name) => {
                // A brace just before the placeholder would read as part of it.
                if current.ends_with('{') {
                    current.pop();
                    current.push_str("{{hex 7b}}");
                }
                current.push_str(&format!("{{{{{name}}}}}"));
            }
        }
    }
    if !terminated {
        current.push_str("   <- no line end yet");
    }
    lines.push(current);
    lines
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Transcript text for raw octets.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut hex = Vec::new();
    let flush = |hex: &mut Vec<u8>, out: &mut String| {
        if !hex.is_empty() {
            out.push_str("{{hex ");
            for b in hex.iter() {
                out.push_str(&format!("{b:02x}"));
            }
            out.push_str("}}");
            hex.clear();
        }
    };
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let mut chars = valid.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let brace_pair = c == '{' && valid[i + 1..].starts_with('{');
            if (c.is_control() && c != '\t') || brace_pair {
                let mut buf = [0u8; 4];
                hex.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                if brace_pair {
                    hex.push(b'{');
                    chars.next();
                }
            } else {
                flush(&mut hex, &mut out);
                out.push(c);
            }
        }
        hex.extend_from_slice(chunk.invalid());
    }
    flush(&mut hex, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_follow_literals() {
        let mut buf = b"* 1 FETCH (BODY[] {7}\r\nab\r\ncd\n)\r\na OK\r\npartial".to_vec();
        assert_eq!(
            take_unit(&mut buf, true).unwrap(),
            b"* 1 FETCH (BODY[] {7}\r\nab\r\ncd\n)\r\n"
        );
        assert_eq!(take_unit(&mut buf, true).unwrap(), b"a OK\r\n");
        assert_eq!(take_unit(&mut buf, true), None);
        assert_eq!(buf, b"partial");
        let mut incomplete = b"* 1 FETCH (BODY[] {7}\r\nab\r\n".to_vec();
        assert_eq!(take_unit(&mut incomplete, true), None);
        let mut pop = b"+OK {7}\r\n".to_vec();
        assert_eq!(take_unit(&mut pop, false).unwrap(), b"+OK {7}\r\n");
    }

    #[test]
    fn rendering_escapes_what_lines_cannot_hold() {
        assert_eq!(
            render_lines("S: ", b"* 1 FETCH (BODY[] {7}\r\nab\r\ncd\n)\r\n"),
            vec!["S: * 1 FETCH (BODY[] {7}", "S: ab", "S: cd{{hex 0a}})"]
        );
        assert_eq!(escape(b"a{{b}}\xff\x00"), "a{{hex 7b7b}}b}}{{hex ff00}}");
        assert_eq!(
            render_lines("S: ", b"+OK"),
            vec!["S: +OK   <- no line end yet"]
        );
    }
}
