//! FETCH data: items, ENVELOPE and BODY/BODYSTRUCTURE (RFC 9051 §7.5.2 and §9), plus the
//! section and attribute spellings shared with the command encoder.

use bytes::{BufMut, Bytes, BytesMut};

use super::{put_date_time, put_flag_list, put_u32, put_u64, Strings};
use crate::imap::response::FetchItem;
use crate::imap::types::{FetchAttr, Partial};
use crate::mail::section::{Section, SectionText};
use crate::mail::structure::{Address, BodyExtension, BodyFields, BodyStructure, Envelope};

pub(crate) fn put_fetch_item(out: &mut BytesMut, item: &FetchItem, w: &Strings) {
    match item {
        FetchItem::Flags(flags) => {
            out.put_slice(b"FLAGS ");
            put_flag_list(out, flags);
        }
        FetchItem::Uid(n) => {
            out.put_slice(b"UID ");
            put_u32(out, *n);
        }
        FetchItem::InternalDate(t) => {
            out.put_slice(b"INTERNALDATE ");
            put_date_time(out, t);
        }
        FetchItem::Rfc822Size(n) => {
            out.put_slice(b"RFC822.SIZE ");
            put_u64(out, *n);
        }
        FetchItem::Envelope(e) => {
            out.put_slice(b"ENVELOPE ");
            envelope(out, e, w);
        }
        FetchItem::Body(b) => {
            out.put_slice(b"BODY ");
            body(out, b, false, w);
        }
        FetchItem::BodyStructure(b) => {
            out.put_slice(b"BODYSTRUCTURE ");
            body(out, b, true, w);
        }
        FetchItem::BodySection {
            section,
            origin,
            data,
        } => {
            out.put_slice(b"BODY");
            put_section(out, section, w);
            put_origin(out, *origin);
            out.put_u8(b' ');
            w.message_data(out, data.as_deref());
        }
        FetchItem::Binary { part, origin, data } => {
            out.put_slice(b"BINARY");
            put_part_brackets(out, part);
            put_origin(out, *origin);
            out.put_u8(b' ');
            if data.as_deref().is_some_and(|d| d.contains(&0)) {
                out.put_u8(b'~');
            }
            w.message_data(out, data.as_deref());
        }
        FetchItem::BinarySize { part, size } => {
            out.put_slice(b"BINARY.SIZE");
            put_part_brackets(out, part);
            out.put_u8(b' ');
            put_u64(out, *size);
        }
        FetchItem::Rfc822(d) => {
            out.put_slice(b"RFC822 ");
            w.message_data(out, d.as_deref());
        }
        FetchItem::Rfc822Header(d) => {
            out.put_slice(b"RFC822.HEADER ");
            w.message_data(out, d.as_deref());
        }
        FetchItem::Rfc822Text(d) => {
            out.put_slice(b"RFC822.TEXT ");
            w.message_data(out, d.as_deref());
        }
        FetchItem::ModSeq(n) => {
            out.put_slice(b"MODSEQ (");
            put_u64(out, *n);
            out.put_u8(b')');
        }
        FetchItem::EmailId(id) => {
            out.put_slice(b"EMAILID (");
            out.put_slice(id);
            out.put_u8(b')');
        }
        FetchItem::ThreadId(id) => {
            out.put_slice(b"THREADID ");
            match id {
                Some(id) => {
                    out.put_u8(b'(');
                    out.put_slice(id);
                    out.put_u8(b')');
                }
                None => out.put_slice(b"NIL"),
            }
        }
        FetchItem::SaveDate(t) => {
            out.put_slice(b"SAVEDATE ");
            match t {
                Some(t) => put_date_time(out, t),
                None => out.put_slice(b"NIL"),
            }
        }
        FetchItem::Preview(p) => {
            out.put_slice(b"PREVIEW ");
            w.nstring(out, p.as_deref());
        }
    }
}

/// A message-data item up to its literal's prefix, for `len` octets sent apart; other items
/// whole.
pub(crate) fn put_streamed_item(out: &mut BytesMut, item: &FetchItem, len: u64, w: &Strings) {
    match item {
        FetchItem::BodySection {
            section, origin, ..
        } => {
            out.put_slice(b"BODY");
            put_section(out, section, w);
            put_origin(out, *origin);
            out.put_u8(b' ');
        }
        FetchItem::Binary { part, origin, .. } => {
            out.put_slice(b"BINARY");
            put_part_brackets(out, part);
            put_origin(out, *origin);
            out.put_slice(b" ~");
        }
        FetchItem::Rfc822(_) => out.put_slice(b"RFC822 "),
        FetchItem::Rfc822Header(_) => out.put_slice(b"RFC822.HEADER "),
        FetchItem::Rfc822Text(_) => out.put_slice(b"RFC822.TEXT "),
        // No octets to send apart: the session streams only the items above.
        other => {
            put_fetch_item(out, other, w);
            return;
        }
    }
    out.put_u8(b'{');
    put_u64(out, len);
    out.put_slice(b"}\r\n");
}

