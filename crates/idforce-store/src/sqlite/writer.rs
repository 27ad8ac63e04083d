//! The SQLite database: every write goes through one writer thread, every read through a
//! reader connection on the caller's thread.
//!
//! A driver that runs each statement on a worker thread of its connection costs two thread
//! hand-offs per query — most of the time of a token request. Here reads run on the caller's
//! thread over a small pool of connections with cached prepared statements (a read of cached
//! pages takes microseconds, and in WAL mode readers never wait for the writer), and writes are
//! group-committed: one writer thread takes every write queued while its previous transaction
//! was committing, runs each in its own savepoint, commits them together and only then answers
//! each caller. A token is therefore in the WAL — safe from a crash of the process — before
//! its response is sent, at the cost of one commit per batch rather than one per token.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use idforce_core::ports::{StoreError, StoreResult};

use super::checkpoint::{CATCH_UP_AT, checkpoint, checkpoint_loop};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

/// Most writes committed in one transaction; more wait for the next.
const MAX_BATCH: usize = 512;
/// Idle reader connections kept open.
const MAX_IDLE_READERS: usize = 8;

pub(crate) struct Database {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writer: mpsc::Sender<Box<dyn Job>>,
}

impl Database {
    /// Opens the writer (on its own thread) and one reader of an existing, migrated database.
    pub(crate) fn open(path: &Path) -> StoreResult<Database> {
        Database::open_with(path, CATCH_UP_AT)
    }

    fn open_with(path: &Path, catch_up_at: i64) -> StoreResult<Database> {
        let conn = connect(path)?;
        // Checkpoints run on a thread of their own (below), never in the middle of a commit:
        // a checkpoint syncs the database file, and the writer must not wait for that. A WAL
        // that was once large is cut back when it starts over.
        // Its temporary tables (the ledger's recent spends, ledger.rs) live in memory.
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864; PRAGMA temp_store = MEMORY;",
        )
        .map_err(error)?;
        let caught_up = Arc::new(AtomicBool::new(false));
        let (writer, queue) = mpsc::channel::<Box<dyn Job>>();
        // The writer wakes the checkpointer after its commits; when the store is dropped the
        // writer ends, and with it this channel and the checkpointer.
        let (committed, commits) = mpsc::channel::<()>();
        let unavailable = |e: std::io::Error| StoreError::Unavailable(format!("thread: {e}"));
        let writer_flag = caught_up.clone();
        std::thread::Builder::new()
            .name("idforce-sqlite-writer".into())
            .spawn(move || write_loop(&conn, &queue, &committed, &writer_flag))
            .map_err(unavailable)?;
        let checkpoints = connect(path)?;
        std::thread::Builder::new()
            .name("idforce-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoints, &commits, &caught_up, catch_up_at))
            .map_err(unavailable)?;
        let reader = connect(path)?;
        Ok(Database {
            path: path.to_owned(),
            readers: Mutex::new(vec![reader]),
            writer,
        })
    }

    /// Runs `work` on a reader connection, on this thread.
    pub(crate) fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let idle = self.lock_readers().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let result = work(&conn);
        let mut idle = self.lock_readers();
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Runs `work` inside the next group commit; answers once that transaction has committed.
    /// A `work` that fails is rolled back alone (its savepoint) and its error returned.
    pub(crate) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.queue(work, true).await
    }

    /// The same for `work` that runs exactly one statement: a statement that fails undoes
    /// itself, so it needs no savepoint (which would cost two statements and journal every
    /// page it touches).
    pub(crate) async fn write_statement<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.queue(work, false).await
    }

    async fn queue<T, F>(&self, work: F, savepoint: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            savepoint,
            outcome: None,
            reply,
            #[cfg(feature = "testing")]
            fail_point: crate::testing::fail_point(),
        });
        self.writer.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    fn lock_readers(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A panic while holding the lock leaves only a list of connections behind: still usable.
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the SQLite writer has stopped".into())
}

fn connect(path: &Path) -> StoreResult<Connection> {
    open_connection(path, OpenFlags::empty())
}

/// A connection that creates the file if it is missing (migrations, at open).
pub(crate) fn connect_creating(path: &Path) -> StoreResult<Connection> {
    open_connection(path, OpenFlags::SQLITE_OPEN_CREATE)
}

fn open_connection(path: &Path, extra: OpenFlags) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | extra;
    let conn = Connection::open_with_flags(path, flags).map_err(error)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(error)?;
    // In WAL mode NORMAL survives a crash of the process (not of the machine).
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(error)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

pub(crate) fn error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let extended = e.sqlite_error().map(|f| f.extended_code);
    let unique = [
        rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE,
        rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
    ];
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) if extended.is_some_and(|c| unique.contains(&c)) => {
            StoreError::Conflict(e.to_string())
        }
        // A reference to nothing, a missing value: the caller's mistake, not a taken name.
        Some(ErrorCode::ConstraintViolation) => StoreError::Invalid(e.to_string()),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Retryable(e.to_string())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// A queued write, type-erased for the writer's queue.
