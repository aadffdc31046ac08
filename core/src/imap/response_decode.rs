//! Parses server responses back into [`Response`] values: the inverse of
//! [`crate::imap::encode::response`], used by the round-trip properties and the conformance
//! suite. It reads everything the encoder writes (and the common variants real servers send,
//! such as padded day numbers and atoms in place of quoted strings) but is no general client
//! parser: unknown data responses are an error.

use bytes::Bytes;

use super::command::Tag;
use super::decode::prim::{
    astring, atom, byte, crlf, date_time, digits, digits_value, fail, fatal, flag, flag_list,
    label, literal8, nil, nstring, number, number64, nz_number, objectid, paren_list,
    partial_range, peek, quoted, sequence_set, sp, span1, string, strip_kw, upcase, Cx, Res, ATOM,
    TAG,
};
use super::decode::{section, section_binary, MAX_DEPTH};
use super::response::{
    Code, Condition, Data, ESearchResult, FetchItem, ListItem, MetadataCode, Progress, Response,
    StatusResponse, StatusValue, ThreadNode,
};
use super::types::StatusItem;
use crate::mail::structure::{
    Address, BodyExtension, BodyFields, BodyStructure, Disposition, Envelope, NString,
};

/// Why [`parse_response`] returned no response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseDecodeError {
    /// The input ends before the response does (a line or an announced literal is cut short).
    #[error("incomplete response")]
    Incomplete,
    /// The response does not fit the grammar.
    #[error("invalid response: {0}")]
    Invalid(&'static str),
}

/// Parses the first response in `input`; returns it and the number of octets it took.
pub fn parse_response(input: &[u8]) -> Result<(Response, usize), ResponseDecodeError> {
    let len = frame_len(input).ok_or(ResponseDecodeError::Incomplete)?;
    let frame = Bytes::copy_from_slice(input.get(..len).unwrap_or_default());
    let mut cx = Cx::new(&frame, MAX_DEPTH);
    cx.nul_in_literal = true;
    match response(&cx, &frame) {
        Ok(([], r)) => Ok((r, len)),
        Ok(_) => Err(ResponseDecodeError::Invalid(
            "trailing octets after the response",
        )),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(ResponseDecodeError::Invalid(e.msg)),
        Err(nom::Err::Incomplete(_)) => Err(ResponseDecodeError::Incomplete),
    }
}

/// The length of the first whole response: lines, each announced literal skipped by length.
fn frame_len(input: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let lf = input.get(at..)?.iter().position(|&b| b == b'\n')?;
        let end = at + lf + 1;
        let line = input.get(at..end)?;
        match announced(line) {
            Some(n) => {
                at = end.checked_add(n)?;
                if at > input.len() {
                    return None;
                }
            }
            None => return Some(end),
        }
    }
}

/// `n` of a line ending in `{n}` or `{n+}` and a line end.
fn announced(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"\n")?;
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let body = body.strip_suffix(b"}")?;
    let body = body.strip_suffix(b"+").unwrap_or(body);
    let open = body.iter().rposition(|&b| b == b'{')?;
    let d = body.get(open + 1..)?;
    if d.is_empty() || d.len() > 19 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    usize::try_from(digits_value(d)?).ok()
}

type R<'a, T> = Res<'a, T>;

fn response<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, Response> {
    if let Some(r) = i.strip_prefix(b"+") {
        let r = r.strip_prefix(b" ").unwrap_or(r);
        let (r, text) = rest_of_line(r);
        let (r, _) = crlf(r)?;
        return Ok((r, Response::Continue(cx.bytes(text))));
    }
    if let Some(r) = i.strip_prefix(b"* ") {
        return untagged(cx, r);
    }
    let (r, raw) = span1(i, &TAG, "Expected a tag.")?;
    let Some(tag) = Tag::new(cx.bytes(raw)) else {
        return fail(i, "Invalid tag.");
    };
    let (r, _) = sp(r)?;
    let (r, condition) = condition(r)?;
    let (r, (code, text)) = resp_text(cx, r)?;
    Ok((
        r,
        Response::Status(StatusResponse {
            tag: Some(tag),
            condition,
            code,
            text,
        }),
    ))
}

fn condition(i: &[u8]) -> R<'_, Condition> {
    let (r, w) = label(i);
    let mut buf = [0u8; 24];
    let c = match upcase(w, &mut buf) {
        b"OK" => Condition::Ok,
        b"NO" => Condition::No,
        b"BAD" => Condition::Bad,
        b"PREAUTH" => Condition::PreAuth,
        b"BYE" => Condition::Bye,
        _ => return fail(i, "Expected a status condition."),
    };
    Ok((r, c))
}

/// Everything up to the line end.
fn rest_of_line(i: &[u8]) -> (&[u8], &[u8]) {
    let n = i
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(i.len());
    let (text, rest) = i.split_at(n);
    (rest, text)
}

