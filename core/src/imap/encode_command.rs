//! Writes commands as a client would: the inverse of [`crate::imap::decode::command`], for the
//! round-trip properties, the conformance suite and client-side tests.
//!
//! Every [`CommandLine`] the decoder can produce is written so that decoding it gives the same
//! value back. Strings take the lightest form their position allows (atom, quoted, literal);
//! literals are `{n}` or, with [`CommandEncodeOptions::non_sync_literals`], `{n+}` (RFC 7888).

use bytes::{BufMut, BytesMut};

use super::command::{Command, CommandLine, SearchProgram};
use super::encode::{
    put_date, put_date_time, put_fetch_attr, put_flag_list, put_partial_range, put_seq_no,
    put_sequence_set, put_u32, put_u64, status_item_name, Strings,
};
use super::types::{
    AppendMessage, EntryType, FetchItems, ListReturn, ListSelect, MailboxArg, MetadataDepth,
    NotifyFilter, SearchKey, SearchReturn, SelectParam, SortKey, StatusItem, ThreadAlgorithm,
};
use crate::mail::flags::StoreMode;

/// How the client writes strings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandEncodeOptions {
    /// Announce literals as `{n+}` (the server advertised LITERAL+); otherwise `{n}`, after
    /// which a client waits for the server's `+`.
    pub non_sync_literals: bool,
    /// UTF-8 may go in quoted strings (IMAP4rev2 or UTF8=ACCEPT enabled).
    pub utf8: bool,
}

impl CommandEncodeOptions {
    /// Synchronising literals, 7-bit quoted strings.
    pub fn new() -> Self {
        CommandEncodeOptions::default()
    }

    /// Sets [`CommandEncodeOptions::non_sync_literals`].
    pub fn non_sync_literals(mut self, on: bool) -> Self {
        self.non_sync_literals = on;
        self
    }

    /// Sets [`CommandEncodeOptions::utf8`].
    pub fn utf8(mut self, on: bool) -> Self {
        self.utf8 = on;
        self
    }
}

/// Appends one command, line end included. Returns the offsets in `out` just past each
/// synchronising literal announcement: a client sends up to each one, then waits for `+`.
pub fn encode_command(
    out: &mut BytesMut,
    line: &CommandLine,
    opts: &CommandEncodeOptions,
) -> Vec<usize> {
    let start = out.len();
    let w = Strings {
        utf8: opts.utf8,
        non_sync: opts.non_sync_literals,
    };
    out.put_slice(line.tag.as_bytes());
    out.put_u8(b' ');
    command(out, &line.command, &w);
    out.put_slice(b"\r\n");
    if opts.non_sync_literals {
        Vec::new()
    } else {
        sync_points(out.get(start..).unwrap_or_default(), start)
    }
}

/// Where synchronising literals were announced. Outside literals the only line ends are those
/// of announcements (quoted strings cannot hold CR or LF), so walking line by line and skipping
/// each literal by its length finds every one exactly.
fn sync_points(cmd: &[u8], base: usize) -> Vec<usize> {
    let mut points = Vec::new();
    let mut at = 0;
    while let Some(lf) = cmd
        .get(at..)
        .and_then(|r| r.iter().position(|&b| b == b'\n'))
    {
        let end = at + lf + 1;
        let line = cmd.get(at..end).unwrap_or_default();
        let Some(len) = announced(line) else { break };
        points.push(base + end);
        at = end + len;
    }
    points
}

/// `n` of a line ending in `{n}\r\n`.
fn announced(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}\r\n")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = body.get(open + 1..)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn sp(out: &mut BytesMut) {
    out.put_u8(b' ');
}

/// Items separated by single spaces.
fn spaced<T>(out: &mut BytesMut, items: &[T], mut each: impl FnMut(&mut BytesMut, &T)) {
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            sp(out);
        }
        each(out, item);
    }
}

/// `"(" items ")"`.
fn parens<T>(out: &mut BytesMut, items: &[T], each: impl FnMut(&mut BytesMut, &T)) {
    out.put_u8(b'(');
    spaced(out, items, each);
    out.put_u8(b')');
}

fn uid_prefix(out: &mut BytesMut, uid: bool) {
    if uid {
        out.put_slice(b"UID ");
    }
}

