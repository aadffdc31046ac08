//! Writes IMAP responses (RFC 9051 §7) into the session's output buffer.
//!
//! [`response`] encodes any [`Response`]. Strings take the lightest form the grammar allows at
//! their position: an atom where `astring` is allowed and every octet is an `ASTRING-CHAR`,
//! else a quoted string, else a literal. CR, LF and NUL always force a literal (NUL a `literal8`
//! where the grammar has one: BINARY data and METADATA values); 8-bit octets force a literal
//! unless UTF-8 is enabled ([`EncodeOptions::utf8`]) and they form valid UTF-8. Server literals
//! are always the synchronising form (RFC 7888 §4).
//!
//! Beyond the grammar, a few choices keep clients out of trouble: `NIL` is never written as an
//! atom (a client reading an nstring would take it for nil), strings over 4096 octets and all
//! message data (BODY[], BINARY[], RFC822.*) go as literals (no escaping scan on either side),
//! and text is never empty.

mod fetch;

use bytes::{BufMut, BytesMut};

use super::response::{
    self, Condition, Data, ESearchResult, ListItem, MetadataCode, Response, StatusResponse,
    StatusValue, ThreadNode,
};
use super::types::{PartialRange, SeqNo, SequenceSet, StatusItem};
use crate::imap::decode::prim::{ASTRING, ATOM, LIST_CHAR};
use crate::mail::date::{Date, DateTime};
use crate::mail::flags::Flag;

pub(crate) use self::fetch::put_fetch_attr;

/// What the peer has enabled that changes how strings may be written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncodeOptions {
    /// UTF-8 is allowed in quoted strings and text (RFC 9051 IMAP4rev2, or RFC 6855
    /// `ENABLE UTF8=ACCEPT`). Otherwise 8-bit strings are sent as literals and 8-bit text is
    /// replaced by `?`.
    pub utf8: bool,
}

impl EncodeOptions {
    /// IMAP4rev1 without UTF8=ACCEPT: 7-bit quoted strings and text.
    pub fn ascii() -> Self {
        EncodeOptions { utf8: false }
    }

    /// IMAP4rev2 or UTF8=ACCEPT enabled.
    pub fn utf8() -> Self {
        EncodeOptions { utf8: true }
    }
}

/// Appends one response, line end (and any literals) included.
pub fn response(out: &mut BytesMut, r: &Response, opts: &EncodeOptions) {
    let w = Strings::response(opts);
    match r {
        Response::Status(s) => status_response(out, s, &w),
        Response::Data(d) => data(out, d, &w),
        Response::Continue(text) => {
            out.put_slice(b"+ ");
            put_text_bytes(out, text, opts.utf8);
            out.put_slice(b"\r\n");
        }
    }
}

/// A FETCH item, with the stream its octets come from when they are sent apart. Boxed: a
/// stream is rare and large, and every item of a `FETCH 1:* (FLAGS)` would carry its room.
pub(crate) type StreamedItem = (
    crate::imap::response::FetchItem,
    Option<Box<crate::store::BodyStream>>,
);

/// Opens `* n FETCH (`: the items follow with [`fetch_item`], then [`fetch_close`]. A response
/// is written an item at a time so that a FETCH can stop between items while the driver sends
/// what was written (see the session's `fetch.rs`).
pub(crate) fn fetch_open(out: &mut crate::outbox::Outbox, seq: u32) -> usize {
    open_fetch(out, seq, b" FETCH (")
}

/// The start of a `* u UIDFETCH (` response (RFC 9586 §3.3), as [`fetch_open`].
pub(crate) fn uid_fetch_open(out: &mut crate::outbox::Outbox, uid: u32) -> usize {
    open_fetch(out, uid, b" UIDFETCH (")
}

fn open_fetch(out: &mut crate::outbox::Outbox, n: u32, name: &[u8]) -> usize {
    let buf = out.bytes();
    let before = buf.len();
    buf.put_slice(b"* ");
    put_u32(buf, n);
    buf.put_slice(name);
    buf.len() - before
}