trait Job: Send {
    /// Runs the work in its own savepoint of the open transaction.
    fn run(&mut self, conn: &Connection);
    /// Answers the caller once the transaction has ended.
    fn finish(self: Box<Self>, committed: &Result<(), String>);
}

struct Pending<T, F> {
    work: Option<F>,
    savepoint: bool,
    outcome: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
    /// The queuing task's injected write failure (`testing::failing_after`).
    #[cfg(feature = "testing")]
    fail_point: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
}

#[cfg(feature = "testing")]
thread_local! {
    /// The fail point of the job the writer is running.
    static FAIL_POINT: std::cell::RefCell<Option<std::sync::Arc<std::sync::atomic::AtomicI64>>> =
        const { std::cell::RefCell::new(None) };
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> StoreResult<T> + Send,
{
    fn run(&mut self, conn: &Connection) {
        let Some(work) = self.work.take() else {
            return;
        };
        #[cfg(feature = "testing")]
        FAIL_POINT.with(|f| f.replace(self.fail_point.clone()));
        if !self.savepoint {
            self.outcome = Some(work(conn));
            return;
        }
        let outcome = match exec(conn, "SAVEPOINT job") {
            Err(e) => Err(e),
            Ok(()) => {
                let outcome = work(conn);
                let end = if outcome.is_ok() {
                    exec(conn, "RELEASE job")
                } else {
                    exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
                };
                end.and(outcome)
            }
        };
        self.outcome = Some(outcome);
    }

    fn finish(self: Box<Self>, committed: &Result<(), String>) {
        let result = match (committed, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(stopped()),
            (Err(e), _) => Err(StoreError::Unavailable(e.clone())),
        };
        // The caller may have gone (its request was dropped); the write stands regardless.
        let _ = self.reply.send(result);
    }
}

/// Runs one statement; returns how many rows it changed.
pub(crate) fn change(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<usize> {
    #[cfg(feature = "testing")]
    FAIL_POINT.with(|f| match &*f.borrow() {
        Some(point) => crate::testing::count_write(point),
        None => Ok(()),
    })?;
    c.prepare_cached(sql)
        .and_then(|mut st| st.execute(params))
        .map_err(error)
}

fn exec(conn: &Connection, sql: &str) -> StoreResult<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .map_err(error)
}

fn write_loop(
    conn: &Connection,
    queue: &mpsc::Receiver<Box<dyn Job>>,
    committed: &mpsc::Sender<()>,
    caught_up: &AtomicBool,
) {
    // Ends when the store, and with it every sender, is dropped.
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = commit(conn, &mut batch);
        for job in batch {
            job.finish(&outcome);
        }
        let _ = committed.send(());
        if caught_up.swap(false, Ordering::Relaxed) {
            // The checkpointer has copied all but the last few commits; with no commit
            // running, this copies the rest, and the next commit starts the WAL over.
            let _ = checkpoint(conn);
        }
    }
}

/// Gives back what a long scan left behind: the connection's page cache, then the freed
/// memory of every malloc arena (glibc keeps it otherwise, and the process would stay the
/// size of its largest purge).
pub(crate) fn release_memory(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch("PRAGMA shrink_memory").map_err(error)?;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    Ok(())
}