fn command(out: &mut BytesMut, c: &Command, w: &Strings) {
    match c {
        Command::Capability => out.put_slice(b"CAPABILITY"),
        Command::Noop => out.put_slice(b"NOOP"),
        Command::Logout => out.put_slice(b"LOGOUT"),
        Command::StartTls => out.put_slice(b"STARTTLS"),
        Command::Namespace => out.put_slice(b"NAMESPACE"),
        Command::Idle => out.put_slice(b"IDLE"),
        Command::Check => out.put_slice(b"CHECK"),
        Command::Close => out.put_slice(b"CLOSE"),
        Command::Unselect => out.put_slice(b"UNSELECT"),
        Command::Unauthenticate => out.put_slice(b"UNAUTHENTICATE"),
        Command::Expunge => out.put_slice(b"EXPUNGE"),
        Command::Id(params) => {
            out.put_slice(b"ID ");
            match params {
                None => out.put_slice(b"NIL"),
                Some(p) => parens(out, p, |out, (k, v)| {
                    w.string(out, k);
                    sp(out);
                    w.nstring(out, v.as_deref());
                }),
            }
        }
        Command::Authenticate {
            mechanism,
            initial_response,
        } => {
            out.put_slice(b"AUTHENTICATE ");
            out.put_slice(mechanism);
            if let Some(ir) = initial_response {
                sp(out);
                out.put_slice(ir.expose());
            }
        }
        Command::Login { username, password } => {
            out.put_slice(b"LOGIN ");
            w.astring(out, username);
            sp(out);
            w.astring(out, password.expose());
        }
        Command::Enable(caps) => {
            out.put_slice(b"ENABLE");
            for c in caps {
                sp(out);
                out.put_slice(c);
            }
        }
        Command::Select { mailbox, params } | Command::Examine { mailbox, params } => {
            out.put_slice(if matches!(c, Command::Select { .. }) {
                b"SELECT "
            } else {
                b"EXAMINE "
            });
            w.astring(out, &mailbox.0);
            if !params.is_empty() {
                sp(out);
                parens(out, params, select_param);
            }
        }
        Command::Create {
            mailbox,
            special_use,
        } => {
            out.put_slice(b"CREATE ");
            w.astring(out, &mailbox.0);
            if !special_use.is_empty() {
                out.put_slice(b" (USE ");
                parens(out, special_use, |out, a| out.put_slice(a));
                out.put_u8(b')');
            }
        }
        Command::Delete { mailbox } => {
            out.put_slice(b"DELETE ");
            w.astring(out, &mailbox.0);
        }
        Command::Rename { from, to } => {
            out.put_slice(b"RENAME ");
            w.astring(out, &from.0);
            sp(out);
            w.astring(out, &to.0);
        }
        Command::Subscribe { mailbox } => {
            out.put_slice(b"SUBSCRIBE ");
            w.astring(out, &mailbox.0);
        }
        Command::Unsubscribe { mailbox } => {
            out.put_slice(b"UNSUBSCRIBE ");
            w.astring(out, &mailbox.0);
        }
        Command::List {
            select,
            reference,
            patterns,
            returns,
        } => {
            out.put_slice(b"LIST ");
            if !select.is_empty() {
                parens(out, select, |out, s| {
                    out.put_slice(match s {
                        ListSelect::Subscribed => b"SUBSCRIBED",
                        ListSelect::Remote => b"REMOTE",
                        ListSelect::RecursiveMatch => b"RECURSIVEMATCH",
                        ListSelect::SpecialUse => b"SPECIAL-USE",
                    })
                });
                sp(out);
            }
            w.astring(out, &reference.0);
            sp(out);
            match patterns.as_slice() {
                [one] => w.list_mailbox(out, &one.0),
                many => parens(out, many, |out, p| w.list_mailbox(out, &p.0)),
            }
            if !returns.is_empty() {
                out.put_slice(b" RETURN ");
                parens(out, returns, |out, r| match r {
                    ListReturn::Subscribed => out.put_slice(b"SUBSCRIBED"),
                    ListReturn::Children => out.put_slice(b"CHILDREN"),
                    ListReturn::SpecialUse => out.put_slice(b"SPECIAL-USE"),
                    ListReturn::Status(items) => {
                        out.put_slice(b"STATUS ");
                        status_items(out, items);
                    }
                });
            }
        }
        Command::Lsub { reference, pattern } => {
            out.put_slice(b"LSUB ");
            w.astring(out, &reference.0);
            sp(out);
            w.list_mailbox(out, &pattern.0);
        }
        Command::Status { mailbox, items } => {
            out.put_slice(b"STATUS ");
            w.astring(out, &mailbox.0);
            sp(out);
            status_items(out, items);
        }
        Command::Append { mailbox, messages } => {
            out.put_slice(b"APPEND ");
            w.astring(out, &mailbox.0);
            for m in messages {
                sp(out);
                append_message(out, m, w);
            }
        }
        Command::Replace {
            uid,
            target,
            mailbox,
            message,
        } => {
            uid_prefix(out, *uid);
            out.put_slice(b"REPLACE ");
            put_seq_no(out, *target);
            sp(out);
            w.astring(out, &mailbox.0);
            sp(out);
            append_message(out, message, w);
        }
        Command::GetQuota { root } => {
            out.put_slice(b"GETQUOTA ");
            w.astring(out, root);
        }
        Command::GetQuotaRoot { mailbox } => {
            out.put_slice(b"GETQUOTAROOT ");
            w.astring(out, &mailbox.0);
        }
        Command::SetQuota { root, limits } => {
            out.put_slice(b"SETQUOTA ");
            w.astring(out, root);
            sp(out);
            parens(out, limits, |out, (name, n)| {
                out.put_slice(name);
                sp(out);
                put_u64(out, *n);
            });
        }
        Command::GetMetadata {
            options,
            mailbox,
            entries,
        } => {
            out.put_slice(b"GETMETADATA ");
            let mut opts: Vec<(&[u8], Vec<u8>)> = Vec::new();
            if let Some(n) = options.max_size {
                opts.push((b"MAXSIZE", n.to_string().into_bytes()));
            }
            if let Some(d) = options.depth {
                let v: &[u8] = match d {
                    MetadataDepth::Zero => b"0",
                    MetadataDepth::One => b"1",
                    MetadataDepth::Infinity => b"infinity",
                };
                opts.push((b"DEPTH", v.to_vec()));
            }
            if !opts.is_empty() {
                parens(out, &opts, |out, (k, v)| {
                    out.put_slice(k);
                    sp(out);
                    out.put_slice(v);
                });
                sp(out);
            }
            w.astring(out, &mailbox.0);
            sp(out);
            match entries.as_slice() {
                [one] => w.astring(out, one),
                many => parens(out, many, |out, e| w.astring(out, e)),
            }
        }
        Command::SetMetadata { mailbox, entries } => {
            out.put_slice(b"SETMETADATA ");
            w.astring(out, &mailbox.0);
            sp(out);
            parens(out, entries, |out, (e, v)| {
                w.astring(out, e);
                sp(out);
                w.nstring8(out, v.as_deref());
            });
        }
        Command::Notify { set } => {
            out.put_slice(b"NOTIFY ");
            let Some(set) = set else {
                out.put_slice(b"NONE");
                return;
            };
            out.put_slice(b"SET");
            if set.status {
                out.put_slice(b" STATUS");
            }
            for g in &set.groups {
                out.put_slice(b" (");
                put_filter(out, &g.filter, w);
                sp(out);
                if g.events.is_empty() {
                    out.put_slice(b"NONE");
                } else {
                    parens(out, &g.events, |out, e| {
                        out.put_slice(&e.name);
                        if !e.fetch.is_empty() {
                            sp(out);
                            parens(out, &e.fetch, |out, a| put_fetch_attr(out, a, w));
                        }
                    });
                }
                out.put_u8(b')');
            }
        }
        Command::ESearch {
            sources,
            returns,
            program,
        } => {
            out.put_slice(b"ESEARCH");
            if let Some(sources) = sources {
                out.put_slice(b" IN (");
                for (n, f) in sources.iter().enumerate() {
                    if n > 0 {
                        sp(out);
                    }
                    put_filter(out, f, w);
                }
                out.put_u8(b')');
            }
            search_returns(out, returns.as_deref());
            sp(out);
            search_program(out, program, false, w);
        }
        Command::Compress { mechanism } => {
            out.put_slice(b"COMPRESS ");
            out.put_slice(mechanism);
        }
        Command::UidExpunge(set) => {
            out.put_slice(b"UID EXPUNGE ");
            put_sequence_set(out, set);
        }
        Command::Search {
            uid,
            returns,
            program,
        } => {
            uid_prefix(out, *uid);
            out.put_slice(b"SEARCH");
            search_returns(out, returns.as_deref());
            sp(out);
            search_program(out, program, false, w);
        }
        Command::Sort {
            uid,
            returns,
            criteria,
            program,
        } => {
            uid_prefix(out, *uid);
            out.put_slice(b"SORT");
            search_returns(out, returns.as_deref());
            sp(out);
            parens(out, criteria, |out, c| {
                if c.reverse {
                    out.put_slice(b"REVERSE ");
                }
                out.put_slice(match c.key {
                    SortKey::Arrival => b"ARRIVAL",
                    SortKey::Cc => b"CC",
                    SortKey::Date => b"DATE",
                    SortKey::From => b"FROM",
                    SortKey::Size => b"SIZE",
                    SortKey::Subject => b"SUBJECT",
                    SortKey::To => b"TO",
                    SortKey::DisplayFrom => b"DISPLAYFROM",
                    SortKey::DisplayTo => b"DISPLAYTO",
                });
            });
            sp(out);
            search_program(out, program, true, w);
        }
        Command::Thread {
            uid,
            algorithm,
            program,
        } => {
            uid_prefix(out, *uid);
            out.put_slice(b"THREAD ");
            match algorithm {
                ThreadAlgorithm::OrderedSubject => out.put_slice(b"ORDEREDSUBJECT"),
                ThreadAlgorithm::References => out.put_slice(b"REFERENCES"),
                ThreadAlgorithm::Other(a) => out.put_slice(a),
            }
            sp(out);
            search_program(out, program, true, w);
        }
        Command::Fetch {
            uid,
            set,
            items,
            modifiers,
        } => {
            uid_prefix(out, *uid);
            out.put_slice(b"FETCH ");
            put_sequence_set(out, set);
            sp(out);
            match items {
                FetchItems::All => out.put_slice(b"ALL"),
                FetchItems::Fast => out.put_slice(b"FAST"),
                FetchItems::Full => out.put_slice(b"FULL"),
                FetchItems::Attrs(attrs) => match attrs.as_slice() {
                    // A lone PREVIEW before modifiers reads the same either way; parenthesise
                    // anyway so `(LAZY)` can never be mistaken for them.
                    [one] if !matches!(one, super::types::FetchAttr::Preview { .. }) => {
                        put_fetch_attr(out, one, w)
                    }
                    many => parens(out, many, |out, a| put_fetch_attr(out, a, w)),
                },
            }
            let mut mods: Vec<Vec<u8>> = Vec::new();
            if let Some(n) = modifiers.changed_since {
                mods.push(format!("CHANGEDSINCE {n}").into_bytes());
            }
            if modifiers.vanished {
                mods.push(b"VANISHED".to_vec());
            }
            if let Some(range) = modifiers.partial {
                let mut m = BytesMut::from(&b"PARTIAL "[..]);
                put_partial_range(&mut m, range);
                mods.push(m.to_vec());
            }
            if !mods.is_empty() {
                sp(out);
                parens(out, &mods, |out, m| out.put_slice(m));
            }
        }
        Command::Store {
            uid,
            set,
            unchanged_since,
            mode,
            silent,
            flags,
        } => {
            uid_prefix(out, *uid);
            out.put_slice(b"STORE ");
            put_sequence_set(out, set);
            sp(out);
            if let Some(n) = unchanged_since {
                out.put_slice(b"(UNCHANGEDSINCE ");
                put_u64(out, *n);
                out.put_slice(b") ");
            }
            match mode {
                StoreMode::Replace => {}
                StoreMode::Add => out.put_u8(b'+'),
                StoreMode::Remove => out.put_u8(b'-'),
            }
            out.put_slice(if *silent { b"FLAGS.SILENT " } else { b"FLAGS " });
            put_flag_list(out, flags);
        }
        Command::Copy { uid, set, mailbox } | Command::Move { uid, set, mailbox } => {
            uid_prefix(out, *uid);
            out.put_slice(if matches!(c, Command::Copy { .. }) {
                b"COPY "
            } else {
                b"MOVE "
            });
            put_sequence_set(out, set);
            sp(out);
            w.astring(out, &mailbox.0);
        }
        Command::Unknown { name } => out.put_slice(name),
    }
}

