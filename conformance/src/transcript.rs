//! The transcript format (documented in `conformance/README.md`): parsing and validation.
//!
//! Parsing does all the checking that can be done without a server — literal octet counts,
//! placeholders, connection names — so that a malformed transcript fails with its file and line
//! before anything runs, rather than as a confusing mismatch later.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use crate::pattern::{Class, Hole, PatPiece, Pattern};

/// The protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// IMAP (RFC 9051 / RFC 3501).
    Imap,
    /// POP3 (RFC 1939).
    Pop3,
}

impl Proto {
    /// The name used in transcripts and reports.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Imap => "imap",
            Proto::Pop3 => "pop3",
        }
    }

    fn parse(word: &str) -> Option<Proto> {
        match word.to_ascii_lowercase().as_str() {
            "imap" => Some(Proto::Imap),
            "pop3" => Some(Proto::Pop3),
            _ => None,
        }
    }
}

/// How connections are secured for one run of a transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Security {
    /// Plaintext (STARTTLS/STLS available) from a loopback peer.
    Plain,
    /// TLS from the first octet (IMAPS/POP3S).
    Tls,
}

impl Security {
    /// The name used in transcripts, snapshots and reports.
    pub fn name(self) -> &'static str {
        match self {
            Security::Plain => "plain",
            Security::Tls => "tls",
        }
    }
}

/// One `@rfc` line: the RFC and section a transcript covers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RfcRef {
    /// The RFC number.
    pub rfc: u32,
    /// The section, as written (`6.1.1`).
    pub section: String,
}

/// An account from `@user`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct User {
    /// The account name.
    pub name: String,
    /// Its password.
    pub password: String,
    /// `@quota`: its quota (RFC 9208); the server then offers QUOTA.
    pub quota: Option<UserQuota>,
}

/// An account's quota from `@quota alice STORAGE 4 MESSAGE 3`, in the units IMAP shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserQuota {
    /// STORAGE, in units of 1024 octets.
    pub storage_kib: Option<u64>,
    /// MESSAGE.
    pub messages: Option<u64>,
}

/// Store contents a transcript asks for beyond accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setup {
    /// `@mailbox USER NAME`.
    Mailbox {
        /// The transcript line.
        line: usize,
        /// The owning account.
        user: String,
        /// The mailbox name.
        name: String,
    },
    /// `@message USER MAILBOX SOURCE [FLAG...]`.
    Message {
        /// The transcript line.
        line: usize,
        /// The owning account.
        user: String,
        /// The mailbox to put it in.
        mailbox: String,
        /// Flags to set on it.
        flags: Vec<String>,
        /// Where the message text comes from.
        source: MessageSource,
    },
}

impl Setup {
    /// The directive's name, for messages.
    pub fn directive(&self) -> &'static str {
        match self {
            Setup::Mailbox { .. } => "@mailbox",
            Setup::Message { .. } => "@message",
        }
    }

    /// The transcript line it was given on.
    pub fn line(&self) -> usize {
        match self {
            Setup::Mailbox { line, .. } | Setup::Message { line, .. } => *line,
        }
    }
}

/// The text of a pre-loaded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageSource {
    /// A file, relative to the transcripts folder; [`Transcript::load`] reads it (with line ends
    /// made CRLF), [`parse`] leaves `data` empty.
    File {
        /// The path as written.
        path: PathBuf,
        /// Its contents.
        data: Vec<u8>,
    },
    /// The `M:` lines that follow, joined with CRLF.
    Inline(Vec<u8>),
}

impl MessageSource {
    /// The message octets.
    pub fn data(&self) -> &[u8] {
        match self {
            MessageSource::File { data, .. } | MessageSource::Inline(data) => data,
        }
    }
}

/// A value substituted when the transcript runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Var {
    /// `{{user}}`: the first `@user`'s name (or the `--user` of a remote run).
    User,
    /// `{{pass}}`: its password.
    Pass,
    /// `{{sasl-plain}}`: base64 of `\0user\0pass`, the SASL PLAIN initial response.
    SaslPlain,
    /// A value captured from server output earlier, such as `{{uidvalidity}}`.
    Captured(String),
}

impl Var {
    /// How the placeholder is written.
    pub fn placeholder(&self) -> String {
        match self {
            Var::User => "{{user}}".into(),
            Var::Pass => "{{pass}}".into(),
            Var::SaslPlain => "{{sasl-plain}}".into(),
            Var::Captured(name) => format!("{{{{{name}}}}}"),
        }
    }
}

/// Part of the octets a `C:` line sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Exact octets.
    Bytes(Vec<u8>),
    /// A value known only when the transcript runs.
    Var(Var),
    /// The decimal length of a literal whose body holds variables: a remote run substitutes
    /// another user name, and the announcement `{5}` must follow.
    LiteralLength(Vec<Piece>),
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Connect (`@open`, or implicitly at the first line).
    Open {
        /// The connection's index in [`Transcript::connections`].
        conn: usize,
    },
    /// Send octets (`C:` and `C+:` lines).
    Send {
        /// The connection.
        conn: usize,
        /// What to send.
        data: Vec<Piece>,
        /// The transcript line as written, for records and messages.
        source: String,
    },
    /// Expect one response unit: a line, with any literals it announces (`S:` lines).
    Expect {
        /// The connection.
        conn: usize,
        /// What the unit must match, its final CRLF included.
        pattern: Pattern,
        /// The transcript lines as written.
        source: Vec<String>,
    },
    /// Expect several response units in any order (`S~:` lines), then, if there are `S*:`
    /// lines, any number of units that match those, until one matches the `S:` line that
    /// follows the group.
    ExpectGroup {
        /// The connection.
        conn: usize,
        /// The lines of the group.
        members: Vec<GroupMember>,
    },
    /// Run the TLS handshake after STARTTLS/STLS (`@starttls`).
    StartTls {
        /// The connection.
        conn: usize,
    },
    /// The client closes the connection (`@close`).
    Close {
        /// The connection.
        conn: usize,
    },
    /// The server must close the connection now (`@closed`).
    Closed {
        /// The connection.
        conn: usize,
    },
    /// The server must not have sent anything more (`@silent`).
    Silent {
        /// The connection.
        conn: usize,
    },
    /// Advance the virtual clock (`@advance`).
    Advance(Duration),
}

/// One line of an `S~:`/`S*:` group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    /// What the unit must match, its CRLF included.
    pub pattern: Pattern,
    /// The transcript line as written.
    pub source: String,
    /// `S*:`: matches any number of units (zero included) rather than exactly one.
    pub repeat: bool,
}

