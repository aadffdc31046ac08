//! The IMAP command grammar (RFC 9051 §9 and the extensions in [`Command`]), run once over a
//! complete framed command.
//!
//! The framer has already gathered the command's line parts and literal bodies into one `Bytes`
//! in wire order, so the grammar sees literals inline (`{5}\r\nhello`). Atoms, literal bodies and
//! unescaped quoted strings come back as `Bytes` slices of that buffer: decoding copies only
//! quoted strings that contain escapes.
//!
//! Bounds: nothing is sized from a number the client sends (a literal's announced length is only
//! compared with the octets present), and nesting (search keys inside parentheses, NOT and OR) is
//! limited to [`MAX_DEPTH`] so a hostile command cannot exhaust the stack.

mod fetch;
pub(crate) mod prim;
mod search;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use self::prim::{
    astring, atom, byte, crlf, date_time, fail, flag, flag_list, kw, label, list_mailbox, literal,
    literal8, nil, nstring, number64, nz_number, paren_list, peek, seq_number, sequence_set, sp,
    span, span1, strip_kw, upcase, Cx, Res, TAG,
};
use super::command::{Command, CommandLine, NotifySet, Tag};
use super::types::{
    AppendMessage, FetchModifiers, ListPattern, ListReturn, ListSelect, MailboxArg, MetadataDepth,
    MetadataOptions, NotifyEvent, NotifyFilter, NotifyGroup, SearchReturn, SelectParam, StatusItem,
    ThreadAlgorithm,
};
use crate::mail::flags::StoreMode;
use crate::secret::Secret;

pub(crate) use self::fetch::{fetch_att, section, section_binary};

/// Default bound on nested parentheses and NOT/OR operands. Real clients nest a handful of
/// levels; 64 keeps the recursion far from any stack limit.
pub const MAX_DEPTH: usize = 64;

/// A command that does not fit the grammar.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// The tag, when the command got that far; the `BAD` answer carries it.
    pub tag: Option<Tag>,
    /// Said to the client after `BAD`.
    pub message: &'static str,
}

/// Decodes one complete command as produced by the framer (line end included).
pub fn command(input: &Bytes) -> Result<CommandLine, DecodeError> {
    command_with_depth(input, MAX_DEPTH)
}

/// [`command`] with a chosen nesting bound.
pub fn command_with_depth(input: &Bytes, max_depth: usize) -> Result<CommandLine, DecodeError> {
    let whole: &[u8] = input;
    let (rest, raw_tag) = span(whole, &TAG);
    let (false, Some((b' ', line))) = (raw_tag.is_empty(), rest.split_first()) else {
        return Err(DecodeError {
            tag: None,
            message: "Error in IMAP command: missing or invalid tag.",
        });
    };
    let cx = Cx::new(input, max_depth);
    // `span` only took tag characters, and there is at least one.
    let tag = Tag::from_checked(input.slice(..raw_tag.len()));
    let Ok((args, name)) = atom(line) else {
        return Err(DecodeError {
            tag: Some(tag),
            message: "Error in IMAP command: missing command name.",
        });
    };
    match dispatch(&cx, line, name, args) {
        // An unknown command's arguments are not looked at: the answer is BAD either way.
        Ok((_, command @ Command::Unknown { .. })) => Ok(CommandLine { tag, command }),
        Ok((rest, command)) => match crlf(rest) {
            Ok((&[], ())) => Ok(CommandLine { tag, command }),
            _ => Err(DecodeError {
                tag: Some(tag),
                message: "Unexpected characters at the end of the command.",
            }),
        },
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(DecodeError {
            tag: Some(tag),
            message: e.msg,
        }),
        Err(nom::Err::Incomplete(_)) => Err(DecodeError {
            tag: Some(tag),
            message: "Incomplete command.",
        }),
    }
}

/// IDLE's end (RFC 2177): the line the framer delivers in line mode, without its line end.
pub fn idle_done(line: &[u8]) -> bool {
    line.eq_ignore_ascii_case(b"DONE")
}