/// `append-message` without its leading space: `[flag-list SP] [date-time SP] literal`.
fn append_message(out: &mut BytesMut, m: &AppendMessage, w: &Strings) {
    if !m.flags.is_empty() {
        put_flag_list(out, &m.flags);
        sp(out);
    }
    if let Some(d) = &m.date {
        put_date_time(out, d);
        sp(out);
    }
    if m.binary {
        out.put_u8(b'~');
    }
    w.literal(out, &m.data);
}

fn select_param(out: &mut BytesMut, p: &SelectParam) {
    match p {
        SelectParam::CondStore => out.put_slice(b"CONDSTORE"),
        SelectParam::QResync {
            uid_validity,
            mod_seq,
            known_uids,
            seq_match,
        } => {
            out.put_slice(b"QRESYNC (");
            put_u32(out, *uid_validity);
            sp(out);
            put_u64(out, *mod_seq);
            if let Some(k) = known_uids {
                sp(out);
                put_sequence_set(out, k);
            }
            if let Some((seqs, uids)) = seq_match {
                out.put_slice(b" (");
                put_sequence_set(out, seqs);
                sp(out);
                put_sequence_set(out, uids);
                out.put_u8(b')');
            }
            out.put_u8(b')');
        }
    }
}

fn status_items(out: &mut BytesMut, items: &[StatusItem]) {
    parens(out, items, |out, i| out.put_slice(status_item_name(*i)));
}

