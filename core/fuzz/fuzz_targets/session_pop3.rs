//! Fuzzes the POP3 session with raw client bytes, with an IMAP session idling on INBOX (RETR
//! marks messages seen, QUIT removes them). See `driver.rs` for the input format and what is
//! checked.

#![no_main]

mod driver;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| driver::run(tern_core::Protocol::Pop3, data));
