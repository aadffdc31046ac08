//! Lexical productions of RFC 9051 §9 shared by the command grammar and the response parser:
//! character classes, numbers, strings, sequence sets, flags and dates.
//!
//! Every parser has the nom signature `fn(&[u8]) -> IResult<&[u8], T, PErr>`; those that produce
//! `Bytes` also take the [`Cx`] that owns the input, so atoms and literal bodies become slices of
//! the received command rather than copies.

use std::num::NonZeroU32;

use bytes::Bytes;
use nom::error::{ErrorKind, ParseError};
use nom::IResult;

use crate::imap::types::{PartialRange, SeqNo, SeqRange, SequenceSet};
use crate::mail::date::{Date, DateTime};
use crate::mail::flags::Flag;

/// The parse context: the buffer every slice comes from, and the bounds in force.
pub(crate) struct Cx<'s> {
    src: &'s Bytes,
    /// Deepest nesting of parentheses (search keys, body structures) that is accepted.
    pub(crate) max_depth: usize,
    /// Server literals may carry NUL (a message body that has one); client literals may not
    /// (RFC 9051 §9 `CHAR8`), so this is only set by the response parser.
    pub(crate) nul_in_literal: bool,
}

impl<'s> Cx<'s> {
    pub(crate) fn new(src: &'s Bytes, max_depth: usize) -> Self {
        Cx {
            src,
            max_depth,
            nul_in_literal: false,
        }
    }

    /// A zero-copy handle on part of the input. Every parser only ever passes sub-slices of
    /// the input it was given, which is `src` or a part of it.
    pub(crate) fn bytes(&self, sub: &[u8]) -> Bytes {
        self.src.slice_ref(sub)
    }
}

/// A parse failure: where, and a sentence for the client's `BAD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PErr<'a> {
    #[allow(dead_code)] // Kept for debugging a failing test; the wire only gets `msg`.
    pub(crate) at: &'a [u8],
    pub(crate) msg: &'static str,
}

impl<'a> ParseError<&'a [u8]> for PErr<'a> {
    fn from_error_kind(input: &'a [u8], _kind: ErrorKind) -> Self {
        PErr {
            at: input,
            msg: "Syntax error in arguments.",
        }
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type Res<'a, T> = IResult<&'a [u8], T, PErr<'a>>;

/// A recoverable mismatch (an enclosing alternative may still match).
pub(crate) fn fail<'a, T>(at: &'a [u8], msg: &'static str) -> Res<'a, T> {
    Err(nom::Err::Error(PErr { at, msg }))
}

/// A mismatch no alternative can repair (too deep, a number out of range).
pub(crate) fn fatal<'a, T>(at: &'a [u8], msg: &'static str) -> Res<'a, T> {
    Err(nom::Err::Failure(PErr { at, msg }))
}

// ---------------------------------------------------------------- character classes

#[derive(Clone, Copy)]
enum Class {
    Atom,
    AString,
    ListChar,
    Tag,
    Label,
    ObjectId,
}

const fn atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

const fn in_class(c: Class, b: u8) -> bool {
    match c {
        Class::Atom => atom_char(b),
        Class::AString => atom_char(b) || b == b']',
        Class::ListChar => atom_char(b) || matches!(b, b'%' | b'*' | b']'),
        Class::Tag => (atom_char(b) || b == b']') && b != b'+',
        // Keyword-like tokens (FETCH attributes, section texts): letters, digits, `.` and `-`.
        Class::Label => b.is_ascii_alphanumeric() || b == b'.' || b == b'-',
        Class::ObjectId => b.is_ascii_alphanumeric() || b == b'_' || b == b'-',
    }
}

const fn build(c: Class) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = in_class(c, i as u8);
        i += 1;
    }
    t
}

