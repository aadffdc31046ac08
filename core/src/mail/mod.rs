//! The mail model, the domain the protocols and the stores share: flags, dates, body sections,
//! message structure (ENVELOPE, BODYSTRUCTURE), its analysis, and section extraction for FETCH.
//!
//! A leaf: it imports nothing from `imap`, `pop3`, `sasl` or `session`, so a store depends on
//! the domain and the storage contract only, never on IMAP grammar (`tests/layering.rs`).

pub mod address;
pub mod analyze;
pub mod date;
pub mod decoded_size;
pub mod flags;
pub mod header;
pub mod mailbox_name;
pub mod mime;
pub mod preview;
pub mod section;
pub mod structure;
pub mod subject;
pub mod text;
pub mod thread;
