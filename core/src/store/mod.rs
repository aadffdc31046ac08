//! Storage as requests and replies.
//!
//! A session never calls storage. It emits a [`StorageRequest`] through
//! [`crate::Output::Storage`] (at most one in flight) and continues when the driver feeds the
//! matching reply back with [`crate::Input::Storage`]. The driver decides how to run the request:
//! inline, on a thread pool, or over the network. [`Store`] is the synchronous form that the
//! in-memory store and the embedded durable store implement.
//!
//! Protocol semantics stay in the session: sequence numbers, when an EXPUNGE may be announced,
//! `\Recent` bookkeeping per session, and what particular mailbox names mean ([`rules`]).
//! Storage stores, and answers searches exactly as [`MemStore`] does. Logins are not
//! storage's business: they are directory requests ([`crate::directory`]), and no
//! [`StorageOp`] carries one.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::mail::analyze::MessageInfo;
use crate::mail::date::DateTime;
use crate::mail::flags::{Flag, Flags, StoreMode};

pub mod body;
pub mod contract;
pub mod evaluate;
pub mod headline;
pub mod import;
mod mem;
pub mod metadata;
pub mod objectid;
pub mod pins;
pub mod query;
pub mod rules;
pub mod sort;
pub mod stored;
pub mod threading;

pub use body::{Body, BodySource, BodyStream, DotStuffer, Transfer};
pub use contract::{ChangeSink, MailStore, ReplySink, SharedMemStore};
pub use mem::MemStore;
pub use objectid::{EmailId, ObjectKey, ThreadId};
pub use pins::{Pins, ViewPin};
pub use query::Query;
pub use rules::{AccountTemplate, NewMailbox};

/// A message's unique identifier within its mailbox (RFC 9051 §2.3.1.1); never 0.
pub type Uid = u32;
/// A modification sequence (RFC 7162); grows with every change in a mailbox.
pub type ModSeq = u64;

/// Names one request (storage or directory) of one session; the reply must carry the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub(crate) u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A mailbox's identity inside an account: stable across RENAME, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId(pub u64);

/// A request the session wants executed.
#[derive(Debug)]
pub struct StorageRequest {
    /// Echo this in [`crate::Input::Storage`].
    pub id: RequestId,
    /// What to do.
    pub op: StorageOp,
}

/// RFC 6154 special uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    /// `\All`.
    All,
    /// `\Archive`.
    Archive,
    /// `\Drafts`.
    Drafts,
    /// `\Flagged`.
    Flagged,
    /// `\Junk`.
    Junk,
    /// `\Sent`.
    Sent,
    /// `\Trash`.
    Trash,
}

impl SpecialUse {
    /// The attribute as LIST shows it.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    /// Parses an attribute (case-insensitive, backslash included).
    pub fn from_attribute(a: &[u8]) -> Option<SpecialUse> {
        [
            SpecialUse::All,
            SpecialUse::Archive,
            SpecialUse::Drafts,
            SpecialUse::Flagged,
            SpecialUse::Junk,
            SpecialUse::Sent,
            SpecialUse::Trash,
        ]
        .into_iter()
        .find(|s| s.attribute().as_bytes().eq_ignore_ascii_case(a))
    }
}

/// Bounds a store holds every account to, whatever its clients ask; the runtime sets them
/// from its configuration (`[limits]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Mailboxes one account may have, `\Noselect` parents included; CREATE past it is
    /// refused with `StorageError::Limit` (IMAP `NO [LIMIT]`).
    pub max_mailboxes: usize,
    /// Work one SEARCH may do, in [`evaluate::Meter`] units; past it the search stops with
    /// `StorageError::Limit`.
    pub search_work: u64,
    /// METADATA entries one account may hold, on the server and all its mailboxes together
    /// (RFC 5464 §4.1 asks for at least 10 per mailbox); SETMETADATA past it is refused with
    /// `StorageError::Limit` (IMAP `NO [METADATA TOOMANY]`).
    pub metadata_entries: usize,
}

impl Default for StoreLimits {
    fn default() -> StoreLimits {
        StoreLimits {
            max_mailboxes: 10_000,
            search_work: evaluate::DEFAULT_SEARCH_WORK,
            metadata_entries: 1000,
        }
    }
}

