//! One pass over a message at APPEND: its ENVELOPE, BODYSTRUCTURE and the offsets of every
//! part, so that FETCH never parses the message again.
//!
//! mail-parser finds the MIME tree (boundaries, nested messages, part offsets); the fields
//! IMAP reports are then read from the raw header blocks, because ENVELOPE and BODYSTRUCTURE
//! must show values as written, not decoded.

use std::ops::Range;

use bytes::Bytes;
use mail_parser::{MessageParser, MessagePart, PartType};

use super::address::parse_list;
use super::header::{self, first, unfold};
use super::mime::{self, HeaderValue};
use super::structure::{BodyExtension, BodyFields, BodyStructure, Disposition, Envelope};

/// Deeper MIME nesting is reported as plain text (Dovecot uses the same bound), so hostile
/// structures cost bounded time and memory.
pub const MAX_DEPTH: usize = 100;
/// At most this many parts are described; the rest become plain text.
pub const MAX_PARTS: usize = 10_000;

/// How a part's body is encoded (RFC 2045 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferEncoding {
    /// 7bit, 8bit, binary, or absent: the octets are the content.
    Identity,
    /// base64.
    Base64,
    /// quoted-printable.
    QuotedPrintable,
    /// Anything else (BINARY answers `[UNKNOWN-CTE]`).
    Unknown(Bytes),
}

/// Where a part lies in the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The part's header block, blank line included.
    pub header: Range<usize>,
    /// The part's body.
    pub body: Range<usize>,
    /// The body's transfer encoding.
    pub encoding: TransferEncoding,
    /// Sub-parts.
    pub children: Children,
}

/// What a part contains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Children {
    /// A leaf.
    None,
    /// A multipart's parts.
    Multipart(Vec<Part>),
    /// A message/rfc822's encapsulated message (its root part).
    Message(Box<Part>),
}

/// What FETCH needs about a message, computed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// ENVELOPE.
    pub envelope: Envelope,
    /// BODYSTRUCTURE.
    pub body: BodyStructure,
    /// The part tree with offsets into the message.
    pub root: Part,
}

/// Parses a message with mail-parser. A panic inside the parser on hostile input must cost
/// only what the parse was for, never the session or the store: `None` then, and callers fall
/// back (one text part; the raw octets as search text).
pub(crate) fn parse(raw: &[u8]) -> Option<mail_parser::Message<'_>> {
    std::panic::catch_unwind(|| MessageParser::default().parse(raw))
        .ok()
        .flatten()
}

/// Analyses a message (ideally with CRLF line ends, as tern stores them).
pub fn analyze(raw: &[u8]) -> MessageInfo {
    analyze_parsed(raw, parse(raw).as_ref())
}

/// Everything a store derives from a body when it stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Analysis {
    /// ENVELOPE, BODYSTRUCTURE, part offsets.
    pub info: MessageInfo,
    /// What SEARCH reads.
    pub text: super::text::SearchText,
    /// PREVIEW (RFC 8970; [`super::preview`]).
    pub preview: String,
}

/// The structure, the search text and the preview of a message from one parse (what a store
/// needs at APPEND; parsing twice was a tenth of APPEND's cost).
pub fn analyze_all(raw: &[u8]) -> Analysis {
    let parsed = parse(raw);
    let info = analyze_parsed(raw, parsed.as_ref());
    let preview = super::preview::preview_parsed(parsed.as_ref());
    Analysis {
        info,
        text: super::text::extract_parsed(raw, parsed),
        preview,
    }
}

fn analyze_parsed(raw: &[u8], parsed: Option<&mail_parser::Message<'_>>) -> MessageInfo {
    let mut budget = Budget {
        parts: MAX_PARTS,
        // Looking for a misplaced delimiter reads the message at most a few times over.
        scan: raw.len().saturating_mul(4).saturating_add(EPILOGUE_SCAN),
    };
    match parsed.filter(|m| !m.parts.is_empty()) {
        Some(message) => {
            let (root, body) = build(&message.parts, 0, raw, raw.len(), 0, &mut budget);
            let envelope = envelope(raw.get(root.header.clone()).unwrap_or_default());
            MessageInfo {
                envelope,
                body,
                root,
            }
        }
        None => fallback(raw),
    }
}

