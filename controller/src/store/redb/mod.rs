//! Every store trait on one redb file: ACID, crash-safe (every write is one durable transaction), one process
//! at a time. This file holds what the record kinds share (opening the file, the format version, error
//! mapping, batched writes); each kind's tables and trait implementation live in their own file
//! (`instances.rs`, `keys.rs`; schedules and audit will add theirs).
//!
//! Tables (keys are raw bytes, values are JSON records):
//!
//! | table               | key                                   | value                  | file          |
//! |---------------------|---------------------------------------|------------------------|---------------|
//! | `instances`         | 16-byte instance id (UUID v7)         | [`InstanceRecord`] JSON | instances.rs |
//! | `instances_by_plan` | plan name, `0x00`, 16-byte id          | `()`                   | instances.rs  |
//! | `instances_running` | 16-byte id of every running instance  | `()`                   | instances.rs  |
//! | `tokens`            | hex SHA-256 of the secret             | [`TokenRecord`] JSON    | keys.rs      |
//! | `token_names`       | token name                            | hex SHA-256            | keys.rs       |
//! | `schedules`, `schedules_due`, `schedule_leases`, `occurrences` | see schedules.rs | | schedules.rs |
//! | `schedules`, `schedules_due`, `schedule_leases`, `occurrences` | (schedules.rs documents them) | | schedules.rs |
//! | `meta`              | `"format"`                            | format version (`u64`) | mod.rs        |
//!
//! A new record kind adds its own tables (new names; existing ones never change meaning), creates them in
//! [`RedbStore::open`] and needs no format bump: an older build simply does not look at them.
//!
//! [`InstanceRecord`]: super::InstanceRecord
//! [`TokenRecord`]: super::TokenRecord

mod instances;
mod keys;
mod schedules;

use super::{BatchStore, Durability, InstanceRecord, StoreError, WriteTxn};
use redb::{Database, DatabaseError, ReadableTable, TableDefinition, WriteTransaction};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const FORMAT_KEY: &str = "format";
/// The version of the layout above. Bump it (and migrate in `init`) when a change is not backward
/// compatible; adding optional JSON fields, or tables of a new record kind, is not such a change.
const FORMAT: u64 = 1;

/// The page cache size.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Opens the redb database of a file (production: [`redb::Builder::create`]; tests inject faults with their
/// own storage backend).
type Opener = Arc<dyn Fn(&Path) -> Result<Database, DatabaseError> + Send + Sync>;

/// The embedded store: one redb file behind every store trait. Cheap to share (`Arc<RedbStore>`); every
/// method is one transaction.
///
/// After an I/O error (a full disk, say), redb refuses every later operation until the database is closed
/// and opened again ("Previous I/O error occurred"). The store does that by itself: the error marks the
/// database for re-opening, and the next operation drops it and opens the file again (redb repairs it if
/// needed), so writes work again once the cause is gone, without a restart. Operations that meet the store
/// while it cannot be opened yet (transactions of the old handle still running, or the error persisting)
/// fail with a clear [`StoreError::Database`] and try again on the next call.
pub struct RedbStore {
    db: RwLock<Option<Arc<Database>>>,
    /// Set by an I/O error: the next operation re-opens the database.
    broken: AtomicBool,
    open: Opener,
    path: PathBuf,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Maps any redb error to [`StoreError::Database`] with the file's path; an I/O error marks the database
/// for re-opening.
trait OrDb<T> {
    fn db(self, store: &RedbStore) -> Result<T, StoreError>;
}

impl<T, E: Display> OrDb<T> for Result<T, E> {
    fn db(self, store: &RedbStore) -> Result<T, StoreError> {
        self.map_err(|e| {
            let message = e.to_string();
            if is_io_error(&message) {
                store.broken.store(true, Ordering::SeqCst);
            }
            StoreError::Database {
                path: store.path.clone(),
                message,
            }
        })
    }
}

/// redb's I/O errors (`StorageError::Io`, `StorageError::PreviousIo`), after which only a re-open helps.
fn is_io_error(message: &str) -> bool {
    message.starts_with("I/O error") || message.starts_with("Previous I/O error")
}

/// The production opener: the file, created if missing, with our page cache size.
fn open_file(path: &Path) -> Result<Database, DatabaseError> {
    // redb's default page cache is 1 GiB, which a busy server then holds; 64 MiB is plenty here.
    redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)
}