/// One item of an open FETCH response, after a space unless it is the first. An item paired
/// with a stream carries its octets apart: it is written up to its literal's `{n}` prefix,
/// then the stream is queued, and the response goes on after it. The octets on the wire are
/// those [`response`] writes for the same items with the data in place (a `BINARY` item
/// always goes as `literal8`, since its octets are not at hand to look for NUL). Returns the
/// octets written to the outbox (a stream's own are not).
pub(crate) fn fetch_item(
    out: &mut crate::outbox::Outbox,
    first: bool,
    (item, stream): StreamedItem,
    opts: &EncodeOptions,
) -> usize {
    let w = Strings::response(opts);
    let buf = out.bytes();
    let before = buf.len();
    if !first {
        buf.put_u8(b' ');
    }
    match stream {
        None => {
            fetch::put_fetch_item(buf, &item, &w);
            buf.len() - before
        }
        Some(stream) => {
            fetch::put_streamed_item(buf, &item, stream.remaining(), &w);
            let written = buf.len() - before;
            out.push(crate::session::Output::TransmitBody(*stream));
            written
        }
    }
}

/// Closes a FETCH response [`fetch_open`] began.
pub(crate) fn fetch_close(out: &mut crate::outbox::Outbox) -> usize {
    out.bytes().put_slice(b")\r\n");
    3
}

// ---------------------------------------------------------------- strings

/// How strings are written on this side of the connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Strings {
    /// UTF-8 may go in quoted strings.
    pub(crate) utf8: bool,
    /// Literals are announced `{n+}` (client side with LITERAL+); servers never do.
    pub(crate) non_sync: bool,
}

/// Quoted strings longer than this go as literals: long values are rare, and a literal needs no
/// escaping scan by either side.
const MAX_QUOTED: usize = 4096;

impl Strings {
    pub(crate) fn response(opts: &EncodeOptions) -> Self {
        Strings {
            utf8: opts.utf8,
            non_sync: false,
        }
    }

    /// Whether `s` may be sent as a quoted string.
    pub(crate) fn quotable(&self, s: &[u8]) -> bool {
        if s.len() > MAX_QUOTED || s.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
            return false;
        }
        s.is_ascii() || (self.utf8 && std::str::from_utf8(s).is_ok())
    }

    /// `string`: quoted when possible, else a literal.
    pub(crate) fn string(&self, out: &mut BytesMut, s: &[u8]) {
        if self.quotable(s) {
            put_quoted(out, s);
        } else {
            self.literal(out, s);
        }
    }

    /// `astring`: an atom when possible, but never `NIL`, which a lenient client could read as
    /// nil.
    pub(crate) fn astring(&self, out: &mut BytesMut, s: &[u8]) {
        if is_class(s, &ASTRING) && !s.eq_ignore_ascii_case(b"NIL") {
            out.put_slice(s);
        } else {
            self.string(out, s);
        }
    }

    /// `list-mailbox`: list-chars (wildcards included) bare, anything else as a string.
    pub(crate) fn list_mailbox(&self, out: &mut BytesMut, s: &[u8]) {
        if is_class(s, &LIST_CHAR) {
            out.put_slice(s);
        } else {
            self.string(out, s);
        }
    }

    /// `nstring`.
    pub(crate) fn nstring(&self, out: &mut BytesMut, s: Option<&[u8]>) {
        match s {
            Some(s) => self.string(out, s),
            None => out.put_slice(b"NIL"),
        }
    }

    /// Message data (`BODY[]`, `RFC822.*`): NIL or always a literal.
    pub(crate) fn message_data(&self, out: &mut BytesMut, s: Option<&[u8]>) {
        match s {
            Some(s) => self.literal(out, s),
            None => out.put_slice(b"NIL"),
        }
    }

    /// `nstring / literal8`: NUL forces literal8 (RFC 3516 §4.2 BINARY, RFC 5464 values).
    pub(crate) fn nstring8(&self, out: &mut BytesMut, s: Option<&[u8]>) {
        match s {
            Some(s) if s.contains(&0) => {
                out.put_u8(b'~');
                self.literal(out, s);
            }
            other => self.nstring(out, other),
        }
    }

    /// `charset = atom / quoted`.
    pub(crate) fn charset(&self, out: &mut BytesMut, s: &[u8]) {
        if is_class(s, &ATOM) {
            out.put_slice(s);
        } else {
            self.string(out, s);
        }
    }

    /// `"{" n ["+"] "}" CRLF octets`.
    pub(crate) fn literal(&self, out: &mut BytesMut, s: &[u8]) {
        out.put_u8(b'{');
        put_u64(out, s.len() as u64);
        if self.non_sync {
            out.put_u8(b'+');
        }
        out.put_slice(b"}\r\n");
        out.put_slice(s);
    }
}

