//! Group commit: callers hand records of any kind to a writer thread, which stores whatever has queued up in
//! ONE transaction with one commit ([`BatchStore::write_batch`]), one disk flush for many records. Callers of
//! [`Writer::put`] never block on the disk; [`Writer::flush`] waits until everything queued is committed and
//! on disk; [`Writer::close`] (shutdown) commits what is queued, flushes it and stops the thread.
//!
//! Records say how soon they must be on disk ([`Record::durability`]). A batch holding any
//! [`Durability::Now`] record is flushed by its commit. A batch of [`Durability::Later`] records only (the
//! records of reads: AD gets, searches) is committed without a flush, readable at once, and reaches the disk
//! with the next flushed commit, at the latest [`MAX_UNFLUSHED`] later (the writer flushes on its own when
//! nothing else comes). A crash can lose the read records of that last second; the store itself stays
//! consistent. Reads no longer pay a disk flush each (docs/performance.md).
//!
//! A record kind joins by implementing [`Record`] (write yourself through [`WriteTxn`]; hear when your batch
//! is settled). [`InstanceWriter`] is the instance kind's wrapper: records not yet committed stay readable
//! through [`InstanceWriter::pending`], so the runner never sees an instance vanish between "finished" and
//! "stored".

use crate::store::{BatchStore, Durability, InstanceRecord, StoreError, WriteTxn};
use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Most records per transaction.
const MAX_BATCH: usize = 1024;

/// How long a [`Durability::Later`] commit may stay off the disk.
pub const MAX_UNFLUSHED: Duration = Duration::from_secs(1);

/// A record the writer can queue: it writes itself inside the batch's transaction.
pub trait Record: Send + 'static {
    /// Writes the record through the batch's open transaction. An error abandons the whole batch (the
    /// transaction is all or nothing), so only fail for a record that can never be stored.
    fn apply(&self, txn: &mut dyn WriteTxn) -> Result<(), StoreError>;

    /// How soon the record must be on disk; [`Durability::Now`] unless the kind says otherwise.
    fn durability(&self) -> Durability {
        Durability::Now
    }

    /// Called once the batch holding the record is settled: committed (`true`) or abandoned on an error
    /// (`false`, already logged). Not called for a record put after [`Writer::close`].
    fn settled(self: Box<Self>, _committed: bool) {}
}