/// `SP resp-text CRLF`: `["[" resp-text-code "]" SP] text`.
fn resp_text<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, (Option<Code>, String)> {
    let i = i.strip_prefix(b" ").unwrap_or(i);
    let (i, code) = match i.strip_prefix(b"[") {
        Some(r) => {
            let (r, c) = code(cx, r)?;
            let (r, _) = byte(r, b']', "Expected ']' after the response code.")?;
            let r = r.strip_prefix(b" ").unwrap_or(r);
            (r, Some(c))
        }
        None => (i, None),
    };
    let (r, text) = rest_of_line(i);
    let (r, _) = crlf(r)?;
    Ok((r, (code, String::from_utf8_lossy(text).into_owned())))
}

fn code<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, Code> {
    let (r, name) = span1(i, &ATOM, "Expected a response code.")?;
    let mut buf = [0u8; 24];
    let c = match upcase(name, &mut buf) {
        b"ALERT" => Code::Alert,
        b"ALREADYEXISTS" => Code::AlreadyExists,
        b"AUTHENTICATIONFAILED" => Code::AuthenticationFailed,
        b"AUTHORIZATIONFAILED" => Code::AuthorizationFailed,
        b"CANNOT" => Code::Cannot,
        b"CLIENTBUG" => Code::ClientBug,
        b"COMPRESSIONACTIVE" => Code::CompressionActive,
        b"CLOSED" => Code::Closed,
        b"CONTACTADMIN" => Code::ContactAdmin,
        b"CORRUPTION" => Code::Corruption,
        b"EXPIRED" => Code::Expired,
        b"EXPUNGEISSUED" => Code::ExpungeIssued,
        b"HASCHILDREN" => Code::HasChildren,
        b"INUSE" => Code::InUse,
        b"UIDREQUIRED" => Code::UidRequired,
        b"LIMIT" => Code::Limit,
        b"NOMODSEQ" => Code::NoModSeq,
        b"NONEXISTENT" => Code::NonExistent,
        b"NOPERM" => Code::NoPerm,
        b"NOTSAVED" => Code::NotSaved,
        b"OVERQUOTA" => Code::OverQuota,
        b"PARSE" => Code::Parse,
        b"PRIVACYREQUIRED" => Code::PrivacyRequired,
        b"READ-ONLY" => Code::ReadOnly,
        b"READ-WRITE" => Code::ReadWrite,
        b"SERVERBUG" => Code::ServerBug,
        b"TOOBIG" => Code::TooBig,
        b"TRYCREATE" => Code::TryCreate,
        b"UIDNOTSTICKY" => Code::UidNotSticky,
        b"UNAVAILABLE" => Code::Unavailable,
        b"UNKNOWN-CTE" => Code::UnknownCte,
        b"APPENDUID" => {
            let (r, _) = sp(r)?;
            let (r, v) = nz_number(r)?;
            let (r, _) = sp(r)?;
            let (r, uids) = sequence_set(r)?;
            return Ok((
                r,
                Code::AppendUid {
                    uid_validity: v.get(),
                    uids,
                },
            ));
        }
        b"COPYUID" => {
            let (r, _) = sp(r)?;
            let (r, v) = nz_number(r)?;
            let (r, _) = sp(r)?;
            let (r, source) = sequence_set(r)?;
            let (r, _) = sp(r)?;
            let (r, target) = sequence_set(r)?;
            return Ok((
                r,
                Code::CopyUid {
                    uid_validity: v.get(),
                    source,
                    target,
                },
            ));
        }
        b"BADCHARSET" => {
            let (r, list) = match r.strip_prefix(b" ") {
                Some(r) => paren_list(r, false, |i| astring(cx, i))?,
                None => (r, Vec::new()),
            };
            return Ok((r, Code::BadCharset(list)));
        }
        b"CAPABILITY" => {
            let (r, caps) = words(cx, r)?;
            return Ok((r, Code::Capability(caps)));
        }
        b"HIGHESTMODSEQ" => {
            let (r, _) = sp(r)?;
            let (r, n) = number64(r)?;
            return Ok((r, Code::HighestModSeq(n)));
        }
        b"MODIFIED" => {
            let (r, _) = sp(r)?;
            let (r, set) = sequence_set(r)?;
            return Ok((r, Code::Modified(set)));
        }
        b"PERMANENTFLAGS" => {
            let (r, _) = sp(r)?;
            let mut keywords = false;
            let (r, flags) = paren_list(r, true, |i| {
                if let Some(rest) = i.strip_prefix(b"\\*") {
                    keywords = true;
                    return Ok((rest, None));
                }
                let (rest, f) = flag(cx, i)?;
                Ok((rest, Some(f)))
            })?;
            let flags = flags.into_iter().flatten().collect();
            return Ok((r, Code::PermanentFlags { flags, keywords }));
        }
        b"UIDNEXT" | b"UIDVALIDITY" | b"UNSEEN" => {
            let (r, _) = sp(r)?;
            let (r, n) = number(r)?;
            let c = match name.len() {
                7 => Code::UidNext(n),
                11 => Code::UidValidity(n),
                _ => Code::Unseen(n),
            };
            return Ok((r, c));
        }
        b"METADATA" => {
            let (r, _) = sp(r)?;
            let (r, w) = label(r);
            let mut buf = [0u8; 24];
            let (r, m) = match upcase(w, &mut buf) {
                b"LONGENTRIES" => {
                    let (r, _) = sp(r)?;
                    let (r, n) = number(r)?;
                    (r, MetadataCode::LongEntries(n))
                }
                b"MAXSIZE" => {
                    let (r, _) = sp(r)?;
                    let (r, n) = number(r)?;
                    (r, MetadataCode::MaxSize(n))
                }
                b"TOOMANY" => (r, MetadataCode::TooMany),
                b"NOPRIVATE" => (r, MetadataCode::NoPrivate),
                _ => return fail(r, "Unknown METADATA response code."),
            };
            return Ok((r, Code::Metadata(m)));
        }
        b"INPROGRESS" => {
            let Some(r) = r.strip_prefix(b" (") else {
                return Ok((r, Code::InProgress(None)));
            };
            let (r, tag) = match nil(r) {
                Some(r) => (r, None),
                None => {
                    let (r, t) = quoted(cx, r)?;
                    (r, Some(t))
                }
            };
            let mut counts = [None, None];
            let mut r = r;
            for slot in &mut counts {
                let (rest, _) = sp(r)?;
                r = match nil(rest) {
                    Some(rest) => rest,
                    None => {
                        let (rest, n) = number(rest)?;
                        *slot = Some(n);
                        rest
                    }
                };
            }
            let (r, _) = byte(r, b')', "Expected ')'.")?;
            let [done, goal] = counts;
            if goal.is_some() && (done.is_none() || goal == Some(0)) {
                return fail(r, "An INPROGRESS goal needs a count and is positive.");
            }
            return Ok((r, Code::InProgress(Some(Progress { tag, done, goal }))));
        }
        b"MAILBOXID" => {
            let (r, _) = sp(r)?;
            let (r, _) = byte(r, b'(', "Expected '('.")?;
            let (r, id) = objectid(cx, r)?;
            let (r, _) = byte(r, b')', "Expected ')'.")?;
            return Ok((r, Code::MailboxId(id)));
        }
        _ => {
            let (r, text) = match r.strip_prefix(b" ") {
                Some(t) => {
                    let n = t
                        .iter()
                        .position(|&b| matches!(b, b']' | b'\r' | b'\n'))
                        .unwrap_or(t.len());
                    let (text, rest) = t.split_at(n);
                    (rest, Some(cx.bytes(text)))
                }
                None => (r, None),
            };
            return Ok((r, Code::Other(cx.bytes(name), text)));
        }
    };
    Ok((r, c))
}