/// A message mail-parser could not make sense of (e.g. empty): one text part.
fn fallback(raw: &[u8]) -> MessageInfo {
    let split = find_body_start(raw);
    let root = Part {
        header: 0..split,
        body: split..raw.len(),
        encoding: TransferEncoding::Identity,
        children: Children::None,
    };
    let header = raw.get(..split).unwrap_or_default();
    let body = leaf(header, raw.get(split..).unwrap_or_default(), None);
    MessageInfo {
        envelope: envelope(header),
        body,
        root,
    }
}

/// Offset of the first octet after the header's blank line (or the end).
fn find_body_start(raw: &[u8]) -> usize {
    if raw.starts_with(b"\r\n") {
        return 2;
    }
    if raw.starts_with(b"\n") {
        return 1;
    }
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(raw.len()),
    }
}

/// Describes `parts[index]`, whose body ends at `end` (its container decides where: the end of
/// the message, of the enclosing message/rfc822 part's body, or the line break before the
/// next boundary of the enclosing multipart).
fn build<'r>(
    parts: &[MessagePart<'r>],
    index: usize,
    raw: &'r [u8],
    end: usize,
    depth: usize,
    budget: &mut Budget,
) -> (Part, BodyStructure) {
    let Some(part) = parts.get(index) else {
        return empty_part();
    };
    budget.parts = budget.parts.saturating_sub(1);
    let header_range = clamp(part.offset_header as usize, part.offset_body as usize, end);
    let body_range = clamp(part.offset_body as usize, end, end);
    let header_range = without_delimiter_crlf(raw, header_range, &body_range);
    let header = raw.get(header_range.clone()).unwrap_or_default();
    let body = raw.get(body_range.clone()).unwrap_or_default();
    let encoding = transfer_encoding(header);
    let over_budget = depth >= MAX_DEPTH || budget.parts == 0;
    let ct = mime::content_type(first(header, "Content-Type").unwrap_or_default());
    let mut node = Part {
        header: header_range,
        body: body_range,
        encoding,
        children: Children::None,
    };
    match &part.body {
        PartType::Multipart(children) if !over_budget => {
            let ct = ct.unwrap_or_default();
            let mut nodes = Vec::with_capacity(children.len().min(budget.parts));
            let mut structures = Vec::with_capacity(nodes.capacity());
            let boundary = ct.param("boundary").cloned().unwrap_or_default();
            // Inside a multipart mail-parser mishandles a message/rfc822 whose content is
            // message/rfc822: it drops a level, or loses the boundary and runs on through the
            // parts that follow (read alone, such a part parses right). So when the multipart
            // has a part like that, its parts are cut at the delimiter lines and each is
            // parsed on its own. (Only then: elsewhere mail-parser's reading of malformed
            // boundaries, a nested multipart reusing its parent's boundary or a delimiter
            // with nothing after it, is closer to Dovecot's than a plain cut.)
            let suspect = children
                .iter()
                .any(|&c| message_in_message(parts, c as usize, raw));
            let resplit = suspect
                .then(|| delimiter_lines(raw, &node.body, &boundary, &mut budget.scan))
                .flatten()
                .filter(|(lines, _)| !lines.is_empty());
            if let Some((lines, close)) = &resplit {
                for (k, &(_, after)) in lines.iter().enumerate() {
                    if budget.parts == 0 {
                        break;
                    }
                    let following = lines.get(k + 1).map(|l| l.0).or(*close);
                    let next = following.unwrap_or(node.body.end).max(after);
                    let sub = parse_part(raw, after..next);
                    let (n, s) = match sub.first() {
                        Some(first) => {
                            let start = (first.offset_body as usize).clamp(after, next);
                            // Without a delimiter after it, the part runs to the parent's end.
                            let end = match following {
                                Some(d) => end_at_delimiter(&sub, 0, start, d, raw),
                                None => node.body.end,
                            };
                            build(&sub, 0, raw, end, depth + 1, budget)
                        }
                        None => empty_part(),
                    };
                    nodes.push(n);
                    structures.push(s);
                }
            } else {
                for (i, &child) in children.iter().enumerate() {
                    if budget.parts == 0 {
                        break;
                    }
                    let next = children.get(i + 1).copied();
                    let parent = Parent {
                        part,
                        boundary: &boundary,
                        end: node.body.end,
                    };
                    let child_end = part_end(parts, child, next, &parent, raw, &mut budget.scan);
                    let (n, s) = build(parts, child as usize, raw, child_end, depth + 1, budget);
                    nodes.push(n);
                    structures.push(s);
                }
            }
            if structures.is_empty() {
                // RFC 9051 §9 requires at least one part; an empty multipart gets an empty one.
                let (n, s) = empty_part();
                nodes.push(n);
                structures.push(s);
            }
            node.children = Children::Multipart(nodes);
            let structure = BodyStructure::Multipart {
                parts: structures,
                subtype: ct.sub.clone(),
                params: ct.params.clone(),
                ext: extension(header),
            };
            (node, structure)
        }
        PartType::Message(inner)
            if !over_budget
                && inner.raw_message.as_ptr() == raw.as_ptr()
                && !inner.parts.is_empty() =>
        {
            // Only an unencoded message/rfc822 has offsets into this message; an encoded one
            // (which RFC 2046 §5.2.1 forbids) is reported as an opaque leaf below.
            // The encapsulated message is the whole body of the part (RFC 2046 §5.2.1).
            let (inner_root, inner_body) =
                build(&inner.parts, 0, raw, node.body.end, depth + 1, budget);
            let inner_header = raw.get(inner_root.header.clone()).unwrap_or_default();
            let ct = ct.unwrap_or_else(|| default_type(true));
            // Dovecot writes "rfc822" whatever the header's case ("message" too, which the
            // encoder spells out).
            let subtype = if ct.sub.eq_ignore_ascii_case(b"rfc822") {
                Bytes::from_static(b"rfc822")
            } else {
                ct.sub.clone()
            };
            let structure = BodyStructure::Message {
                subtype,
                fields: fields(header, &ct, body.len()),
                envelope: Box::new(envelope(inner_header)),
                body: Box::new(inner_body),
                lines: count_lines(body),
                md5: md5(header),
                ext: extension(header),
            };
            node.children = Children::Message(Box::new(inner_root));
            (node, structure)
        }
        _ => {
            let structure = leaf(header, body, ct);
            let structure = if over_budget {
                plain_text(header, body)
            } else {
                structure
            };
            (node, structure)
        }
    }
}

