//! Search programs (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 5032, RFC 7162 §3.1.5, RFC 8474,
//! RFC 8514), ESEARCH return options (RFC 4731, RFC 5182) and SORT/THREAD criteria (RFC 5256).

use super::prim::{
    astring, atom, date, fail, fatal, label, number64, nz_number, objectid, paren_list,
    partial_range, peek, sequence_set, sp, span, strip_kw, upcase, Cx, Res,
};
use crate::imap::command::SearchProgram;
use crate::imap::types::{EntryType, SearchKey, SearchReturn, SortCriterion, SortKey};

/// Letters only: every search key name is alphabetic, and stopping there leaves `(`, digits and
/// `*` to the sequence-set and list alternatives.
static ALPHA: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).is_ascii_alphabetic();
        i += 1;
    }
    t
};

/// `search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)`; also the
/// `charset 1*(SP search-key)` of SORT and THREAD when `charset_required`.
pub(crate) fn search_program<'a>(
    cx: &Cx<'_>,
    i: &'a [u8],
    charset_required: bool,
) -> Res<'a, SearchProgram> {
    let (i, charset) = if charset_required {
        let (rest, cs) = charset(cx, i)?;
        let (rest, _) = sp(rest)?;
        (rest, Some(cs))
    } else {
        match strip_kw(i, b"CHARSET ") {
            Some(r) => {
                let (rest, cs) = charset(cx, r)?;
                let (rest, _) = sp(rest)?;
                (rest, Some(cs))
            }
            None => (i, None),
        }
    };
    let mut criteria = Vec::new();
    let mut i = i;
    loop {
        let (rest, key) = search_key(cx, i, 1)?;
        criteria.push(key);
        match rest.strip_prefix(b" ") {
            Some(r) => i = r,
            None => return Ok((rest, SearchProgram { charset, criteria })),
        }
    }
}

/// `charset = atom / quoted`; any string is taken.
fn charset<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, bytes::Bytes> {
    astring(cx, i)
}