/// `*(SP atom)`.
fn words<'a>(cx: &Cx<'_>, mut i: &'a [u8]) -> R<'a, Vec<Bytes>> {
    let mut out = Vec::new();
    while let Some(r) = i.strip_prefix(b" ") {
        let (r, w) = atom(r)?;
        out.push(cx.bytes(w));
        i = r;
    }
    Ok((i, out))
}

fn untagged<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, Response> {
    if peek(i).is_some_and(|b| b.is_ascii_digit()) {
        let (r, n) = number(i)?;
        let (r, _) = sp(r)?;
        let (r, w) = label(r);
        let mut buf = [0u8; 24];
        let d = match upcase(w, &mut buf) {
            b"EXISTS" => Data::Exists(n),
            b"RECENT" => Data::Recent(n),
            b"EXPUNGE" => Data::Expunge(n),
            b"FETCH" | b"UIDFETCH" => {
                let (r, _) = sp(r)?;
                let (r, items) = paren_list(r, true, |i| fetch_item(cx, i))?;
                let (r, _) = crlf(r)?;
                let d = if w.eq_ignore_ascii_case(b"FETCH") {
                    Data::Fetch { seq: n, items }
                } else {
                    Data::UidFetch { uid: n, items }
                };
                return Ok((r, Response::Data(d)));
            }
            _ => return fail(i, "Unknown message data."),
        };
        let (r, _) = crlf(r)?;
        return Ok((r, Response::Data(d)));
    }
    let (r, w) = label(i);
    let mut buf = [0u8; 24];
    let word = upcase(w, &mut buf);
    if let Ok((r, condition)) = condition(i) {
        let (r, (code, text)) = resp_text(cx, r)?;
        return Ok((
            r,
            Response::Status(StatusResponse {
                tag: None,
                condition,
                code,
                text,
            }),
        ));
    }
    let (r, d) = match word {
        b"CAPABILITY" => {
            let (r, caps) = words(cx, r)?;
            (r, Data::Capability(caps))
        }
        b"ENABLED" => {
            let (r, caps) = words(cx, r)?;
            (r, Data::Enabled(caps))
        }
        b"LIST" => {
            let (r, item) = list_item(cx, r)?;
            (r, Data::List(item))
        }
        b"LSUB" => {
            let (r, item) = list_item(cx, r)?;
            (r, Data::Lsub(item))
        }
        b"NAMESPACE" => {
            let (r, _) = sp(r)?;
            let (r, personal) = namespace(cx, r)?;
            let (r, _) = sp(r)?;
            let (r, other) = namespace(cx, r)?;
            let (r, _) = sp(r)?;
            let (r, shared) = namespace(cx, r)?;
            (
                r,
                Data::Namespace {
                    personal,
                    other,
                    shared,
                },
            )
        }
        b"STATUS" => status(cx, r)?,
        b"ESEARCH" => esearch(cx, r)?,
        b"SEARCH" | b"SORT" => {
            // Numbers, then RFC 7162's `(MODSEQ n)` for both (§7 `search-sort-mod-seq`).
            let mut numbers = Vec::new();
            let mut mod_seq = None;
            let mut r = r;
            while let Some(rest) = r.strip_prefix(b" ") {
                if let Some(m) = strip_kw(rest, b"(MODSEQ ") {
                    let (m, n) = number64(m)?;
                    let (m, _) = byte(m, b')', "Expected ')'.")?;
                    mod_seq = Some(n);
                    r = m;
                    break;
                }
                let (rest, n) = number(rest)?;
                numbers.push(n);
                r = rest;
            }
            if word == b"SEARCH" {
                (r, Data::Search { numbers, mod_seq })
            } else {
                (r, Data::Sort { numbers, mod_seq })
            }
        }
        b"THREAD" => {
            let mut threads = Vec::new();
            let mut r = r.strip_prefix(b" ").unwrap_or(r);
            while peek(r) == Some(b'(') {
                let (rest, t) = thread_list(cx, r, 1)?;
                threads.push(t);
                r = rest;
            }
            (r, Data::Thread(threads))
        }
        b"FLAGS" => {
            let (r, _) = sp(r)?;
            let (r, f) = flag_list(cx, r)?;
            (r, Data::Flags(f))
        }
        b"VANISHED" => {
            let (r, _) = sp(r)?;
            let (r, earlier) = match strip_kw(r, b"(EARLIER) ") {
                Some(r) => (r, true),
                None => (r, false),
            };
            let (r, uids) = sequence_set(r)?;
            (r, Data::Vanished { earlier, uids })
        }
        b"ID" => {
            let (r, _) = sp(r)?;
            match nil(r) {
                Some(r) => (r, Data::Id(None)),
                None => {
                    let (r, p) = paren_list(r, true, |i| {
                        let (i, k) = string(cx, i)?;
                        let (i, _) = sp(i)?;
                        let (i, v) = nstring(cx, i)?;
                        Ok((i, (k, v)))
                    })?;
                    (r, Data::Id(Some(p)))
                }
            }
        }
        b"QUOTA" => {
            let (r, _) = sp(r)?;
            let (r, root) = astring(cx, r)?;
            let (r, _) = sp(r)?;
            let (r, resources) = paren_list(r, true, |i| {
                let (i, name) = atom(i)?;
                let (i, _) = sp(i)?;
                let (i, usage) = number64(i)?;
                let (i, _) = sp(i)?;
                let (i, limit) = number64(i)?;
                Ok((i, (cx.bytes(name), usage, limit)))
            })?;
            (r, Data::Quota { root, resources })
        }
        b"QUOTAROOT" => {
            let (r, _) = sp(r)?;
            let (mut r, mailbox) = astring(cx, r)?;
            let mut roots = Vec::new();
            while let Some(rest) = r.strip_prefix(b" ") {
                let (rest, root) = astring(cx, rest)?;
                roots.push(root);
                r = rest;
            }
            (r, Data::QuotaRoot { mailbox, roots })
        }
        b"METADATA" => {
            let (r, _) = sp(r)?;
            let (r, mailbox) = astring(cx, r)?;
            let (r, _) = sp(r)?;
            let (r, entries) = paren_list(r, true, |i| {
                let (i, e) = astring(cx, i)?;
                let (i, _) = sp(i)?;
                let (i, v) = nstring8(cx, i)?;
                Ok((i, (e, v)))
            })?;
            (r, Data::Metadata { mailbox, entries })
        }
        _ => return fail(i, "Unknown untagged response."),
    };
    let (r, _) = crlf(r)?;
    Ok((r, Response::Data(d)))
}

