//! Fuzzes the IMAP command grammar with whole framed commands.
//!
//! Beyond "never panics, never hangs, never allocates wildly", every command that decodes must
//! survive a round trip: written back by the command encoder, it decodes to the same value.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tern_core::imap::decode;
use tern_core::imap::encode_command::{encode_command, CommandEncodeOptions};

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    let Ok(line) = decode::command(&input) else {
        return;
    };
    for opts in [
        CommandEncodeOptions::new(),
        CommandEncodeOptions::new().non_sync_literals(true).utf8(true),
    ] {
        let mut out = BytesMut::new();
        encode_command(&mut out, &line, &opts);
        let wire = out.freeze();
        match decode::command(&wire) {
            Ok(again) => assert_eq!(again, line, "re-encoded as {wire:?}"),
            Err(e) => panic!("{line:?} re-encoded as {wire:?} does not decode: {e}"),
        }
    }
});
