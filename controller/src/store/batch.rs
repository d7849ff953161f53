//! Batched writes of any record kind in one transaction: the store side of the group-commit writer
//! (`crate::writer`).
//!
//! The writer queues records of any kind (anything implementing `writer::Record`) and hands a whole batch
//! to [`BatchStore::write_batch`], which opens ONE write transaction, lets every record write itself through
//! [`WriteTxn`], and commits once: one disk flush however many records and kinds the batch holds.
//!
//! A record kind that wants group commit adds its write to [`WriteTxn`] (for example
//! `append_audit(&AuditRecord)` when the audit log comes) and each backend implements it inside its
//! transaction, exactly as the kind's own store trait would write it.

use super::{InstanceRecord, StoreError};

/// An open write transaction, as the records of a batch see it. Every write here has the same effect as the
/// matching method of the kind's store trait, minus the commit.
pub trait WriteTxn {
    /// Inserts or replaces an instance, index entries included (as [`super::InstanceStore::finish_instance`]).
    fn put_instance(&mut self, rec: &InstanceRecord) -> Result<(), StoreError>;
}

/// How a batch's commit reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// On disk when the commit returns (one flush).
    Now,
    /// Committed and readable at once, flushed to disk by the next [`Durability::Now`] commit. A crash before that
    /// loses it; the store itself stays consistent.
    Later,
}

/// A store that can apply a batch of writes in one transaction.
pub trait BatchStore: Send + Sync {
    /// Opens one write transaction, calls `apply` with it, and commits it if `apply` succeeds. All or
    /// nothing: if `apply` (or the commit) fails, none of the batch's writes is stored. A [`Durability::Now`]
    /// commit also makes every earlier [`Durability::Later`] commit durable (with an `apply` that writes nothing,
    /// it does only that).
    fn write_batch(
        &self,
        durability: Durability,
        apply: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
}