/// The name to report for an unknown command: `from_name` starts at the command name. `UID xyz`
/// is reported with both words, so the answer can name what was not understood.
fn unknown_name<'a>(from_name: &'a [u8], name: &[u8], args: &[u8]) -> &'a [u8] {
    let mut len = name.len();
    if name.eq_ignore_ascii_case(b"UID") {
        if let Some(sub) = args.strip_prefix(b" ") {
            let (_, word) = span(sub, &prim::ATOM);
            len += 1 + word.len();
        }
    }
    from_name.get(..len).unwrap_or_default()
}

/// Parses the arguments of the command `name` up to (not including) the line end; `line`
/// starts at the name. A name tern does not know gives [`Command::Unknown`].
fn dispatch<'a>(cx: &Cx<'_>, line: &[u8], name: &[u8], i: &'a [u8]) -> Res<'a, Command> {
    let mut buf = [0u8; 24];
    let upper = upcase(name, &mut buf);
    match upper {
        b"CAPABILITY" => Ok((i, Command::Capability)),
        b"NOOP" => Ok((i, Command::Noop)),
        b"LOGOUT" => Ok((i, Command::Logout)),
        b"STARTTLS" => Ok((i, Command::StartTls)),
        b"NAMESPACE" => Ok((i, Command::Namespace)),
        b"IDLE" => Ok((i, Command::Idle)),
        b"CHECK" => Ok((i, Command::Check)),
        b"CLOSE" => Ok((i, Command::Close)),
        b"UNSELECT" => Ok((i, Command::Unselect)),
        b"UNAUTHENTICATE" => Ok((i, Command::Unauthenticate)),
        b"EXPUNGE" => Ok((i, Command::Expunge)),
        b"ID" => id(cx, i),
        b"LOGIN" => login(cx, i),
        b"AUTHENTICATE" => authenticate(cx, i),
        b"ENABLE" => enable(cx, i),
        b"SELECT" => select(cx, i, false),
        b"EXAMINE" => select(cx, i, true),
        b"CREATE" => create(cx, i),
        b"DELETE" => mailbox_only(cx, i, |mailbox| Command::Delete { mailbox }),
        b"SUBSCRIBE" => mailbox_only(cx, i, |mailbox| Command::Subscribe { mailbox }),
        b"UNSUBSCRIBE" => mailbox_only(cx, i, |mailbox| Command::Unsubscribe { mailbox }),
        b"GETQUOTAROOT" => mailbox_only(cx, i, |mailbox| Command::GetQuotaRoot { mailbox }),
        b"RENAME" => rename(cx, i),
        b"LIST" => list(cx, i),
        b"LSUB" => lsub(cx, i),
        b"STATUS" => status(cx, i),
        b"APPEND" => append(cx, i),
        b"REPLACE" => replace(cx, i, false),
        b"GETQUOTA" => {
            let (rest, _) = sp(i)?;
            let (rest, root) = astring(cx, rest)?;
            Ok((rest, Command::GetQuota { root }))
        }
        b"SETQUOTA" => setquota(cx, i),
        b"GETMETADATA" => getmetadata(cx, i),
        b"SETMETADATA" => setmetadata(cx, i),
        b"NOTIFY" => notify(cx, i),
        b"ESEARCH" => esearch(cx, i),
        b"COMPRESS" => {
            let (rest, _) = sp(i)?;
            let (rest, m) = atom(rest)?;
            Ok((
                rest,
                Command::Compress {
                    mechanism: cx.bytes(m),
                },
            ))
        }
        b"SEARCH" => search(cx, i, false),
        b"SORT" => sort(cx, i, false),
        b"THREAD" => thread(cx, i, false),
        b"FETCH" => fetch(cx, i, false),
        b"STORE" => store(cx, i, false),
        b"COPY" => copy_move(cx, i, false, false),
        b"MOVE" => copy_move(cx, i, false, true),
        b"UID" => uid(cx, line, name, i),
        _ => Ok((i, unknown(cx, line, name, i))),
    }
}

fn unknown(cx: &Cx<'_>, line: &[u8], name: &[u8], args: &[u8]) -> Command {
    Command::Unknown {
        name: cx.bytes(unknown_name(line, name, args)),
    }
}

