//! Group commit of instance records: the runner hands records to a writer thread, which stores whatever has
//! queued up in one transaction (one disk flush for many instances). Records not yet committed stay readable
//! through [`Writer::pending`], so a caller never sees an instance vanish between "finished" and "stored".
//! A crash can lose the records of the last few milliseconds; the store itself stays consistent.

use crate::store::{InstanceRecord, InstanceStore};
use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use uuid::Uuid;

/// Most records per transaction.
const MAX_BATCH: usize = 1024;

enum Msg {
    Put(Box<InstanceRecord>),
    /// Reply when everything queued before has been committed.
    Flush(Sender<()>),
}

/// The writer thread's handle.
pub struct Writer {
    tx: Mutex<Option<Sender<Msg>>>,
    pending: Arc<Mutex<HashMap<Uuid, InstanceRecord>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub fn start(store: Arc<dyn InstanceStore>) -> Writer {
        let (tx, rx) = mpsc::channel();
        let pending: Arc<Mutex<HashMap<Uuid, InstanceRecord>>> = Arc::default();
        let p = pending.clone();
        let thread = std::thread::Builder::new()
            .name("synapse-store-writer".into())
            .spawn(move || run(store, rx, p))
            .ok();
        Writer {
            tx: Mutex::new(Some(tx)),
            pending,
            thread: Mutex::new(thread),
        }
    }

    /// Queues a record (it is readable through `pending` until committed).
    pub fn put(&self, rec: InstanceRecord) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert(rec.id, rec.clone());
        }
        let sent = self
            .tx
            .lock()
            .ok()
            .and_then(|t| t.as_ref().map(|t| t.send(Msg::Put(Box::new(rec))).is_ok()));
        if sent != Some(true) {
            tracing::error!("the store writer is gone; an instance record was not stored");
        }
    }

    /// A queued, not yet committed record.
    pub fn pending(&self, id: Uuid) -> Option<InstanceRecord> {
        self.pending.lock().ok().and_then(|p| p.get(&id).cloned())
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

fn run(
    store: Arc<dyn InstanceStore>,
    rx: Receiver<Msg>,
    pending: Arc<Mutex<HashMap<Uuid, InstanceRecord>>>,
) {
    while let Ok(first) = rx.recv() {
        let mut batch: Vec<InstanceRecord> = Vec::new();
        let mut flushes: Vec<Sender<()>> = Vec::new();
        let mut take = |m: Msg, batch: &mut Vec<InstanceRecord>| match m {
            Msg::Put(r) => batch.push(*r),
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
            if let Err(e) = store.put_instances(&batch) {
                tracing::error!(error = %e, records = batch.len(), "storing instance records failed");
            }
            metrics::histogram!("synapse_store_batch_records").record(batch.len() as f64);
            if let Ok(mut p) = pending.lock() {
                for r in &batch {
                    // Only drop it if no newer version was queued meanwhile.
                    if p.get(&r.id).is_some_and(|q| q == r) {
                        p.remove(&r.id);
                    }
                }
            }
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
}