/// One `search-key`; `depth` counts enclosing lists and NOT/OR operands.
pub(crate) fn search_key<'a>(cx: &Cx<'_>, i: &'a [u8], depth: usize) -> Res<'a, SearchKey> {
    if depth > cx.max_depth {
        return fatal(i, "Search keys are nested too deeply.");
    }
    match peek(i) {
        Some(b'(') => {
            let (rest, keys) = paren_list(i, false, |i| search_key(cx, i, depth + 1))?;
            return Ok((rest, SearchKey::And(keys)));
        }
        Some(b'*' | b'$' | b'0'..=b'9') => {
            let (rest, set) = sequence_set(i)?;
            return Ok((rest, SearchKey::SequenceSet(set)));
        }
        _ => {}
    }
    let (rest, word) = span(i, &ALPHA);
    let mut buf = [0u8; 24];
    let key = match upcase(word, &mut buf) {
        b"ALL" => SearchKey::All,
        b"ANSWERED" => SearchKey::Answered,
        b"DELETED" => SearchKey::Deleted,
        b"DRAFT" => SearchKey::Draft,
        b"FLAGGED" => SearchKey::Flagged,
        b"NEW" => SearchKey::New,
        b"OLD" => SearchKey::Old,
        b"RECENT" => SearchKey::Recent,
        b"SEEN" => SearchKey::Seen,
        b"UNANSWERED" => SearchKey::Unanswered,
        b"UNDELETED" => SearchKey::Undeleted,
        b"UNDRAFT" => SearchKey::Undraft,
        b"UNFLAGGED" => SearchKey::Unflagged,
        b"UNSEEN" => SearchKey::Unseen,
        b"SAVEDATESUPPORTED" => SearchKey::SaveDateSupported,
        b"BCC" => return string_arg(cx, rest, SearchKey::Bcc),
        b"BODY" => return string_arg(cx, rest, SearchKey::Body),
        b"CC" => return string_arg(cx, rest, SearchKey::Cc),
        b"FROM" => return string_arg(cx, rest, SearchKey::From),
        b"SUBJECT" => return string_arg(cx, rest, SearchKey::Subject),
        b"TEXT" => return string_arg(cx, rest, SearchKey::Text),
        b"TO" => return string_arg(cx, rest, SearchKey::To),
        b"BEFORE" => return date_arg(rest, SearchKey::Before),
        b"ON" => return date_arg(rest, SearchKey::On),
        b"SINCE" => return date_arg(rest, SearchKey::Since),
        b"SENTBEFORE" => return date_arg(rest, SearchKey::SentBefore),
        b"SENTON" => return date_arg(rest, SearchKey::SentOn),
        b"SENTSINCE" => return date_arg(rest, SearchKey::SentSince),
        b"SAVEDBEFORE" => return date_arg(rest, SearchKey::SavedBefore),
        b"SAVEDON" => return date_arg(rest, SearchKey::SavedOn),
        b"SAVEDSINCE" => return date_arg(rest, SearchKey::SavedSince),
        b"KEYWORD" | b"UNKEYWORD" => {
            let (rest, _) = sp(rest)?;
            let (rest, k) = atom(rest)?;
            let k = cx.bytes(k);
            let key = if word.len() == 7 {
                SearchKey::Keyword(k)
            } else {
                SearchKey::Unkeyword(k)
            };
            return Ok((rest, key));
        }
        b"HEADER" => {
            let (rest, _) = sp(rest)?;
            let (rest, name) = astring(cx, rest)?;
            let (rest, _) = sp(rest)?;
            let (rest, value) = astring(cx, rest)?;
            return Ok((rest, SearchKey::Header(name, value)));
        }
        b"LARGER" | b"SMALLER" => {
            let (rest, _) = sp(rest)?;
            let (rest, n) = number64(rest)?;
            let key = if word.len() == 6 {
                SearchKey::Larger(n)
            } else {
                SearchKey::Smaller(n)
            };
            return Ok((rest, key));
        }
        b"OLDER" | b"YOUNGER" => {
            // RFC 5032 §3: `nz-number`.
            let (rest, _) = sp(rest)?;
            let (rest, n) = nz_number(rest)?;
            let key = if word.len() == 5 {
                SearchKey::Older(n.get())
            } else {
                SearchKey::Younger(n.get())
            };
            return Ok((rest, key));
        }
        b"NOT" => {
            let (rest, _) = sp(rest)?;
            let (rest, k) = search_key(cx, rest, depth + 1)?;
            return Ok((rest, SearchKey::Not(Box::new(k))));
        }
        b"OR" => {
            let (rest, _) = sp(rest)?;
            let (rest, a) = search_key(cx, rest, depth + 1)?;
            let (rest, _) = sp(rest)?;
            let (rest, b) = search_key(cx, rest, depth + 1)?;
            return Ok((rest, SearchKey::Or(Box::new(a), Box::new(b))));
        }
        b"UID" => {
            let (rest, _) = sp(rest)?;
            let (rest, set) = sequence_set(rest)?;
            return Ok((rest, SearchKey::Uid(set)));
        }
        b"MODSEQ" => return modseq(cx, rest),
        b"EMAILID" => {
            let (rest, _) = sp(rest)?;
            let (rest, id) = objectid(cx, rest)?;
            return Ok((rest, SearchKey::EmailId(id)));
        }
        b"THREADID" => {
            let (rest, _) = sp(rest)?;
            let (rest, id) = objectid(cx, rest)?;
            return Ok((rest, SearchKey::ThreadId(id)));
        }
        _ => return fail(i, "Unknown search key."),
    };
    Ok((rest, key))
}

fn string_arg<'a>(
    cx: &Cx<'_>,
    i: &'a [u8],
    make: fn(bytes::Bytes) -> SearchKey,
) -> Res<'a, SearchKey> {
    let (rest, _) = sp(i)?;
    let (rest, s) = astring(cx, rest)?;
    Ok((rest, make(s)))
}

