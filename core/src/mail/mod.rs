//! The mail model: message structure (ENVELOPE, BODYSTRUCTURE), its analysis, and section
//! extraction for FETCH.

pub mod address;
pub mod analyze;
pub mod header;
pub mod mime;
pub mod section;
pub mod structure;