/// Non-empty and every octet in `class`.
pub(crate) fn is_class(s: &[u8], class: &[bool; 256]) -> bool {
    !s.is_empty() && s.iter().all(|&b| class[usize::from(b)])
}

/// `DQUOTE *QUOTED-CHAR DQUOTE` with `"` and `\` escaped; the caller has checked quotability.
pub(crate) fn put_quoted(out: &mut BytesMut, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.put_u8(b'"');
    let mut rest = s;
    while let Some(n) = rest.iter().position(|&b| b == b'"' || b == b'\\') {
        let (plain, tail) = rest.split_at(n);
        out.put_slice(plain);
        out.put_u8(b'\\');
        if let Some((&c, tail)) = tail.split_first() {
            out.put_u8(c);
            rest = tail;
        } else {
            rest = tail;
        }
    }
    out.put_slice(rest);
    out.put_u8(b'"');
}

/// A decimal number.
pub(crate) fn put_u64(out: &mut BytesMut, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        if let Some(slot) = buf.get_mut(at) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(buf.get(at..).unwrap_or_default());
}

pub(crate) fn put_u32(out: &mut BytesMut, n: u32) {
    put_u64(out, u64::from(n));
}

/// A line's worth of human-readable bytes: never a line break, and 7-bit unless UTF-8 is on
/// (each non-ASCII character then becomes one `?`).
fn put_text_bytes(out: &mut BytesMut, text: &[u8], utf8: bool) {
    let clean = |b: u8| match b {
        b'\r' | b'\n' | 0 => b' ',
        b => b,
    };
    match std::str::from_utf8(text) {
        Ok(_) if utf8 => out.extend(text.iter().map(|&b| clean(b))),
        Ok(s) => out.extend(
            s.chars()
                .map(|c| if c.is_ascii() { clean(c as u8) } else { b'?' }),
        ),
        Err(_) => out.extend(
            text.iter()
                .map(|&b| if b >= 0x80 { b'?' } else { clean(b) }),
        ),
    }
}

// ---------------------------------------------------------------- shared values

/// `sequence-set`, or `$`.
pub(crate) fn put_sequence_set(out: &mut BytesMut, set: &SequenceSet) {
    match set {
        SequenceSet::Saved => out.put_u8(b'$'),
        SequenceSet::Ranges(ranges) => {
            for (n, r) in ranges.iter().enumerate() {
                if n > 0 {
                    out.put_u8(b',');
                }
                put_seq_no(out, r.from);
                if r.to != r.from {
                    out.put_u8(b':');
                    put_seq_no(out, r.to);
                }
            }
        }
    }
}

pub(crate) fn put_seq_no(out: &mut BytesMut, n: SeqNo) {
    match n {
        SeqNo::Value(v) => put_u32(out, v.get()),
        SeqNo::Star => out.put_u8(b'*'),
    }
}

/// `partial-range` (RFC 9394 §4) as the client wrote it.
pub(crate) fn put_partial_range(out: &mut BytesMut, range: PartialRange) {
    let (minus, a, b) = match range {
        PartialRange::First(a, b) => ("", a, b),
        PartialRange::Last(a, b) => ("-", a, b),
    };
    out.put_slice(minus.as_bytes());
    put_u32(out, a.get());
    out.put_u8(b':');
    out.put_slice(minus.as_bytes());
    put_u32(out, b.get());
}

/// One flag as the grammar spells it.
pub(crate) fn put_flag(out: &mut BytesMut, f: &Flag) {
    match f {
        Flag::Answered => out.put_slice(b"\\Answered"),
        Flag::Flagged => out.put_slice(b"\\Flagged"),
        Flag::Deleted => out.put_slice(b"\\Deleted"),
        Flag::Seen => out.put_slice(b"\\Seen"),
        Flag::Draft => out.put_slice(b"\\Draft"),
        Flag::Recent => out.put_slice(b"\\Recent"),
        Flag::Keyword(k) => out.put_slice(k),
        Flag::Extension(e) => {
            out.put_u8(b'\\');
            out.put_slice(e);
        }
    }
}