impl RedbStore {
    /// Opens the store at `path`, creating the file (and its parent directories) if needed. Fails with
    /// [`StoreError::InUse`] while another process (or another `RedbStore` in this one) has it open.
    ///
    /// A file left by a crash is recovered by redb on open (committed transactions survive, the interrupted
    /// one is discarded); call [`super::InstanceStore::mark_interrupted`] next to fail the runs the crash cut
    /// short.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        Self::open_with(path, Arc::new(open_file))
    }

    /// [`open`](Self::open) with another way to open the database (fault-injecting backends in tests).
    fn open_with(path: &Path, open: Opener) -> Result<RedbStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                action: "creating its directory",
                source,
            })?;
        }
        let db = open(path).map_err(|e| Self::open_error(path, e))?;
        let store = RedbStore {
            db: RwLock::new(Some(Arc::new(db))),
            broken: AtomicBool::new(false),
            open,
            path: path.to_path_buf(),
        };
        store.init()?;
        Ok(store)
    }

    fn open_error(path: &Path, e: DatabaseError) -> StoreError {
        match e {
            DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                path: path.to_path_buf(),
            },
            other => StoreError::Database {
                path: path.to_path_buf(),
                message: other.to_string(),
            },
        }
    }

    /// The open database; re-opened first when an I/O error marked it (see the type's docs).
    fn database(&self) -> Result<Arc<Database>, StoreError> {
        if !self.broken.load(Ordering::SeqCst) {
            if let Some(db) = self.db.read().ok().and_then(|d| d.clone()) {
                return Ok(db);
            }
        }
        let mut slot = self.db.write().map_err(|_| StoreError::Database {
            path: self.path.clone(),
            message: "the store's handle lock is poisoned".into(),
        })?;
        if self.broken.swap(false, Ordering::SeqCst) {
            // Dropping our handle releases the file once running transactions of it have ended.
            if slot.take().is_some() {
                tracing::warn!(path = %self.path.display(), "re-opening the store after an I/O error");
            }
        }
        if let Some(db) = slot.as_ref() {
            return Ok(db.clone());
        }
        match (self.open)(&self.path) {
            Ok(db) => {
                let db = Arc::new(db);
                *slot = Some(db.clone());
                tracing::info!(path = %self.path.display(), "the store is open again");
                Ok(db)
            }
            Err(e) => Err(StoreError::Database {
                path: self.path.clone(),
                message: format!(
                    "re-opening after an I/O error failed (tried again on the next use): {e}"
                ),
            }),
        }
    }

    /// The file the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates every kind's tables (so that readers never meet a missing one) and checks the format version.
    fn init(&self) -> Result<(), StoreError> {
        let txn = self.database()?.begin_write().db(self)?;
        {
            instances::create_tables(self, &txn)?;
            keys::create_tables(self, &txn)?;
            schedules::create_tables(self, &txn)?;
            let mut meta = txn.open_table(META).db(self)?;
            let found = meta.get(FORMAT_KEY).db(self)?.map(|g| g.value());
            match found {
                None => {
                    meta.insert(FORMAT_KEY, FORMAT).db(self)?;
                }
                Some(v) if v <= FORMAT => {}
                Some(v) => {
                    return Err(StoreError::Database {
                        path: self.path.clone(),
                        message: format!(
                            "written by a newer synapse (store format {v}, this build reads up to {FORMAT})"
                        ),
                    })
                }
            }
        }
        txn.commit().db(self)
    }

    fn corrupt(&self, table: &'static str, key: impl Display, reason: impl Display) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            table,
            key: key.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// A batch's open transaction: each record kind writes the way its own trait methods do.
struct Batch<'a> {
    store: &'a RedbStore,
    txn: &'a WriteTransaction,
}

