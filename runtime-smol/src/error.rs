//! Everything that stops the server from starting, each as one line for the operator.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A reason the server cannot start or a command cannot complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Config {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file parses but a value is unacceptable.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    /// A listener could not bind its address.
    #[error("listener \"{listener}\": cannot listen on {addr}: {source}")]
    Bind {
        listener: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// Certificates or keys could not be read, generated or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The accounts (configuration users or passwd-file) cannot be loaded.
    #[error("accounts: {0}")]
    Accounts(String),
    /// Some other file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The message store could not be opened.
    #[error("store: {0}")]
    Store(String),
    /// The store's lock is held: another process (a running server) has it open.
    #[error("store: {0}")]
    StoreInUse(String),
    /// The command line is not understood.
    #[error("{0}")]
    Usage(String),
}
