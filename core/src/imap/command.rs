//! Client commands as owned values (RFC 9051 §6, RFC 3501 §6 and the extensions tern speaks
//! or plans to). Payloads are `Bytes` slices of the received command, so decoding copies
//! nothing but unescaped quoted strings.

use bytes::Bytes;

use super::types::{
    AppendMessage, FetchItems, FetchModifiers, ListPattern, ListReturn, ListSelect, MailboxArg,
    MetadataOptions, NotifyFilter, NotifyGroup, SearchKey, SearchReturn, SelectParam, SeqNo,
    SequenceSet, SortCriterion, StatusItem, ThreadAlgorithm,
};
use crate::mail::flags::{Flag, StoreMode};
use crate::secret::Secret;

/// A command tag: `1*<any ASTRING-CHAR except "+">`, echoed verbatim in the tagged response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tag(Bytes);

impl Tag {
    /// Validates a tag; `None` for an empty one or one with a character the grammar excludes.
    pub fn new(raw: Bytes) -> Option<Tag> {
        (!raw.is_empty() && raw.iter().all(|&b| super::is_tag_char(b))).then(|| Tag::own(&raw))
    }

    /// A tag the grammar has already checked character by character.
    pub(crate) fn from_checked(raw: Bytes) -> Tag {
        debug_assert!(Tag::new(raw.clone()).is_some());
        Tag::own(&raw)
    }

    /// A tag outlives its command (the command's answer carries it), so it holds a copy of
    /// its few octets rather than a slice of the command: a slice would keep the whole
    /// command, a large APPEND literal included, in memory until the answer.
    fn own(raw: &[u8]) -> Tag {
        Tag(Bytes::copy_from_slice(raw))
    }

    /// The tag's octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// One command with its tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLine {
    /// The client's tag.
    pub tag: Tag,
    /// What it asks for.
    pub command: Command,
}

/// A SEARCH (or the search part of SORT/THREAD).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchProgram {
    /// `CHARSET name`, if given.
    pub charset: Option<Bytes>,
    /// The keys; all must match (an implicit AND).
    pub criteria: Vec<SearchKey>,
}