/// `nstring / literal8`.
fn nstring8<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, NString> {
    if peek(i) == Some(b'~') {
        let (r, d) = literal8(i)?;
        return Ok((r, Some(cx.bytes(d))));
    }
    nstring(cx, i)
}

fn list_item<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, ListItem> {
    let (r, _) = sp(i)?;
    let (r, attributes) = paren_list(r, true, |i| {
        let body = i.strip_prefix(b"\\").unwrap_or(i);
        let (rest, a) = span1(body, &ATOM, "Expected a mailbox attribute.")?;
        let whole = i.get(..i.len() - body.len() + a.len()).unwrap_or_default();
        Ok((rest, cx.bytes(whole)))
    })?;
    let (r, _) = sp(r)?;
    let (r, delimiter) = delimiter(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, name) = astring(cx, r)?;
    let (r, extended) = match r.strip_prefix(b" ") {
        Some(r) => paren_list(r, true, |i| {
            let (i, tag) = astring(cx, i)?;
            let (i, _) = sp(i)?;
            let (i, values) = paren_list(i, true, |i| astring(cx, i))?;
            Ok((i, (tag, values)))
        })?,
        None => (r, Vec::new()),
    };
    Ok((
        r,
        ListItem {
            attributes,
            delimiter,
            name,
            extended,
        },
    ))
}