fn put_origin(out: &mut BytesMut, origin: Option<u32>) {
    if let Some(o) = origin {
        out.put_u8(b'<');
        put_u32(out, o);
        out.put_u8(b'>');
    }
}

/// `1.2.3`.
fn put_part(out: &mut BytesMut, part: &[u32]) {
    for (n, p) in part.iter().enumerate() {
        if n > 0 {
            out.put_u8(b'.');
        }
        put_u32(out, *p);
    }
}

fn put_part_brackets(out: &mut BytesMut, part: &[u32]) {
    out.put_u8(b'[');
    put_part(out, part);
    out.put_u8(b']');
}

/// `section = "[" [section-spec] "]"`.
pub(crate) fn put_section(out: &mut BytesMut, s: &Section, w: &Strings) {
    out.put_u8(b'[');
    put_part(out, &s.part);
    if let Some(text) = &s.text {
        if !s.part.is_empty() {
            out.put_u8(b'.');
        }
        let (word, names): (&[u8], Option<&[Bytes]>) = match text {
            SectionText::Header => (b"HEADER", None),
            SectionText::HeaderFields(n) => (b"HEADER.FIELDS", Some(n)),
            SectionText::HeaderFieldsNot(n) => (b"HEADER.FIELDS.NOT", Some(n)),
            SectionText::Text => (b"TEXT", None),
            SectionText::Mime => (b"MIME", None),
        };
        out.put_slice(word);
        if let Some(names) = names {
            out.put_slice(b" (");
            for (n, name) in names.iter().enumerate() {
                if n > 0 {
                    out.put_u8(b' ');
                }
                w.astring(out, name);
            }
            out.put_u8(b')');
        }
    }
    out.put_u8(b']');
}

fn put_partial(out: &mut BytesMut, p: &Option<Partial>) {
    if let Some(p) = p {
        out.put_u8(b'<');
        put_u32(out, p.origin);
        out.put_u8(b'.');
        put_u32(out, p.length.get());
        out.put_u8(b'>');
    }
}

/// One `fetch-att` as a client writes it (FETCH and NOTIFY's MessageNew).
pub(crate) fn put_fetch_attr(out: &mut BytesMut, a: &FetchAttr, w: &Strings) {
    let word: &[u8] = match a {
        FetchAttr::Envelope => b"ENVELOPE",
        FetchAttr::Flags => b"FLAGS",
        FetchAttr::InternalDate => b"INTERNALDATE",
        FetchAttr::Rfc822 => b"RFC822",
        FetchAttr::Rfc822Header => b"RFC822.HEADER",
        FetchAttr::Rfc822Size => b"RFC822.SIZE",
        FetchAttr::Rfc822Text => b"RFC822.TEXT",
        FetchAttr::Body => b"BODY",
        FetchAttr::BodyStructure => b"BODYSTRUCTURE",
        FetchAttr::Uid => b"UID",
        FetchAttr::ModSeq => b"MODSEQ",
        FetchAttr::EmailId => b"EMAILID",
        FetchAttr::ThreadId => b"THREADID",
        FetchAttr::SaveDate => b"SAVEDATE",
        FetchAttr::Preview { lazy: false } => b"PREVIEW",
        FetchAttr::Preview { lazy: true } => b"PREVIEW (LAZY)",
        FetchAttr::BodySection {
            peek,
            section,
            partial,
        } => {
            out.put_slice(if *peek { b"BODY.PEEK" } else { b"BODY" });
            put_section(out, section, w);
            put_partial(out, partial);
            return;
        }
        FetchAttr::Binary {
            peek,
            part,
            partial,
        } => {
            out.put_slice(if *peek { b"BINARY.PEEK" } else { b"BINARY" });
            put_part_brackets(out, part);
            put_partial(out, partial);
            return;
        }
        FetchAttr::BinarySize { part } => {
            out.put_slice(b"BINARY.SIZE");
            put_part_brackets(out, part);
            return;
        }
    };
    out.put_slice(word);
}

// ---------------------------------------------------------------- envelope

fn envelope(out: &mut BytesMut, e: &Envelope, w: &Strings) {
    out.put_u8(b'(');
    w.nstring(out, e.date.as_deref());
    out.put_u8(b' ');
    w.nstring(out, e.subject.as_deref());
    for list in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
        out.put_u8(b' ');
        addresses(out, list, w);
    }
    out.put_u8(b' ');
    w.nstring(out, e.in_reply_to.as_deref());
    out.put_u8(b' ');
    w.nstring(out, e.message_id.as_deref());
    out.put_u8(b')');
}

