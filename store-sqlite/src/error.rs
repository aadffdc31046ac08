//! Errors: [`OpenError`] for opening the store or an account, and the internal [`Fail`],
//! which every operation maps to the core's [`StorageError`] at the boundary.

use std::io;
use std::path::PathBuf;

use rusqlite::ErrorCode;
use tern_core::store::LimitKind;
use tern_core::StorageError;

use tern_core::store::stored::CodecError;

/// Why the store or an account database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A folder of the store could not be created or used.
    #[error("cannot use the store folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
    /// SQLite could not open or set up a database.
    #[error("cannot open the account database {path}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database was written by a newer tern (its schema version is unknown here).
    #[error(
        "the account database {path} has schema version {found}, but this build of tern \
         knows versions up to {supported}; run a newer tern (or restore a backup)"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// Migrating the database to the current schema failed (it is left at its old version).
    #[error("cannot migrate the account database {path}: {detail}")]
    Migration {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// Another store (in this or another process) has the folder open.
    #[error("the store {path} is already open in another process (or another SqliteStore)")]
    InUse {
        /// The lock file.
        path: PathBuf,
    },
    /// The account name cannot be turned into a folder name.
    #[error("the account name is too long to store")]
    AccountName,
}

impl From<OpenError> for StorageError {
    fn from(e: OpenError) -> StorageError {
        match e {
            OpenError::Folder { source, .. } => io_error(&source),
            OpenError::Database { source, .. } => sql_error(&source),
            OpenError::AccountName => StorageError::Limit(LimitKind::AccountName),
            OpenError::InUse { .. } => StorageError::InUse,
            e @ (OpenError::NewerSchema { .. } | OpenError::Migration { .. }) => {
                StorageError::Internal(e.to_string())
            }
        }
    }
}

/// Anything an operation can run into.
#[derive(Debug, thiserror::Error)]
pub enum Fail {
    /// A protocol-level refusal (no such mailbox, …), passed through as is.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// SQLite.
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    /// Body files.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A stored value that does not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl From<tern_core::store::evaluate::Halt> for Fail {
    fn from(h: tern_core::store::evaluate::Halt) -> Fail {
        Fail::Storage(h.into())
    }
}

impl From<Fail> for StorageError {
    fn from(f: Fail) -> StorageError {
        match f {
            Fail::Storage(e) => e,
            Fail::Sql(e) => sql_error(&e),
            Fail::Io(e) => io_error(&e),
            Fail::Codec(e) => StorageError::Internal(e.to_string()),
        }
    }
}

/// Conditions a client may retry after (disk full, read-only, locked) are `Unavailable`;
/// damage is `Internal`.
fn sql_error(e: &rusqlite::Error) -> StorageError {
    let code = match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    };
    match code {
        Some(ErrorCode::DiskFull) => StorageError::Unavailable("disk full".into()),
        Some(ErrorCode::TooBig) => StorageError::Limit(LimitKind::MessageSize),
        Some(
            ErrorCode::ReadOnly
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::PermissionDenied
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed,
        ) => StorageError::Unavailable(e.to_string()),
        _ => StorageError::Internal(e.to_string()),
    }
}

fn io_error(e: &io::Error) -> StorageError {
    match e.kind() {
        io::ErrorKind::StorageFull => StorageError::Unavailable("disk full".into()),
        io::ErrorKind::QuotaExceeded => StorageError::OverQuota,
        io::ErrorKind::NotFound => StorageError::Internal(format!("missing store file: {e}")),
        _ => StorageError::Unavailable(e.to_string()),
    }
}
