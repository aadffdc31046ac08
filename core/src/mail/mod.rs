//! The mail model: message structure (ENVELOPE, BODYSTRUCTURE), its analysis, and section
//! extraction for FETCH.

pub mod address;
pub mod analyze;
pub mod date;
pub mod flags;
pub mod header;
pub mod mailbox_name;
pub mod mime;
pub mod section;
pub mod structure;
pub mod text;