/// `"(" [flag *(SP flag)] ")"`.
pub(crate) fn put_flag_list(out: &mut BytesMut, flags: &[Flag]) {
    out.put_u8(b'(');
    for (n, f) in flags.iter().enumerate() {
        if n > 0 {
            out.put_u8(b' ');
        }
        put_flag(out, f);
    }
    out.put_u8(b')');
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn put_month(out: &mut BytesMut, month: u8) {
    let name = MONTHS
        .get(usize::from(month.wrapping_sub(1)))
        .copied()
        .unwrap_or(b"Jan");
    out.put_slice(name);
}

fn put_2digits(out: &mut BytesMut, n: u16) {
    out.put_u8(b'0' + (n / 10 % 10) as u8);
    out.put_u8(b'0' + (n % 10) as u8);
}

/// `date-text` (SEARCH): `d-Mon-yyyy`.
pub(crate) fn put_date(out: &mut BytesMut, d: &Date) {
    put_u32(out, u32::from(d.day));
    out.put_u8(b'-');
    put_month(out, d.month);
    out.put_u8(b'-');
    put_2digits(out, d.year / 100);
    put_2digits(out, d.year % 100);
}

/// `date-time`: `"dd-Mon-yyyy hh:mm:ss +zzzz"`, the day space-padded as `date-day-fixed`
/// shows it (` 7-Feb-1994`).
pub(crate) fn put_date_time(out: &mut BytesMut, t: &DateTime) {
    out.put_u8(b'"');
    if t.date.day < 10 {
        out.put_u8(b' ');
        out.put_u8(b'0' + t.date.day);
    } else {
        put_2digits(out, u16::from(t.date.day));
    }
    out.put_u8(b'-');
    put_month(out, t.date.month);
    out.put_u8(b'-');
    put_2digits(out, t.date.year / 100);
    put_2digits(out, t.date.year % 100);
    out.put_u8(b' ');
    put_2digits(out, u16::from(t.hour));
    out.put_u8(b':');
    put_2digits(out, u16::from(t.minute));
    out.put_u8(b':');
    put_2digits(out, u16::from(t.second));
    out.put_u8(b' ');
    out.put_u8(if t.zone_minutes < 0 { b'-' } else { b'+' });
    let z = t.zone_minutes.unsigned_abs();
    put_2digits(out, z / 60);
    put_2digits(out, z % 60);
    out.put_u8(b'"');
}

pub(crate) fn status_item_name(i: StatusItem) -> &'static [u8] {
    match i {
        StatusItem::Messages => b"MESSAGES",
        StatusItem::Recent => b"RECENT",
        StatusItem::UidNext => b"UIDNEXT",
        StatusItem::UidValidity => b"UIDVALIDITY",
        StatusItem::Unseen => b"UNSEEN",
        StatusItem::Deleted => b"DELETED",
        StatusItem::DeletedStorage => b"DELETED-STORAGE",
        StatusItem::Size => b"SIZE",
        StatusItem::HighestModSeq => b"HIGHESTMODSEQ",
        StatusItem::AppendLimit => b"APPENDLIMIT",
        StatusItem::MailboxId => b"MAILBOXID",
    }
}

/// Words separated by single spaces.
fn put_words(out: &mut BytesMut, words: &[bytes::Bytes]) {
    for w in words {
        out.put_u8(b' ');
        out.put_slice(w);
    }
}

// ---------------------------------------------------------------- status responses

fn condition_name(c: Condition) -> &'static [u8] {
    match c {
        Condition::Ok => b"OK",
        Condition::No => b"NO",
        Condition::Bad => b"BAD",
        Condition::PreAuth => b"PREAUTH",
        Condition::Bye => b"BYE",
    }
}

