//! Executes the core's storage requests off the connection tasks.

use std::sync::Arc;

use tern_core::{StorageOp, StorageReply, StorageResult};

use crate::directory::Directory;

/// What storage requests run against. Shared by every connection.
#[derive(Debug)]
pub struct Backend {
    directory: Directory,
}

impl Backend {
    pub fn new(directory: Directory) -> Arc<Backend> {
        Arc::new(Backend { directory })
    }

    /// Runs one request on smol's blocking pool, so hashing or disk work never holds up the
    /// executor threads that move other connections' bytes.
    pub async fn execute(self: Arc<Self>, op: StorageOp) -> StorageResult {
        smol::unblock(move || self.execute_blocking(op)).await
    }

    fn execute_blocking(&self, op: StorageOp) -> StorageResult {
        match op {
            StorageOp::Authenticate { username, password } => {
                let outcome = self.directory.verify(&username, password.expose());
                Ok(StorageReply::Authenticated(outcome))
            }
            other => Err(tern_core::StorageError::Internal(format!(
                "operation not supported by this backend: {other:?}"
            ))),
        }
    }
}
