//! Server responses as values (RFC 9051 §7 and the extensions tern speaks or plans to).
//! `encode` turns them into octets; `tern-conformance` and the property tests parse them back.

use bytes::Bytes;

use super::command::Tag;
use super::types::{PartialRange, SearchReturn, SequenceSet, StatusItem};
use crate::mail::date::DateTime;
use crate::mail::flags::Flag;
use crate::mail::section::Section;
use crate::mail::structure::{BodyStructure, Envelope, NString};

/// A whole response line (with any literals it carries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// A status response, tagged or untagged.
    Status(StatusResponse),
    /// Untagged data.
    Data(Data),
    /// `+ text` or `+ base64` (a SASL challenge).
    Continue(Bytes),
}

/// The condition of a status response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    /// OK.
    Ok,
    /// NO.
    No,
    /// BAD.
    Bad,
    /// PREAUTH (greeting only).
    PreAuth,
    /// BYE (untagged only).
    Bye,
}

/// `[tag | *] condition [code] text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusResponse {
    /// `None` for untagged.
    pub tag: Option<Tag>,
    /// OK, NO, BAD, PREAUTH or BYE.
    pub condition: Condition,
    /// The optional response code.
    pub code: Option<Code>,
    /// Human-readable text (never empty on the wire: RFC 9051 requires text).
    pub text: String,
}

/// Response codes (RFC 9051 §7.1, RFC 5530, RFC 4315, RFC 7162, RFC 4469, RFC 2221...).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    /// ALERT.
    Alert,
    /// ALREADYEXISTS.
    AlreadyExists,
    /// APPENDUID uidvalidity uid-set.
    AppendUid {
        /// The target's UIDVALIDITY.
        uid_validity: u32,
        /// The new UIDs.
        uids: SequenceSet,
    },
    /// AUTHENTICATIONFAILED.
    AuthenticationFailed,
    /// AUTHORIZATIONFAILED.
    AuthorizationFailed,
    /// BADCHARSET [(charsets)].
    BadCharset(Vec<Bytes>),
    /// CANNOT.
    Cannot,
    /// CAPABILITY caps.
    Capability(Vec<Bytes>),
    /// CLIENTBUG.
    ClientBug,
    /// COMPRESSIONACTIVE (RFC 4978).
    CompressionActive,
    /// CLOSED (RFC 7162).
    Closed,
    /// CONTACTADMIN.
    ContactAdmin,
    /// COPYUID uidvalidity source-uids target-uids.
    CopyUid {
        /// The target's UIDVALIDITY.
        uid_validity: u32,
        /// The source UIDs.
        source: SequenceSet,
        /// The target UIDs, in the same order.
        target: SequenceSet,
    },
    /// CORRUPTION.
    Corruption,
    /// EXPIRED.
    Expired,
    /// EXPUNGEISSUED.
    ExpungeIssued,
    /// HASCHILDREN.
    HasChildren,
    /// HIGHESTMODSEQ n (RFC 7162).
    HighestModSeq(u64),
    /// INUSE.
    InUse,
    /// UIDREQUIRED (RFC 9586 §3): message numbers sent once UIDONLY is on.
    UidRequired,
    /// LIMIT.
    Limit,
    /// MODIFIED set (RFC 7162).
    Modified(SequenceSet),
    /// NOMODSEQ (RFC 7162).
    NoModSeq,
    /// NONEXISTENT.
    NonExistent,
    /// NOPERM.
    NoPerm,
    /// NOTSAVED (RFC 5182).
    NotSaved,
    /// OVERQUOTA.
    OverQuota,
    /// PARSE.
    Parse,
    /// PERMANENTFLAGS (flags), `\*` included when `keywords` is set.
    PermanentFlags {
        /// The flags.
        flags: Vec<Flag>,
        /// Whether new keywords may be created (`\*`).
        keywords: bool,
    },
    /// PRIVACYREQUIRED.
    PrivacyRequired,
    /// READ-ONLY.
    ReadOnly,
    /// READ-WRITE.
    ReadWrite,
    /// SERVERBUG.
    ServerBug,
    /// TOOBIG (RFC 4469/9051).
    TooBig,
    /// TRYCREATE.
    TryCreate,
    /// UIDNEXT n.
    UidNext(u32),
    /// UIDNOTSTICKY.
    UidNotSticky,
    /// UIDVALIDITY n.
    UidValidity(u32),
    /// UNAVAILABLE.
    Unavailable,
    /// UNKNOWN-CTE (RFC 3516).
    UnknownCte,
    /// UNSEEN n (IMAP4rev1).
    Unseen(u32),
    /// MAILBOXID (objectid) (RFC 8474).
    MailboxId(Bytes),
    /// METADATA LONGENTRIES n / MAXSIZE n / TOOMANY / NOPRIVATE (RFC 5464 §4.2.1, §4.3).
    Metadata(MetadataCode),
    /// INPROGRESS [(tag done goal)] (RFC 9585 §4), in untagged OKs while a command runs;
    /// `None` for the bare code.
    InProgress(Option<Progress>),
    /// Any other atom with optional text, e.g. from an extension tern relays.
    Other(Bytes, Option<Bytes>),
}

