//! Group commit: callers hand records of any kind to a writer thread, which stores whatever has queued up in
//! ONE transaction with one commit ([`BatchStore::write_batch`]), one disk flush for many records. Callers of
//! [`Writer::put`] never block on the disk; [`Writer::flush`] waits until everything queued is committed;
//! [`Writer::close`] (shutdown) commits what is queued and stops the thread. A crash can lose the records of
//! the last few milliseconds; the store itself stays consistent.
//!
//! A record kind joins by implementing [`Record`] (write yourself through [`WriteTxn`]; hear when your batch
//! is settled). [`InstanceWriter`] is the instance kind's wrapper: records not yet committed stay readable
//! through [`InstanceWriter::pending`], so the runner never sees an instance vanish between "finished" and
//! "stored".

use crate::store::{BatchStore, InstanceRecord, StoreError, WriteTxn};
use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use uuid::Uuid;

/// Most records per transaction.
const MAX_BATCH: usize = 1024;

/// A record the writer can queue: it writes itself inside the batch's transaction.
pub trait Record: Send + 'static {
    /// Writes the record through the batch's open transaction. An error abandons the whole batch (the
    /// transaction is all or nothing), so only fail for a record that can never be stored.
    fn apply(&self, txn: &mut dyn WriteTxn) -> Result<(), StoreError>;

    /// Called once the batch holding the record is settled: committed (`true`) or abandoned on an error
    /// (`false`, already logged). Not called for a record put after [`Writer::close`].
    fn settled(self: Box<Self>, _committed: bool) {}
}

enum Msg {
    Put(Box<dyn Record>),
    /// Reply when everything queued before has been committed.
    Flush(Sender<()>),
}