/// The state of one message as a session's view needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageState {
    /// Its UID.
    pub uid: Uid,
    /// Its flags.
    pub flags: Flags,
    /// The MODSEQ of its last change.
    pub modseq: ModSeq,
}

/// One mailbox in a LIST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxEntry {
    /// Canonical UTF-8 name, `/`-delimited.
    pub name: String,
    /// Its special use, if any.
    pub special_use: Option<SpecialUse>,
    /// False for a `\Noselect` name kept because it has children (RFC 9051 §6.3.5).
    pub selectable: bool,
}

/// The account's mailboxes and subscriptions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailboxList {
    /// Every existing mailbox.
    pub mailboxes: Vec<MailboxEntry>,
    /// Subscribed names (which need not exist, RFC 9051 §6.3.7).
    pub subscribed: Vec<String>,
}

/// What an account holds, all mailboxes together: [`StorageOp::Usage`]'s answer, the figures
/// of quota (RFC 9208 MESSAGE and STORAGE) and of the operator's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountUsage {
    /// Messages in all mailboxes.
    pub messages: u64,
    /// The sum of their RFC822.SIZEs: a message in two mailboxes counts twice, as quota
    /// counts it, however a backend shares the octets.
    pub octets: u64,
}

/// An account's quota (RFC 9208): bounds on what all its mailboxes hold together, one quota
/// root per account. `None` is no bound. Held to by [`StorageOp::WithinQuota`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Quota {
    /// STORAGE: at most this many octets (the sum of RFC822.SIZEs, as [`AccountUsage`]
    /// counts them; IMAP shows it in units of 1024).
    pub octets: Option<u64>,
    /// MESSAGE: at most this many messages.
    pub messages: Option<u64>,
}

impl Quota {
    /// No bound at all: the session then sends its writes unwrapped.
    pub fn is_unlimited(&self) -> bool {
        self.octets.is_none() && self.messages.is_none()
    }

    /// `op` held to this quota: [`StorageOp::WithinQuota`], or `op` itself when there is no
    /// bound (nothing to check, nothing to cost).
    pub fn hold(self, op: StorageOp) -> StorageOp {
        if self.is_unlimited() {
            op
        } else {
            StorageOp::WithinQuota {
                quota: self,
                op: Box::new(op),
            }
        }
    }

    /// Whether a change from `before` to `after` is refused: some resource it raised ends
    /// above its bound. A change that lowers or keeps a resource passes even when it stays
    /// above (an EXPUNGE, a MOVE between the account's mailboxes, a REPLACE by a smaller
    /// message), so an account over a lowered quota can always free space.
    pub fn refuses(&self, before: AccountUsage, after: AccountUsage) -> bool {
        let over = |limit: Option<u64>, before: u64, after: u64| {
            limit.is_some_and(|limit| after > before && after > limit)
        };
        over(self.messages, before.messages, after.messages)
            || over(self.octets, before.octets, after.octets)
    }
}

/// STATUS figures of a mailbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    /// The mailbox.
    pub id: Option<MailboxId>,
    /// MESSAGES.
    pub messages: u32,
    /// RECENT: messages not yet claimed as recent by any session.
    pub recent: u32,
    /// UIDNEXT.
    pub uid_next: Uid,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UNSEEN.
    pub unseen: u32,
    /// DELETED.
    pub deleted: u32,
    /// DELETED-STORAGE (RFC 9208 §4.1.4): the octets of the `\Deleted` messages, what an
    /// EXPUNGE would free.
    pub deleted_size: u64,
    /// SIZE: total octets.
    pub size: u64,
    /// HIGHESTMODSEQ.
    pub highest_modseq: ModSeq,
    /// The account's key for MAILBOXID (RFC 8474; [`objectid`]).
    pub object_key: ObjectKey,
}