/// `ATOM-CHAR`.
pub(crate) static ATOM: [bool; 256] = build(Class::Atom);
/// `ASTRING-CHAR`.
pub(crate) static ASTRING: [bool; 256] = build(Class::AString);
/// `list-char`: `ATOM-CHAR / list-wildcards / resp-specials`.
pub(crate) static LIST_CHAR: [bool; 256] = build(Class::ListChar);
/// Tag characters: `ASTRING-CHAR` except `+`.
pub(crate) static TAG: [bool; 256] = build(Class::Tag);
/// Keyword tokens such as `BODY.PEEK`, `HEADER.FIELDS.NOT`, `RFC822.SIZE`.
pub(crate) static LABEL: [bool; 256] = build(Class::Label);
/// RFC 8474 `objectid` characters.
pub(crate) static OBJECT_ID: [bool; 256] = build(Class::ObjectId);

/// Splits off the longest prefix whose bytes are all in `class`: `(rest, prefix)`.
#[inline]
pub(crate) fn span<'a>(i: &'a [u8], class: &[bool; 256]) -> (&'a [u8], &'a [u8]) {
    let n = i
        .iter()
        .position(|&b| !class[usize::from(b)])
        .unwrap_or(i.len());
    let (taken, rest) = i.split_at(n);
    (rest, taken)
}

/// Like [`span`], but at least one byte.
#[inline]
pub(crate) fn span1<'a>(i: &'a [u8], class: &[bool; 256], msg: &'static str) -> Res<'a, &'a [u8]> {
    let (rest, taken) = span(i, class);
    if taken.is_empty() {
        fail(i, msg)
    } else {
        Ok((rest, taken))
    }
}

/// `atom`.
pub(crate) fn atom(i: &[u8]) -> Res<'_, &[u8]> {
    span1(i, &ATOM, "Expected an atom.")
}

/// A keyword token (letters, digits, `.`, `-`); may be empty.
#[inline]
pub(crate) fn label(i: &[u8]) -> (&[u8], &[u8]) {
    span(i, &LABEL)
}

/// Upper-cases a short token into `buf` so it can be matched against byte-string literals;
/// anything longer than `buf` cannot be a keyword and comes back empty.
#[inline]
pub(crate) fn upcase<'b>(tok: &[u8], buf: &'b mut [u8; 24]) -> &'b [u8] {
    let Some(dst) = buf.get_mut(..tok.len()) else {
        return &[];
    };
    for (d, s) in dst.iter_mut().zip(tok) {
        *d = s.to_ascii_uppercase();
    }
    dst
}

// ---------------------------------------------------------------- punctuation

#[inline]
pub(crate) fn peek(i: &[u8]) -> Option<u8> {
    i.first().copied()
}

/// Exactly one `c`.
#[inline]
pub(crate) fn byte<'a>(i: &'a [u8], c: u8, msg: &'static str) -> Res<'a, ()> {
    match i.split_first() {
        Some((&b, rest)) if b == c => Ok((rest, ())),
        _ => fail(i, msg),
    }
}

/// `SP`: exactly one space (RFC 9051 §9 note 2: never a run of whitespace).
#[inline]
pub(crate) fn sp(i: &[u8]) -> Res<'_, ()> {
    byte(i, b' ', "Expected a single space between arguments.")
}

/// Line end: CRLF, or the bare LF that lenient servers such as Dovecot also accept.
#[inline]
pub(crate) fn crlf(i: &[u8]) -> Res<'_, ()> {
    if let Some(rest) = i.strip_prefix(b"\r\n") {
        Ok((rest, ()))
    } else if let Some(rest) = i.strip_prefix(b"\n") {
        Ok((rest, ()))
    } else {
        fail(i, "Unexpected characters at the end of the command.")
    }
}

/// `i` without the case-insensitive prefix `kw`, if it has it.
#[inline]
pub(crate) fn strip_kw<'a>(i: &'a [u8], kw: &[u8]) -> Option<&'a [u8]> {
    let (head, rest) = i.split_at_checked(kw.len())?;
    head.eq_ignore_ascii_case(kw).then_some(rest)
}

/// A case-insensitive keyword that must be there.
pub(crate) fn kw<'a>(i: &'a [u8], word: &[u8], msg: &'static str) -> Res<'a, ()> {
    match strip_kw(i, word) {
        Some(rest) => Ok((rest, ())),
        None => fail(i, msg),
    }
}