/// `[tag | *] SP cond [SP "[" code "]"] SP text CRLF`. Text is never empty on the wire (RFC 3501
/// requires it and some clients depend on it; `Done.` stands in), and text that would read as a
/// response code (a leading `[` without one) gets a leading space.
fn status_response(out: &mut BytesMut, s: &StatusResponse, w: &Strings) {
    match &s.tag {
        Some(t) => out.put_slice(t.as_bytes()),
        None => out.put_u8(b'*'),
    }
    out.put_u8(b' ');
    out.put_slice(condition_name(s.condition));
    out.put_u8(b' ');
    if let Some(code) = &s.code {
        out.put_u8(b'[');
        put_code(out, code, w);
        out.put_slice(b"] ");
    } else if s.text.starts_with('[') {
        out.put_u8(b' ');
    }
    if s.text.is_empty() {
        out.put_slice(b"Done.");
    } else {
        put_text_bytes(out, s.text.as_bytes(), w.utf8);
    }
    out.put_slice(b"\r\n");
}

/// A response code as sent (without the brackets), for logs.
pub(crate) fn code_text(code: &response::Code) -> String {
    let mut out = BytesMut::new();
    put_code(
        &mut out,
        code,
        &Strings {
            utf8: true,
            non_sync: false,
        },
    );
    String::from_utf8_lossy(&out).into_owned()
}

fn put_code(out: &mut BytesMut, code: &response::Code, w: &Strings) {
    use response::Code as C;
    let word: &[u8] = match code {
        C::Alert => b"ALERT",
        C::AlreadyExists => b"ALREADYEXISTS",
        C::AuthenticationFailed => b"AUTHENTICATIONFAILED",
        C::AuthorizationFailed => b"AUTHORIZATIONFAILED",
        C::Cannot => b"CANNOT",
        C::ClientBug => b"CLIENTBUG",
        C::CompressionActive => b"COMPRESSIONACTIVE",
        C::Closed => b"CLOSED",
        C::ContactAdmin => b"CONTACTADMIN",
        C::Corruption => b"CORRUPTION",
        C::Expired => b"EXPIRED",
        C::ExpungeIssued => b"EXPUNGEISSUED",
        C::HasChildren => b"HASCHILDREN",
        C::InUse => b"INUSE",
        C::UidRequired => b"UIDREQUIRED",
        C::Limit => b"LIMIT",
        C::NoModSeq => b"NOMODSEQ",
        C::NonExistent => b"NONEXISTENT",
        C::NoPerm => b"NOPERM",
        C::NotSaved => b"NOTSAVED",
        C::OverQuota => b"OVERQUOTA",
        C::Parse => b"PARSE",
        C::PrivacyRequired => b"PRIVACYREQUIRED",
        C::ReadOnly => b"READ-ONLY",
        C::ReadWrite => b"READ-WRITE",
        C::ServerBug => b"SERVERBUG",
        C::TooBig => b"TOOBIG",
        C::TryCreate => b"TRYCREATE",
        C::UidNotSticky => b"UIDNOTSTICKY",
        C::Unavailable => b"UNAVAILABLE",
        C::UnknownCte => b"UNKNOWN-CTE",
        C::AppendUid { uid_validity, uids } => {
            out.put_slice(b"APPENDUID ");
            put_u32(out, *uid_validity);
            out.put_u8(b' ');
            put_sequence_set(out, uids);
            return;
        }
        C::CopyUid {
            uid_validity,
            source,
            target,
        } => {
            out.put_slice(b"COPYUID ");
            put_u32(out, *uid_validity);
            out.put_u8(b' ');
            put_sequence_set(out, source);
            out.put_u8(b' ');
            put_sequence_set(out, target);
            return;
        }
        C::BadCharset(charsets) => {
            out.put_slice(b"BADCHARSET");
            if !charsets.is_empty() {
                out.put_slice(b" (");
                for (n, c) in charsets.iter().enumerate() {
                    if n > 0 {
                        out.put_u8(b' ');
                    }
                    w.charset(out, c);
                }
                out.put_u8(b')');
            }
            return;
        }
        C::Capability(caps) => {
            out.put_slice(b"CAPABILITY");
            put_words(out, caps);
            return;
        }
        C::HighestModSeq(n) => {
            out.put_slice(b"HIGHESTMODSEQ ");
            put_u64(out, *n);
            return;
        }
        C::Modified(set) => {
            out.put_slice(b"MODIFIED ");
            put_sequence_set(out, set);
            return;
        }
        C::PermanentFlags { flags, keywords } => {
            out.put_slice(b"PERMANENTFLAGS (");
            for (n, f) in flags.iter().enumerate() {
                if n > 0 {
                    out.put_u8(b' ');
                }
                put_flag(out, f);
            }
            if *keywords {
                if !flags.is_empty() {
                    out.put_u8(b' ');
                }
                out.put_slice(b"\\*");
            }
            out.put_u8(b')');
            return;
        }
        C::UidNext(n) | C::UidValidity(n) | C::Unseen(n) => {
            out.put_slice(match code {
                C::UidNext(_) => b"UIDNEXT ",
                C::UidValidity(_) => b"UIDVALIDITY ",
                _ => b"UNSEEN ",
            });
            put_u32(out, *n);
            return;
        }
        C::MailboxId(id) => {
            out.put_slice(b"MAILBOXID (");
            out.put_slice(id);
            out.put_u8(b')');
            return;
        }
        C::Metadata(m) => {
            out.put_slice(b"METADATA ");
            match m {
                MetadataCode::LongEntries(n) => {
                    out.put_slice(b"LONGENTRIES ");
                    put_u32(out, *n);
                }
                MetadataCode::MaxSize(n) => {
                    out.put_slice(b"MAXSIZE ");
                    put_u32(out, *n);
                }
                MetadataCode::TooMany => out.put_slice(b"TOOMANY"),
                MetadataCode::NoPrivate => out.put_slice(b"NOPRIVATE"),
            }
            return;
        }
        C::InProgress(details) => {
            out.put_slice(b"INPROGRESS");
            if let Some(p) = details {
                out.put_slice(b" (");
                // `inprogress-tag = quoted / nil`: never a literal.
                match &p.tag {
                    Some(tag) => put_quoted(out, tag),
                    None => out.put_slice(b"NIL"),
                }
                for n in [p.done, p.goal] {
                    out.put_u8(b' ');
                    match n {
                        Some(n) => put_u32(out, n),
                        None => out.put_slice(b"NIL"),
                    }
                }
                out.put_u8(b')');
            }
            return;
        }
        C::Other(name, text) => {
            out.put_slice(name);
            if let Some(text) = text {
                out.put_u8(b' ');
                // `atom [SP 1*<any TEXT-CHAR except "]">]`.
                out.extend(text.iter().map(|&b| match b {
                    b']' | b'\r' | b'\n' | 0 => b' ',
                    b if b >= 0x80 && !w.utf8 => b'?',
                    b => b,
                }));
            }
            return;
        }
    };
    out.put_slice(word);
}