/// What SELECT/EXAMINE learns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The mailbox.
    pub id: MailboxId,
    /// The account's key for MAILBOXID, EMAILID and THREADID (RFC 8474; [`objectid`]).
    pub object_key: ObjectKey,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT.
    pub uid_next: Uid,
    /// HIGHESTMODSEQ.
    pub highest_modseq: ModSeq,
    /// Every message's UID, ascending. Flags are not part of it: a session learns them from
    /// FETCH, so a SELECT of a large mailbox moves only four bytes per message. Shared: a
    /// store may hand every session of a mailbox the same list, which a session copies only
    /// when its view of the mailbox changes.
    pub uids: Arc<Vec<Uid>>,
    /// The lowest UID without `\Seen` (IMAP4rev1's `[UNSEEN n]`).
    pub first_unseen: Option<Uid>,
    /// UIDs this session holds as `\Recent`: claimed by SELECT, only shown to EXAMINE.
    pub recent: Vec<Uid>,
    /// Keywords defined in the mailbox, for FLAGS and PERMANENTFLAGS.
    pub keywords: Vec<Bytes>,
    /// Keeps messages expunged by others readable to this session until it has announced
    /// their expunge (see [`pins`]); the session holds it while the mailbox is selected.
    pub pin: ViewPin,
}

/// What changed since a session last looked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Messages with UIDs at or above the session's known UIDNEXT, ascending.
    pub added: Vec<MessageState>,
    /// Known messages whose flags changed after the session's MODSEQ.
    pub changed: Vec<MessageState>,
    /// Known UIDs that no longer exist, ascending.
    pub expunged: Vec<Uid>,
    /// UIDs newly claimed as `\Recent` by this session.
    pub recent: Vec<Uid>,
    /// HIGHESTMODSEQ now.
    pub highest_modseq: ModSeq,
    /// UIDNEXT now.
    pub uid_next: Uid,
    /// Keywords defined now.
    pub keywords: Vec<Bytes>,
    /// The mailbox was deleted (or renumbered) under the session.
    pub gone: bool,
}

/// A message to APPEND.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// Flags to set.
    pub flags: Vec<Flag>,
    /// The internal date; `None` means "now" by the store's clock.
    pub internal_date: Option<DateTime>,
    /// The message octets, line ends already CRLF.
    pub data: Bytes,
}

/// What FETCH needs loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchWant {
    /// The message octets (BODY[...], RFC822, BINARY).
    pub content: bool,
    /// The parsed structure (ENVELOPE, BODYSTRUCTURE, sections).
    pub info: bool,
    /// With `content`: the octets up to the end of the message's header are enough (every
    /// item asked for is the top-level header or some of its fields). A store may then hand
    /// an in-memory body cut there ([`Body::header_only`]), so that a FETCH of headers moves
    /// and holds a fraction of the octets; sending the whole message is right too.
    pub header_only: bool,
    /// PREVIEW (RFC 8970).
    pub preview: PreviewWant,
}

/// Whether and how FETCH wants each message's preview ([`crate::mail::preview`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PreviewWant {
    /// Not at all.
    #[default]
    No,
    /// `PREVIEW (LAZY)`: the preview if the store has it at hand, else none (NIL, RFC 8970
    /// §4.1). A store that computes previews when it stores bodies always has them, except
    /// for bodies it stored before it kept previews.
    Lazy,
    /// `PREVIEW`: always, computed from the body now if it must be (RFC 8970 §3.2: "MUST NOT
    /// return NIL" without LAZY).
    Always,
}

/// One fetched message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedMessage {
    /// Its UID.
    pub uid: Uid,
    /// Flags after any implicit `\Seen`.
    pub flags: Flags,
    /// Its MODSEQ after any implicit `\Seen`.
    pub modseq: ModSeq,
    /// INTERNALDATE.
    pub internal_date: DateTime,
    /// RFC822.SIZE.
    pub size: u64,
    /// EMAILID's number: given at APPEND, kept by COPY and MOVE ([`objectid`]).
    pub email_id: EmailId,
    /// THREADID's number: decided at APPEND from the message's references
    /// ([`crate::mail::thread`]), kept by COPY and MOVE.
    pub thread_id: ThreadId,
    /// The octets, when asked for: in memory, or (large bodies) a source the driver streams
    /// from without loading it whole.
    pub content: Option<Body>,
    /// The structure, when asked for.
    pub info: Option<Arc<MessageInfo>>,
    /// The preview, when asked for: always with [`PreviewWant::Always`]; with
    /// [`PreviewWant::Lazy`], `None` when the store does not have it at hand.
    pub preview: Option<Arc<str>>,
    /// The save date (RFC 8514 §3): when the message was saved into this mailbox (APPEND,
    /// COPY, MOVE, delivery, import), by the clock of the request that saved it. A message a
    /// store kept from before it recorded save dates answers its internal date.
    pub save_date: DateTime,
    /// The message was expunged, and is answered as it was then because a session that has
    /// not been told yet may still ask for it ([`pins`]); its flags no longer change.
    pub expunged: bool,
}