/// What a `[METADATA ...]` response code says (RFC 5464 §5 `resp-text-code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataCode {
    /// GETMETADATA left out values larger than MAXSIZE; the largest was this long.
    LongEntries(u32),
    /// SETMETADATA: no value may be longer than this.
    MaxSize(u32),
    /// SETMETADATA: no more entries can be made.
    TooMany,
    /// SETMETADATA: private entries are not supported there.
    NoPrivate,
}

/// INPROGRESS details (RFC 9585 §4). A goal comes only with a count of what is done, and is
/// above it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The running command's tag; NIL when unknown or when it holds `]`.
    pub tag: Option<Bytes>,
    /// Items processed so far; NIL when not counted.
    pub done: Option<u32>,
    /// Items to process in all; NIL when not known.
    pub goal: Option<u32>,
}

/// Untagged data responses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Data {
    /// `* CAPABILITY ...`.
    Capability(Vec<Bytes>),
    /// `* ENABLED ...` (RFC 5161).
    Enabled(Vec<Bytes>),
    /// `* LIST (attrs) delim name [extended]`.
    List(ListItem),
    /// `* LSUB (attrs) delim name` (IMAP4rev1).
    Lsub(ListItem),
    /// `* NAMESPACE personal other shared` (RFC 2342): each `None` (NIL) or a list of
    /// (prefix, delimiter).
    Namespace {
        /// Personal namespaces.
        personal: Option<Vec<(Bytes, Option<u8>)>>,
        /// Other users' namespaces.
        other: Option<Vec<(Bytes, Option<u8>)>>,
        /// Shared namespaces.
        shared: Option<Vec<(Bytes, Option<u8>)>>,
    },
    /// `* STATUS mailbox (item value ...)`.
    Status {
        /// The mailbox, encoded for the wire.
        mailbox: Bytes,
        /// Items and values.
        items: Vec<(StatusItem, StatusValue)>,
    },
    /// `* ESEARCH [(TAG "t" [MAILBOX m UIDVALIDITY v])] [UID] results` (RFC 4731, RFC 7377
    /// §2.1).
    ESearch {
        /// The tag of the command this answers.
        tag: Option<Tag>,
        /// MULTISEARCH's other correlators: the mailbox searched (as the wire names it) and
        /// its UIDVALIDITY. Only beside a tag.
        mailbox: Option<(Bytes, u32)>,
        /// Whether the numbers are UIDs.
        uid: bool,
        /// MIN/MAX/COUNT/ALL values (and MODSEQ).
        results: Vec<ESearchResult>,
    },
    /// `* SEARCH n...` (IMAP4rev1), with `(MODSEQ n)` under CONDSTORE.
    Search {
        /// Matching numbers.
        numbers: Vec<u32>,
        /// The highest MODSEQ of the matches, if requested.
        mod_seq: Option<u64>,
    },
    /// `* SORT n...` (RFC 5256), with `(MODSEQ n)` under CONDSTORE (RFC 7162 §3.1.9).
    Sort {
        /// The numbers in sort order.
        numbers: Vec<u32>,
        /// The highest MODSEQ of the matches, if requested.
        mod_seq: Option<u64>,
    },
    /// `* THREAD ...` (RFC 5256).
    Thread(Vec<ThreadNode>),
    /// `* FLAGS (...)`.
    Flags(Vec<Flag>),
    /// `* n EXISTS`.
    Exists(u32),
    /// `* n RECENT` (IMAP4rev1).
    Recent(u32),
    /// `* n EXPUNGE`.
    Expunge(u32),
    /// `* VANISHED [(EARLIER)] uids` (RFC 7162).
    Vanished {
        /// EARLIER.
        earlier: bool,
        /// The UIDs.
        uids: SequenceSet,
    },
    /// `* n FETCH (...)`.
    Fetch {
        /// The sequence number.
        seq: u32,
        /// The items.
        items: Vec<FetchItem>,
    },
    /// `* u UIDFETCH (...)` (RFC 9586 §3.3): FETCH data named by UID once UIDONLY is on.
    UidFetch {
        /// The message's UID.
        uid: u32,
        /// The items.
        items: Vec<FetchItem>,
    },
    /// `* ID (...)` or `* ID NIL` (RFC 2971).
    Id(Option<Vec<(Bytes, NString)>>),
    /// `* QUOTA root (resource usage limit ...)` (RFC 9208).
    Quota {
        /// The root.
        root: Bytes,
        /// (resource, usage, limit).
        resources: Vec<(Bytes, u64, u64)>,
    },
    /// `* QUOTAROOT mailbox root...`.
    QuotaRoot {
        /// The mailbox.
        mailbox: Bytes,
        /// Its roots.
        roots: Vec<Bytes>,
    },
    /// `* METADATA mailbox (entry value ...)` (RFC 5464).
    Metadata {
        /// The mailbox.
        mailbox: Bytes,
        /// Entries and values.
        entries: Vec<(Bytes, NString)>,
    },
}