/// `DQUOTE QUOTED-CHAR DQUOTE / nil`.
fn delimiter<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, Option<u8>> {
    if let Some(r) = nil(i) {
        return Ok((r, None));
    }
    let (r, q) = quoted(cx, i)?;
    match q.as_ref() {
        [c] => Ok((r, Some(*c))),
        _ => fail(i, "A hierarchy delimiter is one character."),
    }
}

type Namespaces = Option<Vec<(Bytes, Option<u8>)>>;

fn namespace<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, Namespaces> {
    if let Some(r) = nil(i) {
        return Ok((r, None));
    }
    let (mut r, _) = byte(i, b'(', "Expected '(' or NIL.")?;
    let mut out = Vec::new();
    while let Some(rest) = r.strip_prefix(b"(") {
        let (rest, prefix) = string(cx, rest)?;
        let (rest, _) = sp(rest)?;
        let (rest, d) = delimiter(cx, rest)?;
        let (rest, _) = byte(rest, b')', "Expected ')'.")?;
        out.push((prefix, d));
        r = rest;
    }
    let (r, _) = byte(r, b')', "Expected ')'.")?;
    Ok((r, Some(out)))
}

fn status<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, Data> {
    let (r, _) = sp(i)?;
    let (r, mailbox) = astring(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, items) = paren_list(r, true, |i| {
        let (i, w) = label(i);
        let mut buf = [0u8; 24];
        let item = match upcase(w, &mut buf) {
            b"MESSAGES" => StatusItem::Messages,
            b"RECENT" => StatusItem::Recent,
            b"UIDNEXT" => StatusItem::UidNext,
            b"UIDVALIDITY" => StatusItem::UidValidity,
            b"UNSEEN" => StatusItem::Unseen,
            b"DELETED" => StatusItem::Deleted,
            b"DELETED-STORAGE" => StatusItem::DeletedStorage,
            b"SIZE" => StatusItem::Size,
            b"HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            b"APPENDLIMIT" => StatusItem::AppendLimit,
            b"MAILBOXID" => StatusItem::MailboxId,
            _ => return fail(i, "Unknown STATUS item."),
        };
        let (i, _) = sp(i)?;
        let (i, v) = if let Some(r) = nil(i) {
            (r, StatusValue::Nil)
        } else if let Some(r) = i.strip_prefix(b"(") {
            let (r, id) = objectid(cx, r)?;
            let (r, _) = byte(r, b')', "Expected ')'.")?;
            (r, StatusValue::ObjectId(id))
        } else {
            let (r, n) = number64(i)?;
            (r, StatusValue::Number(n))
        };
        Ok((i, (item, v)))
    })?;
    Ok((r, Data::Status { mailbox, items }))
}

/// `"ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)` (RFC 4731 §3.1),
/// the correlator being TAG alone or, from MULTISEARCH, TAG, MAILBOX and UIDVALIDITY once
/// each in any order (RFC 7377 §4).
fn esearch<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, Data> {
    let (mut r, tag, mailbox) = match i.strip_prefix(b" (") {
        Some(mut r) => {
            let (mut tag, mut name, mut validity) = (None, None, None);
            loop {
                let (rest, w) = label(r);
                let (rest, _) = sp(rest)?;
                let mut buf = [0u8; 24];
                let rest = match upcase(w, &mut buf) {
                    b"TAG" if tag.is_none() => {
                        let (rest, t) = astring(cx, rest)?;
                        let Some(t) = Tag::new(t) else {
                            return fail(i, "Invalid tag in ESEARCH.");
                        };
                        tag = Some(t);
                        rest
                    }
                    b"MAILBOX" if name.is_none() => {
                        let (rest, m) = astring(cx, rest)?;
                        name = Some(m);
                        rest
                    }
                    b"UIDVALIDITY" if validity.is_none() => {
                        let (rest, n) = number(rest)?;
                        validity = Some(n);
                        rest
                    }
                    _ => return fail(r, "Unknown or repeated ESEARCH correlator."),
                };
                match rest.strip_prefix(b" ") {
                    Some(rest) => r = rest,
                    None => {
                        r = rest;
                        break;
                    }
                }
            }
            let (r, _) = byte(r, b')', "Expected ')'.")?;
            let Some(tag) = tag else {
                return fail(i, "ESEARCH correlators without TAG.");
            };
            let mailbox = match (name, validity) {
                (Some(m), Some(v)) => Some((m, v)),
                (None, None) => None,
                _ => return fail(i, "MAILBOX and UIDVALIDITY go together."),
            };
            (r, Some(tag), mailbox)
        }
        None => (i, None, None),
    };
    let mut uid = false;
    let uid_word =
        strip_kw(r, b" UID").filter(|rest| !peek(rest).is_some_and(|b| b.is_ascii_alphanumeric()));
    if let Some(rest) = uid_word {
        uid = true;
        r = rest;
    }
    let mut results = Vec::new();
    while let Some(rest) = r.strip_prefix(b" ") {
        let (rest, w) = label(rest);
        let (rest, _) = sp(rest)?;
        let mut buf = [0u8; 24];
        let (rest, item) = match upcase(w, &mut buf) {
            b"MIN" => {
                let (rest, n) = number(rest)?;
                (rest, ESearchResult::Min(n))
            }
            b"MAX" => {
                let (rest, n) = number(rest)?;
                (rest, ESearchResult::Max(n))
            }
            b"COUNT" => {
                let (rest, n) = number(rest)?;
                (rest, ESearchResult::Count(n))
            }
            b"ALL" => {
                let (rest, s) = sequence_set(rest)?;
                (rest, ESearchResult::All(s))
            }
            b"MODSEQ" => {
                let (rest, n) = number64(rest)?;
                (rest, ESearchResult::ModSeq(n))
            }
            b"PARTIAL" => {
                let (rest, _) = byte(rest, b'(', "Expected '('.")?;
                let (rest, range) = partial_range(rest)?;
                let (rest, _) = sp(rest)?;
                let (rest, set) = match strip_kw(rest, b"NIL") {
                    Some(rest) => (rest, None),
                    None => {
                        let (rest, s) = sequence_set(rest)?;
                        (rest, Some(s))
                    }
                };
                let (rest, _) = byte(rest, b')', "Expected ')'.")?;
                (rest, ESearchResult::Partial(range, set))
            }
            _ => return fail(rest, "Unknown ESEARCH result."),
        };
        results.push(item);
        r = rest;
    }
    Ok((
        r,
        Data::ESearch {
            tag,
            mailbox,
            uid,
            results,
        },
    ))
}