/// `"UID" SP (copy / move / fetch / search / store / uid-expunge / sort / thread / replace)`.
fn uid<'a>(cx: &Cx<'_>, line: &[u8], name: &[u8], args: &'a [u8]) -> Res<'a, Command> {
    let (i, _) = sp(args)?;
    let (rest, sub) = atom(i)?;
    let mut buf = [0u8; 24];
    match upcase(sub, &mut buf) {
        b"SEARCH" => search(cx, rest, true),
        b"SORT" => sort(cx, rest, true),
        b"THREAD" => thread(cx, rest, true),
        b"FETCH" => fetch(cx, rest, true),
        b"STORE" => store(cx, rest, true),
        b"COPY" => copy_move(cx, rest, true, false),
        b"MOVE" => copy_move(cx, rest, true, true),
        b"REPLACE" => replace(cx, rest, true),
        b"EXPUNGE" => {
            let (rest, _) = sp(rest)?;
            let (rest, set) = sequence_set(rest)?;
            Ok((rest, Command::UidExpunge(set)))
        }
        _ => Ok((rest, unknown(cx, line, name, args))),
    }
}

#[inline]
fn mailbox<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, MailboxArg> {
    let (rest, m) = astring(cx, i)?;
    Ok((rest, MailboxArg(m)))
}

fn mailbox_only<'a>(cx: &Cx<'_>, i: &'a [u8], make: fn(MailboxArg) -> Command) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, m) = mailbox(cx, rest)?;
    Ok((rest, make(m)))
}

/// `id = "ID" SP id_params_list` (RFC 2971 §4); field names are taken as any astring.
fn id<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (i, _) = sp(i)?;
    if let Some(rest) = nil(i) {
        return Ok((rest, Command::Id(None)));
    }
    let (rest, pairs) = paren_list(i, true, |i| {
        let (rest, k) = astring(cx, i)?;
        let (rest, _) = sp(rest)?;
        let (rest, v) = nstring(cx, rest)?;
        Ok((rest, (k, v)))
    })?;
    Ok((rest, Command::Id(Some(pairs))))
}

/// `login = "LOGIN" SP userid SP password`.
fn login<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, username) = astring(cx, rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, password) = astring(cx, rest)?;
    Ok((
        rest,
        Command::Login {
            username,
            password: Secret::new(password),
        },
    ))
}

/// base64 plus `=`, the SASL-IR empty response (RFC 4959 §7); decoding is the SASL layer's job.
static BASE64: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=';
        i += 1;
    }
    t
};

/// `authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]`.
fn authenticate<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, mechanism) = atom(rest)?;
    let (rest, initial_response) = match rest.strip_prefix(b" ") {
        Some(r) => {
            let (rest, ir) = span1(r, &BASE64, "Invalid initial response.")?;
            (rest, Some(Secret::new(cx.bytes(ir))))
        }
        None => (rest, None),
    };
    Ok((
        rest,
        Command::Authenticate {
            mechanism: cx.bytes(mechanism),
            initial_response,
        },
    ))
}

/// `enable = "ENABLE" 1*(SP capability)` (RFC 5161).
fn enable<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let mut caps = Vec::new();
    let mut i = i;
    while let Some(r) = i.strip_prefix(b" ") {
        let (rest, c) = atom(r)?;
        caps.push(cx.bytes(c));
        i = rest;
    }
    if caps.is_empty() {
        return fail(i, "ENABLE needs at least one capability.");
    }
    Ok((i, Command::Enable(caps)))
}

/// `select = "SELECT" SP mailbox [select-params]` (RFC 4466 §2.1, RFC 7162 §3.1.8 / §3.2.5).
fn select<'a>(cx: &Cx<'_>, i: &'a [u8], examine: bool) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, mailbox) = mailbox(cx, rest)?;
    let (rest, params) = match rest.strip_prefix(b" ") {
        Some(r) => paren_list(r, true, |i| select_param(cx, i))?,
        None => (rest, Vec::new()),
    };
    let c = if examine {
        Command::Examine { mailbox, params }
    } else {
        Command::Select { mailbox, params }
    };
    Ok((rest, c))
}