fn date_arg(i: &[u8], make: fn(crate::mail::date::Date) -> SearchKey) -> Res<'_, SearchKey> {
    let (rest, _) = sp(i)?;
    let (rest, d) = date(rest)?;
    Ok((rest, make(d)))
}

/// `"MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer` (RFC 7162 §7).
fn modseq<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, SearchKey> {
    let (rest, _) = sp(i)?;
    if peek(rest).is_some_and(|b| b.is_ascii_digit()) {
        let (rest, modseq) = number64(rest)?;
        return Ok((
            rest,
            SearchKey::ModSeq {
                entry: None,
                modseq,
            },
        ));
    }
    let (rest, name) = astring(cx, rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, kind) = span(rest, &ALPHA);
    let mut buf = [0u8; 24];
    let kind = match upcase(kind, &mut buf) {
        b"PRIV" => EntryType::Private,
        b"SHARED" => EntryType::Shared,
        b"ALL" => EntryType::All,
        _ => return fail(rest, "Invalid MODSEQ entry type."),
    };
    let (rest, _) = sp(rest)?;
    let (rest, modseq) = number64(rest)?;
    Ok((
        rest,
        SearchKey::ModSeq {
            entry: Some((name, kind)),
            modseq,
        },
    ))
}

/// `search-return-opts` without its leading SP: `"RETURN" SP "(" [opt *(SP opt)] ")"`.
pub(crate) fn search_return_opts(i: &[u8]) -> Res<'_, Vec<SearchReturn>> {
    let Some(r) = strip_kw(i, b"RETURN ") else {
        return fail(i, "Expected RETURN.");
    };
    paren_list(r, true, |i| {
        let (rest, tok) = label(i);
        let mut buf = [0u8; 24];
        let opt = match upcase(tok, &mut buf) {
            b"MIN" => SearchReturn::Min,
            b"MAX" => SearchReturn::Max,
            b"ALL" => SearchReturn::All,
            b"COUNT" => SearchReturn::Count,
            b"SAVE" => SearchReturn::Save,
            b"PARTIAL" => {
                let (rest, _) = sp(rest)?;
                let (rest, range) = partial_range(rest)?;
                return Ok((rest, SearchReturn::Partial(range)));
            }
            _ => return fail(i, "Unknown search return option."),
        };
        Ok((rest, opt))
    })
}

/// `sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"` (RFC 5256 §5, RFC 5957).
pub(crate) fn sort_criteria(i: &[u8]) -> Res<'_, Vec<SortCriterion>> {
    paren_list(i, false, |i| {
        let (i, reverse) = match strip_kw(i, b"REVERSE ") {
            Some(r) => (r, true),
            None => (i, false),
        };
        let (rest, tok) = span(i, &ALPHA);
        let mut buf = [0u8; 24];
        let key = match upcase(tok, &mut buf) {
            b"ARRIVAL" => SortKey::Arrival,
            b"CC" => SortKey::Cc,
            b"DATE" => SortKey::Date,
            b"FROM" => SortKey::From,
            b"SIZE" => SortKey::Size,
            b"SUBJECT" => SortKey::Subject,
            b"TO" => SortKey::To,
            b"DISPLAYFROM" => SortKey::DisplayFrom,
            b"DISPLAYTO" => SortKey::DisplayTo,
            _ => return fail(i, "Unknown sort key."),
        };
        Ok((rest, SortCriterion { reverse, key }))
    })
}

/// `"(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"`, the only STORE modifier (RFC 7162 §3.1.3).
pub(crate) fn store_modifiers(i: &[u8]) -> Res<'_, u64> {
    let mut unchanged = None;
    let (rest, _) = paren_list(i, false, |i| {
        let Some(r) = strip_kw(i, b"UNCHANGEDSINCE ") else {
            return fail(i, "Unknown STORE modifier.");
        };
        let (rest, n) = number64(r)?;
        unchanged = Some(n);
        Ok((rest, ()))
    })?;
    match unchanged {
        Some(n) => Ok((rest, n)),
        None => fail(i, "Unknown STORE modifier."),
    }
}