/// The operations a session asks of storage. Every mailbox-level operation names the account.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageOp {
    /// List mailboxes and subscriptions.
    ListMailboxes {
        /// The account.
        account: String,
    },
    /// Create a mailbox (and missing parents).
    CreateMailbox {
        /// The account.
        account: String,
        /// Canonical name.
        name: String,
        /// A special use to give it.
        special_use: Option<SpecialUse>,
    },
    /// Delete a mailbox (RFC 9051 §6.3.5).
    DeleteMailbox {
        /// The account.
        account: String,
        /// Canonical name.
        name: String,
    },
    /// Rename a mailbox and its children: they keep their identities (and so UIDVALIDITY and
    /// UIDs). Missing parents of the new name are created as by `CreateMailbox`. Fails with
    /// `NoSuchMailbox` when `from` is neither a mailbox nor a `\Noselect` name with children,
    /// `AlreadyExists` when `to` is a mailbox or has children, `IntoItself` when `to` lies
    /// under `from`. Names get no special treatment: the session never sends INBOX here
    /// ([`rules::rename`]).
    RenameMailbox {
        /// The account.
        account: String,
        /// The existing name.
        from: String,
        /// The new name.
        to: String,
    },
    /// Create mailbox `to` and move every message of mailbox `from` into it, as one change:
    /// checked, and missing parents created, exactly as `RenameMailbox` would, then `to` is
    /// created (no special use) and gets the messages in UID order under new UIDs, while in
    /// `from` they are expunged under one new MODSEQ (raised even when `from` was empty, so
    /// that its sessions re-synchronise). `from` and its children stay. This is how the
    /// session carries out RENAME of INBOX (RFC 9051 §6.3.6); a store treats any name alike.
    MoveAllMessages {
        /// The account.
        account: String,
        /// The mailbox to empty.
        from: String,
        /// The mailbox to create.
        to: String,
    },
    /// Subscribe or unsubscribe a name.
    Subscribe {
        /// The account.
        account: String,
        /// Canonical name.
        name: String,
        /// Subscribe (true) or unsubscribe.
        subscribed: bool,
    },
    /// STATUS figures.
    Status {
        /// The account.
        account: String,
        /// Canonical name.
        name: String,
    },
    /// SELECT/EXAMINE.
    Open {
        /// The account.
        account: String,
        /// Canonical name.
        name: String,
        /// Do not claim `\Recent`: EXAMINE, and IMAP4rev2 sessions (which have no `\Recent`).
        read_only: bool,
    },
    /// `first`, then `then`, with nothing of another request between them; answered with
    /// [`StorageReply::Then`] carrying both results (each fails or succeeds alone). The session
    /// sends a command's request this way with the `Changes` it would otherwise ask for next,
    /// saving a round trip per command while other sessions keep changing the mailbox. Both
    /// name the same account; neither is itself a `Then`, a `Search` or a maildrop lease.
    Then {
        /// Runs first.
        first: Box<StorageOp>,
        /// Runs second (a `Changes`).
        then: Box<StorageOp>,
    },
    /// Changes since the session's last view.
    Changes {
        /// The account.
        account: String,
        /// The selected mailbox.
        mailbox: MailboxId,
        /// The session's UIDNEXT: UIDs below it are known to the session.
        uid_next: Uid,
        /// The highest MODSEQ the session has synchronised to.
        since: ModSeq,
        /// Claim new messages as `\Recent` for this session (read-write sessions).
        claim_recent: bool,
    },
    /// APPEND one or more messages atomically (MULTIAPPEND).
    Append {
        /// The account.
        account: String,
        /// Canonical target name.
        name: String,
        /// The messages.
        messages: Vec<NewMessage>,
    },
    /// Load messages for FETCH.
    Fetch {
        /// The account.
        account: String,
        /// The mailbox.
        mailbox: MailboxId,
        /// Which messages. Expunged ones are answered as they were while some session may
        /// still see them ([`FetchedMessage::expunged`]), skipped after that.
        uids: Vec<Uid>,
        /// What to load.
        want: FetchWant,
        /// Set `\Seen` on them first (BODY[] without PEEK in a read-write session).
        mark_seen: bool,
    },
    /// SEARCH among the session's messages.
    Search {
        /// The account.
        account: String,
        /// The mailbox.
        mailbox: MailboxId,
        /// The UIDs to consider (the session's view).
        uids: Vec<Uid>,
        /// The criteria, with session-relative parts resolved to UIDs.
        query: Query,
    },
    /// SORT (RFC 5256): the messages SEARCH would find with `query`, in the order
    /// `criteria` give ([`sort::sort`], on [`sort::SortFields`] of each message's envelope);
    /// answered with [`StorageReply::Found`] in that order. Bounded as SEARCH is.
    Sort {
        /// The account.
        account: String,
        /// The mailbox.
        mailbox: MailboxId,
        /// The UIDs to consider (the session's view).
        uids: Vec<Uid>,
        /// The criteria, with session-relative parts resolved to UIDs.
        query: Query,
        /// The sort program; not empty (boxed: a `Vec` would make every request larger).
        criteria: Box<[sort::SortCriterion]>,
    },
    /// THREAD (RFC 5256 §4): the messages SEARCH would find with `query`, threaded by
    /// `algorithm` ([`threading::thread`], on [`threading::ThreadFields`] of each message);
    /// answered with [`StorageReply::Threads`]. Bounded as SEARCH is.
    Thread {
        /// The account.
        account: String,
        /// The mailbox.
        mailbox: MailboxId,
        /// The UIDs to consider (the session's view).
        uids: Vec<Uid>,
        /// The criteria, with session-relative parts resolved to UIDs.
        query: Query,
        /// The algorithm.
        algorithm: threading::Algorithm,
    },
    /// STORE flags.
    SetFlags {
        /// The account.
        account: String,
        /// The mailbox.
        mailbox: MailboxId,
        /// Which messages.
        uids: Vec<Uid>,
        /// Replace, add or remove.
        mode: StoreMode,
        /// The flags.
        flags: Vec<Flag>,
        /// UNCHANGEDSINCE (RFC 7162).
        unchanged_since: Option<ModSeq>,
    },
    /// EXPUNGE (all `\Deleted`) or UID EXPUNGE (those of `uids` that are `\Deleted`).
    Expunge {
        /// The account.
        account: String,
        /// The mailbox.
        mailbox: MailboxId,
        /// Restrict to these UIDs.
        uids: Option<Vec<Uid>>,
    },
    /// POP3's UPDATE state, as one atomic change: remove messages whatever their flags, and
    /// set `\Seen` on the ones the session retrieved.
    Remove {
        /// The account.
        account: String,
        /// The mailbox.
        mailbox: MailboxId,
        /// Which messages to remove.
        uids: Vec<Uid>,
        /// Which messages get `\Seen` (those also in `uids` are simply removed).
        seen: Vec<Uid>,
    },
    /// The account's [`AccountUsage`]. A read that creates nothing: an account that does not
    /// exist holds nothing. Its cost is bounded by the account's mailboxes, never by its
    /// messages: a durable backend answers from totals each mailbox keeps as it changes (a
    /// metrics scrape asks it for many accounts).
    Usage {
        /// The account.
        account: String,
    },
    /// Take the account's exclusive POP3 maildrop lock (RFC 1939 §8); fails with
    /// [`StorageError::InUse`] while another session holds it.
    LockMaildrop {
        /// The account.
        account: String,
    },
    /// Release the maildrop lock, first giving `\Seen` to the messages the session retrieved
    /// when it ends without QUIT's UPDATE. One request for both, so that a session ending
    /// still has one request in flight at a time.
    UnlockMaildrop {
        /// The account.
        account: String,
        /// The mailbox and the UIDs to mark `\Seen` before the lock goes (UIDs no longer
        /// there are skipped); `None` for a plain release.
        seen: Option<(MailboxId, Vec<Uid>)>,
    },
    /// COPY or MOVE.
    CopyMove {
        /// The account.
        account: String,
        /// The source mailbox.
        mailbox: MailboxId,
        /// Which messages.
        uids: Vec<Uid>,
        /// Canonical target name.
        target: String,
        /// MOVE: remove from the source atomically.
        remove: bool,
    },
    /// REPLACE (RFC 8508): `message` is appended to mailbox `name` as `Append` would, and
    /// message `uid` of `mailbox` is expunged whatever its flags, as `Remove` would, as one
    /// change: a session that looks sees both or neither. `name` may be `mailbox` itself.
    /// Fails with [`StorageError::NoSuchMessage`] (nothing done) when `uid` is no longer in
    /// `mailbox`; answered with [`StorageReply::Appended`] (the one new UID).
    Replace {
        /// The account.
        account: String,
        /// The mailbox of the message replaced.
        mailbox: MailboxId,
        /// The message replaced.
        uid: Uid,
        /// Canonical name of the mailbox the new message goes to.
        name: String,
        /// The new message (boxed: it would make every request larger).
        message: Box<NewMessage>,
    },
    /// `op` (an `Append`, `CopyMove`, `Replace` or `MoveAllMessages` of the same account),
    /// kept only if the account stays within `quota`: when a resource the change raises
    /// would end above its bound ([`Quota::refuses`], usage as [`StorageOp::Usage`] counts
    /// it), nothing is changed and the reply is [`StorageError::OverQuota`]. Decided in the
    /// same transaction as the write, so two writes that each fit but together do not can
    /// never both succeed. `op`'s own failures come first, as if it ran alone. Never wraps a
    /// `Then` or another `WithinQuota`.
    WithinQuota {
        /// The bounds.
        quota: Quota,
        /// The write.
        op: Box<StorageOp>,
    },
    /// Stores messages under the identifiers another server gave them (`tern import` from a
    /// Dovecot Maildir), so that clients' caches and POP3 UIDLs stay valid. The session never
    /// sends it. As one change:
    /// - `name` is created first when it is missing or `\Noselect`, as `CreateMailbox` would
    ///   (parents, the mailbox limit);
    /// - a mailbox that has never held a message (UIDNEXT 1) takes `uid_validity`; any other
    ///   must already have it, else [`StorageError::UidConflict`];
    /// - `messages` must have strictly ascending UIDs, the first at or above the mailbox's
    ///   UIDNEXT, none 0 or `u32::MAX`, else `UidConflict` (nothing is stored): the caller
    ///   skips the UIDs below UIDNEXT, which is what makes a repeated import add nothing;
    /// - each message is stored as `Append` stores it (flags, keywords, internal date, a MODSEQ
    ///   each), under its given UID;
    /// - UIDNEXT ends at the greater of its value and `uid_next` (at most `u32::MAX`), so UIDs
    ///   the other server gave out and expunged are never reused; when only UIDVALIDITY or
    ///   UIDNEXT changed, HIGHESTMODSEQ still rises by one.
    ///
    /// Answered with [`StorageReply::Appended`] (the given UIDs).
    ImportMessages {
        /// The account.
        account: String,
        /// Canonical target name.
        name: String,
        /// The mailbox's UIDVALIDITY at the source; not 0.
        uid_validity: u32,
        /// The source's UIDNEXT.
        uid_next: Uid,
        /// The messages with their UIDs.
        messages: Vec<(Uid, NewMessage)>,
    },
    /// GETMETADATA (RFC 5464 §4.2): the entries of mailbox `mailbox` (of the account itself
    /// when `None`) that are one of `names` or lie within `depth` below one
    /// ([`metadata::within`]), ascending by name, answered with [`StorageReply::Metadata`].
    /// Names are canonical ([`metadata::entry_name`]). Fails with `NoSuchMailbox`.
    GetMetadata {
        /// The account.
        account: String,
        /// Canonical mailbox name, `None` for the account's own entries.
        mailbox: Option<String>,
        /// The entries asked for.
        names: Box<[String]>,
        /// How far below them.
        depth: metadata::Depth,
    },
    /// SETMETADATA (§4.3): sets each entry (removes it for `None`), all or none. Fails with
    /// `NoSuchMailbox`, or `Limit(LimitKind::MetadataEntries)` when the account would hold
    /// more than [`StoreLimits::metadata_entries`] entries.
    SetMetadata {
        /// The account.
        account: String,
        /// Canonical mailbox name, `None` for the account's own entries.
        mailbox: Option<String>,
        /// Canonical names and values.
        entries: Box<[(String, Option<Bytes>)]>,
    },
}

