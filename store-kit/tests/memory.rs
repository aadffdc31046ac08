//! The battery on the in-memory store, the reference itself: a self-check of the kit (the
//! reference against itself must agree), and the model histories of issue 9 on the store the
//! conformance runs and `[storage] backend = "memory"` use.

use std::sync::Arc;

use tern_core::store::{MailStore, SharedMemStore};
use tern_store_kit::Backend;

tern_store_kit::battery!(Memory);

struct Memory;

impl Backend for Memory {
    fn fresh(&mut self, _variant: Option<u64>) -> Arc<dyn MailStore> {
        Arc::new(SharedMemStore::new())
    }

    fn model_cases(&self) -> u64 {
        // Cheap in memory: ten times a durable store's budget.
        1500
    }
}
