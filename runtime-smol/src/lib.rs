//! `tern-smol`: the tern server around `tern-core`, on the smol runtime.
//!
//! The connection tasks only move bytes between sockets and core sessions and carry out what
//! the sessions ask: run a storage request on the blocking pool, answer a login (a directory
//! request) with the configured users behind the login defences, upgrade to TLS, wait for a
//! deadline, close. Everything protocol-shaped lives in `tern-core`.

#![forbid(unsafe_code)]

pub mod auth_cache;
pub mod backend;
pub mod checks;
pub mod config;
pub mod connection;
pub mod deflate;
pub mod deliver;
pub mod directory;
pub mod error;
pub mod guard;
pub mod limits;
pub mod metrics;
pub mod migrate;
pub mod passwd_file;
pub mod passwords;
pub mod quota;
pub mod server;
pub mod tls;
pub mod usage;

/// A password for the starter account: 20 characters from an alphabet without look-alikes,
/// about 115 bits from the OS's random source.
pub fn random_password() -> String {
    use rand_core::{OsRng, RngCore};
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..20)
        .map(|_| {
            // Rejection sampling keeps every character equally likely.
            loop {
                let b = (OsRng.next_u32() & 0xff) as usize;
                if b < 256 - 256 % ALPHABET.len() {
                    break char::from(ALPHABET[b % ALPHABET.len()]);
                }
            }
        })
        .collect()
}

/// README.md's code blocks are compiled as doctests, so its examples cannot silently rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
