//! Writes IMAP responses (RFC 9051 §7) into the session's output buffer.
//!
//! Strings take the lightest form that carries them: an atom where the grammar allows one
//! (flags, capabilities, mailbox names), a quoted string when every octet is a TEXT-CHAR, and
//! a literal otherwise (CR, LF, NUL, or 8-bit data in a session that has not enabled UTF-8).
//! Message bodies always go as literals, and literal8 when they hold NUL (RFC 3516).

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use super::response::{
    Code, Condition, Data, ESearchResult, FetchItem, ListItem, Response, StatusResponse,
    StatusValue, ThreadNode,
};
use super::types::{DateTime, Flag, Section, SectionText, SeqNo, SequenceSet, StatusItem};
use crate::mail::structure::{Address, BodyExtension, BodyFields, BodyStructure, Envelope};

/// What the session has enabled that changes the encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct EncodeOptions {
    /// UTF-8 may appear in quoted strings (IMAP4rev2 or UTF8=ACCEPT enabled).
    pub(crate) utf8: bool,
}

/// Quoted strings longer than this go as literals: long values are rare and literals need no
/// escaping scan on the client side.
const MAX_QUOTED: usize = 4096;

/// Appends one response, line end included.
pub(crate) fn response(out: &mut BytesMut, r: &Response, opts: &EncodeOptions) {
    let mut w = Writer { out, opts: *opts };
    match r {
        Response::Status(s) => w.status(s),
        Response::Data(d) => w.data(d),
        Response::Continue(text) => {
            w.raw(b"+ ");
            w.text(text);
        }
    }
    w.raw(b"\r\n");
}

struct Writer<'a> {
    out: &'a mut BytesMut,
    opts: EncodeOptions,
}