/// The delimiter lines of a multipart body, matched exactly ("--", the boundary, "--" for the
/// close-delimiter, then only white space, so a nested part's longer boundary is no match):
/// where each delimiter line starts and the octet after it, and where the close-delimiter
/// starts if there is one. `None` when the scan budget is spent.
#[allow(clippy::type_complexity)]
fn delimiter_lines(
    raw: &[u8],
    body: &Range<usize>,
    boundary: &[u8],
    scan: &mut usize,
) -> Option<(Vec<(usize, usize)>, Option<usize>)> {
    if boundary.is_empty() {
        return None;
    }
    let region = raw.get(body.clone())?;
    *scan = scan.checked_sub(region.len())?;
    let mut lines = Vec::new();
    let mut at = 0;
    for line in region.split_inclusive(|&b| b == b'\n') {
        let start = body.start + at;
        at += line.len();
        let Some(rest) = line
            .strip_prefix(b"--")
            .and_then(|l| l.strip_prefix(boundary))
        else {
            continue;
        };
        let blank = |r: &[u8]| r.iter().all(|b| b" \t\r\n".contains(b));
        if let Some(after_close) = rest.strip_prefix(b"--") {
            if blank(after_close) {
                return Some((lines, Some(start)));
            }
        } else if blank(rest) {
            lines.push((start, body.start + at));
        }
    }
    Some((lines, None))
}

/// Whether `parts[index]` is a message/rfc822 part whose content is again message/rfc822,
/// judged from the header blocks as written (mail-parser's own view of such a part is what
/// goes wrong).
fn message_in_message(parts: &[MessagePart<'_>], index: usize, raw: &[u8]) -> bool {
    let is_message = |header: &[u8]| {
        first(header, "Content-Type")
            .and_then(mime::content_type)
            .is_some_and(|ct| {
                ct.main.eq_ignore_ascii_case(b"message") && ct.sub.eq_ignore_ascii_case(b"rfc822")
            })
    };
    let Some(part) = parts.get(index) else {
        return false;
    };
    let (header, body) = (part.offset_header as usize, part.offset_body as usize);
    let Some(own) = raw.get(header..body) else {
        return false;
    };
    if !is_message(own) {
        return false;
    }
    let Some(rest) = raw.get(body..) else {
        return false;
    };
    let inner = rest.get(..find_body_start(rest)).unwrap_or_default();
    is_message(inner)
}

/// The parts mail-parser finds in `raw[range]` read as a message of its own, with offsets
/// into `raw` (also those of encapsulated messages).
fn parse_part<'r>(raw: &'r [u8], range: Range<usize>) -> Vec<MessagePart<'r>> {
    let Some(slice) = raw.get(range.clone()) else {
        return Vec::new();
    };
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(slice))
        .ok()
        .flatten();
    let Some(message) = parsed else {
        return Vec::new();
    };
    let base = u32::try_from(range.start).unwrap_or(u32::MAX);
    shift(message.parts, slice.as_ptr(), base, raw, 0)
}