/// `thread-list = "(" (thread-members / thread-nested) ")"` (RFC 5256 §5): consecutive numbers
/// form a chain of single replies; nested lists are the replies of the last number (or, with
/// no number, of a message that is missing).
fn thread_list<'a>(cx: &Cx<'_>, i: &'a [u8], depth: usize) -> R<'a, ThreadNode> {
    if depth > cx.max_depth {
        return fatal(i, "Thread nested too deeply.");
    }
    let (mut r, _) = byte(i, b'(', "Expected '('.")?;
    let mut chain = Vec::new();
    while peek(r).is_some_and(|b| b.is_ascii_digit()) {
        let (rest, n) = number(r)?;
        chain.push(n);
        r = rest.strip_prefix(b" ").unwrap_or(rest);
    }
    let mut children = Vec::new();
    while peek(r) == Some(b'(') {
        let (rest, c) = thread_list(cx, r, depth + 1)?;
        children.push(c);
        r = rest;
    }
    let (r, _) = byte(r, b')', "Expected ')'.")?;
    let mut node = ThreadNode {
        seq: chain.pop(),
        children,
    };
    while let Some(parent) = chain.pop() {
        node = ThreadNode {
            seq: Some(parent),
            children: vec![node],
        };
    }
    Ok((r, node))
}

fn fetch_item<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, FetchItem> {
    let (r, w) = label(i);
    let mut buf = [0u8; 24];
    let word = upcase(w, &mut buf);
    if word == b"BODY" && peek(r) == Some(b'[') {
        let (r, section) = section(cx, r)?;
        let (r, origin) = origin(r)?;
        let (r, _) = sp(r)?;
        let (r, data) = nstring(cx, r)?;
        return Ok((
            r,
            FetchItem::BodySection {
                section,
                origin,
                data,
            },
        ));
    }
    if word == b"BINARY" {
        let (r, part) = section_binary(r)?;
        let (r, origin) = origin(r)?;
        let (r, _) = sp(r)?;
        let (r, data) = nstring8(cx, r)?;
        return Ok((r, FetchItem::Binary { part, origin, data }));
    }
    if word == b"BINARY.SIZE" {
        let (r, part) = section_binary(r)?;
        let (r, _) = sp(r)?;
        let (r, size) = number64(r)?;
        return Ok((r, FetchItem::BinarySize { part, size }));
    }
    let (r, _) = sp(r)?;
    let item = match word {
        b"FLAGS" => {
            let (r, f) = flag_list(cx, r)?;
            return Ok((r, FetchItem::Flags(f)));
        }
        b"UID" => {
            let (r, n) = number(r)?;
            return Ok((r, FetchItem::Uid(n)));
        }
        b"INTERNALDATE" => {
            let (r, t) = date_time(r)?;
            return Ok((r, FetchItem::InternalDate(t)));
        }
        b"RFC822.SIZE" => {
            let (r, n) = number64(r)?;
            return Ok((r, FetchItem::Rfc822Size(n)));
        }
        b"ENVELOPE" => {
            let (r, e) = envelope(cx, r)?;
            return Ok((r, FetchItem::Envelope(Box::new(e))));
        }
        b"BODY" => {
            let (r, b) = body(cx, r, 1)?;
            return Ok((r, FetchItem::Body(Box::new(b))));
        }
        b"BODYSTRUCTURE" => {
            let (r, b) = body(cx, r, 1)?;
            return Ok((r, FetchItem::BodyStructure(Box::new(b))));
        }
        b"RFC822" | b"RFC822.HEADER" | b"RFC822.TEXT" | b"PREVIEW" => {
            let (r, d) = nstring(cx, r)?;
            let item = match word {
                b"RFC822" => FetchItem::Rfc822(d),
                b"RFC822.HEADER" => FetchItem::Rfc822Header(d),
                b"RFC822.TEXT" => FetchItem::Rfc822Text(d),
                _ => FetchItem::Preview(d),
            };
            return Ok((r, item));
        }
        b"MODSEQ" => {
            let (r, _) = byte(r, b'(', "Expected '('.")?;
            let (r, n) = number64(r)?;
            let (r, _) = byte(r, b')', "Expected ')'.")?;
            return Ok((r, FetchItem::ModSeq(n)));
        }
        b"EMAILID" => {
            let (r, _) = byte(r, b'(', "Expected '('.")?;
            let (r, id) = objectid(cx, r)?;
            let (r, _) = byte(r, b')', "Expected ')'.")?;
            return Ok((r, FetchItem::EmailId(id)));
        }
        b"THREADID" => {
            if let Some(r) = nil(r) {
                return Ok((r, FetchItem::ThreadId(None)));
            }
            let (r, _) = byte(r, b'(', "Expected '('.")?;
            let (r, id) = objectid(cx, r)?;
            let (r, _) = byte(r, b')', "Expected ')'.")?;
            (r, FetchItem::ThreadId(Some(id)))
        }
        b"SAVEDATE" => {
            if let Some(r) = nil(r) {
                return Ok((r, FetchItem::SaveDate(None)));
            }
            let (r, t) = date_time(r)?;
            (r, FetchItem::SaveDate(Some(t)))
        }
        _ => return fail(i, "Unknown FETCH item."),
    };
    Ok(item)
}