impl StorageOp {
    /// The account a mutating operation changes, for change notification.
    pub fn account(&self) -> Option<&str> {
        match self {
            StorageOp::ListMailboxes { account }
            | StorageOp::CreateMailbox { account, .. }
            | StorageOp::DeleteMailbox { account, .. }
            | StorageOp::RenameMailbox { account, .. }
            | StorageOp::MoveAllMessages { account, .. }
            | StorageOp::Subscribe { account, .. }
            | StorageOp::Status { account, .. }
            | StorageOp::Open { account, .. }
            | StorageOp::Changes { account, .. }
            | StorageOp::Append { account, .. }
            | StorageOp::Fetch { account, .. }
            | StorageOp::Search { account, .. }
            | StorageOp::Sort { account, .. }
            | StorageOp::Thread { account, .. }
            | StorageOp::SetFlags { account, .. }
            | StorageOp::Expunge { account, .. }
            | StorageOp::Remove { account, .. }
            | StorageOp::LockMaildrop { account }
            | StorageOp::UnlockMaildrop { account, .. }
            | StorageOp::Usage { account }
            | StorageOp::CopyMove { account, .. }
            | StorageOp::Replace { account, .. }
            | StorageOp::GetMetadata { account, .. }
            | StorageOp::SetMetadata { account, .. }
            | StorageOp::ImportMessages { account, .. } => Some(account),
            StorageOp::Then { first, .. } => first.account(),
            StorageOp::WithinQuota { op, .. } => op.account(),
        }
    }
}