fn shift<'r>(
    mut parts: Vec<MessagePart<'r>>,
    slice: *const u8,
    base: u32,
    raw: &'r [u8],
    depth: usize,
) -> Vec<MessagePart<'r>> {
    for part in &mut parts {
        for offset in [
            &mut part.offset_header,
            &mut part.offset_body,
            &mut part.offset_end,
        ] {
            *offset = offset.saturating_add(base);
        }
        if let PartType::Message(inner) = &mut part.body {
            // Only an unencoded encapsulated message has offsets into the slice.
            if inner.raw_message.as_ptr() == slice && depth < MAX_DEPTH {
                let inner_parts = std::mem::take(&mut inner.parts);
                inner.parts = shift(inner_parts, slice, base, raw, depth + 1);
                inner.raw_message = std::borrow::Cow::Borrowed(raw);
            }
        }
    }
    parts
}

/// How far past mail-parser's end of a multipart's last part its close-delimiter is looked
/// for.
const EPILOGUE_SCAN: usize = 64 * 1024;

/// The multipart whose part's end [`part_end`] finds.
struct Parent<'a, 'x> {
    /// As mail-parser found it.
    part: &'a MessagePart<'x>,
    /// Its boundary.
    boundary: &'a [u8],
    /// Where its body ends.
    end: usize,
}

/// What analysing one message may still spend.
struct Budget {
    /// Parts still to describe.
    parts: usize,
    /// Octets still to read looking for delimiters mail-parser placed elsewhere.
    scan: usize,
}