/// `"(" item *(SP item) ")"`, or `"(" ")"` when `empty_ok`. `item` may recurse; callers that
/// recurse count depth themselves.
pub(crate) fn paren_list<'a, T>(
    i: &'a [u8],
    empty_ok: bool,
    mut item: impl FnMut(&'a [u8]) -> Res<'a, T>,
) -> Res<'a, Vec<T>> {
    let (mut i, _) = byte(i, b'(', "Expected '('.")?;
    // Lists of fetch attributes and header names usually hold 5–20 items: starting at 8 saves
    // the 4 → 8 regrowth without sizing anything from what the client claims.
    let mut out = Vec::with_capacity(8);
    if let Some(rest) = i.strip_prefix(b")") {
        return if empty_ok {
            Ok((rest, out))
        } else {
            fail(i, "Empty list.")
        };
    }
    loop {
        let (rest, v) = item(i)?;
        out.push(v);
        match rest.split_first() {
            Some((b' ', r)) => i = r,
            Some((b')', r)) => return Ok((r, out)),
            _ => return fail(rest, "Expected ' ' or ')' in list."),
        }
    }
}

// ---------------------------------------------------------------- numbers

/// `1*DIGIT`.
#[inline]
pub(crate) fn digits(i: &[u8]) -> Res<'_, &[u8]> {
    let n = i
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(i.len());
    if n == 0 {
        return fail(i, "Expected a number.");
    }
    let (d, rest) = i.split_at(n);
    Ok((rest, d))
}

/// The value of a digit string, `None` past `u64`.
#[inline]
pub(crate) fn digits_value(d: &[u8]) -> Option<u64> {
    d.iter().try_fold(0u64, |acc, &c| {
        acc.checked_mul(10)?
            .checked_add(u64::from(c.wrapping_sub(b'0')))
    })
}

/// Largest `number64` (RFC 9051 §9: a 63-bit unsigned integer).
pub(crate) const NUMBER64_MAX: u64 = i64::MAX as u64;

/// `number`: 32-bit unsigned.
pub(crate) fn number(i: &[u8]) -> Res<'_, u32> {
    let (rest, d) = digits(i)?;
    match digits_value(d).and_then(|v| u32::try_from(v).ok()) {
        Some(v) => Ok((rest, v)),
        None => fatal(i, "Number out of range."),
    }
}

/// `nz-number`: 1 … 4,294,967,295.
pub(crate) fn nz_number(i: &[u8]) -> Res<'_, NonZeroU32> {
    let (rest, v) = number(i)?;
    match NonZeroU32::new(v) {
        Some(v) => Ok((rest, v)),
        None => fail(i, "Zero is not a valid number here."),
    }
}

/// `number64`: 0 … 2^63−1.
pub(crate) fn number64(i: &[u8]) -> Res<'_, u64> {
    let (rest, d) = digits(i)?;
    match digits_value(d).filter(|&v| v <= NUMBER64_MAX) {
        Some(v) => Ok((rest, v)),
        None => fatal(i, "Number out of range."),
    }
}

// ---------------------------------------------------------------- strings

/// Whether `d` holds a NUL. A fixed-width OR over each 64-octet chunk vectorises, unlike an
/// early-exit search, and literals (APPENDed messages) are the longest input there is.
#[inline]
pub(crate) fn has_nul(d: &[u8]) -> bool {
    let mut chunks = d.chunks_exact(64);
    for c in &mut chunks {
        if c.iter().fold(false, |acc, &b| acc | (b == 0)) {
            return true;
        }
    }
    chunks.remainder().contains(&0)
}

/// Octets that end the plain run of a quoted string: its end, an escape, or an octet that has
/// no place in it.
static QUOTED_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'\n' as usize] = true;
    t[0] = true;
    t
};

/// `quoted`: `\` escapes only `"` and `\` (RFC 9051 §4.3). Without escapes the value is a
/// slice of the input; with them, an unescaped copy.
#[inline]
pub(crate) fn quoted<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Bytes> {
    let Some(body) = i.strip_prefix(b"\"") else {
        return fail(i, "Expected a quoted string.");
    };
    let stop = body.iter().position(|&b| QUOTED_STOP[usize::from(b)]);
    let Some(n) = stop else {
        return fail(i, "Unterminated quoted string.");
    };
    let (plain, tail) = body.split_at(n);
    match tail.split_first() {
        Some((b'"', rest)) => Ok((rest, cx.bytes(plain))),
        Some((b'\\', _)) => quoted_escaped(i, plain, tail),
        // TEXT-CHAR excludes CR and LF; NUL is never a character.
        _ => fail(i, "Invalid character in quoted string."),
    }
}