/// What storage answers, one variant per operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageReply {
    /// To [`StorageOp::ListMailboxes`].
    Mailboxes(MailboxList),
    /// To delete, rename, subscribe, and the maildrop lock.
    Done,
    /// To [`StorageOp::CreateMailbox`]: the mailbox made (or made selectable again), for
    /// CREATE's MAILBOXID (RFC 8474 §4.1).
    Created {
        /// The mailbox.
        mailbox: MailboxId,
        /// The account's key for MAILBOXID.
        object_key: ObjectKey,
    },
    /// To [`StorageOp::Status`].
    Status(MailboxStatus),
    /// To [`StorageOp::Open`].
    Opened(Snapshot),
    /// To [`StorageOp::Changes`].
    Changes(ChangeSet),
    /// To [`StorageOp::Then`]: the result of each part.
    Then {
        /// The first part's result.
        first: Box<StorageResult>,
        /// The second part's result.
        then: Box<StorageResult>,
    },
    /// To [`StorageOp::Append`], [`StorageOp::Replace`] and [`StorageOp::ImportMessages`].
    Appended {
        /// The target's UIDVALIDITY.
        uid_validity: u32,
        /// The new UIDs in order.
        uids: Vec<Uid>,
        /// The target mailbox.
        mailbox: MailboxId,
    },
    /// To [`StorageOp::Fetch`].
    Fetched(Vec<FetchedMessage>),
    /// To [`StorageOp::Search`]: matching UIDs, ascending; to [`StorageOp::Sort`]: in sort
    /// order.
    Found(Vec<Uid>),
    /// To [`StorageOp::Thread`]: the threads, in order, of UIDs.
    Threads(Vec<threading::Thread>),
    /// To [`StorageOp::SetFlags`].
    FlagsSet {
        /// Messages whose flags were written (new state).
        updated: Vec<MessageState>,
        /// UNCHANGEDSINCE failures.
        modified: Vec<Uid>,
    },
    /// To [`StorageOp::Expunge`]: removed UIDs, ascending.
    Expunged(Vec<Uid>),
    /// To [`StorageOp::Usage`].
    Usage(AccountUsage),
    /// To [`StorageOp::GetMetadata`]: (name, value) pairs, ascending by name.
    Metadata(Vec<(String, Bytes)>),
    /// To [`StorageOp::CopyMove`].
    Copied {
        /// The target's UIDVALIDITY.
        uid_validity: u32,
        /// (source UID, new UID) pairs, by ascending source UID.
        pairs: Vec<(Uid, Uid)>,
    },
}