/// Every command tern parses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    // ---- any state (RFC 9051 §6.1)
    /// CAPABILITY.
    Capability,
    /// NOOP.
    Noop,
    /// LOGOUT.
    Logout,
    /// ID (RFC 2971): `NIL` or field/value pairs.
    Id(Option<Vec<(Bytes, Option<Bytes>)>>),

    // ---- not authenticated (RFC 9051 §6.2)
    /// STARTTLS.
    StartTls,
    /// AUTHENTICATE mechanism [initial-response] (SASL-IR, RFC 4959).
    Authenticate {
        /// The SASL mechanism name as sent.
        mechanism: Bytes,
        /// The base64 initial response (`=` for an empty one), not yet decoded.
        initial_response: Option<Secret<Bytes>>,
    },
    /// LOGIN user password.
    Login {
        /// The user name.
        username: Bytes,
        /// The password.
        password: Secret<Bytes>,
    },

    // ---- authenticated (RFC 9051 §6.3)
    /// ENABLE capabilities (RFC 5161).
    Enable(Vec<Bytes>),
    /// SELECT mailbox [(params)].
    Select {
        /// The mailbox.
        mailbox: MailboxArg,
        /// CONDSTORE / QRESYNC.
        params: Vec<SelectParam>,
    },
    /// EXAMINE mailbox [(params)].
    Examine {
        /// The mailbox.
        mailbox: MailboxArg,
        /// CONDSTORE / QRESYNC.
        params: Vec<SelectParam>,
    },
    /// CREATE mailbox [(USE (special-use...))] (RFC 6154 §3).
    Create {
        /// The new mailbox.
        mailbox: MailboxArg,
        /// Special-use attributes to give it, e.g. `\Drafts`.
        special_use: Vec<Bytes>,
    },
    /// DELETE mailbox.
    Delete {
        /// The mailbox.
        mailbox: MailboxArg,
    },
    /// RENAME from to.
    Rename {
        /// The existing name.
        from: MailboxArg,
        /// The new name.
        to: MailboxArg,
    },
    /// SUBSCRIBE mailbox.
    Subscribe {
        /// The mailbox.
        mailbox: MailboxArg,
    },
    /// UNSUBSCRIBE mailbox.
    Unsubscribe {
        /// The mailbox.
        mailbox: MailboxArg,
    },
    /// LIST, basic or extended (RFC 5258).
    List {
        /// Selection options; empty for a basic LIST.
        select: Vec<ListSelect>,
        /// The reference name.
        reference: MailboxArg,
        /// One pattern, or several in parentheses.
        patterns: Vec<ListPattern>,
        /// RETURN options.
        returns: Vec<ListReturn>,
    },
    /// LSUB reference pattern (IMAP4rev1).
    Lsub {
        /// The reference name.
        reference: MailboxArg,
        /// The pattern.
        pattern: ListPattern,
    },
    /// NAMESPACE (RFC 2342).
    Namespace,
    /// STATUS mailbox (items).
    Status {
        /// The mailbox.
        mailbox: MailboxArg,
        /// What to report.
        items: Vec<StatusItem>,
    },
    /// APPEND mailbox message... (MULTIAPPEND allows several).
    Append {
        /// The target.
        mailbox: MailboxArg,
        /// One or more messages.
        messages: Vec<AppendMessage>,
    },
    /// [UID] REPLACE message mailbox append-message (RFC 8508): one message appended to
    /// `mailbox` and the named message of the selected mailbox expunged, as one change.
    Replace {
        /// UID REPLACE.
        uid: bool,
        /// The message to replace: a sequence number or a UID, `*` the last.
        target: SeqNo,
        /// Where the new message goes.
        mailbox: MailboxArg,
        /// The new message.
        message: AppendMessage,
    },
    /// IDLE (RFC 2177); ended by a `DONE` line.
    Idle,
    /// GETQUOTA root (RFC 9208).
    GetQuota {
        /// The quota root.
        root: Bytes,
    },
    /// GETQUOTAROOT mailbox.
    GetQuotaRoot {
        /// The mailbox.
        mailbox: MailboxArg,
    },
    /// SETQUOTA root (resource limit ...).
    SetQuota {
        /// The quota root.
        root: Bytes,
        /// Resource names and limits.
        limits: Vec<(Bytes, u64)>,
    },
    /// GETMETADATA [options] mailbox entries (RFC 5464).
    GetMetadata {
        /// MAXSIZE / DEPTH.
        options: MetadataOptions,
        /// The mailbox (empty for server metadata).
        mailbox: MailboxArg,
        /// Entry names.
        entries: Vec<Bytes>,
    },
    /// SETMETADATA mailbox (entry value ...).
    SetMetadata {
        /// The mailbox (empty for server metadata).
        mailbox: MailboxArg,
        /// Entries and values (`None` = NIL, delete).
        entries: Vec<(Bytes, Option<Bytes>)>,
    },
    /// ESEARCH [IN (sources)] [RETURN (...)] criteria (RFC 7377 MULTISEARCH): a UID SEARCH
    /// of each source mailbox.
    ESearch {
        /// The mailboxes to search; `None` for the selected one.
        sources: Option<Vec<NotifyFilter>>,
        /// Return options.
        returns: Option<Vec<SearchReturn>>,
        /// The search.
        program: SearchProgram,
    },
    /// NOTIFY NONE / NOTIFY SET [STATUS] groups (RFC 5465).
    Notify {
        /// `None` for NOTIFY NONE.
        set: Option<NotifySet>,
    },
    /// COMPRESS mechanism (RFC 4978).
    Compress {
        /// The mechanism (DEFLATE).
        mechanism: Bytes,
    },

    // ---- selected (RFC 9051 §6.4)
    /// CHECK (IMAP4rev1).
    Check,
    /// CLOSE.
    Close,
    /// UNSELECT (RFC 3691).
    Unselect,
    /// UNAUTHENTICATE (RFC 8437): back to the not-authenticated state (authenticated or
    /// selected).
    Unauthenticate,
    /// EXPUNGE.
    Expunge,
    /// UID EXPUNGE set (RFC 4315).
    UidExpunge(SequenceSet),
    /// [UID] SEARCH [RETURN (...)] [CHARSET x] keys.
    Search {
        /// UID SEARCH.
        uid: bool,
        /// `None`: classic SEARCH; `Some`: ESEARCH with these return options (empty = ALL).
        returns: Option<Vec<SearchReturn>>,
        /// The search.
        program: SearchProgram,
    },
    /// [UID] SORT [RETURN (...)] (criteria) charset keys (RFC 5256, RFC 5267 ESORT).
    Sort {
        /// UID SORT.
        uid: bool,
        /// ESORT return options, as for SEARCH.
        returns: Option<Vec<SearchReturn>>,
        /// Sort criteria.
        criteria: Vec<SortCriterion>,
        /// The search (its charset is mandatory in SORT).
        program: SearchProgram,
    },
    /// [UID] THREAD algorithm charset keys (RFC 5256).
    Thread {
        /// UID THREAD.
        uid: bool,
        /// The algorithm.
        algorithm: ThreadAlgorithm,
        /// The search.
        program: SearchProgram,
    },
    /// [UID] FETCH set items [(modifiers)].
    Fetch {
        /// UID FETCH.
        uid: bool,
        /// Which messages.
        set: SequenceSet,
        /// What of them.
        items: FetchItems,
        /// CHANGEDSINCE / VANISHED.
        modifiers: FetchModifiers,
    },
    /// [UID] STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags.
    Store {
        /// UID STORE.
        uid: bool,
        /// Which messages.
        set: SequenceSet,
        /// UNCHANGEDSINCE (RFC 7162).
        unchanged_since: Option<u64>,
        /// Replace, add or remove.
        mode: StoreMode,
        /// .SILENT.
        silent: bool,
        /// The flags.
        flags: Vec<Flag>,
    },
    /// [UID] COPY set mailbox.
    Copy {
        /// UID COPY.
        uid: bool,
        /// Which messages.
        set: SequenceSet,
        /// The target.
        mailbox: MailboxArg,
    },
    /// [UID] MOVE set mailbox (RFC 6851).
    Move {
        /// UID MOVE.
        uid: bool,
        /// Which messages.
        set: SequenceSet,
        /// The target.
        mailbox: MailboxArg,
    },

    /// A well-formed command name tern does not know; answered with `BAD`.
    Unknown {
        /// The command name as sent.
        name: Bytes,
    },
}