/// The slow path of [`quoted`], from the first backslash on.
fn quoted_escaped<'a>(start: &'a [u8], plain: &[u8], mut tail: &'a [u8]) -> Res<'a, Bytes> {
    let mut out = Vec::with_capacity(plain.len() + 16);
    out.extend_from_slice(plain);
    loop {
        match tail.split_first() {
            Some((b'"', rest)) => return Ok((rest, Bytes::from(out))),
            Some((b'\\', rest)) => match rest.split_first() {
                Some((&c @ (b'"' | b'\\'), rest)) => {
                    out.push(c);
                    tail = rest;
                }
                _ => return fail(start, "Invalid escape in quoted string."),
            },
            Some((b'\r' | b'\n' | 0, _)) | None => {
                return fail(start, "Invalid character in quoted string.")
            }
            Some((&c, rest)) => {
                out.push(c);
                tail = rest;
            }
        }
    }
}

/// `{n}` / `{n+}` followed by a line end and `n` octets. The announced length is only compared
/// with what is present, never used to size anything.
fn literal_body(i: &[u8], allow_nul: bool) -> Res<'_, &[u8]> {
    let (rest, _) = byte(i, b'{', "Expected a literal.")?;
    let (rest, d) = digits(rest)?;
    let rest = rest.strip_prefix(b"+").unwrap_or(rest);
    let (rest, _) = byte(rest, b'}', "Invalid literal announcement.")?;
    let (rest, _) = crlf(rest)?;
    let len = digits_value(d)
        .filter(|&n| n <= NUMBER64_MAX)
        .and_then(|n| usize::try_from(n).ok());
    let Some((data, rest)) = len.and_then(|n| rest.split_at_checked(n)) else {
        return fatal(i, "Literal is shorter than announced.");
    };
    if !allow_nul && has_nul(data) {
        // CHAR8 excludes NUL; binary data travels in literal8 (RFC 3516).
        return fatal(i, "NUL in a literal; use literal8.");
    }
    Ok((rest, data))
}

/// `literal`, as raw octets.
pub(crate) fn literal<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, &'a [u8]> {
    literal_body(i, cx.nul_in_literal)
}

/// `literal8 = "~{" number64 "}" CRLF *OCTET` (RFC 3516); `~{n+}` is accepted too (RFC 7888).
pub(crate) fn literal8(i: &[u8]) -> Res<'_, &[u8]> {
    let (rest, _) = byte(i, b'~', "Expected literal8.")?;
    literal_body(rest, true)
}

/// `string = quoted / literal`.
#[inline]
pub(crate) fn string<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Bytes> {
    match peek(i) {
        Some(b'"') => quoted(cx, i),
        Some(b'{') => {
            let (rest, data) = literal(cx, i)?;
            Ok((rest, cx.bytes(data)))
        }
        _ => fail(i, "Expected a string."),
    }
}

/// `astring = 1*ASTRING-CHAR / string`.
#[inline]
pub(crate) fn astring<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Bytes> {
    match peek(i) {
        Some(b'"' | b'{') => string(cx, i),
        _ => {
            let (rest, a) = span1(i, &ASTRING, "Expected an atom or a string.")?;
            Ok((rest, cx.bytes(a)))
        }
    }
}

/// `nil`, case-insensitively.
pub(crate) fn nil(i: &[u8]) -> Option<&[u8]> {
    strip_kw(i, b"NIL").filter(|rest| !rest.first().is_some_and(|&b| ASTRING[usize::from(b)]))
}

/// `nstring = string / nil`.
pub(crate) fn nstring<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Option<Bytes>> {
    if let Some(rest) = nil(i) {
        return Ok((rest, None));
    }
    let (rest, s) = string(cx, i)?;
    Ok((rest, Some(s)))
}