/// Why storage could not carry out a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The named mailbox does not exist.
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// The target name already exists.
    #[error("mailbox already exists")]
    AlreadyExists,
    /// A rename would move a mailbox under itself (the new name lies below the old one).
    #[error("a mailbox cannot be moved under itself")]
    IntoItself,
    /// The mailbox has children that prevent the operation.
    #[error("mailbox has children")]
    HasChildren,
    /// The message an operation names is no longer in its mailbox ([`StorageOp::Replace`]).
    #[error("no such message")]
    NoSuchMessage,
    /// Another session holds the resource exclusively (POP3's maildrop lock).
    #[error("in use by another session")]
    InUse,
    /// A quota would be exceeded.
    #[error("quota exceeded")]
    OverQuota,
    /// A size or count bound was hit.
    #[error("limit reached: {0}")]
    Limit(LimitKind),
    /// Imported identifiers do not fit the mailbox ([`StorageOp::ImportMessages`]): another
    /// UIDVALIDITY, or UIDs not above its UIDNEXT.
    #[error("identifiers conflict with the mailbox's: {0}")]
    UidConflict(String),
    /// A passing condition (a busy database, a full queue); the client may retry.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A fault in storage itself.
    #[error("internal storage error: {0}")]
    Internal(String),
}

/// Which bound stopped a request ([`StorageError::Limit`]); the session words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// The account has [`StoreLimits::max_mailboxes`] mailboxes already.
    Mailboxes,
    /// A SEARCH would do more than [`StoreLimits::search_work`].
    SearchWork,
    /// A message is larger than the backend can store.
    MessageSize,
    /// An account name is longer than the backend can hold.
    AccountName,
    /// No UIDVALIDITY value is left for a new mailbox.
    UidValidity,
    /// A mailbox has given out every UID.
    Uids,
    /// The account holds [`StoreLimits::metadata_entries`] METADATA entries already.
    MetadataEntries,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Mailboxes => "too many mailboxes",
            LimitKind::SearchWork => "search work",
            LimitKind::MessageSize => "message too large to store",
            LimitKind::AccountName => "account name too long",
            LimitKind::UidValidity => "UIDVALIDITY exhausted",
            LimitKind::Uids => "UIDs exhausted",
            LimitKind::MetadataEntries => "too many METADATA entries",
        })
    }
}

/// The reply type every store returns.
pub type StorageResult = Result<StorageReply, StorageError>;

/// A change another session should hear about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Changed {
    /// The account.
    pub account: String,
    /// The mailbox whose contents changed.
    pub mailbox: MailboxId,
    /// The mailbox's HIGHESTMODSEQ once the change was made ([`UNKNOWN_MODSEQ`] when the
    /// store cannot tell, or the mailbox is gone). A session whose view has reached it has
    /// seen the change already and need not look again: every change a `Changes` reply
    /// reports raises the mailbox's MODSEQ (new messages, flags, expunges).
    pub modseq: ModSeq,
}

/// The MODSEQ of a [`Changed`] whose store cannot tell it: every session looks.
pub const UNKNOWN_MODSEQ: ModSeq = ModSeq::MAX;

/// Executes storage requests synchronously.
pub trait Store {
    /// Carries out `op`. Must not panic on any op; failures are [`StorageError`]s. Returns
    /// only after any change is durable.
    fn execute(&mut self, op: StorageOp) -> StorageResult;

    /// Mailboxes changed since the last call, so the driver can wake sessions that watch them.
    fn take_changes(&mut self) -> Vec<Changed>;
}