/// Where the body of `parts[child]`, a part of the multipart `parent`, ends, as Dovecot has
/// it: before the line break that precedes the delimiter line following it (RFC 2046 §5.1.1:
/// that CRLF belongs to the delimiter), except after the close-delimiter line of a multipart
/// it ends with, which keeps its line break. mail-parser ends a leaf right, but a multipart
/// child at the end of its own close-delimiter (leaving out the rest of that line and its
/// epilogue) and a nested message/rfc822 at its last leaf's end (even past the enclosing
/// boundary), so the delimiter line is looked for just before the next part's header, or for
/// the last part at the parent's close-delimiter. Without a well-formed delimiter
/// mail-parser's end is kept, within the parent.
fn part_end(
    parts: &[MessagePart<'_>],
    child: u32,
    next: Option<u32>,
    parent: &Parent<'_, '_>,
    raw: &[u8],
    scan: &mut usize,
) -> usize {
    let (boundary, parent_end) = (parent.boundary, parent.end);
    let Some(part) = parts.get(child as usize) else {
        return parent_end;
    };
    let start = (part.offset_body as usize).min(parent_end);
    let fallback = (part.offset_end as usize).clamp(start, parent_end);
    if boundary.is_empty() {
        return fallback;
    }
    if !matches!(part.body, PartType::Multipart(_) | PartType::Message(_)) {
        // An empty body right before the delimiter: the header's blank line is the line
        // break that belongs to the delimiter, so the header ends before it (Dovecot's MIME
        // header then has no blank line, or is empty).
        let at_delimiter = raw
            .get(fallback..)
            .and_then(|r| r.strip_prefix(b"--"))
            .is_some_and(|r| r.starts_with(boundary));
        let head = raw.get(..start).unwrap_or_default();
        if fallback == start && at_delimiter {
            if head.ends_with(b"\r\n\r\n") {
                return start - 2;
            }
            if head.ends_with(b"\n\n") {
                return start - 1;
            }
        }
        return fallback;
    }
    // The octet after the delimiter line: the next part's header, or the end of the parent's
    // close-delimiter (where mail-parser ends a multipart).
    let after = match next.and_then(|n| parts.get(n as usize)) {
        Some(next) => next.offset_header as usize,
        None => parent.part.offset_end as usize,
    };
    let is_delimiter = |line: &[u8]| {
        line.strip_prefix(b"--")
            .is_some_and(|rest| rest.starts_with(boundary))
    };
    // The delimiter line is the last line before `after` (the one `after` ends, for a
    // close-delimiter without line end).
    let before = raw.get(start..after.min(parent_end)).and_then(|line| {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line_start = line.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        is_delimiter(line.get(line_start..)?).then_some(start + line_start)
    });
    // mail-parser may end a last part's parent elsewhere (the message's end for a top-level
    // multipart), and a nested message/rfc822 may run past its parent's close-delimiter: then
    // the close-delimiter is the first line that is exactly one, from the part's start to a
    // bounded distance past mail-parser's end (an epilogue is a line or two). An exact match
    // ("--" boundary "--" and white space) cannot be taken for a nested part's longer boundary.
    let delimiter_start = before.or_else(|| {
        if next.is_some() {
            return None;
        }
        let limit = fallback.saturating_add(EPILOGUE_SCAN).min(parent_end);
        let region = raw.get(start..limit)?;
        *scan = scan.checked_sub(region.len())?;
        let is_close = |line: &[u8]| {
            line.strip_prefix(b"--")
                .and_then(|l| l.strip_prefix(boundary))
                .and_then(|l| l.strip_prefix(b"--"))
                .is_some_and(|l| {
                    let end = l.iter().position(|&b| b == b'\n').unwrap_or(l.len());
                    l.get(..end)
                        .unwrap_or_default()
                        .iter()
                        .all(|b| b" \t\r".contains(b))
                })
        };
        let at_line_start = start == 0 || raw.get(start - 1) == Some(&b'\n');
        let first = at_line_start.then_some(0).into_iter();
        let rest = region
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1);
        first
            .chain(rest)
            .find(|&i| region.get(i..).is_some_and(is_close))
            .map(|i| start + i)
    });
    let Some(delimiter_start) = delimiter_start else {
        // No delimiter of this multipart follows its last part: a delimiter of an enclosing
        // one ended both, so the part runs to where its parent does.
        return if next.is_none() { parent_end } else { fallback };
    };
    end_at_delimiter(parts, child as usize, start, delimiter_start, raw)
}