/// `list-mailbox = 1*list-char / string`.
pub(crate) fn list_mailbox<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Bytes> {
    match peek(i) {
        Some(b'"' | b'{') => string(cx, i),
        _ => {
            let (rest, a) = span1(i, &LIST_CHAR, "Expected a mailbox pattern.")?;
            Ok((rest, cx.bytes(a)))
        }
    }
}

/// RFC 8474 `objectid = 1*255(ALPHA / DIGIT / "_" / "-")`.
pub(crate) fn objectid<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Bytes> {
    let (rest, id) = span1(i, &OBJECT_ID, "Expected an object id.")?;
    if id.len() > 255 {
        return fail(i, "Object id longer than 255 characters.");
    }
    Ok((rest, cx.bytes(id)))
}

// ---------------------------------------------------------------- sequence sets

/// `seq-number = nz-number / "*"`.
pub(crate) fn seq_number(i: &[u8]) -> Res<'_, SeqNo> {
    if let Some(rest) = i.strip_prefix(b"*") {
        return Ok((rest, SeqNo::Star));
    }
    let (rest, n) = nz_number(i)?;
    Ok((rest, SeqNo::Value(n)))
}

/// `partial-range = partial-range-first / partial-range-last` (RFC 9394 §4): `a:b`, or
/// `-a:-b` counted from the last result.
pub(crate) fn partial_range(i: &[u8]) -> Res<'_, PartialRange> {
    let last = i.starts_with(b"-");
    let r = if last { &i[1..] } else { i };
    let (r, a) = nz_number(r)?;
    let (r, _) = byte(r, b':', "Invalid partial range.")?;
    let r = match (last, r.strip_prefix(b"-")) {
        (true, Some(r)) => r,
        (false, None) => r,
        _ => return fail(r, "Invalid partial range."),
    };
    let (r, b) = nz_number(r)?;
    Ok((
        r,
        if last {
            PartialRange::Last(a, b)
        } else {
            PartialRange::First(a, b)
        },
    ))
}

/// `sequence-set`, ranges in either order (RFC 9051 §9), or `$` (RFC 5182).
pub(crate) fn sequence_set(i: &[u8]) -> Res<'_, SequenceSet> {
    if let Some(rest) = i.strip_prefix(b"$") {
        return Ok((rest, SequenceSet::Saved));
    }
    let mut ranges = Vec::new();
    let mut i = i;
    loop {
        let (rest, from) = seq_number(i)?;
        let (rest, to) = match rest.strip_prefix(b":") {
            Some(r) => seq_number(r)?,
            None => (rest, from),
        };
        ranges.push(SeqRange { from, to });
        match rest.strip_prefix(b",") {
            Some(r) => i = r,
            None => return Ok((rest, SequenceSet::Ranges(ranges))),
        }
    }
}

// ---------------------------------------------------------------- flags

/// The system flag named `name` (without its backslash), case-insensitively.
fn system_flag(name: &[u8]) -> Option<Flag> {
    let mut buf = [0u8; 24];
    Some(match upcase(name, &mut buf) {
        b"ANSWERED" => Flag::Answered,
        b"FLAGGED" => Flag::Flagged,
        b"DELETED" => Flag::Deleted,
        b"SEEN" => Flag::Seen,
        b"DRAFT" => Flag::Draft,
        b"RECENT" => Flag::Recent,
        _ => return None,
    })
}

/// `flag` (and `\Recent`, which RFC 3501 servers still see; refusing it is the session's call).
pub(crate) fn flag<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Flag> {
    if let Some(r) = i.strip_prefix(b"\\") {
        let (rest, name) = atom(r)?;
        let f = system_flag(name).unwrap_or_else(|| Flag::Extension(cx.bytes(name)));
        return Ok((rest, f));
    }
    let (rest, a) = atom(i)?;
    Ok((rest, Flag::Keyword(cx.bytes(a))))
}

/// `flag-list = "(" [flag *(SP flag)] ")"`.
pub(crate) fn flag_list<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Vec<Flag>> {
    paren_list(i, true, |i| flag(cx, i))
}

// ---------------------------------------------------------------- dates