/// `"CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
/// [SP seq-match-data] ")"`.
fn select_param<'a>(_cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, SelectParam> {
    let (rest, tok) = label(i);
    let mut buf = [0u8; 24];
    match upcase(tok, &mut buf) {
        b"CONDSTORE" => Ok((rest, SelectParam::CondStore)),
        b"QRESYNC" => {
            let (rest, _) = sp(rest)?;
            let (rest, _) = byte(rest, b'(', "Expected '(' after QRESYNC.")?;
            let (rest, uid_validity) = nz_number(rest)?;
            let (rest, _) = sp(rest)?;
            let (mut rest, mod_seq) = number64(rest)?;
            let mut known_uids = None;
            let mut seq_match = None;
            if let Some(r) = rest.strip_prefix(b" ") {
                rest = r;
                if peek(rest) != Some(b'(') {
                    let (r, set) = sequence_set(rest)?;
                    known_uids = Some(set);
                    rest = r;
                    if let Some(r) = rest.strip_prefix(b" ") {
                        rest = r;
                    }
                }
                if peek(rest) == Some(b'(') {
                    let (r, _) = byte(rest, b'(', "")?;
                    let (r, seqs) = sequence_set(r)?;
                    let (r, _) = sp(r)?;
                    let (r, uids) = sequence_set(r)?;
                    let (r, _) = byte(r, b')', "Expected ')' after the sequence match data.")?;
                    seq_match = Some((seqs, uids));
                    rest = r;
                }
            }
            let (rest, _) = byte(rest, b')', "Expected ')' after QRESYNC parameters.")?;
            Ok((
                rest,
                SelectParam::QResync {
                    uid_validity: uid_validity.get(),
                    mod_seq,
                    known_uids,
                    seq_match,
                },
            ))
        }
        _ => fail(i, "Unknown SELECT parameter."),
    }
}

/// `create = "CREATE" SP mailbox [SP "(" create-param *(SP create-param) ")"]`, with the
/// RFC 6154 §3 `USE (special-use...)` parameter.
fn create<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, mailbox) = mailbox(cx, rest)?;
    let mut special_use = Vec::new();
    let rest = match rest.strip_prefix(b" ") {
        Some(r) => {
            let (rest, _) = paren_list(r, false, |i| {
                let Some(r) = strip_kw(i, b"USE ") else {
                    return fail(i, "Unknown CREATE parameter.");
                };
                let (rest, attrs) = paren_list(r, true, |i| {
                    let (_, _) = byte(i, b'\\', "Expected a special-use attribute.")?;
                    let (rest, a) = atom(i.get(1..).unwrap_or_default())?;
                    // The backslash and the atom are adjacent: keep both, as LIST shows them.
                    Ok((rest, i.get(..1 + a.len()).unwrap_or_default()))
                })?;
                special_use.extend(attrs.into_iter().map(|a| cx.bytes(a)));
                Ok((rest, ()))
            })?;
            rest
        }
        None => rest,
    };
    Ok((
        rest,
        Command::Create {
            mailbox,
            special_use,
        },
    ))
}

fn rename<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, from) = mailbox(cx, rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, to) = mailbox(cx, rest)?;
    Ok((rest, Command::Rename { from, to }))
}

/// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`
/// (RFC 9051 §9, RFC 5258 §6, RFC 5819, RFC 6154).
fn list<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, select) = if peek(rest) == Some(b'(') {
        let (rest, opts) = paren_list(rest, true, list_select_opt)?;
        // RFC 5258 §3: RECURSIVEMATCH modifies a base option and is an error alone.
        if opts.contains(&ListSelect::RecursiveMatch) && !opts.contains(&ListSelect::Subscribed) {
            return fail(rest, "RECURSIVEMATCH needs SUBSCRIBED.");
        }
        let (rest, _) = sp(rest)?;
        (rest, opts)
    } else {
        (rest, Vec::new())
    };
    let (rest, reference) = mailbox(cx, rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, patterns) = if peek(rest) == Some(b'(') {
        paren_list(rest, false, |i| {
            let (rest, p) = list_mailbox(cx, i)?;
            Ok((rest, ListPattern(p)))
        })?
    } else {
        let (rest, p) = list_mailbox(cx, rest)?;
        (rest, vec![ListPattern(p)])
    };
    let (rest, returns) = match rest.strip_prefix(b" ") {
        Some(r) => {
            let Some(r) = strip_kw(r, b"RETURN ") else {
                return fail(r, "Expected RETURN.");
            };
            paren_list(r, true, |i| list_return_opt(i))?
        }
        None => (rest, Vec::new()),
    };
    Ok((
        rest,
        Command::List {
            select,
            reference,
            patterns,
            returns,
        },
    ))
}