/// The body of NOTIFY SET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySet {
    /// The STATUS indicator.
    pub status: bool,
    /// The event groups.
    pub groups: Vec<NotifyGroup>,
}

impl Command {
    /// The command's name for logs (never its arguments, which may hold credentials).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capability => "CAPABILITY",
            Command::Noop => "NOOP",
            Command::Logout => "LOGOUT",
            Command::Id(_) => "ID",
            Command::StartTls => "STARTTLS",
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::Login { .. } => "LOGIN",
            Command::Enable(_) => "ENABLE",
            Command::Select { .. } => "SELECT",
            Command::Examine { .. } => "EXAMINE",
            Command::Create { .. } => "CREATE",
            Command::Delete { .. } => "DELETE",
            Command::Rename { .. } => "RENAME",
            Command::Subscribe { .. } => "SUBSCRIBE",
            Command::Unsubscribe { .. } => "UNSUBSCRIBE",
            Command::List { .. } => "LIST",
            Command::Lsub { .. } => "LSUB",
            Command::Namespace => "NAMESPACE",
            Command::Status { .. } => "STATUS",
            Command::Append { .. } => "APPEND",
            Command::Replace { uid: false, .. } => "REPLACE",
            Command::Replace { uid: true, .. } => "UID REPLACE",
            Command::Idle => "IDLE",
            Command::GetQuota { .. } => "GETQUOTA",
            Command::GetQuotaRoot { .. } => "GETQUOTAROOT",
            Command::SetQuota { .. } => "SETQUOTA",
            Command::GetMetadata { .. } => "GETMETADATA",
            Command::SetMetadata { .. } => "SETMETADATA",
            Command::Notify { .. } => "NOTIFY",
            Command::ESearch { .. } => "ESEARCH",
            Command::Compress { .. } => "COMPRESS",
            Command::Check => "CHECK",
            Command::Close => "CLOSE",
            Command::Unselect => "UNSELECT",
            Command::Unauthenticate => "UNAUTHENTICATE",
            Command::Expunge => "EXPUNGE",
            Command::UidExpunge(_) => "UID EXPUNGE",
            Command::Search { uid: false, .. } => "SEARCH",
            Command::Search { uid: true, .. } => "UID SEARCH",
            Command::Sort { uid: false, .. } => "SORT",
            Command::Sort { uid: true, .. } => "UID SORT",
            Command::Thread { uid: false, .. } => "THREAD",
            Command::Thread { uid: true, .. } => "UID THREAD",
            Command::Fetch { uid: false, .. } => "FETCH",
            Command::Fetch { uid: true, .. } => "UID FETCH",
            Command::Store { uid: false, .. } => "STORE",
            Command::Store { uid: true, .. } => "UID STORE",
            Command::Copy { uid: false, .. } => "COPY",
            Command::Copy { uid: true, .. } => "UID COPY",
            Command::Move { uid: false, .. } => "MOVE",
            Command::Move { uid: true, .. } => "UID MOVE",
            Command::Unknown { .. } => "(unknown)",
        }
    }
}
