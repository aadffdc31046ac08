//! The mail model: message structure (ENVELOPE, BODYSTRUCTURE) and its analysis.

pub mod structure;