/// `"<" number ">"` after a section in FETCH data.
fn origin(i: &[u8]) -> R<'_, Option<u32>> {
    let Some(r) = i.strip_prefix(b"<") else {
        return Ok((i, None));
    };
    let (r, n) = number(r)?;
    let (r, _) = byte(r, b'>', "Expected '>'.")?;
    Ok((r, Some(n)))
}

fn envelope<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, Envelope> {
    let (r, _) = byte(i, b'(', "Expected an envelope.")?;
    let (r, date) = nstring(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, subject) = nstring(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, from) = addresses(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, sender) = addresses(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, reply_to) = addresses(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, to) = addresses(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, cc) = addresses(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, bcc) = addresses(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, in_reply_to) = nstring(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, message_id) = nstring(cx, r)?;
    let (r, _) = byte(r, b')', "Expected ')' after the envelope.")?;
    Ok((
        r,
        Envelope {
            date,
            subject,
            from,
            sender,
            reply_to,
            to,
            cc,
            bcc,
            in_reply_to,
            message_id,
        },
    ))
}

/// `"(" 1*address ")" / nil`; spaces between addresses, which some servers write, are skipped.
fn addresses<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, Vec<Address>> {
    if let Some(r) = nil(i) {
        return Ok((r, Vec::new()));
    }
    let (mut r, _) = byte(i, b'(', "Expected an address list.")?;
    let mut out = Vec::new();
    loop {
        r = r.strip_prefix(b" ").unwrap_or(r);
        let Some(rest) = r.strip_prefix(b"(") else {
            break;
        };
        let (rest, name) = nstring(cx, rest)?;
        let (rest, _) = sp(rest)?;
        let (rest, adl) = nstring(cx, rest)?;
        let (rest, _) = sp(rest)?;
        let (rest, mailbox) = nstring(cx, rest)?;
        let (rest, _) = sp(rest)?;
        let (rest, host) = nstring(cx, rest)?;
        let (rest, _) = byte(rest, b')', "Expected ')' after an address.")?;
        out.push(Address {
            name,
            adl,
            mailbox,
            host,
        });
        r = rest;
    }
    let (r, _) = byte(r, b')', "Expected ')' after the address list.")?;
    Ok((r, out))
}