/// One step of a transcript with the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The 1-based transcript line (the first, for a multi-line unit).
    pub line: usize,
    /// What to do.
    pub action: Action,
}

/// A connection declared by `@open` (or the implicit `main`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Its name.
    pub name: String,
    /// The protocol it speaks.
    pub protocol: Proto,
}

/// A parsed transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    /// The path relative to the transcripts folder, `/`-separated.
    pub name: String,
    /// What it covers (`@rfc`), at least one.
    pub rfcs: Vec<RfcRef>,
    /// The protocol of the folder or of `@protocol`.
    pub protocol: Proto,
    /// `@security`: `None` runs it both over plaintext and over TLS.
    pub security: Option<Security>,
    /// `@known-gap` and its reason.
    pub known_gap: Option<String>,
    /// `@user` accounts, in order.
    pub users: Vec<User>,
    /// `@mailbox` and `@message` directives.
    pub setup: Vec<Setup>,
    /// Every connection, in order of opening.
    pub connections: Vec<Connection>,
    /// What to do, in order.
    pub steps: Vec<Step>,
}

impl Transcript {
    /// The securities this transcript runs under.
    pub fn securities(&self) -> Vec<Security> {
        match self.security {
            Some(s) => vec![s],
            None => vec![Security::Plain, Security::Tls],
        }
    }

    /// Whether it uses the virtual clock, which only the in-process runner has.
    pub fn uses_clock(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.action, Action::Advance(_)))
    }

    /// Reads and parses `root/relative`, checking that message files it names exist.
    pub fn load(root: &Path, relative: &str) -> Result<Transcript, LoadError> {
        let path = root.join(relative);
        let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let mut transcript = parse(relative, &text)?;
        for setup in &mut transcript.setup {
            if let Setup::Message {
                line,
                source: MessageSource::File { path, data },
                ..
            } = setup
            {
                let Ok(raw) = std::fs::read(root.join(&*path)) else {
                    return Err(LoadError::Parse(ParseError {
                        file: relative.to_string(),
                        line: *line,
                        kind: ErrorKind::MissingMessageFile(path.display().to_string()),
                    }));
                };
                *data = crlf(&raw);
            }
        }
        Ok(transcript)
    }
}

