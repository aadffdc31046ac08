//! FETCH attributes, body sections and partial ranges (RFC 9051 §6.4.5, RFC 3516, RFC 7162,
//! RFC 8474, RFC 8514, RFC 8970); the section grammar is shared with the response parser.

use std::num::NonZeroU32;

use bytes::Bytes;

use super::prim::{
    astring, byte, digits, digits_value, fail, fatal, kw, label, nz_number, paren_list, peek, sp,
    strip_kw, upcase, Cx, Res, NUMBER64_MAX,
};
use crate::imap::types::{FetchAttr, FetchItems, FetchModifiers, Partial};
use crate::mail::section::{Section, SectionText};

/// `"ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"`.
pub(crate) fn fetch_items<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, FetchItems> {
    if peek(i) == Some(b'(') {
        // An empty list is outside the grammar but harmless; it round-trips as `()`.
        let (rest, attrs) = paren_list(i, true, |i| fetch_att(cx, i))?;
        return Ok((rest, FetchItems::Attrs(attrs)));
    }
    let (rest, tok) = label(i);
    let mut buf = [0u8; 24];
    let items = match upcase(tok, &mut buf) {
        b"ALL" => FetchItems::All,
        b"FAST" => FetchItems::Fast,
        b"FULL" => FetchItems::Full,
        _ => {
            let (rest, a) = fetch_att(cx, i)?;
            return Ok((rest, FetchItems::Attrs(vec![a])));
        }
    };
    Ok((rest, items))
}

/// One `fetch-att`.
pub(crate) fn fetch_att<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, FetchAttr> {
    let (rest, tok) = label(i);
    let mut buf = [0u8; 24];
    let attr = match upcase(tok, &mut buf) {
        b"ENVELOPE" => FetchAttr::Envelope,
        b"FLAGS" => FetchAttr::Flags,
        b"INTERNALDATE" => FetchAttr::InternalDate,
        b"RFC822" => FetchAttr::Rfc822,
        b"RFC822.HEADER" => FetchAttr::Rfc822Header,
        b"RFC822.SIZE" => FetchAttr::Rfc822Size,
        b"RFC822.TEXT" => FetchAttr::Rfc822Text,
        b"BODYSTRUCTURE" => FetchAttr::BodyStructure,
        b"UID" => FetchAttr::Uid,
        b"MODSEQ" => FetchAttr::ModSeq,
        b"EMAILID" => FetchAttr::EmailId,
        b"THREADID" => FetchAttr::ThreadId,
        b"SAVEDATE" => FetchAttr::SaveDate,
        b"BODY" if peek(rest) == Some(b'[') => return body_section(cx, rest, false),
        b"BODY" => FetchAttr::Body,
        b"BODY.PEEK" => return body_section(cx, rest, true),
        b"BINARY" => return binary(rest, false),
        b"BINARY.PEEK" => return binary(rest, true),
        b"BINARY.SIZE" => {
            let (rest, part) = section_binary(rest)?;
            return Ok((rest, FetchAttr::BinarySize { part }));
        }
        b"PREVIEW" => return preview(rest),
        _ => return fail(i, "Unknown FETCH attribute."),
    };
    Ok((rest, attr))
}

fn body_section<'a>(cx: &Cx<'_>, i: &'a [u8], peek_: bool) -> Res<'a, FetchAttr> {
    let (rest, section) = section(cx, i)?;
    let (rest, partial) = partial(rest)?;
    Ok((
        rest,
        FetchAttr::BodySection {
            peek: peek_,
            section,
            partial,
        },
    ))
}

fn binary(i: &[u8], peek_: bool) -> Res<'_, FetchAttr> {
    let (rest, part) = section_binary(i)?;
    let (rest, partial) = partial(rest)?;
    Ok((
        rest,
        FetchAttr::Binary {
            peek: peek_,
            part,
            partial,
        },
    ))
}

/// `"PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"]` (RFC 8970 §6). A `(` after PREVIEW
/// that does not start with LAZY belongs to the caller (the FETCH modifiers).
fn preview(i: &[u8]) -> Res<'_, FetchAttr> {
    let Some(list) = i.strip_prefix(b" ").filter(|r| {
        r.strip_prefix(b"(")
            .is_some_and(|r| strip_kw(r, b"LAZY").is_some())
    }) else {
        return Ok((i, FetchAttr::Preview { lazy: false }));
    };
    let (rest, _) = paren_list(list, false, |i| kw(i, b"LAZY", "Unknown PREVIEW modifier."))?;
    Ok((rest, FetchAttr::Preview { lazy: true }))
}