/// Where the body of `parts[index]`, starting at `start`, ends when the next delimiter line of
/// its multipart starts at `delimiter_start`: before the line break that precedes it, unless
/// that line break ends the close-delimiter line of a multipart the part ends with (Dovecot
/// reads that line whole). An empty body right before the delimiter leaves its header's blank
/// line to the delimiter.
fn end_at_delimiter(
    parts: &[MessagePart<'_>],
    index: usize,
    start: usize,
    delimiter_start: usize,
    raw: &[u8],
) -> usize {
    let content = raw.get(start..delimiter_start).unwrap_or_default();
    let Some(without_break) = content
        .strip_suffix(b"\n")
        .map(|c| c.strip_suffix(b"\r").unwrap_or(c))
    else {
        let head = raw.get(..start).unwrap_or_default();
        if content.is_empty() && head.ends_with(b"\r\n\r\n") {
            return start - 2;
        }
        if content.is_empty() && head.ends_with(b"\n\n") {
            return start - 1;
        }
        return start + content.len();
    };
    let last_line = without_break
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(without_break, |p| {
            without_break.get(p + 1..).unwrap_or_default()
        });
    // Only a line shaped like a close-delimiter costs a walk down the part's last parts.
    let closes = last_line.starts_with(b"--") && last_line.trim_ascii_end().ends_with(b"--") && {
        let mut boundaries = Vec::new();
        trailing_boundaries(parts, index, raw, 0, &mut boundaries);
        boundaries.iter().any(|b| {
            last_line
                .strip_prefix(b"--")
                .and_then(|l| l.strip_prefix(b.as_slice()))
                .is_some_and(|l| l.starts_with(b"--"))
        })
    };
    if closes {
        start + content.len()
    } else {
        start + without_break.len()
    }
}

/// The boundaries of the multiparts a part's content ends with: the part itself if it is one,
/// then its last part, or the body of a message it encapsulates, and so on down.
fn trailing_boundaries(
    parts: &[MessagePart<'_>],
    index: usize,
    raw: &[u8],
    depth: usize,
    out: &mut Vec<Vec<u8>>,
) {
    let Some(part) = parts.get(index).filter(|_| depth < MAX_DEPTH) else {
        return;
    };
    match &part.body {
        PartType::Multipart(children) => {
            let boundary = raw
                .get(part.offset_header as usize..part.offset_body as usize)
                .and_then(|h| first(h, "Content-Type"))
                .and_then(mime::content_type)
                .and_then(|ct| ct.param("boundary").map(|b| b.to_vec()))
                .filter(|b| !b.is_empty());
            out.extend(boundary);
            if let Some(&last) = children.last() {
                trailing_boundaries(parts, last as usize, raw, depth + 1, out);
            }
        }
        PartType::Message(inner) if inner.raw_message.as_ptr() == raw.as_ptr() => {
            trailing_boundaries(&inner.parts, 0, raw, depth + 1, out);
        }
        _ => {}
    }
}

fn empty_part() -> (Part, BodyStructure) {
    let part = Part {
        header: 0..0,
        body: 0..0,
        encoding: TransferEncoding::Identity,
        children: Children::None,
    };
    (part, plain_text(&[], &[]))
}

/// The header of a part with an empty body, right before the next boundary: the parser ends
/// it after the blank line, but that line break belongs to the boundary delimiter
/// (RFC 2046 §5.1.1: "the CRLF preceding the boundary delimiter line is conceptually attached
/// to the boundary"), so BODY[n.MIME] is the header lines alone, as Dovecot sends it.
fn without_delimiter_crlf(raw: &[u8], header: Range<usize>, body: &Range<usize>) -> Range<usize> {
    let at_boundary = body.is_empty()
        && raw
            .get(body.start..)
            .is_some_and(|rest| rest.starts_with(b"--"));
    let text = raw.get(header.clone()).unwrap_or_default();
    let cut = if !at_boundary {
        0
    } else if text.ends_with(b"\r\n\r\n") {
        2
    } else if text.ends_with(b"\n\n") {
        1
    } else {
        0
    };
    header.start..header.end - cut
}

fn clamp(start: usize, end: usize, len: usize) -> Range<usize> {
    let end = end.min(len);
    start.min(end)..end
}

/// RFC 2045 §5.2: no Content-Type means text/plain; charset=us-ascii, except inside
/// multipart/digest (RFC 2046 §5.1.5), where it means message/rfc822.
fn default_type(message: bool) -> HeaderValue {
    if message {
        HeaderValue {
            main: Bytes::from_static(b"message"),
            sub: Bytes::from_static(b"rfc822"),
            params: Vec::new(),
        }
    } else {
        HeaderValue {
            main: Bytes::from_static(b"text"),
            sub: Bytes::from_static(b"plain"),
            params: vec![(
                Bytes::from_static(b"charset"),
                Bytes::from_static(b"us-ascii"),
            )],
        }
    }
}

/// A part mail-parser treats as a leaf. A multipart or message type it could not split is
/// reported as text, the type RFC 2046 gives unrecognised content.
fn leaf(header: &[u8], body: &[u8], ct: Option<HeaderValue>) -> BodyStructure {
    let ct = match ct {
        Some(ct) if !is_composite(&ct) => ct,
        _ => default_type(false),
    };
    let is_text = ct.main.eq_ignore_ascii_case(b"text");
    BodyStructure::Single {
        fields: fields(header, &ct, body.len()),
        media_type: ct.main,
        subtype: ct.sub,
        lines: is_text.then(|| count_lines(body)),
        md5: md5(header),
        ext: extension(header),
    }
}

fn is_composite(ct: &HeaderValue) -> bool {
    ct.main.eq_ignore_ascii_case(b"multipart")
        || (ct.main.eq_ignore_ascii_case(b"message") && ct.sub.eq_ignore_ascii_case(b"rfc822"))
}

fn plain_text(header: &[u8], body: &[u8]) -> BodyStructure {
    let ct = default_type(false);
    BodyStructure::Single {
        fields: fields(header, &ct, body.len()),
        media_type: ct.main,
        subtype: ct.sub,
        lines: Some(count_lines(body)),
        md5: None,
        ext: BodyExtension::default(),
    }
}

fn fields(header: &[u8], ct: &HeaderValue, octets: usize) -> BodyFields {
    let encoding = first(header, "Content-Transfer-Encoding")
        .map(trimmed)
        .filter(|e| !e.is_empty())
        .map_or(Bytes::from_static(b"7bit"), Bytes::from);
    let mut params = ct.params.clone();
    // Dovecot reports the RFC 2045 §5.2 default charset for text parts that name none;
    // clients display it, so tern does the same.
    if ct.main.eq_ignore_ascii_case(b"text") && ct.param("charset").is_none() {
        params.insert(
            0,
            (
                Bytes::from_static(b"charset"),
                Bytes::from_static(b"us-ascii"),
            ),
        );
    }
    BodyFields {
        params,
        id: nstring(header, "Content-ID"),
        description: nstring(header, "Content-Description"),
        encoding,
        octets: octets as u64,
    }
}

fn md5(header: &[u8]) -> Option<Bytes> {
    nstring(header, "Content-MD5")
}

fn extension(header: &[u8]) -> BodyExtension {
    let disposition = first(header, "Content-Disposition")
        .and_then(mime::disposition)
        .map(|d| Disposition {
            kind: d.main,
            params: d.params,
        });
    let language = first(header, "Content-Language")
        .map(|raw| {
            unfold(raw)
                .split(|&b| b == b',' || b == b' ' || b == b'\t')
                .filter(|t| !t.is_empty())
                .map(Bytes::copy_from_slice)
                .collect()
        })
        .unwrap_or_default();
    BodyExtension {
        disposition,
        language,
        location: nstring(header, "Content-Location"),
    }
}

/// A MIME field's value, unfolded and without trailing white space.
fn nstring(header: &[u8], name: &str) -> Option<Bytes> {
    first(header, name).map(|v| Bytes::from(trimmed(v)))
}

fn trimmed(v: &[u8]) -> Vec<u8> {
    let mut v = unfold(v);
    while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
        v.pop();
    }
    v
}

fn transfer_encoding(header: &[u8]) -> TransferEncoding {
    let Some(raw) = first(header, "Content-Transfer-Encoding") else {
        return TransferEncoding::Identity;
    };
    let value = trimmed(raw).to_ascii_lowercase();
    match value.as_slice() {
        b"" | b"7bit" | b"8bit" | b"binary" => TransferEncoding::Identity,
        b"base64" => TransferEncoding::Base64,
        b"quoted-printable" => TransferEncoding::QuotedPrintable,
        _ => TransferEncoding::Unknown(Bytes::from(value)),
    }
}

/// Lines of a body: its line feeds, as Dovecot counts them.
pub fn count_lines(body: &[u8]) -> u64 {
    body.iter().filter(|&&b| b == b'\n').count() as u64
}

/// The ENVELOPE of a header block (RFC 9051 §7.5.2), with Dovecot's handling of what
/// RFC 5322 forbids but mail contains: a repeated single field counts in its last
/// occurrence, repeated address fields are concatenated.
pub fn envelope(header: &[u8]) -> Envelope {
    let list = |name: &str| {
        let mut all = Vec::new();
        for f in header::fields(header).filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes())) {
            all.extend(parse_list(f.value));
        }
        all
    };
    let last = |name: &str| {
        header::fields(header)
            .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
            .last()
            .map(|f| f.value)
    };
    let text = |name: &str| last(name).map(|v| Bytes::from(unfold(v)));
    let from = list("From");
    let or_from = |v: Vec<_>| if v.is_empty() { from.clone() } else { v };
    Envelope {
        date: text("Date"),
        // Folding white space in a subject is one space, as clients show it.
        subject: last("Subject").map(|v| Bytes::from(collapse_space(&unfold(v)))),
        sender: or_from(list("Sender")),
        reply_to: or_from(list("Reply-To")),
        to: list("To"),
        cc: list("Cc"),
        bcc: list("Bcc"),
        in_reply_to: text("In-Reply-To"),
        message_id: text("Message-ID"),
        from,
    }
}