/// Every `*.txt` under `root`, relative and `/`-separated, sorted.
pub fn list(root: &Path) -> Result<Vec<String>, LoadError> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), LoadError> {
        let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| LoadError::Read {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if path.extension().is_some_and(|e| e == "txt") {
                if let Ok(rel) = path.strip_prefix(root) {
                    let parts: Vec<String> = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    out.push(parts.join("/"));
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

/// Loads every transcript under `root`; parse errors are collected, not fatal.
pub fn load_all(root: &Path) -> Result<(Vec<Transcript>, Vec<LoadError>), LoadError> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for name in list(root)? {
        match Transcript::load(root, &name) {
            Ok(t) => good.push(t),
            Err(e) => bad.push(e),
        }
    }
    Ok((good, bad))
}

/// Why a transcript could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// What was read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The text is not a valid transcript.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// A malformed transcript: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct ParseError {
    /// The transcript's name.
    pub file: String,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong with a transcript line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A line that is none of the known kinds.
    #[error("expected `C: `, `C+: `, `S: `, `S~: `, `S*: `, `M: `, `@directive` or `# comment`, found {0:?}")]
    UnknownLine(String),
    /// An `@name` that is not a directive.
    #[error("unknown directive @{0} (see conformance/README.md for the list)")]
    UnknownDirective(String),
    /// A directive with missing, extra or malformed arguments.
    #[error("{directive} expects {expected}, got {got:?}")]
    BadArguments {
        /// The directive.
        directive: &'static str,
        /// What it takes.
        expected: &'static str,
        /// What was written.
        got: String,
    },
    /// A directive that may appear only once.
    #[error("{0} is given twice")]
    Duplicate(&'static str),
    /// A set-up directive after the conversation began.
    #[error("{0} must come before the first connection line")]
    SetupAfterSteps(&'static str),
    /// No `@rfc` anywhere.
    #[error("no @rfc line: every transcript names the RFC and section it covers")]
    MissingRfc,
    /// The folder does not say the protocol and there is no `@protocol`.
    #[error("cannot tell the protocol: put the file under imap/ or pop3/, or add @protocol")]
    UnknownProtocol,
    /// `@open` of a name already open.
    #[error("connection {0:?} is already open")]
    ConnectionExists(String),
    /// `@on` of a name never opened.
    #[error("no connection named {0:?} (open it with @open)")]
    UnknownConnection(String),
    /// A line for a connection that was closed.
    #[error("connection {0:?} was closed earlier")]
    ConnectionClosed(String),
    /// A connection name with odd characters.
    #[error("connection names are letters, digits, '-' and '_', got {0:?}")]
    BadConnectionName(String),
    /// `{{` without `}}`.
    #[error("placeholder opened with {{{{ is not closed with }}}}")]
    UnterminatedPlaceholder,
    /// A placeholder that is not defined.
    #[error(
        "unknown placeholder {{{{{0}}}}} (not a class, a variable, or a value captured earlier)"
    )]
    UnknownPlaceholder(String),
    /// A placeholder used where it makes no sense.
    #[error("{{{{{placeholder}}}}} cannot be used {place}")]
    PlaceholderNotAllowed {
        /// The placeholder's text.
        placeholder: String,
        /// Where it was used.
        place: &'static str,
    },
    /// A malformed argument to a placeholder.
    #[error("bad placeholder {{{{{0}}}}}: {1}")]
    BadPlaceholder(String, &'static str),
    /// `{{user}}` without a `@user`.
    #[error("{{{{{0}}}}} needs a @user line")]
    NoUser(&'static str),
    /// The transcript ended inside a literal.
    #[error("the literal {{{announced}}} announced here lacks {missing} octets when the transcript ends")]
    LiteralIncomplete {
        /// The announced size.
        announced: u64,
        /// How many octets never came.
        missing: u64,
    },
    /// A variable's value runs across the end of a literal.
    #[error("{0} runs past the end of the literal it is in")]
    LiteralStraddle(String),
    /// A literal with variables whose announcement cannot be rewritten.
    #[error("a literal whose body uses {0} must be announced within one line piece, so that its length can follow the value")]
    LiteralLengthFixed(String),
    /// A line for one connection while a server literal on another is incomplete.
    #[error("the server literal announced on line {0} is not complete")]
    ServerLiteralOpen(usize),
    /// `S*:` with nothing after the group to tell where it ends.
    #[error("an S*: group must be followed by an S: line on the same connection, which ends it")]
    OpenEndedGroup,
    /// A literal announced in an `S~:`/`S*:` line.
    #[error("S~: and S*: lines cannot announce literals; use S: lines")]
    LiteralInGroup,
    /// `M:` lines without an `@message ... -`.
    #[error("M: lines belong right after `@message USER MAILBOX -`")]
    StrayMessageLine,
    /// A message file that does not exist.
    #[error("message file {0} does not exist (paths are relative to testdata/transcripts)")]
    MissingMessageFile(String),
    /// `@known-gap` without a reason.
    #[error("@known-gap needs a reason")]
    KnownGapWithoutReason,
    /// A connection directive before any connection.
    #[error("{0} needs a connection; none is open yet")]
    NoConnection(&'static str),
}

/// Parses a transcript. `name` is its path relative to the transcripts folder; its first
/// component (`imap/`, `pop3/`) gives the default protocol.
pub fn parse(name: &str, text: &str) -> Result<Transcript, ParseError> {
    Parser::new(name).run(text)
}

/// Limits that keep a typo from allocating gigabytes.
const MAX_REPEAT: usize = 16 * 1024 * 1024;

#[derive(Debug)]
struct ConnState {
    name: String,
    protocol: Proto,
    closed: bool,
    client: ClientLit,
    server: Option<ServerUnit>,
}

/// Client-side literal tracking for one IMAP connection.
#[derive(Debug)]
enum ClientLit {
    /// In a command line; `current` is the line so far with variables at their default values.
    Line { current: Vec<u8> },
    /// Inside a literal body.
    Literal(ClientLiteral),
}

#[derive(Debug)]
struct ClientLiteral {
    line: usize,
    announced: u64,
    remaining: u64,
    sync: bool,
    started: bool,
    body: Vec<Piece>,
    /// Where the announced digits are, for rewriting: (step index, piece index).
    digits_at: Option<(usize, usize)>,
}

/// A server unit being assembled from several `S:` lines (a response with literals).
#[derive(Debug)]
struct ServerUnit {
    line: usize,
    pattern: Pattern,
    source: Vec<String>,
    /// Octets of literal still to come, and the line that announced it.
    literal: Option<(u64, usize)>,
}

struct Parser {
    file: String,
    line: usize,
    rfcs: Vec<crate::transcript::RfcRef>,
    protocol: Option<Proto>,
    security: Option<Option<Security>>,
    known_gap: Option<String>,
    users: Vec<User>,
    setup: Vec<Setup>,
    conns: Vec<ConnState>,
    current: Option<usize>,
    steps: Vec<Step>,
    /// Names captured by `S:` lines so far.
    captured: Vec<String>,
    /// An `@message ... -` collecting `M:` lines: (setup index, text).
    inline_message: Option<(usize, Vec<u8>)>,
    /// The step index of an `S~:`/`S*:` group that the next group line joins.
    group_open: Option<usize>,
}

enum Place {
    Client,
    Server,
}

impl Parser {
    fn new(name: &str) -> Parser {
        let protocol = name.split('/').next().and_then(Proto::parse);
        Parser {
            file: name.to_string(),
            line: 0,
            rfcs: Vec::new(),
            protocol,
            security: None,
            known_gap: None,
            users: Vec::new(),
            setup: Vec::new(),
            conns: Vec::new(),
            current: None,
            steps: Vec::new(),
            captured: Vec::new(),
            inline_message: None,
            group_open: None,
        }
    }

    fn err(&self, kind: ErrorKind) -> ParseError {
        ParseError {
            file: self.file.clone(),
            line: self.line,
            kind,
        }
    }

    fn run(mut self, text: &str) -> Result<Transcript, ParseError> {
        let mut explicit_protocol = false;
        for (i, raw) in text.split('\n').enumerate() {
            self.line = i + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if let Some(rest) = prefixed(line, "M:") {
                let Some((_, buf)) = self.inline_message.as_mut() else {
                    return Err(self.err(ErrorKind::StrayMessageLine));
                };
                buf.extend_from_slice(rest.as_bytes());
                buf.extend_from_slice(b"\r\n");
                continue;
            }
            self.finish_inline_message();
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let group_line = prefixed(line, "S~:").map(|rest| (rest, false));
            let group_line = group_line.or_else(|| prefixed(line, "S*:").map(|rest| (rest, true)));
            if let Some((rest, repeat)) = group_line {
                self.server_group(line, rest, repeat)?;
                continue;
            }
            self.group_open = None;
            if let Some(rest) = line.strip_prefix('@') {
                let (name, args) = match rest.split_once(char::is_whitespace) {
                    Some((n, a)) => (n, a.trim()),
                    None => (rest, ""),
                };
                if name == "protocol" {
                    if explicit_protocol {
                        return Err(self.err(ErrorKind::Duplicate("@protocol")));
                    }
                    explicit_protocol = true;
                }
                self.directive(name, args)?;
            } else if let Some(rest) = prefixed(line, "C:") {
                self.client(line, rest, true)?;
            } else if let Some(rest) = prefixed(line, "C+:") {
                self.client(line, rest, false)?;
            } else if let Some(rest) = prefixed(line, "S:") {
                self.server(line, rest)?;
            } else {
                return Err(self.err(ErrorKind::UnknownLine(line.to_string())));
            }
        }
        self.finish_inline_message();
        self.finish()
    }

    fn finish_inline_message(&mut self) {
        if let Some((index, text)) = self.inline_message.take() {
            if let Some(Setup::Message { source, .. }) = self.setup.get_mut(index) {
                *source = MessageSource::Inline(text);
            }
        }
    }

    fn finish(mut self) -> Result<Transcript, ParseError> {
        for conn in &self.conns {
            if let Some(unit) = &conn.server {
                if let Some((_, line)) = unit.literal {
                    return Err(self.err(ErrorKind::ServerLiteralOpen(line)));
                }
            }
            if let ClientLit::Literal(lit) = &conn.client {
                if lit.remaining > 0 {
                    return Err(ParseError {
                        file: self.file.clone(),
                        line: lit.line,
                        kind: ErrorKind::LiteralIncomplete {
                            announced: lit.announced,
                            missing: lit.remaining,
                        },
                    });
                }
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            let Action::ExpectGroup { conn, members } = &step.action else {
                continue;
            };
            let ended = matches!(
                self.steps.get(i + 1),
                Some(Step { action: Action::Expect { conn: next, .. }, .. }) if next == conn
            );
            if members.iter().any(|m| m.repeat) && !ended {
                return Err(ParseError {
                    file: self.file.clone(),
                    line: step.line,
                    kind: ErrorKind::OpenEndedGroup,
                });
            }
        }
        if self.rfcs.is_empty() {
            self.line = 1;
            return Err(self.err(ErrorKind::MissingRfc));
        }
        let Some(protocol) = self.protocol else {
            self.line = 1;
            return Err(self.err(ErrorKind::UnknownProtocol));
        };
        Ok(Transcript {
            name: self.file,
            rfcs: self.rfcs,
            protocol,
            security: self.security.flatten(),
            known_gap: self.known_gap,
            users: self.users,
            setup: self.setup,
            connections: self
                .conns
                .into_iter()
                .map(|c| Connection {
                    name: c.name,
                    protocol: c.protocol,
                })
                .collect(),
            steps: self.steps,
        })
    }

    fn header_only(&self, directive: &'static str) -> Result<(), ParseError> {
        if self.steps.is_empty() {
            Ok(())
        } else {
            Err(self.err(ErrorKind::SetupAfterSteps(directive)))
        }
    }

    fn directive(&mut self, name: &str, args: &str) -> Result<(), ParseError> {
        let words: Vec<&str> = args.split_whitespace().collect();
        let bad = |this: &Self, directive: &'static str, expected: &'static str| {
            this.err(ErrorKind::BadArguments {
                directive,
                expected,
                got: args.to_string(),
            })
        };
        match name {
            "rfc" => {
                self.header_only("@rfc")?;
                let [number, section] = words[..] else {
                    return Err(bad(
                        self,
                        "@rfc",
                        "an RFC number and a section: @rfc 9051 6.1.1",
                    ));
                };
                let Ok(rfc) = number.parse::<u32>() else {
                    return Err(bad(
                        self,
                        "@rfc",
                        "an RFC number and a section: @rfc 9051 6.1.1",
                    ));
                };
                self.rfcs.push(RfcRef {
                    rfc,
                    section: section.to_string(),
                });
            }
            "protocol" => {
                self.header_only("@protocol")?;
                let [word] = words[..] else {
                    return Err(bad(self, "@protocol", "imap or pop3"));
                };
                self.protocol =
                    Some(Proto::parse(word).ok_or_else(|| bad(self, "@protocol", "imap or pop3"))?);
            }
            "security" => {
                self.header_only("@security")?;
                if self.security.is_some() {
                    return Err(self.err(ErrorKind::Duplicate("@security")));
                }
                self.security = Some(match words[..] {
                    ["plain"] => Some(Security::Plain),
                    ["tls"] => Some(Security::Tls),
                    ["any"] => None,
                    _ => return Err(bad(self, "@security", "plain, tls or any")),
                });
            }
            "known-gap" => {
                self.header_only("@known-gap")?;
                if self.known_gap.is_some() {
                    return Err(self.err(ErrorKind::Duplicate("@known-gap")));
                }
                if args.is_empty() {
                    return Err(self.err(ErrorKind::KnownGapWithoutReason));
                }
                self.known_gap = Some(args.to_string());
            }
            "user" => {
                self.header_only("@user")?;
                let [user, password] = words[..] else {
                    return Err(bad(
                        self,
                        "@user",
                        "a name and a password: @user alice wonderland",
                    ));
                };
                self.users.push(User {
                    name: user.to_string(),
                    password: password.to_string(),
                    quota: None,
                });
            }
            "quota" => {
                self.header_only("@quota")?;
                const EXPECTED: &str =
                    "a user and resource limits: @quota alice STORAGE 4 MESSAGE 3";
                let Some((user, limits)) = words.split_first() else {
                    return Err(bad(self, "@quota", EXPECTED));
                };
                self.known_user("@quota", user)?;
                let mut quota = UserQuota::default();
                for pair in limits.chunks(2) {
                    let [resource, limit] = pair else {
                        return Err(bad(self, "@quota", EXPECTED));
                    };
                    let Ok(limit) = limit.parse::<u64>() else {
                        return Err(bad(self, "@quota", EXPECTED));
                    };
                    match resource.to_ascii_uppercase().as_str() {
                        "STORAGE" => quota.storage_kib = Some(limit),
                        "MESSAGE" => quota.messages = Some(limit),
                        _ => return Err(bad(self, "@quota", EXPECTED)),
                    }
                }
                if let Some(u) = self.users.iter_mut().find(|u| u.name == *user) {
                    u.quota = Some(quota);
                }
            }
            "mailbox" => {
                self.header_only("@mailbox")?;
                let Some((user, mailbox)) = args.split_once(char::is_whitespace) else {
                    return Err(bad(
                        self,
                        "@mailbox",
                        "a user and a mailbox name: @mailbox alice Drafts",
                    ));
                };
                self.known_user("@mailbox", user)?;
                self.setup.push(Setup::Mailbox {
                    line: self.line,
                    user: user.to_string(),
                    name: mailbox.trim().to_string(),
                });
            }
            "message" => {
                self.header_only("@message")?;
                let expected = "a user, a mailbox, a file or `-` (M: lines follow), then flags: \
                                @message alice INBOX messages/plain.eml \\Seen";
                let [user, mailbox, source, flags @ ..] = &words[..] else {
                    return Err(bad(self, "@message", expected));
                };
                self.known_user("@message", user)?;
                let inline = *source == "-";
                self.setup.push(Setup::Message {
                    line: self.line,
                    user: user.to_string(),
                    mailbox: mailbox.to_string(),
                    flags: flags.iter().map(|f| f.to_string()).collect(),
                    source: if inline {
                        MessageSource::Inline(Vec::new())
                    } else {
                        MessageSource::File {
                            path: PathBuf::from(source),
                            data: Vec::new(),
                        }
                    },
                });
                if inline {
                    self.inline_message = Some((self.setup.len() - 1, Vec::new()));
                }
            }
            "open" => {
                let (conn, protocol) = match words[..] {
                    [conn] => (conn, None),
                    [conn, proto] => match Proto::parse(proto) {
                        Some(p) => (conn, Some(p)),
                        None => {
                            return Err(bad(self, "@open", "a name and optionally imap or pop3"))
                        }
                    },
                    _ => return Err(bad(self, "@open", "a name and optionally imap or pop3")),
                };
                self.open(conn, protocol)?;
            }
            "on" => {
                let [conn] = words[..] else {
                    return Err(bad(self, "@on", "the name of an open connection"));
                };
                let Some(index) = self.conns.iter().position(|c| c.name == conn) else {
                    return Err(self.err(ErrorKind::UnknownConnection(conn.to_string())));
                };
                self.check_no_open_server_unit(index)?;
                self.current = Some(index);
            }
            "starttls" | "close" | "closed" | "silent" => {
                let directive = match name {
                    "starttls" => "@starttls",
                    "close" => "@close",
                    "closed" => "@closed",
                    _ => "@silent",
                };
                if !args.is_empty() {
                    return Err(bad(
                        self,
                        directive,
                        "no arguments (it applies to the current connection)",
                    ));
                }
                let Some(conn) = self.current else {
                    return Err(self.err(ErrorKind::NoConnection(directive)));
                };
                self.usable(conn)?;
                self.check_no_open_server_unit(conn)?;
                let action = match name {
                    "starttls" => Action::StartTls { conn },
                    "close" => Action::Close { conn },
                    "closed" => Action::Closed { conn },
                    _ => Action::Silent { conn },
                };
                if matches!(action, Action::Close { .. } | Action::Closed { .. }) {
                    // Whatever literal the client was in the middle of dies with the connection.
                    if let Some(c) = self.conns.get_mut(conn) {
                        c.closed = true;
                        c.client = ClientLit::Line {
                            current: Vec::new(),
                        };
                    }
                }
                self.push(action);
            }
            "advance" => {
                let [value] = words[..] else {
                    return Err(bad(
                        self,
                        "@advance",
                        "a duration such as 30m, 2s, 1500ms or 1h30m",
                    ));
                };
                let Some(by) = parse_duration(value) else {
                    return Err(bad(
                        self,
                        "@advance",
                        "a duration such as 30m, 2s, 1500ms or 1h30m",
                    ));
                };
                for c in 0..self.conns.len() {
                    self.check_no_open_server_unit(c)?;
                }
                self.push(Action::Advance(by));
            }
            other => return Err(self.err(ErrorKind::UnknownDirective(other.to_string()))),
        }
        Ok(())
    }

    fn known_user(&self, directive: &'static str, user: &str) -> Result<(), ParseError> {
        if self.users.iter().any(|u| u.name == user) {
            Ok(())
        } else {
            Err(self.err(ErrorKind::BadArguments {
                directive,
                expected: "an account declared earlier with @user",
                got: user.to_string(),
            }))
        }
    }

    fn push(&mut self, action: Action) {
        self.steps.push(Step {
            line: self.line,
            action,
        });
    }

    fn open(&mut self, name: &str, protocol: Option<Proto>) -> Result<usize, ParseError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(self.err(ErrorKind::BadConnectionName(name.to_string())));
        }
        if self.conns.iter().any(|c| c.name == name) {
            return Err(self.err(ErrorKind::ConnectionExists(name.to_string())));
        }
        let Some(protocol) = protocol.or(self.protocol) else {
            return Err(self.err(ErrorKind::UnknownProtocol));
        };
        if let Some(current) = self.current {
            self.check_no_open_server_unit(current)?;
        }
        let conn = self.conns.len();
        self.conns.push(ConnState {
            name: name.to_string(),
            protocol,
            closed: false,
            client: ClientLit::Line {
                current: Vec::new(),
            },
            server: None,
        });
        self.current = Some(conn);
        self.push(Action::Open { conn });
        Ok(conn)
    }

    /// The connection for a `C:`/`S:` line, opening `main` if none is open yet.
    fn conn_for_line(&mut self) -> Result<usize, ParseError> {
        let conn = match self.current {
            Some(c) => c,
            None => self.open("main", None)?,
        };
        self.usable(conn)?;
        Ok(conn)
    }

    fn usable(&self, conn: usize) -> Result<(), ParseError> {
        match self.conns.get(conn) {
            Some(c) if c.closed => Err(self.err(ErrorKind::ConnectionClosed(c.name.clone()))),
            _ => Ok(()),
        }
    }

    fn check_no_open_server_unit(&self, conn: usize) -> Result<(), ParseError> {
        match self.conns.get(conn).and_then(|c| c.server.as_ref()) {
            Some(unit) => Err(self.err(ErrorKind::ServerLiteralOpen(
                unit.literal.map_or(unit.line, |(_, l)| l),
            ))),
            None => Ok(()),
        }
    }

    fn default_value(&self, var: &Var) -> Result<Option<Vec<u8>>, ParseError> {
        let user = || {
            self.users
                .first()
                .ok_or_else(|| self.err(ErrorKind::NoUser(var_name(var))))
        };
        Ok(match var {
            Var::User => Some(user()?.name.clone().into_bytes()),
            Var::Pass => Some(user()?.password.clone().into_bytes()),
            Var::SaslPlain => {
                let u = user()?;
                Some(sasl_plain(&u.name, &u.password).into_bytes())
            }
            Var::Captured(_) => None,
        })
    }

    /// Splits line text into exact octets and placeholders.
    fn placeholders(&self, text: &str, place: Place) -> Result<Vec<PatPiece>, ParseError> {
        let mut out: Vec<PatPiece> = Vec::new();
        let mut rest = text;
        let mut exact = Vec::new();
        while let Some(start) = rest.find("{{") {
            exact.extend_from_slice(&rest.as_bytes()[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err(self.err(ErrorKind::UnterminatedPlaceholder));
            };
            let inner = after[..end].trim();
            rest = &after[end + 2..];
            match self.placeholder(inner, &place, &out)? {
                PatPiece::Exact(bytes) => exact.extend_from_slice(&bytes),
                other => {
                    if !exact.is_empty() {
                        out.push(PatPiece::Exact(std::mem::take(&mut exact)));
                    }
                    out.push(other);
                }
            }
        }
        exact.extend_from_slice(rest.as_bytes());
        if !exact.is_empty() {
            out.push(PatPiece::Exact(exact));
        }
        Ok(out)
    }

    fn placeholder(
        &self,
        inner: &str,
        place: &Place,
        so_far: &[PatPiece],
    ) -> Result<PatPiece, ParseError> {
        let (word, arg) = match inner.split_once(char::is_whitespace) {
            Some((w, a)) => (w, a.trim()),
            None => (inner, ""),
        };
        let not_sendable = |this: &Self| {
            this.err(ErrorKind::PlaceholderNotAllowed {
                placeholder: inner.to_string(),
                place: "in C: lines (it matches server output; clients send exact octets)",
            })
        };
        let no_arg = |this: &Self, piece: PatPiece| {
            if arg.is_empty() {
                Ok(piece)
            } else {
                Err(this.err(ErrorKind::BadPlaceholder(
                    inner.to_string(),
                    "takes no argument",
                )))
            }
        };
        let class = |this: &Self, class: Class| match place {
            Place::Client => Err(not_sendable(this)),
            Place::Server => no_arg(this, PatPiece::Hole(Hole { class, bind: None })),
        };
        match word {
            "hex" => {
                let digits: String = arg.chars().filter(|c| !c.is_whitespace()).collect();
                decode_hex(&digits).map(PatPiece::Exact).ok_or_else(|| {
                    self.err(ErrorKind::BadPlaceholder(
                        inner.to_string(),
                        "expected pairs of hex digits: {{hex 0d0a}}",
                    ))
                })
            }
            "repeat" => {
                let Some((count, what)) = arg.split_once(char::is_whitespace) else {
                    return Err(self.err(ErrorKind::BadPlaceholder(
                        inner.to_string(),
                        "expected a count and text: {{repeat 9000 x}}",
                    )));
                };
                match count.parse::<usize>() {
                    Ok(n) if n.saturating_mul(what.len()) <= MAX_REPEAT && !what.is_empty() => {
                        Ok(PatPiece::Exact(what.repeat(n).into_bytes()))
                    }
                    _ => Err(self.err(ErrorKind::BadPlaceholder(
                        inner.to_string(),
                        "expected a count and text, at most 16 MiB in all: {{repeat 9000 x}}",
                    ))),
                }
            }
            "user" => no_arg(self, PatPiece::Var(Var::User)),
            "pass" => no_arg(self, PatPiece::Var(Var::Pass)),
            "sasl-plain" => no_arg(self, PatPiece::Var(Var::SaslPlain)),
            "*" => class(self, Class::Any),
            "text" => class(self, Class::Text),
            "number" => class(self, Class::Number),
            "date" => class(self, Class::Date),
            "base64" => class(self, Class::Base64),
            "atom" => class(self, Class::Atom),
            "caps" | "flags" => {
                if let Place::Client = place {
                    return Err(not_sendable(self));
                }
                let mut must = Vec::new();
                let mut must_not = Vec::new();
                for cap in arg.split_whitespace() {
                    match cap.strip_prefix('!') {
                        Some(c) if !c.is_empty() => must_not.push(c.to_string()),
                        Some(_) => {
                            return Err(self.err(ErrorKind::BadPlaceholder(
                                inner.to_string(),
                                "`!` must be followed by a capability",
                            )))
                        }
                        None => must.push(cap.to_string()),
                    }
                }
                let class = if word == "caps" {
                    Class::Caps { must, must_not }
                } else {
                    Class::Flags { must, must_not }
                };
                Ok(PatPiece::Hole(Hole { class, bind: None }))
            }
            _ => self.named(inner, word, arg, place, so_far),
        }
    }

    /// `{{name}}` (a captured value, or `uidvalidity` on first use) and `{{name:class}}`.
    fn named(
        &self,
        inner: &str,
        word: &str,
        arg: &str,
        place: &Place,
        so_far: &[PatPiece],
    ) -> Result<PatPiece, ParseError> {
        let bound_here = |name: &str| {
            so_far
                .iter()
                .any(|p| matches!(p, PatPiece::Hole(Hole { bind: Some(b), .. }) if b == name))
        };
        let (name, class) = match word.split_once(':') {
            Some((name, class)) => (name, Some(class)),
            None => (word, None),
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && arg.is_empty();
        if !valid {
            return Err(self.err(ErrorKind::UnknownPlaceholder(inner.to_string())));
        }
        let known = self.captured.iter().any(|c| c == name) || bound_here(name);
        let class = match class {
            Some(class) => Some(match class {
                "number" => Class::Number,
                "atom" => Class::Atom,
                "date" => Class::Date,
                "base64" => Class::Base64,
                "text" => Class::Text,
                _ => {
                    return Err(self.err(ErrorKind::BadPlaceholder(
                        inner.to_string(),
                        "a capture's class is number, atom, date, base64 or text",
                    )))
                }
            }),
            // UIDVALIDITY is the value every mailbox transcript needs to carry along.
            None if name == "uidvalidity" && !known => Some(Class::Number),
            None => None,
        };
        match (class, place) {
            (Some(_), _) if known => Err(self.err(ErrorKind::BadPlaceholder(
                inner.to_string(),
                "this name was captured already; refer to it as {{name}}",
            ))),
            (Some(_), Place::Client) => Err(self.err(ErrorKind::PlaceholderNotAllowed {
                placeholder: inner.to_string(),
                place: "in C: lines (values are captured from S: lines)",
            })),
            (Some(class), Place::Server) => Ok(PatPiece::Hole(Hole {
                class,
                bind: Some(name.to_string()),
            })),
            (None, _) if known => Ok(PatPiece::Var(Var::Captured(name.to_string()))),
            (None, _) => Err(self.err(ErrorKind::UnknownPlaceholder(inner.to_string()))),
        }
    }

    fn client(&mut self, line: &str, text: &str, line_end: bool) -> Result<(), ParseError> {
        let conn = self.conn_for_line()?;
        self.check_no_open_server_unit(conn)?;
        let mut pieces: Vec<Piece> = Vec::new();
        for p in self.placeholders(text, Place::Client)? {
            pieces.push(match p {
                PatPiece::Exact(b) => Piece::Bytes(b),
                PatPiece::Var(v) => {
                    // Fail early on {{user}} without @user.
                    self.default_value(&v)?;
                    Piece::Var(v)
                }
                PatPiece::Hole(_) => {
                    return Err(self.err(ErrorKind::PlaceholderNotAllowed {
                        placeholder: text.to_string(),
                        place: "in C: lines",
                    }))
                }
            });
        }
        if line_end {
            match pieces.last_mut() {
                Some(Piece::Bytes(b)) => b.extend_from_slice(b"\r\n"),
                _ => pieces.push(Piece::Bytes(b"\r\n".to_vec())),
            }
        }
        let is_imap = self.conns.get(conn).map(|c| c.protocol) == Some(Proto::Imap);
        let data = if is_imap {
            self.track_client_literals(conn, pieces)?
        } else {
            pieces
        };
        self.push(Action::Send {
            conn,
            data,
            source: line.to_string(),
        });
        Ok(())
    }

    /// Follows literal announcements and bodies through one send, so that every `{n}` is
    /// followed by exactly n octets and literal lengths can follow substituted values.
    fn track_client_literals(
        &mut self,
        conn: usize,
        pieces: Vec<Piece>,
    ) -> Result<Vec<Piece>, ParseError> {
        let this_step = self.steps.len();
        let mut state = match self.conns.get_mut(conn) {
            Some(c) => std::mem::replace(
                &mut c.client,
                ClientLit::Line {
                    current: Vec::new(),
                },
            ),
            None => return Ok(pieces),
        };
        let mut out: Vec<Piece> = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Var(var) => {
                    let value = self.default_value(&var)?;
                    match &mut state {
                        ClientLit::Line { current } => {
                            current.extend_from_slice(value.as_deref().unwrap_or(b"?"));
                            out.push(Piece::Var(var));
                        }
                        ClientLit::Literal(lit) => {
                            let Some(value) = value else {
                                return Err(self.err(ErrorKind::PlaceholderNotAllowed {
                                    placeholder: var
                                        .placeholder()
                                        .trim_matches(['{', '}'])
                                        .to_string(),
                                    place: "inside a literal (its length must be known)",
                                }));
                            };
                            let len = value.len() as u64;
                            if len > lit.remaining {
                                return Err(self.err(ErrorKind::LiteralStraddle(var.placeholder())));
                            }
                            lit.remaining -= len;
                            lit.started = true;
                            lit.body.push(Piece::Var(var.clone()));
                            out.push(Piece::Var(var));
                            if lit.remaining == 0 {
                                state = self.end_client_literal(
                                    lit_take(&mut state),
                                    this_step,
                                    &mut out,
                                )?;
                            }
                        }
                    }
                }
                Piece::Bytes(bytes) => {
                    let mut rest: &[u8] = &bytes;
                    while !rest.is_empty() {
                        match &mut state {
                            ClientLit::Literal(lit) => {
                                let take = usize::try_from(lit.remaining)
                                    .unwrap_or(usize::MAX)
                                    .min(rest.len());
                                let (body, after) = rest.split_at(take);
                                lit.remaining -= take as u64;
                                lit.started = true;
                                lit.body.push(Piece::Bytes(body.to_vec()));
                                out.push(Piece::Bytes(body.to_vec()));
                                rest = after;
                                if lit.remaining == 0 {
                                    state = self.end_client_literal(
                                        lit_take(&mut state),
                                        this_step,
                                        &mut out,
                                    )?;
                                }
                            }
                            ClientLit::Line { current } => {
                                let piece_start_in_line = current.len();
                                let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                                    current.extend_from_slice(rest);
                                    out.push(Piece::Bytes(rest.to_vec()));
                                    break;
                                };
                                let (line_part, after) = rest.split_at(nl + 1);
                                current.extend_from_slice(line_part);
                                let text_end = current.len()
                                    - 1
                                    - usize::from(
                                        current.len() >= 2 && current[current.len() - 2] == b'\r',
                                    );
                                let announcement = trailing_literal(&current[..text_end]);
                                match announcement {
                                    None => out.push(Piece::Bytes(line_part.to_vec())),
                                    Some(ann) => {
                                        let digits_at = if ann.open >= piece_start_in_line {
                                            // The digits are in this piece: give them a piece of
                                            // their own so that their value can be rewritten.
                                            let d0 = ann.digits.start - piece_start_in_line;
                                            let d1 = ann.digits.end - piece_start_in_line;
                                            out.push(Piece::Bytes(line_part[..d0].to_vec()));
                                            let at = (this_step, out.len());
                                            out.push(Piece::Bytes(line_part[d0..d1].to_vec()));
                                            out.push(Piece::Bytes(line_part[d1..].to_vec()));
                                            Some(at)
                                        } else {
                                            out.push(Piece::Bytes(line_part.to_vec()));
                                            None
                                        };
                                        state = ClientLit::Literal(ClientLiteral {
                                            line: self.line,
                                            announced: ann.len,
                                            remaining: ann.len,
                                            sync: !ann.plus,
                                            started: false,
                                            body: Vec::new(),
                                            digits_at,
                                        });
                                        if ann.len == 0 {
                                            state = self.end_client_literal(
                                                lit_take(&mut state),
                                                this_step,
                                                &mut out,
                                            )?;
                                        }
                                    }
                                }
                                if let ClientLit::Line { current } = &mut state {
                                    current.clear();
                                }
                                rest = after;
                            }
                        }
                    }
                }
                Piece::LiteralLength(_) => out.push(piece),
            }
        }
        if let Some(c) = self.conns.get_mut(conn) {
            c.client = state;
        }
        // Empty pieces left by splitting stay: later steps refer to pieces by index.
        Ok(out)
    }

    fn end_client_literal(
        &mut self,
        lit: Option<ClientLiteral>,
        this_step: usize,
        out: &mut [Piece],
    ) -> Result<ClientLit, ParseError> {
        let line = ClientLit::Line {
            current: Vec::new(),
        };
        let Some(lit) = lit else { return Ok(line) };
        let var = lit.body.iter().find_map(|p| match p {
            Piece::Var(v) => Some(v.placeholder()),
            _ => None,
        });
        let Some(var) = var else { return Ok(line) };
        let Some((step, index)) = lit.digits_at else {
            return Err(self.err(ErrorKind::LiteralLengthFixed(var)));
        };
        let length = Piece::LiteralLength(lit.body);
        let slot = if step == this_step {
            out.get_mut(index)
        } else {
            match self.steps.get_mut(step) {
                Some(Step {
                    action: Action::Send { data, .. },
                    ..
                }) => data.get_mut(index),
                _ => None,
            }
        };
        if let Some(slot) = slot {
            *slot = length;
        }
        Ok(line)
    }

    /// A response that is not a continuation request means the server refused a
    /// synchronising literal the client announced: the client never sends it.
    fn server_responded(&mut self, conn: usize, text: &str) {
        if let Some(c) = self.conns.get_mut(conn) {
            if let ClientLit::Literal(lit) = &c.client {
                if lit.sync && !lit.started && !text.starts_with('+') {
                    c.client = ClientLit::Line {
                        current: Vec::new(),
                    };
                }
            }
        }
    }

    fn server_group(&mut self, line: &str, text: &str, repeat: bool) -> Result<(), ParseError> {
        let conn = self.conn_for_line()?;
        self.check_no_open_server_unit(conn)?;
        let mut pattern = self.placeholders(text, Place::Server)?;
        let is_imap = self.conns.get(conn).map(|c| c.protocol) == Some(Proto::Imap);
        if let Some(PatPiece::Exact(last)) = pattern.last() {
            if is_imap && trailing_literal(last).is_some_and(|a| !a.plus) {
                return Err(self.err(ErrorKind::LiteralInGroup));
            }
        }
        self.server_responded(conn, text);
        pattern.push(PatPiece::Exact(b"\r\n".to_vec()));
        merge_exact(&mut pattern);
        self.note_captures(&pattern);
        let member = GroupMember {
            pattern,
            source: line.to_string(),
            repeat,
        };
        let open = self.group_open.and_then(|i| self.steps.get_mut(i));
        match open {
            Some(Step {
                action: Action::ExpectGroup { conn: c, members },
                ..
            }) if *c == conn => members.push(member),
            _ => {
                self.group_open = Some(self.steps.len());
                self.push(Action::ExpectGroup {
                    conn,
                    members: vec![member],
                });
            }
        }
        Ok(())
    }

    fn note_captures(&mut self, pattern: &Pattern) {
        for piece in pattern {
            if let PatPiece::Hole(Hole {
                bind: Some(name), ..
            }) = piece
            {
                if !self.captured.contains(name) {
                    self.captured.push(name.clone());
                }
            }
        }
    }

    fn server(&mut self, line: &str, text: &str) -> Result<(), ParseError> {
        let conn = self.conn_for_line()?;
        let pieces = self.placeholders(text, Place::Server)?;
        let is_imap = self.conns.get(conn).map(|c| c.protocol) == Some(Proto::Imap);
        let mut unit = match self.conns.get_mut(conn).and_then(|c| c.server.take()) {
            Some(unit) => unit,
            None => {
                self.server_responded(conn, text);
                ServerUnit {
                    line: self.line,
                    pattern: Vec::new(),
                    source: Vec::new(),
                    literal: None,
                }
            }
        };
        unit.source.push(line.to_string());
        let mut pieces = pieces.into_iter().peekable();
        // First the rest of a literal the server announced on an earlier line.
        while let Some((remaining, announced_on)) = unit.literal {
            let Some(piece) = pieces.next() else {
                // The whole line, and its line end, belong to the literal.
                if remaining < 2 {
                    return Err(self.err(ErrorKind::LiteralStraddle("the line end".into())));
                }
                unit.pattern.push(PatPiece::Exact(b"\r\n".to_vec()));
                let left = remaining - 2;
                unit.literal = (left > 0).then_some((left, announced_on));
                // Even a literal that ends with the line is followed by more of the response.
                return self.server_unit_continues(conn, unit, true);
            };
            let PatPiece::Exact(bytes) = piece else {
                return Err(self.err(ErrorKind::PlaceholderNotAllowed {
                    placeholder: text.to_string(),
                    place: "inside a server literal (only {{hex}} and {{repeat}} are exact)",
                }));
            };
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            unit.pattern.push(PatPiece::Exact(bytes[..take].to_vec()));
            let left = remaining - take as u64;
            unit.literal = (left > 0).then_some((left, announced_on));
            if take < bytes.len() {
                let rest = bytes[take..].to_vec();
                let mut tail: Vec<PatPiece> = vec![PatPiece::Exact(rest)];
                tail.extend(pieces);
                pieces = tail.into_iter().peekable();
            }
        }
        let mut last_exact: Option<Vec<u8>> = None;
        for piece in pieces {
            last_exact = match &piece {
                PatPiece::Exact(b) => Some(b.clone()),
                _ => None,
            };
            unit.pattern.push(piece);
        }
        unit.pattern.push(PatPiece::Exact(b"\r\n".to_vec()));
        // Servers announce only synchronising literals; `{n+}` from a server is just text.
        let announced = if is_imap {
            last_exact
                .as_deref()
                .and_then(trailing_literal)
                .filter(|a| !a.plus)
        } else {
            None
        };
        match announced {
            Some(ann) => {
                unit.literal = (ann.len > 0).then_some((ann.len, self.line));
                self.server_unit_continues(conn, unit, true)
            }
            None => self.server_unit_continues(conn, unit, false),
        }
    }

    fn server_unit_continues(
        &mut self,
        conn: usize,
        mut unit: ServerUnit,
        more: bool,
    ) -> Result<(), ParseError> {
        if more {
            if let Some(c) = self.conns.get_mut(conn) {
                c.server = Some(unit);
            }
            return Ok(());
        }
        merge_exact(&mut unit.pattern);
        self.note_captures(&unit.pattern);
        let line = unit.line;
        self.steps.push(Step {
            line,
            action: Action::Expect {
                conn,
                pattern: unit.pattern,
                source: unit.source,
            },
        });
        Ok(())
    }
}

fn lit_take(state: &mut ClientLit) -> Option<ClientLiteral> {
    match std::mem::replace(
        state,
        ClientLit::Line {
            current: Vec::new(),
        },
    ) {
        ClientLit::Literal(lit) => Some(lit),
        ClientLit::Line { .. } => None,
    }
}

fn var_name(var: &Var) -> &'static str {
    match var {
        Var::User => "user",
        Var::Pass => "pass",
        Var::SaslPlain => "sasl-plain",
        Var::Captured(_) => "capture",
    }
}

/// Joins adjacent exact pieces so that matching compares runs rather than fragments.
fn merge_exact(pattern: &mut Pattern) {
    let mut merged: Pattern = Vec::with_capacity(pattern.len());
    for piece in pattern.drain(..) {
        match (merged.last_mut(), piece) {
            (Some(PatPiece::Exact(a)), PatPiece::Exact(b)) => a.extend_from_slice(&b),
            (_, piece) => merged.push(piece),
        }
    }
    *pattern = merged;
}

fn prefixed<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(prefix)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix(' ')
    }
}

