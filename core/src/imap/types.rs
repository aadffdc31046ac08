//! Values shared by commands and responses: sequence sets, mailbox names, fetch attributes,
//! search keys, status items. Flags, dates and sections are the mail model's
//! ([`crate::mail`]): the stores share them without depending on IMAP.
//!
//! All owned; byte payloads are `Bytes` slices of the received command.

use std::num::NonZeroU32;

use bytes::Bytes;

use crate::mail::date::{Date, DateTime};
use crate::mail::flags::Flag;
use crate::mail::section::Section;

/// `seq-number = nz-number / "*"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeqNo {
    /// A message sequence number or UID.
    Value(NonZeroU32),
    /// The largest number in use (`*`).
    Star,
}

/// `seq-range`; the two ends may come in either order (RFC 9051 §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// One end.
    pub from: SeqNo,
    /// The other end (equal to `from` for a single number).
    pub to: SeqNo,
}

/// `sequence-set`, or `$` (RFC 5182 SEARCHRES: the saved search result).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SequenceSet {
    /// Comma-separated numbers and ranges; never empty.
    Ranges(Vec<SeqRange>),
    /// `$`.
    Saved,
}

/// A mailbox name exactly as the client sent it (before modified UTF-7 or UTF-8 decoding,
/// which depends on what the session has enabled).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MailboxArg(pub Bytes);

/// A `list-mailbox` pattern, wildcards `*` and `%` included.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListPattern(pub Bytes);

/// STATUS data items (RFC 9051 §6.3.11, RFC 7162, RFC 7889, RFC 8474).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusItem {
    /// MESSAGES.
    Messages,
    /// RECENT (IMAP4rev1).
    Recent,
    /// UIDNEXT.
    UidNext,
    /// UIDVALIDITY.
    UidValidity,
    /// UNSEEN.
    Unseen,
    /// DELETED.
    Deleted,
    /// DELETED-STORAGE (RFC 9208 §4.1.4).
    DeletedStorage,
    /// SIZE (RFC 8438).
    Size,
    /// HIGHESTMODSEQ (RFC 7162).
    HighestModSeq,
    /// APPENDLIMIT (RFC 7889).
    AppendLimit,
    /// MAILBOXID (RFC 8474).
    MailboxId,
}

/// `<origin.length>` of a partial fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Partial {
    /// First octet.
    pub origin: u32,
    /// At most this many octets (non-zero).
    pub length: NonZeroU32,
}

/// One FETCH attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FetchAttr {
    /// ENVELOPE.
    Envelope,
    /// FLAGS.
    Flags,
    /// INTERNALDATE.
    InternalDate,
    /// RFC822 (IMAP4rev1; same as BODY[]).
    Rfc822,
    /// RFC822.HEADER (IMAP4rev1; same as BODY.PEEK[HEADER]).
    Rfc822Header,
    /// RFC822.SIZE.
    Rfc822Size,
    /// RFC822.TEXT (IMAP4rev1; same as BODY[TEXT]).
    Rfc822Text,
    /// BODY (non-extensible BODYSTRUCTURE).
    Body,
    /// BODYSTRUCTURE.
    BodyStructure,
    /// UID.
    Uid,
    /// `BODY[section]<partial>` and `BODY.PEEK[...]`.
    BodySection {
        /// PEEK: do not set `\Seen`.
        peek: bool,
        /// Which part.
        section: Section,
        /// Which octets.
        partial: Option<Partial>,
    },
    /// `BINARY[part]<partial>` and `BINARY.PEEK` (RFC 3516).
    Binary {
        /// PEEK: do not set `\Seen`.
        peek: bool,
        /// Part numbers.
        part: Vec<u32>,
        /// Which octets.
        partial: Option<Partial>,
    },
    /// `BINARY.SIZE[part]`.
    BinarySize {
        /// Part numbers.
        part: Vec<u32>,
    },
    /// MODSEQ (RFC 7162).
    ModSeq,
    /// EMAILID (RFC 8474).
    EmailId,
    /// THREADID (RFC 8474).
    ThreadId,
    /// SAVEDATE (RFC 8514).
    SaveDate,
    /// PREVIEW, optionally `(LAZY)` (RFC 8970).
    Preview {
        /// LAZY modifier.
        lazy: bool,
    },
}

/// The attribute part of FETCH: a macro or an explicit list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FetchItems {
    /// ALL = (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE).
    All,
    /// FAST = (FLAGS INTERNALDATE RFC822.SIZE).
    Fast,
    /// FULL = (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY).
    Full,
    /// One attribute or a parenthesised list.
    Attrs(Vec<FetchAttr>),
}