fn list_select_opt(i: &[u8]) -> Res<'_, ListSelect> {
    let (rest, tok) = label(i);
    let mut buf = [0u8; 24];
    let o = match upcase(tok, &mut buf) {
        b"SUBSCRIBED" => ListSelect::Subscribed,
        b"REMOTE" => ListSelect::Remote,
        b"RECURSIVEMATCH" => ListSelect::RecursiveMatch,
        b"SPECIAL-USE" => ListSelect::SpecialUse,
        // RFC 5258 §3: unrecognised selection options are a BAD.
        _ => return fail(i, "Unknown LIST selection option."),
    };
    Ok((rest, o))
}

fn list_return_opt(i: &[u8]) -> Res<'_, ListReturn> {
    let (rest, tok) = label(i);
    let mut buf = [0u8; 24];
    let o = match upcase(tok, &mut buf) {
        b"SUBSCRIBED" => ListReturn::Subscribed,
        b"CHILDREN" => ListReturn::Children,
        b"SPECIAL-USE" => ListReturn::SpecialUse,
        b"STATUS" => {
            let (rest, _) = sp(rest)?;
            let (rest, items) = status_atts(rest)?;
            return Ok((rest, ListReturn::Status(items)));
        }
        _ => return fail(i, "Unknown LIST return option."),
    };
    Ok((rest, o))
}

fn lsub<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, reference) = mailbox(cx, rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, p) = list_mailbox(cx, rest)?;
    Ok((
        rest,
        Command::Lsub {
            reference,
            pattern: ListPattern(p),
        },
    ))
}

/// `"(" status-att *(SP status-att) ")"`.
fn status_atts(i: &[u8]) -> Res<'_, Vec<StatusItem>> {
    paren_list(i, false, |i| {
        let (rest, tok) = label(i);
        let mut buf = [0u8; 24];
        let item = match upcase(tok, &mut buf) {
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
        Ok((rest, item))
    })
}

fn status<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, mailbox) = mailbox(cx, rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, items) = status_atts(rest)?;
    Ok((rest, Command::Status { mailbox, items }))
}

/// `append = "APPEND" SP mailbox 1*append-message` (RFC 3502 §6.1).
fn append<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (mut rest, mailbox) = mailbox(cx, rest)?;
    let mut messages = Vec::new();
    while let Some(r) = rest.strip_prefix(b" ") {
        let (r, message) = append_message(cx, r)?;
        messages.push(message);
        rest = r;
    }
    if messages.is_empty() {
        return fail(rest, "APPEND needs a message.");
    }
    Ok((rest, Command::Append { mailbox, messages }))
}

/// One `append-message` after its space: `[flag-list SP] [date-time SP] (literal / literal8)`
/// (RFC 4466 §2.3, RFC 3516 §4.4).
fn append_message<'a>(cx: &Cx<'_>, r: &'a [u8]) -> Res<'a, AppendMessage> {
    let (r, flags) = if peek(r) == Some(b'(') {
        let (r, f) = flag_list(cx, r)?;
        let (r, _) = sp(r)?;
        (r, f)
    } else {
        (r, Vec::new())
    };
    let (r, date) = if peek(r) == Some(b'"') {
        let (r, d) = date_time(r)?;
        let (r, _) = sp(r)?;
        (r, Some(d))
    } else {
        (r, None)
    };
    let (r, data, binary) = match peek(r) {
        Some(b'~') => {
            let (r, d) = literal8(r)?;
            (r, d, true)
        }
        _ => {
            let (r, d) = literal(cx, r)?;
            (r, d, false)
        }
    };
    Ok((
        r,
        AppendMessage {
            flags,
            date,
            data: cx.bytes(data),
            binary,
        },
    ))
}