enum Msg {
    Put(Box<dyn Record>),
    /// Reply when everything queued before has been committed and flushed.
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
        Writer::start_with(store, MAX_UNFLUSHED)
    }

    /// Starts the writer thread on `store`; unflushed commits reach the disk within `max_unflushed`.
    pub fn start_with(store: Arc<dyn BatchStore>, max_unflushed: Duration) -> Writer {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("synapse-store-writer".into())
            .spawn(move || run(store, rx, max_unflushed))
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

    /// Waits until everything queued so far is committed and on disk.
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

    /// Commits what is queued, flushes it and stops the thread.
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

/// Flushes earlier unflushed commits (a commit that writes nothing, with a flush).
fn flush_only(store: &dyn BatchStore) {
    if let Err(e) = store.write_batch(Durability::Now, &mut |_| Ok(())) {
        tracing::error!(error = %e, "flushing the store to disk failed");
    }
}

fn run(store: Arc<dyn BatchStore>, rx: Receiver<Msg>, max_unflushed: Duration) {
    // Since when an unflushed (Durability::Later) commit waits for a flush.
    let mut unflushed: Option<Instant> = None;
    loop {
        let first = match unflushed {
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            },
            Some(since) => {
                let left = max_unflushed.saturating_sub(since.elapsed());
                match rx.recv_timeout(left) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        flush_only(store.as_ref());
                        unflushed = None;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        };
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
        let must_flush = !flushes.is_empty()
            || batch.iter().any(|r| r.durability() == Durability::Now)
            || unflushed.is_some_and(|since| since.elapsed() >= max_unflushed);
        let durability = if must_flush {
            Durability::Now
        } else {
            Durability::Later
        };
        if !batch.is_empty() {
            let stored = store.write_batch(durability, &mut |txn| {
                for rec in &batch {
                    rec.apply(txn)?;
                }
                Ok(())
            });
            if let Err(e) = &stored {
                tracing::error!(error = %e, records = batch.len(), "storing a batch of records failed");
                if must_flush && unflushed.is_some() {
                    // The batch failed, but what was committed before must still reach the disk.
                    flush_only(store.as_ref());
                }
            }
            metrics::histogram!("synapse_store_batch_records").record(batch.len() as f64);
            let committed = stored.is_ok();
            for rec in batch {
                rec.settled(committed);
            }
        } else if must_flush && unflushed.is_some() {
            flush_only(store.as_ref());
        }
        if must_flush {
            unflushed = None;
        } else if unflushed.is_none() {
            unflushed = Some(Instant::now());
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
    if unflushed.is_some() {
        flush_only(store.as_ref());
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
    durability: Durability,
    pending: Pending,
    /// Told how the batch holding the record settled (committed or not).
    settled: Option<tokio::sync::oneshot::Sender<bool>>,
}

impl Record for PutInstance {
    fn apply(&self, txn: &mut dyn WriteTxn) -> Result<(), StoreError> {
        txn.put_instance(&self.rec)
    }

    fn durability(&self) -> Durability {
        self.durability
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

    /// Queues a record (it is readable through `pending` until committed), to be on disk with its commit.
    pub fn put(&self, rec: InstanceRecord) {
        self.put_with(rec, Durability::Now);
    }

    /// Queues a record (readable through `pending` until committed) that may reach the disk up to
    /// [`MAX_UNFLUSHED`] after its commit: the records of reads.
    pub fn put_with(&self, rec: InstanceRecord, durability: Durability) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert(rec.id, rec.clone());
        }
        self.writer.put(Box::new(PutInstance {
            rec,
            durability,
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
            durability: Durability::Now,
            pending: self.pending.clone(),
            settled: Some(tx),
        }));
        rx
    }

    /// A queued, not yet committed record.
    pub fn pending(&self, id: Uuid) -> Option<InstanceRecord> {
        self.pending.lock().ok().and_then(|p| p.get(&id).cloned())
    }

    /// Waits until everything queued so far (of every kind) is committed and on disk.
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

    /// A store that records the durability of every commit (and whether it wrote anything).
    #[derive(Default)]
    struct Commits(Mutex<Vec<(Durability, bool)>>);

    struct Count(bool);

    impl WriteTxn for Count {
        fn put_instance(&mut self, _rec: &InstanceRecord) -> Result<(), StoreError> {
            self.0 = true;
            Ok(())
        }
    }

    impl BatchStore for Commits {
        fn write_batch(
            &self,
            durability: Durability,
            apply: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>,
        ) -> Result<(), StoreError> {
            let mut txn = Count(false);
            apply(&mut txn)?;
            self.0.lock().unwrap().push((durability, txn.0));
            Ok(())
        }
    }

    impl Commits {
        fn take(&self) -> Vec<(Durability, bool)> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    #[test]
    fn reads_commit_without_a_flush_and_reach_the_disk_within_the_bound() {
        let store = Arc::new(Commits::default());
        // An hour: only flush, a durable record or close can flush here.
        let writer = Arc::new(Writer::start_with(
            store.clone(),
            std::time::Duration::from_secs(3600),
        ));
        let w = InstanceWriter::new(writer.clone());
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        // Hold the writer in one batch so the next records queue up together.
        writer.put(Box::new(Gate {
            entered: entered_tx,
            release: Mutex::new(release_rx),
        }));
        entered.recv().unwrap();
        w.put_with(running("p.yaml", t0(), 1), Durability::Later);
        w.put_with(running("p.yaml", t0(), 2), Durability::Later);
        release.send(()).unwrap();
        // The gate's own batch is durable by default; then wait until the two reads are committed.
        while !w.pending.lock().unwrap().is_empty() {
            std::thread::yield_now();
        }
        assert_eq!(
            store.take(),
            [(Durability::Now, false), (Durability::Later, true)]
        );
        // A write in the next batch flushes it all with its own commit.
        w.put(running("p.yaml", t0(), 3));
        while !w.pending.lock().unwrap().is_empty() {
            std::thread::yield_now();
        }
        assert_eq!(store.take(), [(Durability::Now, true)]);
        // Flush after a read: one unflushed commit, then an empty flushing one.
        w.put_with(running("p.yaml", t0(), 4), Durability::Later);
        w.flush();
        let commits = store.take();
        assert!(
            commits == [(Durability::Now, true)]
                || commits == [(Durability::Later, true), (Durability::Now, false)],
            "{commits:?}"
        );
        // Close flushes what is unflushed.
        w.put_with(running("p.yaml", t0(), 5), Durability::Later);
        while !w.pending.lock().unwrap().is_empty() {
            std::thread::yield_now();
        }
        writer.close();
        assert_eq!(
            store.take(),
            [(Durability::Later, true), (Durability::Now, false)]
        );

        // With nothing else coming, the writer flushes on its own once the bound has passed.
        let store = Arc::new(Commits::default());
        let bound = std::time::Duration::from_millis(20);
        let writer = Arc::new(Writer::start_with(store.clone(), bound));
        let w = InstanceWriter::new(writer.clone());
        w.put_with(running("p.yaml", t0(), 6), Durability::Later);
        let waited = std::time::Instant::now();
        while store.0.lock().unwrap().len() < 2
            && waited.elapsed() < std::time::Duration::from_secs(30)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(
            store.take(),
            [(Durability::Later, true), (Durability::Now, false)]
        );
        writer.close();
        // Nothing unflushed at close: no further commit.
        assert_eq!(store.take(), []);
    }

    #[test]
    fn unflushed_reads_survive_a_clean_close_on_redb() {
        let dir = TempDir::new("writer-later");
        let (store, writer) = open(&dir);
        let w = InstanceWriter::new(writer.clone());
        let recs: Vec<_> = (0..50u32).map(|i| running("p.yaml", t0(), i)).collect();
        for r in &recs {
            w.put_with(r.clone(), Durability::Later);
        }
        writer.close();
        drop(w);
        drop(writer);
        drop(store);
        let store = RedbStore::open(&dir.file()).unwrap();
        for r in &recs {
            assert_eq!(store.get_instance(r.id).unwrap().as_ref(), Some(r));
        }
    }
}
