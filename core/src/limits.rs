//! Bounds on everything a peer can make the core buffer or repeat.

use std::time::Duration;

/// Per-session bounds and timeouts. Every field has a default chosen for a public server;
/// each default's reason is next to it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest IMAP command line (the text between literals), in octets. 64 KiB is Dovecot's
    /// `imap_max_line_length`, and long UID sets from real clients fit in it.
    pub imap_max_line: usize,
    /// Largest literal an authenticated IMAP client may send (an APPENDed message). Larger ones
    /// get `NO [TOOBIG]`. 64 MiB is above what common submission servers accept.
    pub imap_max_literal: u64,
    /// Largest literal before authentication (LOGIN arguments): a stranger has no reason to send
    /// more than a line's worth.
    pub imap_max_literal_unauthenticated: u64,
    /// Largest non-synchronising literal announced with `{n+}` that is skipped (without being
    /// buffered) to keep the connection in step; beyond this the announcement is treated as
    /// hostile and the connection is closed with `BYE`.
    pub imap_max_discard: u64,
    /// Advertise LITERAL- rather than LITERAL+ (RFC 7888 §5; a server names one of the two,
    /// never both): non-synchronising literals then carry at most 4096 octets, the IMAP4rev2
    /// rule (RFC 9051 §4.3), and a larger one is refused with `BAD [TOOBIG]`.
    pub imap_literal_minus: bool,
    /// Longest METADATA value SETMETADATA accepts (RFC 5464 §4.3: `NO [METADATA MAXSIZE n]`
    /// beyond; §4.1 asks for at least 1024).
    pub imap_metadata_max_value: u32,
    /// Longest POP3 command line, CRLF included. RFC 2449 §4 allows 255 octets; the margin
    /// tolerates clients that send long user names.
    pub pop3_max_line: usize,
    /// Longest LMTP command line, CRLF included: RFC 5321 §4.5.3.1.4 allows 512 octets, and
    /// extensions' parameters (SIZE=, BODY=) lengthen it; 1000 is the text-line bound of
    /// §4.5.3.1.6. Longer lines get `500 5.5.2` and the session goes on. The largest message
    /// an LMTP client may deliver is [`Limits::imap_max_literal`], the same as an APPEND.
    pub lmtp_max_line: usize,
    /// Recipients of one LMTP transaction; more get `452 4.5.3` (RFC 5321 §4.5.3.1.8 asks
    /// for at least 100; Postfix sends up to 50 per transaction by default).
    pub lmtp_max_recipients: usize,
    /// LMTP inactivity timer: RFC 5321 §4.5.3.2.7 asks a server to wait at least 5 minutes
    /// for the next command.
    pub lmtp_inactivity: Duration,
    /// Longest SASL response line (AUTHENTICATE / AUTH continuations), base64 included.
    pub sasl_max_line: usize,
    /// Input bytes held while the session cannot consume them (storage request pending, TLS
    /// handshake). Past this, [`crate::Session::wants_read`] turns false: back-pressure on
    /// clients that pipeline without reading.
    pub max_buffered_input: usize,
    /// Failed authentications on one connection before it is closed.
    pub max_auth_failures: u32,
    /// Delay before a failed authentication is answered, doubled for each further failure on the
    /// connection: online guessing becomes slow while a typo costs a person two seconds.
    pub auth_failure_delay: Duration,
    /// IMAP autologout: RFC 9051 §5.4 requires at least 30 minutes.
    pub imap_autologout: Duration,
    /// Time from connecting to a completed login, for IMAP and POP3. The RFCs' idle timers are
    /// for users; a stranger who has not logged in within a minute (a person typing a password
    /// into a client takes seconds) only holds a connection slot.
    pub login_timeout: Duration,
    /// POP3 inactivity timer: RFC 1939 §3 requires at least 10 minutes.
    pub pop3_inactivity: Duration,
    /// How often an idling IMAP client hears `* OK Still here`: two minutes keeps NAT boxes
    /// on mobile networks from dropping push connections silently.
    pub imap_idle_keepalive: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            imap_max_line: 64 * 1024,
            imap_max_literal: 64 * 1024 * 1024,
            imap_max_literal_unauthenticated: 8 * 1024,
            imap_max_discard: 256 * 1024 * 1024,
            imap_literal_minus: false,
            imap_metadata_max_value: 64 * 1024,
            pop3_max_line: 512,
            lmtp_max_line: 1000,
            lmtp_max_recipients: 1000,
            lmtp_inactivity: Duration::from_secs(5 * 60),
            sasl_max_line: 16 * 1024,
            max_buffered_input: 256 * 1024,
            max_auth_failures: 3,
            auth_failure_delay: Duration::from_secs(2),
            imap_autologout: Duration::from_secs(30 * 60),
            login_timeout: Duration::from_secs(60),
            pop3_inactivity: Duration::from_secs(10 * 60),
            imap_idle_keepalive: Duration::from_secs(2 * 60),
        }
    }
}