/// `replace = "REPLACE" SP seq-number SP mailbox append-message` (RFC 8508 §5), the UID
/// form taking a UID in the same place.
fn replace<'a>(cx: &Cx<'_>, i: &'a [u8], uid: bool) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, target) = seq_number(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, mailbox) = mailbox(cx, rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, message) = append_message(cx, rest)?;
    Ok((
        rest,
        Command::Replace {
            uid,
            target,
            mailbox,
            message,
        },
    ))
}

/// `setquota = "SETQUOTA" SP quota-root-name SP setquota-list` (RFC 9208 §7).
fn setquota<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, root) = astring(cx, rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, limits) = paren_list(rest, true, |i| {
        let (rest, name) = atom(i)?;
        let (rest, _) = sp(rest)?;
        let (rest, n) = number64(rest)?;
        Ok((rest, (cx.bytes(name), n)))
    })?;
    Ok((rest, Command::SetQuota { root, limits }))
}

/// `getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries` (RFC 5464 §5).
fn getmetadata<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let mut options = MetadataOptions::default();
    let rest = if peek(rest) == Some(b'(') {
        let (rest, _) = paren_list(rest, true, |i| {
            let (rest, tok) = label(i);
            let mut buf = [0u8; 24];
            match upcase(tok, &mut buf) {
                b"MAXSIZE" => {
                    let (rest, _) = sp(rest)?;
                    let (rest, n) = prim::number(rest)?;
                    options.max_size = Some(n);
                    Ok((rest, ()))
                }
                b"DEPTH" => {
                    let (rest, _) = sp(rest)?;
                    let (rest, d) = label(rest);
                    let mut buf = [0u8; 24];
                    options.depth = Some(match upcase(d, &mut buf) {
                        b"0" => MetadataDepth::Zero,
                        b"1" => MetadataDepth::One,
                        b"INFINITY" => MetadataDepth::Infinity,
                        _ => return fail(i, "Invalid DEPTH."),
                    });
                    Ok((rest, ()))
                }
                _ => fail(i, "Unknown GETMETADATA option."),
            }
        })?;
        let (rest, _) = sp(rest)?;
        rest
    } else {
        rest
    };
    let (rest, mailbox) = mailbox(cx, rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, entries) = if peek(rest) == Some(b'(') {
        paren_list(rest, false, |i| astring(cx, i))?
    } else {
        let (rest, e) = astring(cx, rest)?;
        (rest, vec![e])
    };
    Ok((
        rest,
        Command::GetMetadata {
            options,
            mailbox,
            entries,
        },
    ))
}

/// `setmetadata = "SETMETADATA" SP mailbox SP entry-values`; a value is `nstring / literal8`.
fn setmetadata<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, mailbox) = mailbox(cx, rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, entries) = paren_list(rest, false, |i| {
        let (rest, e) = astring(cx, i)?;
        let (rest, _) = sp(rest)?;
        let (rest, v) = if peek(rest) == Some(b'~') {
            let (rest, d) = literal8(rest)?;
            (rest, Some(cx.bytes(d)))
        } else {
            nstring(cx, rest)?
        };
        Ok((rest, (e, v)))
    })?;
    Ok((rest, Command::SetMetadata { mailbox, entries }))
}

/// `notify = "NOTIFY" SP (notify-set / notify-none)` (RFC 5465 §8).
fn notify<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    if let Some(rest) = strip_kw(rest, b"NONE") {
        return Ok((rest, Command::Notify { set: None }));
    }
    let (rest, _) = kw(rest, b"SET", "Expected SET or NONE.")?;
    let (rest, status) = match strip_kw(rest, b" STATUS") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let mut groups = Vec::new();
    let mut rest = rest;
    while let Some(r) = rest.strip_prefix(b" ") {
        let (r, g) = notify_group(cx, r)?;
        groups.push(g);
        rest = r;
    }
    if groups.is_empty() {
        return fail(rest, "NOTIFY SET needs an event group.");
    }
    Ok((
        rest,
        Command::Notify {
            set: Some(NotifySet { status, groups }),
        },
    ))
}

/// `[search-return-opts SP]`: the RETURN options of SEARCH, SORT and ESEARCH, if given.
fn returns_then_sp(i: &[u8]) -> Res<'_, Option<Vec<SearchReturn>>> {
    if strip_kw(i, b"RETURN ").is_none() {
        return Ok((i, None));
    }
    let (rest, r) = search::search_return_opts(i)?;
    let (rest, _) = sp(rest)?;
    Ok((rest, Some(r)))
}