/// `filter-mailboxes` (RFC 5465 §8, RFC 7377 §4).
fn put_filter(out: &mut BytesMut, filter: &NotifyFilter, w: &Strings) {
    let (name, boxes): (&[u8], Option<&Vec<MailboxArg>>) = match filter {
        NotifyFilter::Selected => (b"SELECTED", None),
        NotifyFilter::SelectedDelayed => (b"SELECTED-DELAYED", None),
        NotifyFilter::Inboxes => (b"INBOXES", None),
        NotifyFilter::Personal => (b"PERSONAL", None),
        NotifyFilter::Subscribed => (b"SUBSCRIBED", None),
        NotifyFilter::Subtree(m) => (b"SUBTREE", Some(m)),
        NotifyFilter::SubtreeOne(m) => (b"SUBTREE-ONE", Some(m)),
        NotifyFilter::Mailboxes(m) => (b"MAILBOXES", Some(m)),
    };
    out.put_slice(name);
    if let Some(boxes) = boxes {
        sp(out);
        match boxes.as_slice() {
            [one] => w.astring(out, &one.0),
            many => parens(out, many, |out, m| w.astring(out, &m.0)),
        }
    }
}

fn search_returns(out: &mut BytesMut, returns: Option<&[SearchReturn]>) {
    if let Some(r) = returns {
        out.put_slice(b" RETURN ");
        parens(out, r, |out, r| match r {
            SearchReturn::Min => out.put_slice(b"MIN"),
            SearchReturn::Max => out.put_slice(b"MAX"),
            SearchReturn::All => out.put_slice(b"ALL"),
            SearchReturn::Count => out.put_slice(b"COUNT"),
            SearchReturn::Save => out.put_slice(b"SAVE"),
            SearchReturn::Partial(range) => {
                out.put_slice(b"PARTIAL ");
                put_partial_range(out, *range);
            }
        });
    }
}