impl FetchItems {
    /// The attributes a macro stands for (RFC 9051 §6.4.5).
    pub fn expand(&self) -> Vec<FetchAttr> {
        use FetchAttr::*;
        match self {
            FetchItems::All => vec![Flags, InternalDate, Rfc822Size, Envelope],
            FetchItems::Fast => vec![Flags, InternalDate, Rfc822Size],
            FetchItems::Full => vec![Flags, InternalDate, Rfc822Size, Envelope, Body],
            FetchItems::Attrs(a) => a.clone(),
        }
    }
}

/// FETCH modifiers (RFC 7162 CONDSTORE/QRESYNC, RFC 9394 PARTIAL).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FetchModifiers {
    /// `CHANGEDSINCE modseq`.
    pub changed_since: Option<u64>,
    /// `VANISHED` (UID FETCH only).
    pub vanished: bool,
    /// `PARTIAL range` (UID FETCH only): only these of the messages the set names.
    pub partial: Option<PartialRange>,
}

/// `partial-range` (RFC 9394 §4): positions among results in mailbox order, counted from the
/// first (`1:500`) or, written with minus signs, from the last (`-1:-100`). The two ends as
/// the client wrote them, in either order: a reply echoes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartialRange {
    /// `a:b`, 1 being the first result.
    First(NonZeroU32, NonZeroU32),
    /// `-a:-b`, 1 being the last result.
    Last(NonZeroU32, NonZeroU32),
}

impl PartialRange {
    /// The results the range names, in the order given (mailbox order); positions past
    /// either end name nothing.
    pub fn pick<T>(self, items: &[T]) -> &[T] {
        let (PartialRange::First(a, b) | PartialRange::Last(a, b)) = self;
        let (lo, hi) = (a.min(b).get() as usize, a.max(b).get() as usize);
        let len = items.len();
        if lo > len {
            return &[];
        }
        let span = match self {
            PartialRange::First(..) => lo - 1..hi.min(len),
            PartialRange::Last(..) => len.saturating_sub(hi)..len - (lo - 1),
        };
        items.get(span).unwrap_or_default()
    }
}

/// The entry type of a MODSEQ search key (RFC 7162 §3.1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryType {
    /// `priv`.
    Private,
    /// `shared`.
    Shared,
    /// `all`.
    All,
}

/// A search key (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 5032, RFC 7162, RFC 8474, RFC 8514).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SearchKey {
    /// ALL.
    All,
    /// ANSWERED.
    Answered,
    /// BCC string.
    Bcc(Bytes),
    /// BEFORE date (internal date).
    Before(Date),
    /// BODY string.
    Body(Bytes),
    /// CC string.
    Cc(Bytes),
    /// DELETED.
    Deleted,
    /// DRAFT.
    Draft,
    /// FLAGGED.
    Flagged,
    /// FROM string.
    From(Bytes),
    /// HEADER field-name string.
    Header(Bytes, Bytes),
    /// KEYWORD flag-keyword.
    Keyword(Bytes),
    /// LARGER n.
    Larger(u64),
    /// NEW (IMAP4rev1: RECENT UNSEEN).
    New,
    /// NOT key.
    Not(Box<SearchKey>),
    /// OLD (IMAP4rev1: NOT RECENT).
    Old,
    /// ON date.
    On(Date),
    /// OR key key.
    Or(Box<SearchKey>, Box<SearchKey>),
    /// RECENT (IMAP4rev1).
    Recent,
    /// SEEN.
    Seen,
    /// SENTBEFORE date.
    SentBefore(Date),
    /// SENTON date.
    SentOn(Date),
    /// SENTSINCE date.
    SentSince(Date),
    /// SINCE date.
    Since(Date),
    /// SMALLER n.
    Smaller(u64),
    /// SUBJECT string.
    Subject(Bytes),
    /// TEXT string.
    Text(Bytes),
    /// TO string.
    To(Bytes),
    /// UID sequence-set.
    Uid(SequenceSet),
    /// UNANSWERED.
    Unanswered,
    /// UNDELETED.
    Undeleted,
    /// UNDRAFT.
    Undraft,
    /// UNFLAGGED.
    Unflagged,
    /// UNKEYWORD flag-keyword.
    Unkeyword(Bytes),
    /// UNSEEN.
    Unseen,
    /// A bare sequence set.
    SequenceSet(SequenceSet),
    /// A parenthesised list, or the top-level list: all must match.
    And(Vec<SearchKey>),
    /// OLDER seconds (RFC 5032).
    Older(u32),
    /// YOUNGER seconds (RFC 5032).
    Younger(u32),
    /// MODSEQ [entry-name entry-type] modseq (RFC 7162).
    ModSeq {
        /// The optional metadata entry and its type.
        entry: Option<(Bytes, EntryType)>,
        /// The minimum MODSEQ.
        modseq: u64,
    },
    /// EMAILID objectid (RFC 8474).
    EmailId(Bytes),
    /// THREADID objectid (RFC 8474).
    ThreadId(Bytes),
    /// SAVEDBEFORE date (RFC 8514).
    SavedBefore(Date),
    /// SAVEDON date (RFC 8514).
    SavedOn(Date),
    /// SAVEDSINCE date (RFC 8514).
    SavedSince(Date),
    /// SAVEDATESUPPORTED (RFC 8514).
    SaveDateSupported,
}