/// `filter-mailboxes` (RFC 5465 §8, with RFC 7377's `subtree-one`).
fn filter_mailboxes<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, NotifyFilter> {
    let (rest, tok) = label(i);
    let mut buf = [0u8; 24];
    Ok(match upcase(tok, &mut buf) {
        b"SELECTED" => (rest, NotifyFilter::Selected),
        b"SELECTED-DELAYED" => (rest, NotifyFilter::SelectedDelayed),
        b"INBOXES" => (rest, NotifyFilter::Inboxes),
        b"PERSONAL" => (rest, NotifyFilter::Personal),
        b"SUBSCRIBED" => (rest, NotifyFilter::Subscribed),
        b"SUBTREE" => {
            let (rest, m) = one_or_more_mailbox(cx, rest)?;
            (rest, NotifyFilter::Subtree(m))
        }
        b"SUBTREE-ONE" => {
            let (rest, m) = one_or_more_mailbox(cx, rest)?;
            (rest, NotifyFilter::SubtreeOne(m))
        }
        b"MAILBOXES" => {
            let (rest, m) = one_or_more_mailbox(cx, rest)?;
            (rest, NotifyFilter::Mailboxes(m))
        }
        _ => return fail(i, "Unknown mailbox filter."),
    })
}

/// `esearch = "ESEARCH" [SP esearch-source-opts] [SP search-return-opts] SP search-program`
/// (RFC 7377 §4). No scope options are defined, so none is accepted.
fn esearch<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, sources) = match strip_kw(rest, b"IN (") {
        Some(mut rest) => {
            let mut sources = Vec::new();
            loop {
                let (r, f) = filter_mailboxes(cx, rest)?;
                sources.push(f);
                match r.strip_prefix(b" ") {
                    Some(r) if peek(r) == Some(b'(') => {
                        return fail(r, "No ESEARCH scope options are known.");
                    }
                    Some(r) => rest = r,
                    None => {
                        rest = r;
                        break;
                    }
                }
            }
            let (rest, _) = byte(rest, b')', "Expected ')' after the source mailboxes.")?;
            let (rest, _) = sp(rest)?;
            (rest, Some(sources))
        }
        None => (rest, None),
    };
    let (rest, returns) = returns_then_sp(rest)?;
    let (rest, program) = search::search_program(cx, rest, false)?;
    Ok((
        rest,
        Command::ESearch {
            sources,
            returns,
            program,
        },
    ))
}

/// `event-group = "(" filter-mailboxes SP events ")"`.
fn notify_group<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, NotifyGroup> {
    let (rest, _) = byte(i, b'(', "Expected '(' before an event group.")?;
    let (rest, filter) = filter_mailboxes(cx, rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, events) = match strip_kw(rest, b"NONE") {
        Some(r) => (r, Vec::new()),
        None => paren_list(rest, false, |i| {
            let (rest, name) = atom(i)?;
            let (rest, fetch) = match rest.strip_prefix(b" (") {
                Some(_) if name.eq_ignore_ascii_case(b"MessageNew") => {
                    paren_list(rest.get(1..).unwrap_or_default(), false, |i| {
                        fetch_att(cx, i)
                    })?
                }
                _ => (rest, Vec::new()),
            };
            Ok((
                rest,
                NotifyEvent {
                    name: cx.bytes(name),
                    fetch,
                },
            ))
        })?,
    };
    let (rest, _) = byte(rest, b')', "Expected ')' after an event group.")?;
    Ok((rest, NotifyGroup { filter, events }))
}

/// `SP one-or-more-mailbox`.
fn one_or_more_mailbox<'a>(cx: &Cx<'_>, i: &'a [u8]) -> Res<'a, Vec<MailboxArg>> {
    let (rest, _) = sp(i)?;
    if peek(rest) == Some(b'(') {
        paren_list(rest, false, |i| mailbox(cx, i))
    } else {
        let (rest, m) = mailbox(cx, rest)?;
        Ok((rest, vec![m]))
    }
}

