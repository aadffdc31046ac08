//! Fuzzes the IMAP session with raw client bytes: framing, grammar, state machine and store
//! together, with a second session idling on INBOX. See `driver.rs` for the input format and
//! what is checked.

#![no_main]

mod driver;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| driver::run(tern_core::Protocol::Imap, data));
