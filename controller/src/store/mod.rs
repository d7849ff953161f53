//! Persistence of the controller, one narrow trait per record kind:
//!
//! - [`InstanceStore`] ([`instances`]): plan instances (who ran which plan, when, with which inputs, and how
//!   it ended, result tree included).
//! - [`KeyStore`] ([`keys`]): API tokens (name, roles, SHA-256 of the secret).
//! - [`BatchStore`] ([`batch`]): writes of any record kind batched into one transaction, the store side of
//!   the group-commit writer (`crate::writer`).
//!
//! [`RedbStore`] implements all of them on one redb file (ACID and crash-safe). The traits are deliberately
//! narrow (whole records in, whole records out, no query language) so that a shared store can back several
//! controllers later, and so that each kind can move to another backend on its own. Code takes the trait it
//! needs (`Arc<dyn InstanceStore>`, `Arc<dyn KeyStore>`); [`Stores`] carries one of each.
//!
//! # Coming record kinds
//!
//! Schedules and the audit log plug in the same way: a `ScheduleStore` (in `store/schedules.rs`) and an
//! `AuditStore` (in `store/audit.rs`) trait with their own record types, implemented by [`RedbStore`] in
//! `store/redb/schedules.rs` and `store/redb/audit.rs` on the same file (their own tables, created by
//! `RedbStore::open`), and a field each in [`Stores`]. A kind that is written on the request path (audit
//! entries) adds its write to [`WriteTxn`] and queues its records on the same group-commit writer, so they
//! share the instances' transactions and disk flushes.
//!
//! # Synchronous methods, called from async code
//!
//! The methods are plain `fn`s. Handlers call them directly from async code: every write is one small
//! transaction (one record plus its index entries) that commits in about a millisecond. Calls that can touch
//! many records ([`InstanceStore::prune`] with a large backlog, [`InstanceStore::mark_interrupted`] at
//! start-up) may be run on `tokio::task::spawn_blocking` by callers that care; the store itself never spawns
//! or blocks on async work. Writers are serialized by the store (one write transaction at a time); readers
//! never wait for writers.
//!
//! # Secrets
//!
//! [`InstanceRecord::parameters`] must already be masked by the caller (`DynamicParams::masked()`): the
//! store writes what it is given and never re-masks, so it must never be handed raw secrets. API tokens are
//! stored only as their SHA-256 hash ([`hash_token`]); the secret itself is shown once by whoever called
//! [`new_token`] and is never persisted.
//!
//! # Format
//!
//! Records are JSON (PascalCase keys, like the engine's result tree) so the file is inspectable and the
//! format can evolve: unknown fields are ignored on read, and new optional fields default when absent.

pub mod batch;
pub mod instances;
pub mod keys;
mod redb;
pub mod schedules;
#[cfg(test)]
pub(crate) mod test_support;

pub use self::redb::RedbStore;
pub use batch::{BatchStore, Durability, WriteTxn};
pub use instances::{
    InstanceRecord, InstanceStore, InstanceSummary, Page, RequesterKind, INTERRUPTED_MESSAGE,
};
pub use keys::{hash_token, new_token, KeyStore, TokenRecord, TOKEN_PREFIX};
pub use schedules::{
    deferred_key, Deferred, OccurrenceCommit, ScheduleCommit, ScheduleRecord, ScheduleState,
    ScheduleStore,
};

use std::path::PathBuf;
use std::sync::Arc;

/// The errors of the store (every record kind and backend).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation around the database failed (creating its directory, ...).
    #[error("the store {}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The database reported an error (the text is redb's).
    #[error("the store {}: {message}", path.display())]
    Database { path: PathBuf, message: String },
    /// Another process (or another handle in this one) has the file open.
    #[error(
        "the store {} is in use by another synapse process (only one controller may open it at a time)",
        path.display()
    )]
    InUse { path: PathBuf },
    /// A stored record could not be read back.
    #[error("the store {}: corrupt record {table}[{key}]: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        table: &'static str,
        key: String,
        reason: String,
    },
    /// An instance with this id, or a token with this name, is already stored.
    #[error("{kind} {key:?} already exists")]
    AlreadyExists { kind: &'static str, key: String },
    /// The caller handed the store a record it cannot keep (for example an instance id that is not a UUID v7).
    #[error("invalid {kind}: {reason}")]
    Invalid { kind: &'static str, reason: String },
    /// The caller no longer holds the schedule's lease (it expired and another owner claimed it, or the
    /// schedule was deleted): nothing was written.
    #[error("the lease on schedule {schedule:?} is no longer held")]
    LeaseLost { schedule: String },
    /// The operating system's random number generator failed (no weaker fallback is used).
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// The stores the controller works with, one per record kind. One backend may fill them all
/// ([`Stores::all_in`]); schedules and audit get a field here when they come.
#[derive(Clone)]
pub struct Stores {
    pub instances: Arc<dyn InstanceStore>,
    pub keys: Arc<dyn KeyStore>,
    /// Where the group-commit writer commits its batches.
    pub batch: Arc<dyn BatchStore>,
    pub schedules: Arc<dyn ScheduleStore>,
}

impl Stores {
    /// Every kind in one backend (for [`RedbStore`]: one file).
    pub fn all_in<S: InstanceStore + KeyStore + BatchStore + ScheduleStore + 'static>(
        store: Arc<S>,
    ) -> Stores {
        Stores {
            instances: store.clone(),
            keys: store.clone(),
            batch: store.clone(),
            schedules: store,
        }
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