/// `["CHARSET" SP charset SP] keys`, or SORT/THREAD's `charset SP keys`.
fn search_program(out: &mut BytesMut, p: &SearchProgram, bare_charset: bool, w: &Strings) {
    if let Some(cs) = &p.charset {
        if !bare_charset {
            out.put_slice(b"CHARSET ");
        }
        w.charset(out, cs);
        sp(out);
    } else if bare_charset {
        // SORT and THREAD require a charset; US-ASCII is what every server supports.
        out.put_slice(b"US-ASCII ");
    }
    spaced(out, &p.criteria, |out, k| search_key(out, k, w));
}

fn search_key(out: &mut BytesMut, k: &SearchKey, w: &Strings) {
    let (word, arg): (&[u8], Option<&[u8]>) = match k {
        SearchKey::All => (b"ALL", None),
        SearchKey::Answered => (b"ANSWERED", None),
        SearchKey::Deleted => (b"DELETED", None),
        SearchKey::Draft => (b"DRAFT", None),
        SearchKey::Flagged => (b"FLAGGED", None),
        SearchKey::New => (b"NEW", None),
        SearchKey::Old => (b"OLD", None),
        SearchKey::Recent => (b"RECENT", None),
        SearchKey::Seen => (b"SEEN", None),
        SearchKey::Unanswered => (b"UNANSWERED", None),
        SearchKey::Undeleted => (b"UNDELETED", None),
        SearchKey::Undraft => (b"UNDRAFT", None),
        SearchKey::Unflagged => (b"UNFLAGGED", None),
        SearchKey::Unseen => (b"UNSEEN", None),
        SearchKey::SaveDateSupported => (b"SAVEDATESUPPORTED", None),
        SearchKey::Bcc(s) => (b"BCC", Some(s)),
        SearchKey::Body(s) => (b"BODY", Some(s)),
        SearchKey::Cc(s) => (b"CC", Some(s)),
        SearchKey::From(s) => (b"FROM", Some(s)),
        SearchKey::Subject(s) => (b"SUBJECT", Some(s)),
        SearchKey::Text(s) => (b"TEXT", Some(s)),
        SearchKey::To(s) => (b"TO", Some(s)),
        SearchKey::Keyword(a) | SearchKey::Unkeyword(a) => {
            out.put_slice(if matches!(k, SearchKey::Keyword(_)) {
                b"KEYWORD "
            } else {
                b"UNKEYWORD "
            });
            out.put_slice(a);
            return;
        }
        SearchKey::EmailId(a) | SearchKey::ThreadId(a) => {
            out.put_slice(if matches!(k, SearchKey::EmailId(_)) {
                b"EMAILID "
            } else {
                b"THREADID "
            });
            out.put_slice(a);
            return;
        }
        SearchKey::Before(d)
        | SearchKey::On(d)
        | SearchKey::Since(d)
        | SearchKey::SentBefore(d)
        | SearchKey::SentOn(d)
        | SearchKey::SentSince(d)
        | SearchKey::SavedBefore(d)
        | SearchKey::SavedOn(d)
        | SearchKey::SavedSince(d) => {
            out.put_slice(match k {
                SearchKey::Before(_) => b"BEFORE ",
                SearchKey::On(_) => b"ON ",
                SearchKey::Since(_) => b"SINCE ",
                SearchKey::SentBefore(_) => b"SENTBEFORE ",
                SearchKey::SentOn(_) => b"SENTON ",
                SearchKey::SentSince(_) => b"SENTSINCE ",
                SearchKey::SavedBefore(_) => b"SAVEDBEFORE ",
                SearchKey::SavedOn(_) => b"SAVEDON ",
                _ => b"SAVEDSINCE ",
            });
            put_date(out, d);
            return;
        }
        SearchKey::Header(name, value) => {
            out.put_slice(b"HEADER ");
            w.astring(out, name);
            sp(out);
            w.astring(out, value);
            return;
        }
        SearchKey::Larger(n) | SearchKey::Smaller(n) => {
            out.put_slice(if matches!(k, SearchKey::Larger(_)) {
                b"LARGER "
            } else {
                b"SMALLER "
            });
            put_u64(out, *n);
            return;
        }
        SearchKey::Older(n) | SearchKey::Younger(n) => {
            out.put_slice(if matches!(k, SearchKey::Older(_)) {
                b"OLDER "
            } else {
                b"YOUNGER "
            });
            put_u32(out, *n);
            return;
        }
        SearchKey::Not(inner) => {
            out.put_slice(b"NOT ");
            search_key(out, inner, w);
            return;
        }
        SearchKey::Or(a, b) => {
            out.put_slice(b"OR ");
            search_key(out, a, w);
            sp(out);
            search_key(out, b, w);
            return;
        }
        SearchKey::Uid(set) => {
            out.put_slice(b"UID ");
            put_sequence_set(out, set);
            return;
        }
        SearchKey::SequenceSet(set) => {
            put_sequence_set(out, set);
            return;
        }
        SearchKey::And(keys) => {
            parens(out, keys, |out, k| search_key(out, k, w));
            return;
        }
        SearchKey::ModSeq { entry, modseq } => {
            out.put_slice(b"MODSEQ ");
            if let Some((name, kind)) = entry {
                w.string(out, name);
                out.put_slice(match kind {
                    EntryType::Private => b" priv ",
                    EntryType::Shared => b" shared ",
                    EntryType::All => b" all ",
                });
            }
            put_u64(out, *modseq);
            return;
        }
    };
    out.put_slice(word);
    if let Some(arg) = arg {
        sp(out);
        w.astring(out, arg);
    }
}
