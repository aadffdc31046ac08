//! LMTP (RFC 2033): how a mail transfer agent hands messages to tern, with PIPELINING,
//! ENHANCEDSTATUSCODES (RFC 2034), 8BITMIME, SIZE (RFC 1870) and CHUNKING (RFC 3030).

pub mod command;
pub(crate) mod session;