impl Writer<'_> {
    fn raw(&mut self, b: &[u8]) {
        self.out.put_slice(b);
    }

    fn num(&mut self, n: impl std::fmt::Display) {
        let _ = write!(Fmt(self.out), "{n}");
    }

    /// Human-readable text: never a line break, whatever the caller passes.
    fn text(&mut self, text: &[u8]) {
        self.out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }

    fn status(&mut self, s: &StatusResponse) {
        match &s.tag {
            Some(tag) => self.raw(tag.as_bytes()),
            None => self.raw(b"*"),
        }
        self.raw(match s.condition {
            Condition::Ok => b" OK",
            Condition::No => b" NO",
            Condition::Bad => b" BAD",
            Condition::PreAuth => b" PREAUTH",
            Condition::Bye => b" BYE",
        });
        if let Some(code) = &s.code {
            self.raw(b" [");
            self.code(code);
            self.raw(b"]");
        }
        self.raw(b" ");
        // RFC 9051 §9: resp-text needs some text; an empty one would be a lone space.
        if s.text.is_empty() {
            self.raw(b"Done.");
        } else {
            self.text(s.text.as_bytes());
        }
    }

    fn code(&mut self, code: &Code) {
        match code {
            Code::Alert => self.raw(b"ALERT"),
            Code::AlreadyExists => self.raw(b"ALREADYEXISTS"),
            Code::AppendUid { uid_validity, uids } => {
                self.raw(b"APPENDUID ");
                self.num(uid_validity);
                self.raw(b" ");
                self.set(uids);
            }
            Code::AuthenticationFailed => self.raw(b"AUTHENTICATIONFAILED"),
            Code::AuthorizationFailed => self.raw(b"AUTHORIZATIONFAILED"),
            Code::BadCharset(sets) => {
                self.raw(b"BADCHARSET");
                if !sets.is_empty() {
                    self.raw(b" (");
                    for (i, c) in sets.iter().enumerate() {
                        if i > 0 {
                            self.raw(b" ");
                        }
                        self.astring(c);
                    }
                    self.raw(b")");
                }
            }
            Code::Cannot => self.raw(b"CANNOT"),
            Code::Capability(caps) => {
                self.raw(b"CAPABILITY");
                for c in caps {
                    self.raw(b" ");
                    self.raw(c);
                }
            }
            Code::ClientBug => self.raw(b"CLIENTBUG"),
            Code::Closed => self.raw(b"CLOSED"),
            Code::ContactAdmin => self.raw(b"CONTACTADMIN"),
            Code::CopyUid {
                uid_validity,
                source,
                target,
            } => {
                self.raw(b"COPYUID ");
                self.num(uid_validity);
                self.raw(b" ");
                self.set(source);
                self.raw(b" ");
                self.set(target);
            }
            Code::Corruption => self.raw(b"CORRUPTION"),
            Code::Expired => self.raw(b"EXPIRED"),
            Code::ExpungeIssued => self.raw(b"EXPUNGEISSUED"),
            Code::HasChildren => self.raw(b"HASCHILDREN"),
            Code::HighestModSeq(n) => {
                self.raw(b"HIGHESTMODSEQ ");
                self.num(n);
            }
            Code::InUse => self.raw(b"INUSE"),
            Code::Limit => self.raw(b"LIMIT"),
            Code::Modified(set) => {
                self.raw(b"MODIFIED ");
                self.set(set);
            }
            Code::NoModSeq => self.raw(b"NOMODSEQ"),
            Code::NonExistent => self.raw(b"NONEXISTENT"),
            Code::NoPerm => self.raw(b"NOPERM"),
            Code::NotSaved => self.raw(b"NOTSAVED"),
            Code::OverQuota => self.raw(b"OVERQUOTA"),
            Code::Parse => self.raw(b"PARSE"),
            Code::PermanentFlags { flags, keywords } => {
                self.raw(b"PERMANENTFLAGS (");
                self.flag_list(flags);
                if *keywords {
                    if !flags.is_empty() {
                        self.raw(b" ");
                    }
                    self.raw(b"\\*");
                }
                self.raw(b")");
            }
            Code::PrivacyRequired => self.raw(b"PRIVACYREQUIRED"),
            Code::ReadOnly => self.raw(b"READ-ONLY"),
            Code::ReadWrite => self.raw(b"READ-WRITE"),
            Code::ServerBug => self.raw(b"SERVERBUG"),
            Code::TooBig => self.raw(b"TOOBIG"),
            Code::TryCreate => self.raw(b"TRYCREATE"),
            Code::UidNext(n) => {
                self.raw(b"UIDNEXT ");
                self.num(n);
            }
            Code::UidNotSticky => self.raw(b"UIDNOTSTICKY"),
            Code::UidValidity(n) => {
                self.raw(b"UIDVALIDITY ");
                self.num(n);
            }
            Code::Unavailable => self.raw(b"UNAVAILABLE"),
            Code::UnknownCte => self.raw(b"UNKNOWN-CTE"),
            Code::Unseen(n) => {
                self.raw(b"UNSEEN ");
                self.num(n);
            }
            Code::MailboxId(id) => {
                self.raw(b"MAILBOXID (");
                self.raw(id);
                self.raw(b")");
            }
            Code::Other(atom, text) => {
                self.raw(atom);
                if let Some(t) = text {
                    self.raw(b" ");
                    // resp-text-code's free text may not contain "]".
                    self.out.extend(t.iter().map(|&b| {
                        if matches!(b, b']' | b'\r' | b'\n') {
                            b' '
                        } else {
                            b
                        }
                    }));
                }
            }
        }
    }

    fn data(&mut self, d: &Data) {
        self.raw(b"* ");
        match d {
            Data::Capability(caps) => {
                self.raw(b"CAPABILITY");
                for c in caps {
                    self.raw(b" ");
                    self.raw(c);
                }
            }
            Data::Enabled(caps) => {
                self.raw(b"ENABLED");
                for c in caps {
                    self.raw(b" ");
                    self.raw(c);
                }
            }
            Data::List(item) => {
                self.raw(b"LIST ");
                self.list_item(item);
            }
            Data::Lsub(item) => {
                self.raw(b"LSUB ");
                self.list_item(item);
            }
            Data::Namespace {
                personal,
                other,
                shared,
            } => {
                self.raw(b"NAMESPACE");
                for ns in [personal, other, shared] {
                    self.raw(b" ");
                    match ns {
                        None => self.raw(b"NIL"),
                        Some(list) => {
                            self.raw(b"(");
                            for (prefix, delim) in list {
                                self.raw(b"(");
                                self.string(prefix);
                                self.raw(b" ");
                                self.delimiter(*delim);
                                self.raw(b")");
                            }
                            self.raw(b")");
                        }
                    }
                }
            }
            Data::Status { mailbox, items } => {
                self.raw(b"STATUS ");
                self.astring(mailbox);
                self.raw(b" (");
                for (i, (item, value)) in items.iter().enumerate() {
                    if i > 0 {
                        self.raw(b" ");
                    }
                    self.raw(status_item(*item));
                    self.raw(b" ");
                    match value {
                        StatusValue::Number(n) => self.num(n),
                        StatusValue::Nil => self.raw(b"NIL"),
                        StatusValue::ObjectId(id) => {
                            self.raw(b"(");
                            self.raw(id);
                            self.raw(b")");
                        }
                    }
                }
                self.raw(b")");
            }
            Data::ESearch { tag, uid, results } => {
                self.raw(b"ESEARCH");
                if let Some(tag) = tag {
                    self.raw(b" (TAG ");
                    self.string(tag.as_bytes());
                    self.raw(b")");
                }
                if *uid {
                    self.raw(b" UID");
                }
                for r in results {
                    match r {
                        ESearchResult::Min(n) => {
                            self.raw(b" MIN ");
                            self.num(n);
                        }
                        ESearchResult::Max(n) => {
                            self.raw(b" MAX ");
                            self.num(n);
                        }
                        ESearchResult::Count(n) => {
                            self.raw(b" COUNT ");
                            self.num(n);
                        }
                        ESearchResult::All(set) => {
                            self.raw(b" ALL ");
                            self.set(set);
                        }
                        ESearchResult::ModSeq(n) => {
                            self.raw(b" MODSEQ ");
                            self.num(n);
                        }
                    }
                }
            }
            Data::Search { numbers, mod_seq } => {
                self.raw(b"SEARCH");
                for n in numbers {
                    self.raw(b" ");
                    self.num(n);
                }
                if let Some(m) = mod_seq {
                    self.raw(b" (MODSEQ ");
                    self.num(m);
                    self.raw(b")");
                }
            }
            Data::Sort(numbers) => {
                self.raw(b"SORT");
                for n in numbers {
                    self.raw(b" ");
                    self.num(n);
                }
            }
            Data::Thread(nodes) => {
                self.raw(b"THREAD");
                for node in nodes {
                    self.raw(b" ");
                    self.thread(node);
                }
            }
            Data::Flags(flags) => {
                self.raw(b"FLAGS (");
                self.flag_list(flags);
                self.raw(b")");
            }
            Data::Exists(n) => {
                self.num(n);
                self.raw(b" EXISTS");
            }
            Data::Recent(n) => {
                self.num(n);
                self.raw(b" RECENT");
            }
            Data::Expunge(n) => {
                self.num(n);
                self.raw(b" EXPUNGE");
            }
            Data::Vanished { earlier, uids } => {
                self.raw(b"VANISHED ");
                if *earlier {
                    self.raw(b"(EARLIER) ");
                }
                self.set(uids);
            }
            Data::Fetch { seq, items } => {
                self.num(seq);
                self.raw(b" FETCH (");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.raw(b" ");
                    }
                    self.fetch_item(item);
                }
                self.raw(b")");
            }
            Data::Id(fields) => {
                self.raw(b"ID ");
                match fields {
                    None => self.raw(b"NIL"),
                    Some(fields) => {
                        self.raw(b"(");
                        for (i, (k, v)) in fields.iter().enumerate() {
                            if i > 0 {
                                self.raw(b" ");
                            }
                            self.string(k);
                            self.raw(b" ");
                            self.nstring(v.as_deref());
                        }
                        self.raw(b")");
                    }
                }
            }
            Data::Quota { root, resources } => {
                self.raw(b"QUOTA ");
                self.astring(root);
                self.raw(b" (");
                for (i, (name, usage, limit)) in resources.iter().enumerate() {
                    if i > 0 {
                        self.raw(b" ");
                    }
                    self.raw(name);
                    self.raw(b" ");
                    self.num(usage);
                    self.raw(b" ");
                    self.num(limit);
                }
                self.raw(b")");
            }
            Data::QuotaRoot { mailbox, roots } => {
                self.raw(b"QUOTAROOT ");
                self.astring(mailbox);
                for r in roots {
                    self.raw(b" ");
                    self.astring(r);
                }
            }
            Data::Metadata { mailbox, entries } => {
                self.raw(b"METADATA ");
                self.astring(mailbox);
                self.raw(b" (");
                for (i, (entry, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        self.raw(b" ");
                    }
                    self.astring(entry);
                    self.raw(b" ");
                    self.nstring(value.as_deref());
                }
                self.raw(b")");
            }
        }
    }

    fn thread(&mut self, node: &ThreadNode) {
        self.raw(b"(");
        let mut node = node;
        let mut first = true;
        // A chain of single children is written flat: (1 2 3), branches nested: (1 (2)(3)).
        loop {
            if let Some(seq) = node.seq {
                if !first {
                    self.raw(b" ");
                }
                self.num(seq);
                first = false;
            }
            match node.children.as_slice() {
                [] => break,
                [only] => node = only,
                many => {
                    if !first {
                        self.raw(b" ");
                    }
                    for child in many {
                        self.thread(child);
                    }
                    break;
                }
            }
        }
        self.raw(b")");
    }

    fn list_item(&mut self, item: &ListItem) {
        self.raw(b"(");
        for (i, a) in item.attributes.iter().enumerate() {
            if i > 0 {
                self.raw(b" ");
            }
            self.raw(a);
        }
        self.raw(b") ");
        self.delimiter(item.delimiter);
        self.raw(b" ");
        self.astring(&item.name);
        if !item.extended.is_empty() {
            self.raw(b" (");
            for (i, (tag, values)) in item.extended.iter().enumerate() {
                if i > 0 {
                    self.raw(b" ");
                }
                self.string(tag);
                self.raw(b" (");
                for (j, v) in values.iter().enumerate() {
                    if j > 0 {
                        self.raw(b" ");
                    }
                    self.string(v);
                }
                self.raw(b")");
            }
            self.raw(b")");
        }
    }

    fn delimiter(&mut self, d: Option<u8>) {
        match d {
            None => self.raw(b"NIL"),
            Some(b'"') => self.raw(b"\"\\\"\""),
            Some(b'\\') => self.raw(b"\"\\\\\""),
            Some(c) => {
                self.raw(b"\"");
                self.raw(&[c]);
                self.raw(b"\"");
            }
        }
    }

    fn flag_list(&mut self, flags: &[Flag]) {
        for (i, f) in flags.iter().enumerate() {
            if i > 0 {
                self.raw(b" ");
            }
            self.flag(f);
        }
    }

    fn flag(&mut self, f: &Flag) {
        match f {
            Flag::Answered => self.raw(b"\\Answered"),
            Flag::Flagged => self.raw(b"\\Flagged"),
            Flag::Deleted => self.raw(b"\\Deleted"),
            Flag::Seen => self.raw(b"\\Seen"),
            Flag::Draft => self.raw(b"\\Draft"),
            Flag::Recent => self.raw(b"\\Recent"),
            Flag::Keyword(k) => self.raw(k),
            Flag::Extension(e) => {
                self.raw(b"\\");
                self.raw(e);
            }
        }
    }

    fn set(&mut self, set: &SequenceSet) {
        match set {
            SequenceSet::Saved => self.raw(b"$"),
            SequenceSet::Ranges(ranges) => {
                for (i, r) in ranges.iter().enumerate() {
                    if i > 0 {
                        self.raw(b",");
                    }
                    self.seq_no(r.from);
                    if r.from != r.to {
                        self.raw(b":");
                        self.seq_no(r.to);
                    }
                }
            }
        }
    }

    fn seq_no(&mut self, n: SeqNo) {
        match n {
            SeqNo::Star => self.raw(b"*"),
            SeqNo::Value(v) => self.num(v),
        }
    }

    fn fetch_item(&mut self, item: &FetchItem) {
        match item {
            FetchItem::Flags(flags) => {
                self.raw(b"FLAGS (");
                self.flag_list(flags);
                self.raw(b")");
            }
            FetchItem::Uid(u) => {
                self.raw(b"UID ");
                self.num(u);
            }
            FetchItem::InternalDate(dt) => {
                self.raw(b"INTERNALDATE ");
                self.date_time(dt);
            }
            FetchItem::Rfc822Size(n) => {
                self.raw(b"RFC822.SIZE ");
                self.num(n);
            }
            FetchItem::Envelope(e) => {
                self.raw(b"ENVELOPE ");
                self.envelope(e);
            }
            FetchItem::Body(b) => {
                self.raw(b"BODY ");
                self.body(b, false);
            }
            FetchItem::BodyStructure(b) => {
                self.raw(b"BODYSTRUCTURE ");
                self.body(b, true);
            }
            FetchItem::BodySection {
                section,
                origin,
                data,
            } => {
                self.raw(b"BODY[");
                self.section(section);
                self.raw(b"]");
                self.origin(*origin);
                self.raw(b" ");
                self.body_data(data.as_deref(), false);
            }
            FetchItem::Binary { part, origin, data } => {
                self.raw(b"BINARY[");
                self.part(part);
                self.raw(b"]");
                self.origin(*origin);
                self.raw(b" ");
                self.body_data(data.as_deref(), true);
            }
            FetchItem::BinarySize { part, size } => {
                self.raw(b"BINARY.SIZE[");
                self.part(part);
                self.raw(b"] ");
                self.num(size);
            }
            FetchItem::Rfc822(d) => {
                self.raw(b"RFC822 ");
                self.body_data(d.as_deref(), false);
            }
            FetchItem::Rfc822Header(d) => {
                self.raw(b"RFC822.HEADER ");
                self.body_data(d.as_deref(), false);
            }
            FetchItem::Rfc822Text(d) => {
                self.raw(b"RFC822.TEXT ");
                self.body_data(d.as_deref(), false);
            }
            FetchItem::ModSeq(n) => {
                self.raw(b"MODSEQ (");
                self.num(n);
                self.raw(b")");
            }
            FetchItem::EmailId(id) => {
                self.raw(b"EMAILID (");
                self.raw(id);
                self.raw(b")");
            }
            FetchItem::ThreadId(id) => {
                self.raw(b"THREADID ");
                match id {
                    Some(id) => {
                        self.raw(b"(");
                        self.raw(id);
                        self.raw(b")");
                    }
                    None => self.raw(b"NIL"),
                }
            }
            FetchItem::SaveDate(d) => {
                self.raw(b"SAVEDATE ");
                match d {
                    Some(d) => self.date_time(d),
                    None => self.raw(b"NIL"),
                }
            }
            FetchItem::Preview(p) => {
                self.raw(b"PREVIEW ");
                self.nstring(p.as_deref());
            }
        }
    }

    fn origin(&mut self, origin: Option<u32>) {
        if let Some(o) = origin {
            self.raw(b"<");
            self.num(o);
            self.raw(b">");
        }
    }

    fn part(&mut self, part: &[u32]) {
        for (i, p) in part.iter().enumerate() {
            if i > 0 {
                self.raw(b".");
            }
            self.num(p);
        }
    }

    fn section(&mut self, s: &Section) {
        self.part(&s.part);
        let Some(text) = &s.text else { return };
        if !s.part.is_empty() {
            self.raw(b".");
        }
        let fields = |w: &mut Self, names: &[bytes::Bytes]| {
            w.raw(b" (");
            for (i, n) in names.iter().enumerate() {
                if i > 0 {
                    w.raw(b" ");
                }
                w.astring(n);
            }
            w.raw(b")");
        };
        match text {
            SectionText::Header => self.raw(b"HEADER"),
            SectionText::Text => self.raw(b"TEXT"),
            SectionText::Mime => self.raw(b"MIME"),
            SectionText::HeaderFields(names) => {
                self.raw(b"HEADER.FIELDS");
                fields(self, names);
            }
            SectionText::HeaderFieldsNot(names) => {
                self.raw(b"HEADER.FIELDS.NOT");
                fields(self, names);
            }
        }
    }

    /// Message data: always a literal (literal8 for binary with NUL), or NIL.
    fn body_data(&mut self, data: Option<&[u8]>, binary: bool) {
        match data {
            None => self.raw(b"NIL"),
            Some(d) => {
                if binary && d.contains(&0) {
                    self.raw(b"~");
                }
                self.literal(d);
            }
        }
    }

    fn literal(&mut self, d: &[u8]) {
        self.raw(b"{");
        self.num(d.len());
        self.raw(b"}\r\n");
        self.raw(d);
    }

    fn date_time(&mut self, dt: &DateTime) {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = MONTHS
            .get(usize::from(dt.date.month.saturating_sub(1)))
            .copied()
            .unwrap_or("Jan");
        let (sign, zone) = if dt.zone_minutes < 0 {
            ('-', -i32::from(dt.zone_minutes))
        } else {
            ('+', i32::from(dt.zone_minutes))
        };
        let _ = write!(
            Fmt(self.out),
            "\"{:>2}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}\"",
            dt.date.day,
            month,
            dt.date.year,
            dt.hour,
            dt.minute,
            dt.second,
            sign,
            zone / 60,
            zone % 60
        );
    }

    fn envelope(&mut self, e: &Envelope) {
        self.raw(b"(");
        self.nstring(e.date.as_deref());
        self.raw(b" ");
        self.nstring(e.subject.as_deref());
        for list in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
            self.raw(b" ");
            self.addresses(list);
        }
        self.raw(b" ");
        self.nstring(e.in_reply_to.as_deref());
        self.raw(b" ");
        self.nstring(e.message_id.as_deref());
        self.raw(b")");
    }

    fn addresses(&mut self, list: &[Address]) {
        if list.is_empty() {
            self.raw(b"NIL");
            return;
        }
        self.raw(b"(");
        for a in list {
            self.raw(b"(");
            self.nstring(a.name.as_deref());
            self.raw(b" ");
            self.nstring(a.adl.as_deref());
            self.raw(b" ");
            self.nstring(a.mailbox.as_deref());
            self.raw(b" ");
            self.nstring(a.host.as_deref());
            self.raw(b")");
        }
        self.raw(b")");
    }

    fn body(&mut self, b: &BodyStructure, ext: bool) {
        self.raw(b"(");
        match b {
            BodyStructure::Single {
                media_type,
                subtype,
                fields,
                lines,
                md5,
                ext: extension,
            } => {
                self.string(media_type);
                self.raw(b" ");
                self.string(subtype);
                self.raw(b" ");
                self.body_fields(fields);
                if let Some(l) = lines {
                    self.raw(b" ");
                    self.num(l);
                }
                if ext {
                    self.raw(b" ");
                    self.nstring(md5.as_deref());
                    self.extension(extension);
                }
            }
            BodyStructure::Message {
                subtype,
                fields,
                envelope,
                body,
                lines,
                md5,
                ext: extension,
            } => {
                self.raw(b"\"MESSAGE\" ");
                self.string(subtype);
                self.raw(b" ");
                self.body_fields(fields);
                self.raw(b" ");
                self.envelope(envelope);
                self.raw(b" ");
                self.body(body, ext);
                self.raw(b" ");
                self.num(lines);
                if ext {
                    self.raw(b" ");
                    self.nstring(md5.as_deref());
                    self.extension(extension);
                }
            }
            BodyStructure::Multipart {
                parts,
                subtype,
                params,
                ext: extension,
            } => {
                for p in parts {
                    self.body(p, ext);
                }
                self.raw(b" ");
                self.string(subtype);
                if ext {
                    self.raw(b" ");
                    self.params(params);
                    self.extension(extension);
                }
            }
        }
        self.raw(b")");
    }

    fn body_fields(&mut self, f: &BodyFields) {
        self.params(&f.params);
        self.raw(b" ");
        self.nstring(f.id.as_deref());
        self.raw(b" ");
        self.nstring(f.description.as_deref());
        self.raw(b" ");
        self.string(&f.encoding);
        self.raw(b" ");
        self.num(f.octets);
    }

    fn params(&mut self, params: &[(bytes::Bytes, bytes::Bytes)]) {
        if params.is_empty() {
            self.raw(b"NIL");
            return;
        }
        self.raw(b"(");
        for (i, (k, v)) in params.iter().enumerate() {
            if i > 0 {
                self.raw(b" ");
            }
            self.string(k);
            self.raw(b" ");
            self.string(v);
        }
        self.raw(b")");
    }

    /// body-fld-dsp, body-fld-lang and body-fld-loc.
    fn extension(&mut self, e: &BodyExtension) {
        self.raw(b" ");
        match &e.disposition {
            None => self.raw(b"NIL"),
            Some(d) => {
                self.raw(b"(");
                self.string(&d.kind);
                self.raw(b" ");
                self.params(&d.params);
                self.raw(b")");
            }
        }
        self.raw(b" ");
        match e.language.as_slice() {
            [] => self.raw(b"NIL"),
            [one] => self.string(one),
            many => {
                self.raw(b"(");
                for (i, l) in many.iter().enumerate() {
                    if i > 0 {
                        self.raw(b" ");
                    }
                    self.string(l);
                }
                self.raw(b")");
            }
        }
        self.raw(b" ");
        self.nstring(e.location.as_deref());
    }

    fn nstring(&mut self, s: Option<&[u8]>) {
        match s {
            None => self.raw(b"NIL"),
            Some(s) => self.string(s),
        }
    }

    /// An astring: an atom where possible (not `NIL`, which would read as nil).
    fn astring(&mut self, s: &[u8]) {
        if !s.is_empty()
            && s.iter().all(|&b| super::is_astring_char(b))
            && !s.eq_ignore_ascii_case(b"NIL")
        {
            self.raw(s);
        } else {
            self.string(s);
        }
    }

    /// A quoted string when every octet may appear in one, a literal otherwise.
    fn string(&mut self, s: &[u8]) {
        let quotable = s.len() <= MAX_QUOTED
            && s.iter()
                .all(|&b| b != 0 && b != b'\r' && b != b'\n' && (b < 0x80 || self.opts.utf8))
            && (s.is_ascii() || std::str::from_utf8(s).is_ok());
        if !quotable {
            self.literal(s);
            return;
        }
        self.raw(b"\"");
        for &b in s {
            if b == b'"' || b == b'\\' {
                self.out.put_u8(b'\\');
            }
            self.out.put_u8(b);
        }
        self.raw(b"\"");
    }
}