/// Messages are stored with CRLF line ends; files written on Unix have bare LF.
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Base64 of `\0user\0pass`.
pub fn sasl_plain(user: &str, pass: &str) -> String {
    let raw = format!("\0{user}\0{pass}");
    base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
}

fn decode_hex(digits: &str) -> Option<Vec<u8>> {
    if digits.is_empty() || digits.len() % 2 != 0 {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
        })
        .collect()
}

/// A literal announcement at the end of a line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Announcement {
    /// Offset of `{`.
    pub(crate) open: usize,
    /// Offsets of the digits.
    pub(crate) digits: std::ops::Range<usize>,
    /// The announced length.
    pub(crate) len: u64,
    /// `{n+}`: non-synchronising.
    pub(crate) plus: bool,
}

/// Finds `{n}` or `{n+}` (optionally `~{n}`) ending `line`, which excludes the line end.
pub(crate) fn trailing_literal(line: &[u8]) -> Option<Announcement> {
    let body = line.strip_suffix(b"}")?;
    let (body, plus) = match body.strip_suffix(b"+") {
        Some(b) => (b, true),
        None => (body, false),
    };
    let digits_len = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits_len == 0 || digits_len > 20 {
        return None;
    }
    let digits_start = body.len() - digits_len;
    let open = digits_start.checked_sub(1)?;
    if body.get(open) != Some(&b'{') {
        return None;
    }
    let len = std::str::from_utf8(&body[digits_start..])
        .ok()?
        .parse::<u64>()
        .ok()?;
    Some(Announcement {
        open,
        digits: digits_start..body.len(),
        len,
        plus,
    })
}

/// `30m`, `2s`, `1500ms`, `1h30m`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let value: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.checked_mul(60)?),
            "h" => Duration::from_secs(value.checked_mul(3600)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
    }
    Some(total)
}