// ---------------------------------------------------------------- untagged data

fn data(out: &mut BytesMut, d: &Data, w: &Strings) {
    out.put_slice(b"* ");
    match d {
        Data::Capability(caps) => {
            out.put_slice(b"CAPABILITY");
            put_words(out, caps);
        }
        Data::Enabled(caps) => {
            out.put_slice(b"ENABLED");
            put_words(out, caps);
        }
        Data::List(item) => {
            out.put_slice(b"LIST ");
            list_item(out, item, w);
        }
        Data::Lsub(item) => {
            out.put_slice(b"LSUB ");
            list_item(out, item, w);
        }
        Data::Namespace {
            personal,
            other,
            shared,
        } => {
            out.put_slice(b"NAMESPACE ");
            namespace(out, personal.as_deref(), w);
            out.put_u8(b' ');
            namespace(out, other.as_deref(), w);
            out.put_u8(b' ');
            namespace(out, shared.as_deref(), w);
        }
        Data::Status { mailbox, items } => {
            out.put_slice(b"STATUS ");
            w.astring(out, mailbox);
            out.put_slice(b" (");
            for (n, (item, value)) in items.iter().enumerate() {
                if n > 0 {
                    out.put_u8(b' ');
                }
                out.put_slice(status_item_name(*item));
                out.put_u8(b' ');
                match value {
                    StatusValue::Number(v) => put_u64(out, *v),
                    StatusValue::Nil => out.put_slice(b"NIL"),
                    StatusValue::ObjectId(id) => {
                        out.put_u8(b'(');
                        out.put_slice(id);
                        out.put_u8(b')');
                    }
                }
            }
            out.put_u8(b')');
        }
        Data::ESearch {
            tag,
            mailbox,
            uid,
            results,
        } => {
            out.put_slice(b"ESEARCH");
            if let Some(tag) = tag {
                // `search-correlator`: tag-string is an astring; quoted, as RFC 4731 shows it.
                out.put_slice(b" (TAG ");
                w.string(out, tag.as_bytes());
                if let Some((name, uid_validity)) = mailbox {
                    // RFC 7377 §2.1, in the order and quoting of its example.
                    out.put_slice(b" MAILBOX ");
                    w.string(out, name);
                    out.put_slice(b" UIDVALIDITY ");
                    put_u32(out, *uid_validity);
                }
                out.put_u8(b')');
            }
            if *uid {
                out.put_slice(b" UID");
            }
            for r in results {
                out.put_u8(b' ');
                match r {
                    ESearchResult::Min(n) => {
                        out.put_slice(b"MIN ");
                        put_u32(out, *n);
                    }
                    ESearchResult::Max(n) => {
                        out.put_slice(b"MAX ");
                        put_u32(out, *n);
                    }
                    ESearchResult::Count(n) => {
                        out.put_slice(b"COUNT ");
                        put_u32(out, *n);
                    }
                    ESearchResult::All(set) => {
                        out.put_slice(b"ALL ");
                        put_sequence_set(out, set);
                    }
                    ESearchResult::ModSeq(n) => {
                        out.put_slice(b"MODSEQ ");
                        put_u64(out, *n);
                    }
                    ESearchResult::Partial(range, set) => {
                        out.put_slice(b"PARTIAL (");
                        put_partial_range(out, *range);
                        out.put_u8(b' ');
                        match set {
                            Some(set) => put_sequence_set(out, set),
                            None => out.put_slice(b"NIL"),
                        }
                        out.put_u8(b')');
                    }
                }
            }
        }
        Data::Search { numbers, mod_seq } | Data::Sort { numbers, mod_seq } => {
            out.put_slice(if matches!(d, Data::Search { .. }) {
                b"SEARCH"
            } else {
                b"SORT"
            });
            for n in numbers {
                out.put_u8(b' ');
                put_u32(out, *n);
            }
            // RFC 7162 §7: the MODSEQ item only follows at least one number.
            if let (Some(m), false) = (mod_seq, numbers.is_empty()) {
                out.put_slice(b" (MODSEQ ");
                put_u64(out, *m);
                out.put_u8(b')');
            }
        }
        Data::Thread(threads) => {
            out.put_slice(b"THREAD");
            if !threads.is_empty() {
                out.put_u8(b' ');
            }
            for t in threads {
                thread_list(out, t);
            }
        }
        Data::Flags(flags) => {
            out.put_slice(b"FLAGS ");
            put_flag_list(out, flags);
        }
        Data::Exists(n) => {
            put_u32(out, *n);
            out.put_slice(b" EXISTS");
        }
        Data::Recent(n) => {
            put_u32(out, *n);
            out.put_slice(b" RECENT");
        }
        Data::Expunge(n) => {
            put_u32(out, *n);
            out.put_slice(b" EXPUNGE");
        }
        Data::Vanished { earlier, uids } => {
            out.put_slice(b"VANISHED ");
            if *earlier {
                out.put_slice(b"(EARLIER) ");
            }
            put_sequence_set(out, uids);
        }
        Data::Fetch { seq: n, items } | Data::UidFetch { uid: n, items } => {
            put_u32(out, *n);
            out.put_slice(if matches!(d, Data::UidFetch { .. }) {
                b" UIDFETCH ("
            } else {
                b" FETCH ("
            });
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.put_u8(b' ');
                }
                fetch::put_fetch_item(out, item, w);
            }
            out.put_u8(b')');
        }
        Data::Id(params) => {
            out.put_slice(b"ID ");
            match params {
                None => out.put_slice(b"NIL"),
                Some(params) => {
                    out.put_u8(b'(');
                    for (n, (k, v)) in params.iter().enumerate() {
                        if n > 0 {
                            out.put_u8(b' ');
                        }
                        w.string(out, k);
                        out.put_u8(b' ');
                        w.nstring(out, v.as_deref());
                    }
                    out.put_u8(b')');
                }
            }
        }
        Data::Quota { root, resources } => {
            out.put_slice(b"QUOTA ");
            w.astring(out, root);
            out.put_slice(b" (");
            for (n, (name, usage, limit)) in resources.iter().enumerate() {
                if n > 0 {
                    out.put_u8(b' ');
                }
                out.put_slice(name);
                out.put_u8(b' ');
                put_u64(out, *usage);
                out.put_u8(b' ');
                put_u64(out, *limit);
            }
            out.put_u8(b')');
        }
        Data::QuotaRoot { mailbox, roots } => {
            out.put_slice(b"QUOTAROOT ");
            w.astring(out, mailbox);
            for r in roots {
                out.put_u8(b' ');
                w.astring(out, r);
            }
        }
        Data::Metadata { mailbox, entries } => {
            out.put_slice(b"METADATA ");
            w.astring(out, mailbox);
            out.put_slice(b" (");
            for (n, (entry, value)) in entries.iter().enumerate() {
                if n > 0 {
                    out.put_u8(b' ');
                }
                w.astring(out, entry);
                out.put_u8(b' ');
                w.nstring8(out, value.as_deref());
            }
            out.put_u8(b')');
        }
    }
    out.put_slice(b"\r\n");
}

/// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
/// [SP mbox-list-extended]`.
fn list_item(out: &mut BytesMut, item: &ListItem, w: &Strings) {
    out.put_u8(b'(');
    for (n, a) in item.attributes.iter().enumerate() {
        if n > 0 {
            out.put_u8(b' ');
        }
        out.put_slice(a);
    }
    out.put_slice(b") ");
    put_delimiter(out, item.delimiter);
    out.put_u8(b' ');
    w.astring(out, &item.name);
    if !item.extended.is_empty() {
        // RFC 5258 §9 writes extended item tags and values quoted: ("CHILDINFO" ("SUBSCRIBED")).
        out.put_slice(b" (");
        for (n, (tag, values)) in item.extended.iter().enumerate() {
            if n > 0 {
                out.put_u8(b' ');
            }
            w.string(out, tag);
            out.put_slice(b" (");
            for (m, v) in values.iter().enumerate() {
                if m > 0 {
                    out.put_u8(b' ');
                }
                w.string(out, v);
            }
            out.put_u8(b')');
        }
        out.put_u8(b')');
    }
}

/// `DQUOTE QUOTED-CHAR DQUOTE / nil`.
fn put_delimiter(out: &mut BytesMut, d: Option<u8>) {
    match d {
        Some(c) => put_quoted(out, &[c]),
        None => out.put_slice(b"NIL"),
    }
}