impl WriteTxn for Batch<'_> {
    fn put_instance(&mut self, rec: &InstanceRecord) -> Result<(), StoreError> {
        self.store.write_instance(self.txn, rec, false)
    }
}

impl BatchStore for RedbStore {
    fn write_batch(
        &self,
        durability: Durability,
        apply: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut txn = self.database()?.begin_write().db(self)?;
        if durability == Durability::Later {
            txn.set_durability(redb::Durability::None).db(self)?;
        }
        apply(&mut Batch {
            store: self,
            txn: &txn,
        })?;
        // Dropping an uncommitted transaction (the `?` above) aborts it: all or nothing.
        txn.commit().db(self)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{finished, running, t0, TempDir};
    use super::super::{hash_token, InstanceStore, KeyStore, Page, Stores, TokenRecord};
    use super::*;
    use chrono::Duration;
    use redb::{ReadableDatabase, ReadableTableMetadata};
    use std::sync::Arc;
    use synapse_engine::StatusType;

    /// A file backend that fails every write, resize and sync with ENOSPC while `full` is set: a disk
    /// that fills up, then gets space again.
    #[derive(Debug)]
    struct FillingDisk {
        inner: redb::backends::FileBackend,
        full: Arc<AtomicBool>,
    }

    impl FillingDisk {
        fn check(&self) -> Result<(), std::io::Error> {
            if self.full.load(Ordering::SeqCst) {
                Err(std::io::Error::from_raw_os_error(28))
            } else {
                Ok(())
            }
        }
    }

    type Range = std::ops::Bound<u64>;

    impl redb::StorageBackend for FillingDisk {
        fn len(&self) -> Result<u64, std::io::Error> {
            self.inner.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
            self.inner.read(offset, out)
        }
        fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
            self.check()?;
            self.inner.set_len(len)
        }
        fn sync_data(&self) -> Result<(), std::io::Error> {
            self.check()?;
            self.inner.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
            self.check()?;
            self.inner.write(offset, data)
        }
        fn close(&self) -> Result<(), std::io::Error> {
            self.inner.close()
        }
        fn try_lock_range(&self, a: Range, b: Range) -> Result<bool, redb::BackendError> {
            self.inner.try_lock_range(a, b)
        }
        fn try_lock_shared_range(&self, a: Range, b: Range) -> Result<bool, redb::BackendError> {
            self.inner.try_lock_shared_range(a, b)
        }
        fn lock_range(&self, a: Range, b: Range) -> Result<(), redb::BackendError> {
            self.inner.lock_range(a, b)
        }
        fn lock_shared_range(&self, a: Range, b: Range) -> Result<(), redb::BackendError> {
            self.inner.lock_shared_range(a, b)
        }
        fn unlock_range(&self, a: Range, b: Range) -> Result<(), redb::BackendError> {
            self.inner.unlock_range(a, b)
        }
    }

    #[test]
    fn a_full_disk_fails_writes_and_the_store_recovers_without_a_restart() {
        let dir = TempDir::new("enospc");
        let full = Arc::new(AtomicBool::new(false));
        let disk = full.clone();
        let opener: Opener = Arc::new(move |path: &Path| {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|e| DatabaseError::Storage(redb::StorageError::Io(e)))?;
            redb::Builder::new().create_with_backend(FillingDisk {
                inner: redb::backends::FileBackend::new(file)?,
                full: disk.clone(),
            })
        });
        let store = RedbStore::open_with(&dir.file(), opener).unwrap();
        let before = running("p.yaml", t0(), 1);
        store.insert_instance(&before).unwrap();

        full.store(true, Ordering::SeqCst);
        let lost = running("p.yaml", t0() + Duration::seconds(1), 2);
        let err = store.insert_instance(&lost).unwrap_err().to_string();
        assert!(err.contains("I/O error"), "{err}");
        // Still full: a clear error again (the re-open fails or redb refuses), never a panic.
        let again = running("p.yaml", t0() + Duration::seconds(2), 3);
        assert!(store.insert_instance(&again).is_err());