/// Days in a month of the proleptic Gregorian calendar.
pub(crate) fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// `date-month`, case-insensitively.
fn month(i: &[u8]) -> Res<'_, u8> {
    let Some((name, rest)) = i.split_at_checked(3) else {
        return fail(i, "Expected a month name.");
    };
    let mut buf = [0u8; 24];
    let m = match upcase(name, &mut buf) {
        b"JAN" => 1,
        b"FEB" => 2,
        b"MAR" => 3,
        b"APR" => 4,
        b"MAY" => 5,
        b"JUN" => 6,
        b"JUL" => 7,
        b"AUG" => 8,
        b"SEP" => 9,
        b"OCT" => 10,
        b"NOV" => 11,
        b"DEC" => 12,
        _ => return fail(i, "Expected a month name."),
    };
    Ok((rest, m))
}

/// Exactly `n` digits.
fn fixed_digits(i: &[u8], n: usize) -> Res<'_, u16> {
    match i.split_at_checked(n) {
        Some((d, rest)) if d.iter().all(u8::is_ascii_digit) => {
            let v = d
                .iter()
                .fold(0u16, |acc, &c| acc * 10 + u16::from(c - b'0'));
            Ok((rest, v))
        }
        _ => fail(i, "Invalid date or time."),
    }
}

/// One or two digits (`date-day`).
fn day_digits(i: &[u8]) -> Res<'_, u8> {
    let (rest, d) = digits(i)?;
    match d {
        [a] => Ok((rest, a - b'0')),
        [a, b] => Ok((rest, (a - b'0') * 10 + (b - b'0'))),
        _ => fail(i, "Invalid day of month."),
    }
}

/// `day "-" date-month "-" date-year`, the day already read; validates the day against the month.
fn date_rest(i: &[u8], day: u8) -> Res<'_, Date> {
    let (rest, _) = byte(i, b'-', "Invalid date.")?;
    let (rest, month) = month(rest)?;
    let (rest, _) = byte(rest, b'-', "Invalid date.")?;
    let (rest, year) = fixed_digits(rest, 4)?;
    if day == 0 || day > days_in_month(year, month) {
        return fatal(i, "Invalid day of month.");
    }
    Ok((rest, Date { year, month, day }))
}

/// `date = date-text / DQUOTE date-text DQUOTE`.
pub(crate) fn date(i: &[u8]) -> Res<'_, Date> {
    match i.strip_prefix(b"\"") {
        Some(r) => {
            let (r, day) = day_digits(r)?;
            let (r, d) = date_rest(r, day)?;
            let (r, _) = byte(r, b'"', "Unterminated date.")?;
            Ok((r, d))
        }
        None => {
            let (r, day) = day_digits(i)?;
            date_rest(r, day)
        }
    }
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`.
/// A one-digit day without its padding space is accepted as well.
pub(crate) fn date_time(i: &[u8]) -> Res<'_, DateTime> {
    let (r, _) = byte(i, b'"', "Expected a date-time.")?;
    let r = r.strip_prefix(b" ").unwrap_or(r);
    let (r, day) = day_digits(r)?;
    let (r, date) = date_rest(r, day)?;
    let (r, _) = sp(r)?;
    let (r, hour) = fixed_digits(r, 2)?;
    let (r, _) = byte(r, b':', "Invalid time.")?;
    let (r, minute) = fixed_digits(r, 2)?;
    let (r, _) = byte(r, b':', "Invalid time.")?;
    let (r, second) = fixed_digits(r, 2)?;
    let (r, _) = sp(r)?;
    let (r, sign) = match r.split_first() {
        Some((b'+', r)) => (r, 1i16),
        Some((b'-', r)) => (r, -1i16),
        _ => return fail(r, "Invalid time zone."),
    };
    let (r, zh) = fixed_digits(r, 2)?;
    let (r, zm) = fixed_digits(r, 2)?;
    let (r, _) = byte(r, b'"', "Unterminated date-time.")?;
    if hour > 23 || minute > 59 || second > 60 || zh > 23 || zm > 59 {
        return fatal(i, "Invalid time.");
    }
    // Bounded above: zh ≤ 23 and zm ≤ 59, so this fits i16.
    let zone_minutes = sign * (zh as i16 * 60 + zm as i16);
    Ok((
        r,
        DateTime {
            date,
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            zone_minutes,
        },
    ))
}