/// `search = "SEARCH" [search-return-opts] SP search-program`.
fn search<'a>(cx: &Cx<'_>, i: &'a [u8], uid: bool) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, returns) = returns_then_sp(rest)?;
    let (rest, program) = search::search_program(cx, rest, false)?;
    Ok((
        rest,
        Command::Search {
            uid,
            returns,
            program,
        },
    ))
}

/// `sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria SP search-criteria`
/// (RFC 5256 §5, RFC 5267 §3.2).
fn sort<'a>(cx: &Cx<'_>, i: &'a [u8], uid: bool) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, returns) = returns_then_sp(rest)?;
    let (rest, criteria) = search::sort_criteria(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, program) = search::search_program(cx, rest, true)?;
    Ok((
        rest,
        Command::Sort {
            uid,
            returns,
            criteria,
            program,
        },
    ))
}

/// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria` (RFC 5256 §5).
fn thread<'a>(cx: &Cx<'_>, i: &'a [u8], uid: bool) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, alg) = atom(rest)?;
    let algorithm = if alg.eq_ignore_ascii_case(b"ORDEREDSUBJECT") {
        ThreadAlgorithm::OrderedSubject
    } else if alg.eq_ignore_ascii_case(b"REFERENCES") {
        ThreadAlgorithm::References
    } else {
        ThreadAlgorithm::Other(cx.bytes(alg))
    };
    let (rest, _) = sp(rest)?;
    let (rest, program) = search::search_program(cx, rest, true)?;
    Ok((
        rest,
        Command::Thread {
            uid,
            algorithm,
            program,
        },
    ))
}

/// `fetch = "FETCH" SP sequence-set SP (macro / att / list) [fetch-modifiers]`.
fn fetch<'a>(cx: &Cx<'_>, i: &'a [u8], uid: bool) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, set) = sequence_set(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, items) = fetch::fetch_items(cx, rest)?;
    let (rest, modifiers) = match rest.strip_prefix(b" ") {
        Some(r) => fetch::fetch_modifiers(r)?,
        None => (rest, FetchModifiers::default()),
    };
    Ok((
        rest,
        Command::Fetch {
            uid,
            set,
            items,
            modifiers,
        },
    ))
}

/// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags`
/// (RFC 9051 §9, RFC 7162 §3.1.3).
fn store<'a>(cx: &Cx<'_>, i: &'a [u8], uid: bool) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, set) = sequence_set(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, unchanged_since) = if peek(rest) == Some(b'(') {
        let (rest, n) = search::store_modifiers(rest)?;
        let (rest, _) = sp(rest)?;
        (rest, Some(n))
    } else {
        (rest, None)
    };
    let (rest, mode) = match rest.split_first() {
        Some((b'+', r)) => (r, StoreMode::Add),
        Some((b'-', r)) => (r, StoreMode::Remove),
        _ => (rest, StoreMode::Replace),
    };
    let (rest, tok) = label(rest);
    let mut buf = [0u8; 24];
    let silent = match upcase(tok, &mut buf) {
        b"FLAGS" => false,
        b"FLAGS.SILENT" => true,
        _ => return fail(rest, "Expected FLAGS, +FLAGS or -FLAGS."),
    };
    let (rest, _) = sp(rest)?;
    let (rest, flags) = if peek(rest) == Some(b'(') {
        flag_list(cx, rest)?
    } else {
        let mut flags = Vec::new();
        let mut rest = rest;
        loop {
            let (r, f) = flag(cx, rest)?;
            flags.push(f);
            match r.strip_prefix(b" ") {
                Some(r) => rest = r,
                None => break (r, flags),
            }
        }
    };
    Ok((
        rest,
        Command::Store {
            uid,
            set,
            unchanged_since,
            mode,
            silent,
            flags,
        },
    ))
}

fn copy_move<'a>(cx: &Cx<'_>, i: &'a [u8], uid: bool, is_move: bool) -> Res<'a, Command> {
    let (rest, _) = sp(i)?;
    let (rest, set) = sequence_set(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, mailbox) = mailbox(cx, rest)?;
    let c = if is_move {
        Command::Move { uid, set, mailbox }
    } else {
        Command::Copy { uid, set, mailbox }
    };
    Ok((rest, c))
}