/// ESEARCH return options (RFC 4731, RFC 5182, RFC 9394).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SearchReturn {
    /// MIN.
    Min,
    /// MAX.
    Max,
    /// ALL.
    All,
    /// COUNT.
    Count,
    /// SAVE (RFC 5182).
    Save,
    /// PARTIAL range (RFC 9394).
    Partial(PartialRange),
}

/// SORT criteria (RFC 5256, RFC 5957): the grammar's keys are the storage contract's.
pub use crate::store::sort::{SortCriterion, SortKey};

/// THREAD algorithms (RFC 5256).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ThreadAlgorithm {
    /// ORDEREDSUBJECT.
    OrderedSubject,
    /// REFERENCES.
    References,
    /// Any other atom.
    Other(Bytes),
}

/// LIST selection options (RFC 5258, RFC 6154).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListSelect {
    /// SUBSCRIBED.
    Subscribed,
    /// REMOTE.
    Remote,
    /// RECURSIVEMATCH.
    RecursiveMatch,
    /// SPECIAL-USE.
    SpecialUse,
}

/// LIST return options (RFC 5258, RFC 5819, RFC 6154).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListReturn {
    /// SUBSCRIBED.
    Subscribed,
    /// CHILDREN.
    Children,
    /// SPECIAL-USE.
    SpecialUse,
    /// STATUS (items) (RFC 5819).
    Status(Vec<StatusItem>),
}

/// SELECT/EXAMINE parameters (RFC 7162).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SelectParam {
    /// CONDSTORE.
    CondStore,
    /// QRESYNC (uidvalidity modseq [known-uids [(seq-match-data)]]).
    QResync {
        /// The UIDVALIDITY the client last knew.
        uid_validity: u32,
        /// The HIGHESTMODSEQ the client last knew.
        mod_seq: u64,
        /// The UIDs the client knows.
        known_uids: Option<SequenceSet>,
        /// Known sequence numbers and their UIDs.
        seq_match: Option<(SequenceSet, SequenceSet)>,
    },
}

/// One message of APPEND (several with MULTIAPPEND, RFC 3502).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AppendMessage {
    /// Flags to set.
    pub flags: Vec<Flag>,
    /// The internal date to record.
    pub date: Option<DateTime>,
    /// The message octets (a slice of the received command).
    pub data: Bytes,
    /// Sent as `literal8` (`~{n}`, RFC 3516): may contain NUL.
    pub binary: bool,
}

/// GETMETADATA options (RFC 5464).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MetadataOptions {
    /// MAXSIZE n.
    pub max_size: Option<u32>,
    /// DEPTH 0 / 1 / infinity (`None` = 0).
    pub depth: Option<MetadataDepth>,
}

/// GETMETADATA depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetadataDepth {
    /// 0.
    Zero,
    /// 1.
    One,
    /// infinity.
    Infinity,
}

/// NOTIFY's mailbox filters (RFC 5465 §6).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NotifyFilter {
    /// SELECTED.
    Selected,
    /// SELECTED-DELAYED.
    SelectedDelayed,
    /// INBOXES.
    Inboxes,
    /// PERSONAL.
    Personal,
    /// SUBSCRIBED.
    Subscribed,
    /// SUBTREE mailboxes.
    Subtree(Vec<MailboxArg>),
    /// SUBTREE-ONE mailboxes (RFC 7377 §2.2): each and its children, one level down.
    SubtreeOne(Vec<MailboxArg>),
    /// MAILBOXES mailboxes.
    Mailboxes(Vec<MailboxArg>),
}

/// One NOTIFY event, e.g. `MessageNew (UID FLAGS)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NotifyEvent {
    /// The event name atom.
    pub name: Bytes,
    /// For MessageNew: the fetch attributes to send.
    pub fetch: Vec<FetchAttr>,
}

/// One `(filter events)` group of NOTIFY SET.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NotifyGroup {
    /// Which mailboxes.
    pub filter: NotifyFilter,
    /// The events; empty means NONE.
    pub events: Vec<NotifyEvent>,
}