fn status_item(item: StatusItem) -> &'static [u8] {
    match item {
        StatusItem::Messages => b"MESSAGES",
        StatusItem::Recent => b"RECENT",
        StatusItem::UidNext => b"UIDNEXT",
        StatusItem::UidValidity => b"UIDVALIDITY",
        StatusItem::Unseen => b"UNSEEN",
        StatusItem::Deleted => b"DELETED",
        StatusItem::Size => b"SIZE",
        StatusItem::HighestModSeq => b"HIGHESTMODSEQ",
        StatusItem::AppendLimit => b"APPENDLIMIT",
        StatusItem::MailboxId => b"MAILBOXID",
    }
}

struct Fmt<'a>(&'a mut BytesMut);

impl std::fmt::Write for Fmt<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::command::Tag;
    use crate::imap::types::Date;
    use bytes::Bytes;

    fn enc(r: Response) -> String {
        let mut out = BytesMut::new();
        response(&mut out, &r, &EncodeOptions::default());
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn status_lines_and_codes() {
        let tag = Tag::new(Bytes::from_static(b"a1"));
        assert_eq!(
            enc(Response::Status(StatusResponse {
                tag,
                condition: Condition::No,
                code: Some(Code::TooBig),
                text: "too\r\nbig".into(),
            })),
            "a1 NO [TOOBIG] too  big\r\n"
        );
        assert_eq!(
            enc(Response::Status(StatusResponse {
                tag: None,
                condition: Condition::Ok,
                code: Some(Code::PermanentFlags {
                    flags: vec![Flag::Seen, Flag::Keyword(Bytes::from_static(b"$Junk"))],
                    keywords: true
                }),
                text: "x".into(),
            })),
            "* OK [PERMANENTFLAGS (\\Seen $Junk \\*)] x\r\n"
        );
    }

    #[test]
    fn rfc9051_7_strings_pick_their_form() {
        let item = ListItem {
            attributes: vec![Bytes::from_static(b"\\HasNoChildren")],
            delimiter: Some(b'/'),
            name: Bytes::from_static(b"Sent Items"),
            extended: vec![],
        };
        assert_eq!(
            enc(Response::Data(Data::List(item))),
            "* LIST (\\HasNoChildren) \"/\" \"Sent Items\"\r\n"
        );
        assert_eq!(
            enc(Response::Data(Data::Status {
                mailbox: Bytes::from_static(b"nil"),
                items: vec![(StatusItem::Messages, StatusValue::Number(3))]
            })),
            "* STATUS \"nil\" (MESSAGES 3)\r\n"
        );
        let mut out = BytesMut::new();
        response(
            &mut out,
            &Response::Data(Data::Id(Some(vec![(
                Bytes::from_static(b"name"),
                Some(Bytes::from("tërn")),
            )]))),
            &EncodeOptions::default(),
        );
        assert_eq!(&out[..], "* ID (\"name\" {5}\r\ntërn)\r\n".as_bytes());
    }

    #[test]
    fn fetch_items() {
        let r = Response::Data(Data::Fetch {
            seq: 12,
            items: vec![
                FetchItem::Uid(7),
                FetchItem::InternalDate(DateTime {
                    date: Date {
                        year: 1996,
                        month: 7,
                        day: 1,
                    },
                    hour: 2,
                    minute: 44,
                    second: 25,
                    zone_minutes: -420,
                }),
                FetchItem::BodySection {
                    section: Section {
                        part: vec![1],
                        text: Some(SectionText::Mime),
                    },
                    origin: Some(0),
                    data: Some(Bytes::from_static(b"ab")),
                },
                FetchItem::Binary {
                    part: vec![2],
                    origin: None,
                    data: Some(Bytes::from_static(b"a\0")),
                },
            ],
        });
        assert_eq!(
            enc(r),
            "* 12 FETCH (UID 7 INTERNALDATE \" 1-Jul-1996 02:44:25 -0700\" BODY[1.MIME]<0> {2}\r\nab BINARY[2] ~{2}\r\na\0)\r\n"
        );
    }
}