/// The writer thread's handle. Share it (`Arc<Writer>`) between the kinds that write through it.
pub struct Writer {
    tx: Mutex<Option<Sender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on `store`.
    pub fn start(store: Arc<dyn BatchStore>) -> Writer {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("synapse-store-writer".into())
            .spawn(move || run(store, rx))
            .ok();
        Writer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(thread),
        }
    }

    /// Queues a record; never waits for the disk. After [`Writer::close`] the record is dropped (logged).
    pub fn put(&self, rec: Box<dyn Record>) {
        let sent = self
            .tx
            .lock()
            .ok()
            .and_then(|t| t.as_ref().map(|t| t.send(Msg::Put(rec)).is_ok()));
        if sent != Some(true) {
            tracing::error!("the store writer is gone; a record was not stored");
        }
    }

    /// Waits until everything queued so far is committed.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        let sent = self
            .tx
            .lock()
            .ok()
            .and_then(|t| t.as_ref().map(|t| t.send(Msg::Flush(tx)).is_ok()));
        if sent == Some(true) {
            let _ = rx.recv();
        }
    }

    /// Commits what is queued and stops the thread.
    pub fn close(&self) {
        if let Ok(mut t) = self.tx.lock() {
            t.take();
        }
        if let Some(h) = self.thread.lock().ok().and_then(|mut h| h.take()) {
            let _ = h.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(store: Arc<dyn BatchStore>, rx: Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut batch: Vec<Box<dyn Record>> = Vec::new();
        let mut flushes: Vec<Sender<()>> = Vec::new();
        let mut take = |m: Msg, batch: &mut Vec<Box<dyn Record>>| match m {
            Msg::Put(r) => batch.push(r),
            Msg::Flush(s) => flushes.push(s),
        };
        take(first, &mut batch);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => take(m, &mut batch),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let stored = store.write_batch(&mut |txn| {
                for rec in &batch {
                    rec.apply(txn)?;
                }
                Ok(())
            });
            if let Err(e) = &stored {
                tracing::error!(error = %e, records = batch.len(), "storing a batch of records failed");
            }
            metrics::histogram!("synapse_store_batch_records").record(batch.len() as f64);
            let committed = stored.is_ok();
            for rec in batch {
                rec.settled(committed);
            }
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
}

type Pending = Arc<Mutex<HashMap<Uuid, InstanceRecord>>>;

/// The runner's view of the writer: instance records, readable until committed.
pub struct InstanceWriter {
    writer: Arc<Writer>,
    pending: Pending,
}

/// One queued instance record.
struct PutInstance {
    rec: InstanceRecord,
    pending: Pending,
    /// Told how the batch holding the record settled (committed or not).
    settled: Option<tokio::sync::oneshot::Sender<bool>>,
}

impl Record for PutInstance {
    fn apply(&self, txn: &mut dyn WriteTxn) -> Result<(), StoreError> {
        txn.put_instance(&self.rec)
    }

    fn settled(self: Box<Self>, committed: bool) {
        if let Some(tx) = self.settled {
            let _ = tx.send(committed);
        }
        // Committed, or lost with its batch (logged): either way no longer pending. Only drop it if no newer
        // version was queued meanwhile.
        if let Ok(mut p) = self.pending.lock() {
            if p.get(&self.rec.id).is_some_and(|q| *q == self.rec) {
                p.remove(&self.rec.id);
            }
        }
    }
}

impl InstanceWriter {
    pub fn new(writer: Arc<Writer>) -> InstanceWriter {
        InstanceWriter {
            writer,
            pending: Arc::default(),
        }
    }

    /// Queues a record (it is readable through `pending` until committed).
    pub fn put(&self, rec: InstanceRecord) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert(rec.id, rec.clone());
        }
        self.writer.put(Box::new(PutInstance {
            rec,
            pending: self.pending.clone(),
            settled: None,
        }));
    }

    /// Queues a record (readable through `pending` at once, like [`InstanceWriter::put`]); the receiver
    /// hears how its batch settled: `true` when committed, `false` (or a closed channel) when it was not
    /// stored (the batch failed, or the writer is closed). Awaiting it never blocks a thread, and concurrent
    /// callers share one commit.
    pub fn put_settled(&self, rec: InstanceRecord) -> tokio::sync::oneshot::Receiver<bool> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(rec.id, rec.clone());
        }
        self.writer.put(Box::new(PutInstance {
            rec,
            pending: self.pending.clone(),
            settled: Some(tx),
        }));
        rx
    }

    /// A queued, not yet committed record.
    pub fn pending(&self, id: Uuid) -> Option<InstanceRecord> {
        self.pending.lock().ok().and_then(|p| p.get(&id).cloned())
    }

    /// Waits until everything queued so far (of every kind) is committed.
    pub fn flush(&self) {
        self.writer.flush();
    }

    /// Commits what is queued and stops the (shared) writer thread.
    pub fn close(&self) {
        self.writer.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{finished, running, t0, TempDir};
    use crate::store::{InstanceStore, RedbStore};
    use chrono::Duration;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use synapse_engine::StatusType;

    fn open(dir: &TempDir) -> (Arc<RedbStore>, Arc<Writer>) {
        let store = Arc::new(RedbStore::open(&dir.file()).unwrap());
        let writer = Arc::new(Writer::start(store.clone()));
        (store, writer)
    }

    #[test]
    fn instances_are_pending_until_committed_then_stored() {
        let dir = TempDir::new("writer-pending");
        let (store, writer) = open(&dir);
        let w = InstanceWriter::new(writer);
        let rec = running("p.yaml", t0(), 1);
        w.put(rec.clone());
        // Readable at once: pending, or already committed.
        let seen = w
            .pending(rec.id)
            .or_else(|| store.get_instance(rec.id).unwrap());
        assert_eq!(seen, Some(rec.clone()));
        let done = finished(rec.clone(), StatusType::Complete);
        w.put(done.clone());
        w.flush();
        assert_eq!(w.pending(rec.id), None);
        assert_eq!(store.get_instance(rec.id).unwrap(), Some(done));
    }

    #[test]
    fn put_settled_hears_the_commit() {
        let dir = TempDir::new("writer-settled");
        let (store, writer) = open(&dir);
        let w = InstanceWriter::new(writer.clone());
        let rec = running("p.yaml", t0(), 1);
        let rx = w.put_settled(rec.clone());
        // Readable at once, before the commit is heard.
        assert!(w.pending(rec.id).is_some() || store.get_instance(rec.id).unwrap().is_some());
        assert_eq!(rx.blocking_recv(), Ok(true));
        assert_eq!(store.get_instance(rec.id).unwrap(), Some(rec));
        // After close nothing is stored: the receiver says so instead of waiting forever.
        writer.close();
        let late = running("p.yaml", t0(), 2);
        assert!(!w.put_settled(late).blocking_recv().unwrap_or(false));
    }

    #[test]
    fn close_drains_the_queue() {
        let dir = TempDir::new("writer-close");
        let (store, writer) = open(&dir);
        let w = InstanceWriter::new(writer.clone());
        let recs: Vec<_> = (0..500u32)
            .map(|i| running("p.yaml", t0() + Duration::milliseconds(i64::from(i)), i))
            .collect();
        for r in &recs {
            w.put(r.clone());
        }
        w.close();
        for r in &recs {
            assert_eq!(store.get_instance(r.id).unwrap().as_ref(), Some(r));
            assert_eq!(w.pending(r.id), None);
        }
        // Closed: further records are dropped (and stay pending), flush returns at once.
        let late = running("p.yaml", t0() + Duration::seconds(10), 9999);
        w.put(late.clone());
        w.flush();
        assert_eq!(store.get_instance(late.id).unwrap(), None);
        writer.close();
    }

    /// A record of another kind: counts how it was settled.
    struct Probe {
        rec: InstanceRecord,
        fail: bool,
        committed: Arc<AtomicUsize>,
        abandoned: Arc<AtomicUsize>,
    }

    impl Record for Probe {
        fn apply(&self, txn: &mut dyn WriteTxn) -> Result<(), StoreError> {
            if self.fail {
                return Err(StoreError::Invalid {
                    kind: "probe",
                    reason: "asked to fail".into(),
                });
            }
            txn.put_instance(&self.rec)
        }

        fn settled(self: Box<Self>, committed: bool) {
            let n = if committed {
                &self.committed
            } else {
                &self.abandoned
            };
            n.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A record that holds its batch open until released.
    struct Gate {
        entered: mpsc::Sender<()>,
        release: Mutex<mpsc::Receiver<()>>,
    }

    impl Record for Gate {
        fn apply(&self, _txn: &mut dyn WriteTxn) -> Result<(), StoreError> {
            let _ = self.entered.send(());
            if let Ok(r) = self.release.lock() {
                let _ = r.recv();
            }
            Ok(())
        }
    }

    #[test]
    fn records_of_any_kind_share_batches_and_hear_the_outcome() {
        let dir = TempDir::new("writer-kinds");
        let (store, writer) = open(&dir);
        let instances = InstanceWriter::new(writer.clone());
        let committed = Arc::new(AtomicUsize::new(0));
        let abandoned = Arc::new(AtomicUsize::new(0));
        let probe = |seed: u32, fail: bool| {
            Box::new(Probe {
                rec: running("probe.yaml", t0(), seed),
                fail,
                committed: committed.clone(),
                abandoned: abandoned.clone(),
            })
        };
        let a = running("p.yaml", t0(), 1);
        instances.put(a.clone());
        writer.put(probe(2, false));
        writer.flush();
        assert_eq!(committed.load(Ordering::SeqCst), 1);
        assert_eq!(store.get_instance(a.id).unwrap(), Some(a));
        assert!(store
            .get_instance(running("probe.yaml", t0(), 2).id)
            .unwrap()
            .is_some());

        // A failing record abandons its batch (all or nothing); every record of it hears so, and the
        // instance it held is no longer pending. The writer carries on with the next batch.
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        writer.put(Box::new(Gate {
            entered: entered_tx,
            release: Mutex::new(release_rx),
        }));
        // The writer is now inside the gate's batch: the next two records queue up for one batch.
        entered.recv().unwrap();
        let b = running("p.yaml", t0(), 3);
        instances.put(b.clone());
        writer.put(probe(4, true));
        release.send(()).unwrap();
        writer.flush();
        assert_eq!(abandoned.load(Ordering::SeqCst), 1);
        assert_eq!(committed.load(Ordering::SeqCst), 1);
        assert_eq!(store.get_instance(b.id).unwrap(), None);
        assert_eq!(instances.pending(b.id), None);
        let c = running("p.yaml", t0(), 5);
        instances.put(c.clone());
        writer.flush();
        assert_eq!(store.get_instance(c.id).unwrap(), Some(c));
    }
}