/// `namespace = nil / "(" 1*namespace-descr ")"` (RFC 2342 §5).
fn namespace(out: &mut BytesMut, ns: Option<&[(bytes::Bytes, Option<u8>)]>, w: &Strings) {
    let Some(ns) = ns else {
        out.put_slice(b"NIL");
        return;
    };
    out.put_u8(b'(');
    for (prefix, delim) in ns {
        out.put_u8(b'(');
        w.string(out, prefix);
        out.put_u8(b' ');
        put_delimiter(out, *delim);
        out.put_u8(b')');
    }
    out.put_u8(b')');
}

/// One `thread-list` (RFC 5256 §5). A chain of single replies is written as consecutive
/// numbers; two or more replies as nested lists; a node without a message only as nested lists.
fn thread_list(out: &mut BytesMut, node: &ThreadNode) {
    out.put_u8(b'(');
    let mut node = node;
    let mut first = true;
    loop {
        if let Some(seq) = node.seq {
            if !first {
                out.put_u8(b' ');
            }
            put_u32(out, seq);
            first = false;
        }
        match node.children.as_slice() {
            [] => break,
            [only] if only.seq.is_some() => node = only,
            children => {
                if !first {
                    out.put_u8(b' ');
                }
                for c in children {
                    thread_list(out, c);
                }
                break;
            }
        }
    }
    out.put_u8(b')');
}

#[cfg(test)]
mod tests;
