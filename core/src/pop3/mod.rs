//! POP3 (RFC 1939) with the extensions of RFC 2449, RFC 2595 and RFC 5034.

pub mod command;
pub(crate) mod session;
