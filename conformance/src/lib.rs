//! `tern-conformance`: replays RFC transcripts against tern.
//!
//! Transcripts (`testdata/transcripts/`, format in `conformance/README.md`) run three ways:
//!
//! - in-process against `tern-core` with [`tern_core::MemStore`] and a virtual clock
//!   ([`inprocess::InProcess`]), fast and deterministic, part of `cargo test`;
//! - over TCP and TLS against the `tern` binary on ephemeral loopback ports
//!   ([`net::Net`] with [`server::LocalServer`]), also part of `cargo test`;
//! - against any other server with `cargo run -p tern-conformance -- run --host ...`.
//!
//! The [`runner`] plays the steps and matches responses; targets only move octets, so every
//! mode checks the same thing the same way.

pub mod inprocess;
pub mod net;
pub mod pattern;
pub mod report;
pub mod runner;
pub mod server;
pub mod suite;
pub mod transcript;
pub mod wire;