/// Runs of spaces and tabs become one space.
fn collapse_space(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for &b in v {
        if b == b' ' || b == b'\t' {
            if out.last() != Some(&b' ') {
                out.push(b' ');
            }
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMPLE: &[u8] = b"From: \"A\" <a@x.test>\r\nTo: b@y.test\r\nSubject: =?utf-8?q?hi?=\r\nMessage-ID: <1@x>\r\n\r\nline1\r\nline2\r\n";

    #[test]
    fn simple_message() {
        let info = analyze(SIMPLE);
        assert_eq!(
            info.envelope.subject.as_deref(),
            Some(&b"=?utf-8?q?hi?="[..])
        );
        assert_eq!(info.envelope.sender, info.envelope.from);
        assert_eq!(info.envelope.from[0].name.as_deref(), Some(&b"A"[..]));
        assert_eq!(info.envelope.date, None);
        match &info.body {
            BodyStructure::Single {
                media_type,
                subtype,
                fields,
                lines,
                ..
            } => {
                assert_eq!(&media_type[..], b"text");
                assert_eq!(&subtype[..], b"plain");
                assert_eq!(fields.octets, 14);
                assert_eq!(*lines, Some(2));
                assert_eq!(&fields.encoding[..], b"7bit");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(&SIMPLE[info.root.body.clone()], b"line1\r\nline2\r\n");
    }

    #[test]
    fn multipart_with_nested_message() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\nSubject: outer\r\n\r\npre\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: MESSAGE/RFC822\r\n\r\nSubject: inner\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n";
        let info = analyze(raw);
        let BodyStructure::Multipart { parts, subtype, .. } = &info.body else {
            panic!("{:?}", info.body)
        };
        assert_eq!(&subtype[..], b"mixed");
        assert_eq!(parts.len(), 2);
        let BodyStructure::Message {
            envelope,
            body,
            subtype,
            ..
        } = &parts[1]
        else {
            panic!("{:?}", parts[1])
        };
        assert_eq!(&subtype[..], b"rfc822");
        assert_eq!(envelope.subject.as_deref(), Some(&b"inner"[..]));
        assert!(
            matches!(&**body, BodyStructure::Single { subtype, .. } if &subtype[..] == b"html")
        );
        let Children::Multipart(children) = &info.root.children else {
            panic!()
        };
        assert_eq!(&raw[children[0].body.clone()], b"hello");
    }

    #[test]
    fn unclosed_nested_messages_stay_within_their_parents() {
        // Message/rfc822 inside multipart, 60 deep, no close-delimiter anywhere, a large
        // body at the bottom: every part ends within its parent, and looking for the missing
        // delimiters reads a bounded amount (the scan budget).
        let mut raw = Vec::new();
        for i in 0..60 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\nContent-Type: message/rfc822\r\n\r\n").as_bytes(),
            );
        }
        raw.extend_from_slice(b"Subject: bottom\r\n\r\n");
        raw.extend(std::iter::repeat_n(b'x', 1 << 20));
        raw.extend_from_slice(b"\r\n--b3--\r\n");
        let info = analyze(&raw);
        fn check(p: &Part, outer: &std::ops::Range<usize>) {
            assert!(
                p.header.start >= outer.start && p.body.end <= outer.end,
                "{p:?}"
            );
            match &p.children {
                Children::Multipart(v) => v.iter().for_each(|c| check(c, &p.body)),
                Children::Message(m) => check(m, &p.body),
                Children::None => {}
            }
        }
        check(&info.root, &(0..raw.len()));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut raw = Vec::new();
        for i in 0..1000 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\nx\r\n");
        let info = analyze(&raw);
        let mut depth = 0;
        let mut node = &info.body;
        while let BodyStructure::Multipart { parts, .. } = node {
            depth += 1;
            node = &parts[0];
        }
        assert!(depth <= MAX_DEPTH, "{depth}");
    }

    /// One parse gives what the two separate calls give, for ordinary, multipart, empty and
    /// unparseable input alike.
    #[test]
    fn one_parse_gives_the_structure_text_and_preview_of_three() {
        let multipart = b"From: a@x.test\r\nSubject: m\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n";
        for raw in [
            SIMPLE,
            &multipart[..],
            b"",
            b"\xff\xfe no header",
            b"Subject: x\r\n",
        ] {
            let all = analyze_all(raw);
            assert_eq!(all.info, analyze(raw));
            assert_eq!(all.text, crate::mail::text::extract(raw));
            assert_eq!(all.preview, crate::mail::preview::preview(raw));
        }
    }

    /// Arbitrary octets: the same equality, and no panic.
    #[test]
    fn one_parse_equals_two_for_any_input() {
        fn prop(raw: Vec<u8>) -> bool {
            let all = analyze_all(&raw);
            all.info == analyze(&raw)
                && all.text == crate::mail::text::extract(&raw)
                && all.preview == crate::mail::preview::preview(&raw)
        }
        quickcheck::quickcheck(prop as fn(Vec<u8>) -> bool);
    }
}
