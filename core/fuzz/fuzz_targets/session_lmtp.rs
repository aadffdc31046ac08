//! Fuzzes the LMTP session with raw client bytes, with an IMAP session idling on INBOX
//! (deliveries reach it as new messages). See `driver.rs` for the input format and what is
//! checked.

#![no_main]

mod driver;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| driver::run(tern_core::Protocol::Lmtp, data));