fn commit(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    exec(conn, "BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
    for job in batch.iter_mut() {
        // A write that panics must not end the writer (every later write would fail) nor
        // leave its half-done changes in the transaction: its batch is rolled back.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(conn)));
        if ran.is_err() {
            let _ = exec(conn, "ROLLBACK");
            return Err("a write panicked; its batch was rolled back".into());
        }
        // Some errors (a full disk, an I/O error, no memory) make SQLite roll back the whole
        // transaction itself. The jobs before are undone, and the ones after must not run
        // outside it, each committing on its own: the batch fails whole.
        if conn.is_autocommit() {
            return Err("SQLite rolled the batch back after a failed write".into());
        }
    }
    exec(conn, "COMMIT").map_err(|e| {
        let _ = exec(conn, "ROLLBACK");
        e.to_string()
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, Database) {
        let (dir, path) = schema();
        let direct = Database::open(&path).expect("direct");
        (dir, direct)
    }

    /// A WAL database with one table `t (k, v)`: the writer's and the checkpointer's tests.
    pub(in crate::sqlite) fn schema() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);",
        )
        .expect("schema");
        (dir, path)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_commits_that_never_pause() {
        let (_dir, path) = schema();
        let direct = Arc::new(Database::open_with(&path, 64).expect("direct"));
        let row = "x".repeat(3000);
        let (writers, rows_each) = (8i64, 1500i64);
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (direct, row) = (direct.clone(), row.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..rows_each {
                    let row = row.clone();
                    direct
                        .write_statement(move |c| {
                            change(
                                c,
                                "INSERT INTO t (k, v) VALUES (?1, ?2)",
                                (w * rows_each + i, row),
                            )
                        })
                        .await
                        .expect("insert");
                }
            }));
        }
        for task in tasks {
            task.await.expect("join");
        }
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        let mut header = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open(&wal).expect("wal"), &mut header)
            .expect("WAL header");
        // The WAL header's checkpoint sequence number counts the times it started over.
        let restarts = u32::from_be_bytes(header[12..16].try_into().expect("header"));
        // Without the writer's catch-up it never does here (measured: a 240 MB WAL instead).
        assert!(restarts >= 1, "the WAL never started over");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_commit_and_a_failing_one_is_rolled_back_alone() {
        let (_dir, direct) = database();
        let direct = std::sync::Arc::new(direct);
        let mut tasks = Vec::new();
        for k in 0..200i64 {
            let direct = direct.clone();
            tasks.push(tokio::spawn(async move {
                direct
                    .write(move |c| {
                        c.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [k])
                            .map_err(error)?;
                        // Every tenth write fails after writing: its row must not survive.
                        if k % 10 == 0 {
                            c.execute("INSERT INTO t (k, v) VALUES (?1, 'dup')", [k])
                                .map_err(error)?;
                        }
                        Ok(k)
                    })
                    .await
            }));
        }
        let mut failed = 0;
        for task in tasks {
            match task.await.expect("join") {
                Ok(_) => {}
                Err(StoreError::Conflict(_)) => failed += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(failed, 20);
        let n: i64 = direct
            .read(|c| {
                c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(error)
            })
            .expect("count");
        assert_eq!(
            n, 180,
            "each write visible once answered; failed ones rolled back"
        );
    }

    fn count(direct: &Database, k: i64) -> i64 {
        direct
            .read(|c| {
                c.query_row("SELECT count(*) FROM t WHERE k = ?1", [k], |r| r.get(0))
                    .map_err(error)
            })
            .expect("count")
    }

    /// A job of the batch, run by `commit` directly; its answer arrives on the receiver.
    fn job(
        work: impl FnOnce(&Connection) -> StoreResult<()> + Send + 'static,
    ) -> (Box<dyn Job>, oneshot::Receiver<StoreResult<()>>) {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            savepoint: true,
            outcome: None,
            reply,
            #[cfg(feature = "testing")]
            fail_point: None,
        });
        (job, answer)
    }

    #[test]
    fn when_sqlite_rolls_a_batch_back_itself_the_rest_of_it_does_not_run_alone() {
        let (_dir, path) = schema();
        let conn = connect(&path).expect("connect");
        let insert = |k: i64| {
            move |c: &Connection| {
                c.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [k])
                    .map(drop)
                    .map_err(error)
            }
        };
        let (first, first_answer) = job(insert(1));
        // What a full disk or an I/O error does: SQLite ends the transaction itself.
        let (second, _) = job(move |c| {
            insert(2)(c)?;
            c.execute_batch("ROLLBACK").map_err(error)
        });
        let (third, third_answer) = job(insert(3));
        let mut batch = vec![first, second, third];
        let outcome = commit(&conn, &mut batch);
        assert!(outcome.is_err(), "the batch fails whole");
        for job in batch {
            job.finish(&outcome);
        }
        let count: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(count, 0, "no job committed on its own after the rollback");
        assert!(first_answer.blocking_recv().expect("answer").is_err());
        assert!(third_answer.blocking_recv().expect("answer").is_err());
        // The control: a batch without the rollback commits.
        let (ok, ok_answer) = job(insert(4));
        let mut batch = vec![ok];
        let outcome = commit(&conn, &mut batch);
        for job in batch {
            job.finish(&outcome);
        }
        assert!(ok_answer.blocking_recv().expect("answer").is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_panics_fails_its_batch_and_the_writer_goes_on() {
        let (_dir, direct) = database();
        let failed = direct
            .write(|c| -> StoreResult<()> {
                c.execute("INSERT INTO t (k, v) VALUES (1, 'x')", [])
                    .map_err(error)?;
                panic!("a bug in a write");
            })
            .await;
        assert!(
            matches!(failed, Err(StoreError::Unavailable(_))),
            "{failed:?}"
        );
        assert_eq!(
            count(&direct, 1),
            0,
            "the panicking write's row is rolled back"
        );
        direct
            .write_statement(|c| {
                c.execute("INSERT INTO t (k, v) VALUES (2, 'y')", [])
                    .map_err(error)
            })
            .await
            .expect("the writer still runs");
        assert_eq!(count(&direct, 2), 1);
    }
}