/// A value in STATUS data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusValue {
    /// A number.
    Number(u64),
    /// APPENDLIMIT NIL (no limit).
    Nil,
    /// MAILBOXID (objectid).
    ObjectId(Bytes),
}

/// One LIST/LSUB line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListItem {
    /// Name attributes, e.g. `\HasNoChildren`, `\Sent` (written with their backslash).
    pub attributes: Vec<Bytes>,
    /// The hierarchy delimiter, or `None` for NIL.
    pub delimiter: Option<u8>,
    /// The mailbox name, encoded for the wire (modified UTF-7 or UTF-8).
    pub name: Bytes,
    /// `("CHILDINFO" ("SUBSCRIBED"))`, `("OLDNAME" ("x"))` extended items.
    pub extended: Vec<(Bytes, Vec<Bytes>)>,
}

/// ESEARCH result items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ESearchResult {
    /// MIN n.
    Min(u32),
    /// MAX n.
    Max(u32),
    /// COUNT n.
    Count(u32),
    /// ALL set.
    All(SequenceSet),
    /// MODSEQ n.
    ModSeq(u64),
    /// PARTIAL (range set), the set `None` (NIL) when no result lies in the range (RFC 9394).
    Partial(PartialRange, Option<SequenceSet>),
}

impl ESearchResult {
    /// The return option this result answers.
    pub fn option(&self) -> Option<SearchReturn> {
        match self {
            ESearchResult::Min(_) => Some(SearchReturn::Min),
            ESearchResult::Max(_) => Some(SearchReturn::Max),
            ESearchResult::Count(_) => Some(SearchReturn::Count),
            ESearchResult::All(_) => Some(SearchReturn::All),
            ESearchResult::Partial(range, _) => Some(SearchReturn::Partial(*range)),
            ESearchResult::ModSeq(_) => None,
        }
    }
}

/// A THREAD response tree: a message and its children. A node without a message (a missing
/// parent) has `seq = None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadNode {
    /// The message number, if the node is a message.
    pub seq: Option<u32>,
    /// Replies.
    pub children: Vec<ThreadNode>,
}

/// One FETCH data item.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchItem {
    /// FLAGS (...).
    Flags(Vec<Flag>),
    /// UID n.
    Uid(u32),
    /// INTERNALDATE "...".
    InternalDate(DateTime),
    /// RFC822.SIZE n.
    Rfc822Size(u64),
    /// ENVELOPE (...).
    Envelope(Box<Envelope>),
    /// BODY (...) without extension data.
    Body(Box<BodyStructure>),
    /// BODYSTRUCTURE (...) with extension data.
    BodyStructure(Box<BodyStructure>),
    /// `BODY[section]<origin> data`.
    BodySection {
        /// The section as requested.
        section: Section,
        /// The origin octet of a partial fetch.
        origin: Option<u32>,
        /// The octets (NIL when the part does not exist, per some servers; tern sends "").
        data: NString,
    },
    /// `BINARY[part]<origin> data` (literal8 when it holds NUL).
    Binary {
        /// Part numbers.
        part: Vec<u32>,
        /// The origin octet of a partial fetch.
        origin: Option<u32>,
        /// The decoded octets.
        data: NString,
    },
    /// `BINARY.SIZE[part] n`.
    BinarySize {
        /// Part numbers.
        part: Vec<u32>,
        /// Decoded size.
        size: u64,
    },
    /// RFC822 data (IMAP4rev1).
    Rfc822(NString),
    /// RFC822.HEADER data (IMAP4rev1).
    Rfc822Header(NString),
    /// RFC822.TEXT data (IMAP4rev1).
    Rfc822Text(NString),
    /// MODSEQ (n).
    ModSeq(u64),
    /// EMAILID (id).
    EmailId(Bytes),
    /// THREADID (id) or NIL.
    ThreadId(NString),
    /// SAVEDATE "..." or NIL.
    SaveDate(Option<DateTime>),
    /// PREVIEW "..." or NIL.
    Preview(NString),
}