/// `body = "(" (body-type-1part / body-type-mpart) ")"`. What follows `body-fields` tells the
/// kinds apart without trusting the media type: `(` starts an envelope (message/rfc822), a digit
/// a line count (text), anything else the extension data.
fn body<'a>(cx: &Cx<'_>, i: &'a [u8], depth: usize) -> R<'a, BodyStructure> {
    if depth > cx.max_depth {
        return fatal(i, "Body structure nested too deeply.");
    }
    let (r, _) = byte(i, b'(', "Expected a body structure.")?;
    if peek(r) == Some(b'(') {
        let mut parts = Vec::new();
        let mut r = r;
        while peek(r) == Some(b'(') {
            let (rest, p) = body(cx, r, depth + 1)?;
            parts.push(p);
            r = rest;
        }
        let (r, _) = sp(r)?;
        let (r, subtype) = string(cx, r)?;
        let (r, params, ext) = match r.strip_prefix(b" ") {
            Some(r) => {
                let (r, params) = body_params(cx, r)?;
                let (r, ext) = body_ext(cx, r, depth)?;
                (r, params, ext)
            }
            None => (r, Vec::new(), BodyExtension::default()),
        };
        let (r, _) = byte(r, b')', "Expected ')' after a multipart body.")?;
        return Ok((
            r,
            BodyStructure::Multipart {
                parts,
                subtype,
                params,
                ext,
            },
        ));
    }
    let (r, media_type) = string(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, subtype) = string(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, fields) = body_fields(cx, r)?;
    if let Some(env) = r.strip_prefix(b" ").filter(|e| peek(e) == Some(b'(')) {
        let (r, envelope) = envelope(cx, env)?;
        let (r, _) = sp(r)?;
        let (r, inner) = body(cx, r, depth + 1)?;
        let (r, _) = sp(r)?;
        let (r, lines) = number64(r)?;
        let (r, (md5, ext)) = one_part_ext(cx, r, depth)?;
        let (r, _) = byte(r, b')', "Expected ')' after a body.")?;
        return Ok((
            r,
            BodyStructure::Message {
                subtype,
                fields,
                envelope: Box::new(envelope),
                body: Box::new(inner),
                lines,
                md5,
                ext,
            },
        ));
    }
    let (r, lines) = match r
        .strip_prefix(b" ")
        .filter(|n| peek(n).is_some_and(|b| b.is_ascii_digit()))
    {
        Some(n) => {
            let (r, l) = number64(n)?;
            (r, Some(l))
        }
        None => (r, None),
    };
    let (r, (md5, ext)) = one_part_ext(cx, r, depth)?;
    let (r, _) = byte(r, b')', "Expected ')' after a body.")?;
    Ok((
        r,
        BodyStructure::Single {
            media_type,
            subtype,
            fields,
            lines,
            md5,
            ext,
        },
    ))
}

/// `[SP body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]]`.
fn one_part_ext<'a>(cx: &Cx<'_>, i: &'a [u8], depth: usize) -> R<'a, (NString, BodyExtension)> {
    let Some(r) = i.strip_prefix(b" ") else {
        return Ok((i, (None, BodyExtension::default())));
    };
    let (r, md5) = nstring(cx, r)?;
    let (r, ext) = body_ext(cx, r, depth)?;
    Ok((r, (md5, ext)))
}

/// `[SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]`.
fn body_ext<'a>(cx: &Cx<'_>, i: &'a [u8], depth: usize) -> R<'a, BodyExtension> {
    let mut ext = BodyExtension::default();
    let Some(r) = i.strip_prefix(b" ") else {
        return Ok((i, ext));
    };
    let (r, dsp) = match nil(r) {
        Some(r) => (r, None),
        None => {
            let (r, _) = byte(r, b'(', "Expected a disposition.")?;
            let (r, kind) = string(cx, r)?;
            let (r, _) = sp(r)?;
            let (r, params) = body_params(cx, r)?;
            let (r, _) = byte(r, b')', "Expected ')' after a disposition.")?;
            (r, Some(Disposition { kind, params }))
        }
    };
    ext.disposition = dsp;
    let Some(r) = r.strip_prefix(b" ") else {
        return Ok((r, ext));
    };
    let (r, lang) = if let Some(r) = nil(r) {
        (r, Vec::new())
    } else if peek(r) == Some(b'(') {
        paren_list(r, false, |i| string(cx, i))?
    } else {
        let (r, l) = string(cx, r)?;
        (r, vec![l])
    };
    ext.language = lang;
    let Some(r) = r.strip_prefix(b" ") else {
        return Ok((r, ext));
    };
    let (mut r, loc) = nstring(cx, r)?;
    ext.location = loc;
    while let Some(rest) = r.strip_prefix(b" ") {
        r = skip_body_extension(cx, rest, depth + 1)?.0;
    }
    Ok((r, ext))
}

/// `body-extension = nstring / number / number64 / "(" body-extension *(SP body-extension) ")"`,
/// read and dropped (RFC 9051 §9: clients must accept future extension fields).
fn skip_body_extension<'a>(cx: &Cx<'_>, i: &'a [u8], depth: usize) -> R<'a, ()> {
    if depth > cx.max_depth {
        return fatal(i, "Body extension nested too deeply.");
    }
    match peek(i) {
        Some(b'(') => {
            let (r, _) = paren_list(i, false, |i| skip_body_extension(cx, i, depth + 1))?;
            Ok((r, ()))
        }
        Some(b'0'..=b'9') => Ok((digits(i)?.0, ())),
        _ => Ok((nstring(cx, i)?.0, ())),
    }
}

fn body_fields<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, BodyFields> {
    let (r, params) = body_params(cx, i)?;
    let (r, _) = sp(r)?;
    let (r, id) = nstring(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, description) = nstring(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, encoding) = string(cx, r)?;
    let (r, _) = sp(r)?;
    let (r, octets) = number64(r)?;
    Ok((
        r,
        BodyFields {
            params,
            id,
            description,
            encoding,
            octets,
        },
    ))
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`.
fn body_params<'a>(cx: &Cx<'_>, i: &'a [u8]) -> R<'a, Vec<(Bytes, Bytes)>> {
    if let Some(r) = nil(i) {
        return Ok((r, Vec::new()));
    }
    paren_list(i, false, |i| {
        let (i, k) = string(cx, i)?;
        let (i, _) = sp(i)?;
        let (i, v) = string(cx, i)?;
        Ok((i, (k, v)))
    })
}