/// `section = "[" [section-spec] "]"`.
pub(crate) fn section<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Section> {
    let (mut i, _) = byte(i, b'[', "Expected '['.")?;
    if let Some(rest) = i.strip_prefix(b"]") {
        return Ok((rest, Section::default()));
    }
    let mut part = Vec::new();
    let mut wants_text = true;
    if peek(i).is_some_and(|b| b.is_ascii_digit()) {
        loop {
            let (rest, n) = nz_number(i)?;
            part.push(n.get());
            match rest.strip_prefix(b".") {
                Some(r) if peek(r).is_some_and(|b| b.is_ascii_digit()) => i = r,
                Some(r) => {
                    i = r;
                    break;
                }
                None => {
                    i = rest;
                    wants_text = false;
                    break;
                }
            }
        }
    }
    let (i, text) = if wants_text {
        let (rest, t) = section_text(cx, i, !part.is_empty())?;
        (rest, Some(t))
    } else {
        (i, None)
    };
    let (rest, _) = byte(i, b']', "Expected ']' after the section.")?;
    Ok((rest, Section { part, text }))
}

/// `section-msgtext / "MIME"`; MIME only after a part number (RFC 9051 §9 `section-spec`).
fn section_text<'a>(cx: &Cx<'_>, i: &'a [u8], after_part: bool) -> Res<'a, SectionText> {
    let (rest, tok) = label(i);
    let mut buf = [0u8; 24];
    match upcase(tok, &mut buf) {
        b"HEADER" => Ok((rest, SectionText::Header)),
        b"TEXT" => Ok((rest, SectionText::Text)),
        b"MIME" if after_part => Ok((rest, SectionText::Mime)),
        b"HEADER.FIELDS" => {
            let (rest, _) = sp(rest)?;
            let (rest, names) = header_list(cx, rest)?;
            Ok((rest, SectionText::HeaderFields(names)))
        }
        b"HEADER.FIELDS.NOT" => {
            let (rest, _) = sp(rest)?;
            let (rest, names) = header_list(cx, rest)?;
            Ok((rest, SectionText::HeaderFieldsNot(names)))
        }
        _ => fail(i, "Invalid body section."),
    }
}

/// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`.
fn header_list<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Vec<Bytes>> {
    paren_list(i, false, |i| astring(cx, i))
}

/// `section-binary = "[" [section-part] "]"`.
pub(crate) fn section_binary(i: &[u8]) -> Res<'_, Vec<u32>> {
    let (mut i, _) = byte(i, b'[', "Expected '['.")?;
    let mut part = Vec::new();
    if let Some(rest) = i.strip_prefix(b"]") {
        return Ok((rest, part));
    }
    loop {
        let (rest, n) = nz_number(i)?;
        part.push(n.get());
        match rest.split_first() {
            Some((b'.', r)) => i = r,
            Some((b']', r)) => return Ok((r, part)),
            _ => return fail(rest, "Invalid binary section."),
        }
    }
}

/// `partial = "<" number64 "." nz-number64 ">"`. The AST holds 32-bit offsets, which is what
/// `number` allowed in RFC 3501; a larger one is refused rather than truncated.
pub(crate) fn partial(i: &[u8]) -> Res<'_, Option<Partial>> {
    let Some(r) = i.strip_prefix(b"<") else {
        return Ok((i, None));
    };
    let (r, origin) = digits(r)?;
    let (r, _) = byte(r, b'.', "Invalid partial range.")?;
    let (r, length) = digits(r)?;
    let (r, _) = byte(r, b'>', "Invalid partial range.")?;
    let origin = digits_value(origin).filter(|&v| v <= NUMBER64_MAX);
    let length = digits_value(length).filter(|&v| v <= NUMBER64_MAX);
    let (Some(origin), Some(length)) = (origin, length) else {
        return fatal(i, "Number out of range.");
    };
    let Some(length) = u32::try_from(length).ok().and_then(NonZeroU32::new) else {
        return fatal(i, "Invalid partial length.");
    };
    let Ok(origin) = u32::try_from(origin) else {
        return fatal(i, "Partial offset out of range.");
    };
    Ok((r, Some(Partial { origin, length })))
}

/// `SP "(" fetch-modifier *(SP fetch-modifier) ")"` (RFC 4466, RFC 7162 §3.1.4 / §3.2.6).
pub(crate) fn fetch_modifiers(i: &[u8]) -> Res<'_, FetchModifiers> {
    let mut m = FetchModifiers::default();
    let (rest, ()) = paren_list_unit(i, |i| {
        let (rest, tok) = label(i);
        let mut buf = [0u8; 24];
        match upcase(tok, &mut buf) {
            b"CHANGEDSINCE" => {
                let (rest, _) = sp(rest)?;
                let (rest, n) = super::prim::number64(rest)?;
                m.changed_since = Some(n);
                Ok((rest, ()))
            }
            b"VANISHED" => {
                m.vanished = true;
                Ok((rest, ()))
            }
            b"PARTIAL" => {
                let (rest, _) = sp(rest)?;
                let (rest, range) = super::prim::partial_range(rest)?;
                m.partial = Some(range);
                Ok((rest, ()))
            }
            _ => fail(i, "Unknown FETCH modifier."),
        }
    })?;
    Ok((rest, m))
}

/// A non-empty parenthesised list whose items only have effects.
fn paren_list_unit<'a>(i: &'a [u8], item: impl FnMut(&'a [u8]) -> Res<'a, ()>) -> Res<'a, ()> {
    let (rest, _) = paren_list(i, false, item)?;
    Ok((rest, ()))
}