/// `"(" 1*address ")" / nil`: addresses follow each other without a separator.
fn addresses(out: &mut BytesMut, list: &[Address], w: &Strings) {
    if list.is_empty() {
        out.put_slice(b"NIL");
        return;
    }
    out.put_u8(b'(');
    for a in list {
        out.put_u8(b'(');
        w.nstring(out, a.name.as_deref());
        out.put_u8(b' ');
        w.nstring(out, a.adl.as_deref());
        out.put_u8(b' ');
        w.nstring(out, a.mailbox.as_deref());
        out.put_u8(b' ');
        w.nstring(out, a.host.as_deref());
        out.put_u8(b')');
    }
    out.put_u8(b')');
}

// ---------------------------------------------------------------- body structure

/// `body`; `ext` adds the extension data of BODYSTRUCTURE (which plain BODY must not carry).
fn body(out: &mut BytesMut, b: &BodyStructure, ext: bool, w: &Strings) {
    out.put_u8(b'(');
    match b {
        BodyStructure::Single {
            media_type,
            subtype,
            fields,
            lines,
            md5,
            ext: e,
        } => {
            w.string(out, media_type);
            out.put_u8(b' ');
            w.string(out, subtype);
            out.put_u8(b' ');
            body_fields(out, fields, w);
            if let Some(l) = lines {
                out.put_u8(b' ');
                put_u64(out, *l);
            }
            if ext {
                out.put_u8(b' ');
                w.nstring(out, md5.as_deref());
                body_ext(out, e, w);
            }
        }
        BodyStructure::Message {
            subtype,
            fields,
            envelope: env,
            body: inner,
            lines,
            md5,
            ext: e,
        } => {
            // As Dovecot writes it for the usual lower-case header; the type is always
            // "message" here, only its case could differ from the header's.
            out.put_slice(b"\"message\" ");
            w.string(out, subtype);
            out.put_u8(b' ');
            body_fields(out, fields, w);
            out.put_u8(b' ');
            envelope(out, env, w);
            out.put_u8(b' ');
            body(out, inner, ext, w);
            out.put_u8(b' ');
            put_u64(out, *lines);
            if ext {
                out.put_u8(b' ');
                w.nstring(out, md5.as_deref());
                body_ext(out, e, w);
            }
        }
        BodyStructure::Multipart {
            parts,
            subtype,
            params,
            ext: e,
        } => {
            for p in parts {
                body(out, p, ext, w);
            }
            out.put_u8(b' ');
            w.string(out, subtype);
            if ext {
                out.put_u8(b' ');
                body_params(out, params, w);
                body_ext(out, e, w);
            }
        }
    }
    out.put_u8(b')');
}

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
/// body-fld-octets`.
fn body_fields(out: &mut BytesMut, f: &BodyFields, w: &Strings) {
    body_params(out, &f.params, w);
    out.put_u8(b' ');
    w.nstring(out, f.id.as_deref());
    out.put_u8(b' ');
    w.nstring(out, f.description.as_deref());
    out.put_u8(b' ');
    w.string(out, &f.encoding);
    out.put_u8(b' ');
    put_u64(out, f.octets);
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`.
fn body_params(out: &mut BytesMut, params: &[(Bytes, Bytes)], w: &Strings) {
    if params.is_empty() {
        out.put_slice(b"NIL");
        return;
    }
    out.put_u8(b'(');
    for (n, (k, v)) in params.iter().enumerate() {
        if n > 0 {
            out.put_u8(b' ');
        }
        w.string(out, k);
        out.put_u8(b' ');
        w.string(out, v);
    }
    out.put_u8(b')');
}

/// `SP body-fld-dsp SP body-fld-lang SP body-fld-loc`: always all three, so every field has a
/// fixed position for clients.
fn body_ext(out: &mut BytesMut, e: &BodyExtension, w: &Strings) {
    out.put_u8(b' ');
    match &e.disposition {
        Some(d) => {
            out.put_u8(b'(');
            w.string(out, &d.kind);
            out.put_u8(b' ');
            body_params(out, &d.params, w);
            out.put_u8(b')');
        }
        None => out.put_slice(b"NIL"),
    }
    out.put_u8(b' ');
    // A list even for one tag, as Dovecot sends it (RFC 9051 allows either form).
    match e.language.as_slice() {
        [] => out.put_slice(b"NIL"),
        many => {
            out.put_u8(b'(');
            for (n, l) in many.iter().enumerate() {
                if n > 0 {
                    out.put_u8(b' ');
                }
                w.string(out, l);
            }
            out.put_u8(b')');
        }
    }
    out.put_u8(b' ');
    w.nstring(out, e.location.as_deref());
}