        // Space again: the next write re-opens the database and succeeds; nothing committed is lost.
        full.store(false, Ordering::SeqCst);
        let after = running("p.yaml", t0() + Duration::seconds(3), 4);
        store.insert_instance(&after).unwrap();
        assert_eq!(store.get_instance(before.id).unwrap().unwrap(), before);
        assert_eq!(store.get_instance(after.id).unwrap().unwrap(), after);
        assert!(store.get_instance(lost.id).unwrap().is_none());
        // The batched writer's path too.
        store.write_batch(Durability::Now, &mut |_| Ok(())).unwrap();
    }

    #[test]
    fn reopening_keeps_data_and_the_running_set() {
        let dir = TempDir::new("reopen");
        let path = dir.file();
        let rec = running("p.yaml", t0(), 1);
        let done = finished(
            running("p.yaml", t0() + Duration::seconds(1), 2),
            StatusType::Complete,
        );
        {
            let store = RedbStore::open(&path).unwrap();
            store.insert_instance(&rec).unwrap();
            store.insert_instance(&done).unwrap();
            store
                .put_token(&TokenRecord {
                    name: "ci".into(),
                    roles: vec!["admin".into()],
                    created_at: t0(),
                    hash: hash_token("syn_secret"),
                    ..TokenRecord::default()
                })
                .unwrap();
            // Dropped without finishing `rec`: the process "died".
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.get_instance(done.id).unwrap().unwrap(), done);
        assert_eq!(
            store.get_instance(rec.id).unwrap().unwrap().status,
            StatusType::Running
        );
        assert_eq!(
            store.mark_interrupted(t0() + Duration::hours(1)).unwrap(),
            1
        );
        assert_eq!(
            store.get_instance(rec.id).unwrap().unwrap().status,
            StatusType::Failed
        );
        assert_eq!(store.list_tokens().unwrap().len(), 1);
        drop(store);
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(
            store.mark_interrupted(t0() + Duration::hours(2)).unwrap(),
            0
        );
    }

    /// Run in a child process by the next test: inserts a running instance, then dies without unwinding,
    /// dropping or closing anything.
    #[test]
    #[ignore = "helper of crash_of_another_process_is_recovered (runs in a child process)"]
    fn crash_child() {
        let Some(path) = std::env::var_os("SYNAPSE_STORE_CRASH_PATH") else {
            return;
        };
        let store = RedbStore::open(Path::new(&path)).unwrap();
        store.insert_instance(&running("p.yaml", t0(), 1)).unwrap();
        std::process::abort();
    }

    #[test]
    fn crash_of_another_process_is_recovered() {
        let dir = TempDir::new("crash");
        let path = dir.file();
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", &format!("{module}::crash_child")])
            .env("SYNAPSE_STORE_CRASH_PATH", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "the child was meant to abort");
        // The lock died with the process; the committed insert survived the crash.
        let store = RedbStore::open(&path).unwrap();
        let id = running("p.yaml", t0(), 1).id;
        assert_eq!(
            store.get_instance(id).unwrap().unwrap().status,
            StatusType::Running
        );
        assert_eq!(store.mark_interrupted(t0()).unwrap(), 1);
        assert_eq!(
            store.get_instance(id).unwrap().unwrap().status,
            StatusType::Failed
        );
    }

    #[test]
    fn a_store_in_use_gives_a_clear_error() {
        let dir = TempDir::new("in-use");
        let path = dir.file();
        let first = RedbStore::open(&path).unwrap();
        let err = RedbStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("is in use by another synapse process"),
            "{text}"
        );
        assert!(text.contains("synapse.redb"), "{text}");
        drop(first);
        RedbStore::open(&path).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_store_is_a_database_error_naming_the_path() {
        let dir = TempDir::new("garbage");
        let path = dir.file();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            b"this is not a redb file, just some text that is long enough",
        )
        .unwrap();
        let err = RedbStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Database { .. }), "{err:?}");
        assert!(err.to_string().contains("synapse.redb"), "{err}");
    }

    #[test]
    fn a_file_of_a_newer_format_is_refused() {
        let dir = TempDir::new("newer");
        let path = dir.file();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(FORMAT_KEY, FORMAT + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let err = RedbStore::open(&path).unwrap_err();
        assert!(
            err.to_string().contains("written by a newer synapse"),
            "{err}"
        );
    }

    /// The on-disk format of format 1, spelled out independently of the modules' constants: a file written
    /// by an earlier build (before the store traits were split) must still open and read the same.
    #[test]
    fn format_1_files_written_by_hand_still_read() {
        let dir = TempDir::new("format-1");
        let path = dir.file();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let rec = finished(running("p.yaml", t0(), 1), StatusType::Complete);
        let live = running("p.yaml", t0() + Duration::seconds(1), 2);
        let token = TokenRecord {
            name: "old".into(),
            roles: vec!["read".into()],
            created_at: t0(),
            hash: hash_token("syn_old"),
            ..TokenRecord::default()
        };
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t: redb::Table<&[u8; 16], &[u8]> =
                    txn.open_table(TableDefinition::new("instances")).unwrap();
                let mut by_plan: redb::Table<&[u8], ()> = txn
                    .open_table(TableDefinition::new("instances_by_plan"))
                    .unwrap();
                for r in [&rec, &live] {
                    let json = serde_json::to_vec(r).unwrap();
                    t.insert(r.id.as_bytes(), json.as_slice()).unwrap();
                    let mut k = b"p.yaml\0".to_vec();
                    k.extend_from_slice(r.id.as_bytes());
                    by_plan.insert(k.as_slice(), ()).unwrap();
                }
                let mut running_set: redb::Table<&[u8; 16], ()> = txn
                    .open_table(TableDefinition::new("instances_running"))
                    .unwrap();
                running_set.insert(live.id.as_bytes(), ()).unwrap();
                let mut tokens: redb::Table<&str, &[u8]> =
                    txn.open_table(TableDefinition::new("tokens")).unwrap();
                let json = serde_json::to_vec(&token).unwrap();
                tokens.insert(token.hash.as_str(), json.as_slice()).unwrap();
                let mut names: redb::Table<&str, &str> =
                    txn.open_table(TableDefinition::new("token_names")).unwrap();
                names.insert("old", token.hash.as_str()).unwrap();
                let mut meta: redb::Table<&str, u64> =
                    txn.open_table(TableDefinition::new("meta")).unwrap();
                meta.insert("format", 1).unwrap();
            }
            txn.commit().unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.get_instance(rec.id).unwrap(), Some(rec.clone()));
        let listed: Vec<_> = store
            .list_instances("p.yaml", Page::default())
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(listed, vec![live.id, rec.id]);
        assert_eq!(
            store.token_by_hash(&token.hash).unwrap(),
            Some(token.clone())
        );
        assert_eq!(store.list_tokens().unwrap(), vec![token]);
        assert_eq!(store.mark_interrupted(t0()).unwrap(), 1);
        // And what this build writes lands in the same tables, the same way.
        drop(store);
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let running_set: redb::ReadOnlyTable<&[u8; 16], ()> = txn
            .open_table(TableDefinition::new("instances_running"))
            .unwrap();
        assert_eq!(running_set.len().unwrap(), 0);
        let meta: redb::ReadOnlyTable<&str, u64> =
            txn.open_table(TableDefinition::new("meta")).unwrap();
        assert_eq!(meta.get("format").unwrap().unwrap().value(), 1);
    }

    #[test]
    fn a_batch_is_one_transaction_all_or_nothing() {
        let dir = TempDir::new("batch");
        let store = RedbStore::open(&dir.file()).unwrap();
        let a = running("p.yaml", t0(), 1);
        let b = finished(running("p.yaml", t0(), 2), StatusType::Complete);
        let mut calls = 0;
        store
            .write_batch(Durability::Now, &mut |txn| {
                calls += 1;
                txn.put_instance(&a)?;
                txn.put_instance(&b)?;
                // A later record of the batch replaces an earlier one with the same id.
                txn.put_instance(&finished(a.clone(), StatusType::Failed))
            })
            .unwrap();
        assert_eq!(calls, 1);
        assert_eq!(
            store.get_instance(a.id).unwrap().unwrap().status,
            StatusType::Failed
        );
        assert_eq!(store.get_instance(b.id).unwrap(), Some(b.clone()));
        assert_eq!(store.mark_interrupted(t0()).unwrap(), 0);

        // One bad record: nothing of the batch is stored.
        let c = running("p.yaml", t0(), 3);
        let mut v4 = running("p.yaml", t0(), 4);
        v4.id = uuid::Uuid::from_u128(0x1234_5678_9abc_4def_8000_0000_0000_0001);
        let err = store
            .write_batch(Durability::Now, &mut |txn| {
                txn.put_instance(&c)?;
                txn.put_instance(&v4)
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        assert_eq!(store.get_instance(c.id).unwrap(), None);
        assert_eq!(
            store
                .list_instances("p.yaml", Page::default())
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn one_file_backs_every_trait_object() {
        let dir = TempDir::new("stores");
        let stores = Stores::all_in(Arc::new(RedbStore::open(&dir.file()).unwrap()));
        let rec = running("p.yaml", t0(), 1);
        stores
            .batch
            .write_batch(Durability::Now, &mut |txn| txn.put_instance(&rec))
            .unwrap();
        assert_eq!(stores.instances.get_instance(rec.id).unwrap(), Some(rec));
        let token = TokenRecord {
            name: "k".into(),
            roles: vec![],
            created_at: t0(),
            hash: hash_token("syn_k"),
            ..TokenRecord::default()
        };
        stores.keys.put_token(&token).unwrap();
        assert_eq!(stores.keys.list_tokens().unwrap(), vec![token]);
    }

    #[test]
    fn the_store_is_usable_behind_a_trait_object_from_threads() {
        let dir = TempDir::new("threads");
        let store: Arc<dyn InstanceStore> = Arc::new(RedbStore::open(&dir.file()).unwrap());
        let handles: Vec<_> = (0..4u32)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..25u32 {
                        let at = t0() + Duration::milliseconds(i64::from(i));
                        store
                            .insert_instance(&running("p.yaml", at, t * 1000 + i))
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(
            store
                .list_instances("p.yaml", Page::first(1000))
                .unwrap()
                .len(),
            100
        );
    }

    /// `cargo test -p synapse-controller --release -- --ignored --nocapture store_timing`
    #[test]
    #[ignore = "a measurement, not a test"]
    fn store_timing() {
        let dir = TempDir::new("timing");
        let store = RedbStore::open(&dir.file()).unwrap();
        let n = 10_000u32;
        let start = std::time::Instant::now();
        for i in 0..n {
            let at = t0() + Duration::milliseconds(i64::from(i));
            let rec = running("bench.yaml", at, i);
            store.insert_instance(&rec).unwrap();
            store
                .finish_instance(&finished(rec, StatusType::Complete))
                .unwrap();
        }
        let write = start.elapsed();
        let start = std::time::Instant::now();
        let rounds = 1000;
        for _ in 0..rounds {
            assert_eq!(
                store
                    .list_instances("bench.yaml", Page::first(100))
                    .unwrap()
                    .len(),
                100
            );
        }
        let list = start.elapsed() / rounds;
        let start = std::time::Instant::now();
        let mut page = Page::first(1000);
        let mut total = 0;
        loop {
            let items = store.list_instances("bench.yaml", page).unwrap();
            let Some(last) = items.last() else { break };
            total += items.len();
            page = Page::after(last.id, 1000);
        }
        let walk = start.elapsed();
        let size = std::fs::metadata(dir.file()).unwrap().len();
        let start = std::time::Instant::now();
        let pruned = store.prune(t0() + Duration::days(1)).unwrap();
        let prune = start.elapsed();
        println!(
            "{n} x (insert + finish): {write:?} ({:?} per instance, {:?} per commit); \
             list 100: {list:?}; walk all {total} in pages of 1000: {walk:?}; \
             file {:.1} MiB; prune {pruned}: {prune:?}",
            write / n,
            write / (2 * n),
            size as f64 / 1_048_576.0
        );
    }
}
