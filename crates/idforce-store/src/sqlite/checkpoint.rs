//! Checkpoints: copying the WAL back into the database beside the writer, so that commits
//! never wait for a sync of the database file.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// How long after a commit the WAL is copied back into the database. Short, so that each
/// checkpoint syncs little: while the device writes the pages a sync flushes, the writer's next
/// WAL append to those pages waits for it (measured: 1 s between checkpoints made the p99 of
/// token grants at half load 35 ms; 20 ms, under 4 ms).
const CHECKPOINT_AFTER: Duration = Duration::from_millis(20);

/// Frames the WAL may hold (32 MiB of 4 KiB pages) before the writer finishes a checkpoint
/// between two commits so that the WAL can start over. Each such catch-up holds up every write
/// for three device flushes (0.8-1.7 ms measured); after every pass instead of at this size,
/// they were 40-80 a second and set client credentials' p99 at half load (2.7-3.8 ms against
/// 1.6-2.2 ms at this size, docs/performance.md).
pub(super) const CATCH_UP_AT: i64 = 8192;

/// A checkpoint that copies what it can without waiting for the writer or readers; how many
/// frames the WAL held.
pub(super) fn checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

/// The bulk of every checkpoint — copying pages into the database and syncing it — runs here,
/// beside the writer. Under a steady stream of commits such a checkpoint never reaches the
/// end of the WAL (new frames arrive while it copies), and a WAL that is never copied to its
/// end is never started over: it would grow without bound. So once the WAL holds `catch_up_at`
/// frames the writer is asked to finish the job between two commits, which costs it only the
/// last few frames — and the syncs. SQLite syncs the database only when a checkpoint reaches
/// the end of the WAL, so every page these passes copied would wait for the writer's sync;
/// this thread flushes them (and the WAL's newest frames) itself after each pass.
/// An idle store is not checkpointed (nor woken) at all.
pub(super) fn checkpoint_loop(
    conn: &Connection,
    commits: &mpsc::Receiver<()>,
    caught_up: &AtomicBool,
    catch_up_at: i64,
) {
    while commits.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_AFTER);
        while commits.try_recv().is_ok() {}
        // A busy database is simply checkpointed after the next commit. A pass's answer
        // cannot tell whether it reached the end of the WAL (it counts the frames as they
        // were when it began), so every pass that left frames is flushed.
        if let Ok(frames) = checkpoint(conn)
            && frames > 0
        {
            // A failed flush leaves the writer's catch-up to sync: slower, no less safe.
            let _ = flush(conn);
            if frames >= catch_up_at {
                caught_up.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Syncs the connection's database file and WAL through SQLite's own file handles: a file
/// opened beside them could not be closed without dropping the process's locks on it.
pub(super) fn flush(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::ffi;
    for opcode in [
        ffi::SQLITE_FCNTL_FILE_POINTER,
        ffi::SQLITE_FCNTL_JOURNAL_POINTER,
    ] {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: the handle is this connection's, used on this thread only; both opcodes
        // write one `sqlite3_file` pointer (null while the file is not open) into `file`.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                opcode,
                (&raw mut file).cast(),
            )
        };
        check(rc)?;
        // SAFETY: an open `sqlite3_file` has its methods; it stays open while the connection
        // is, and xSync may be called on it outside a transaction (it takes no lock).
        let rc = unsafe {
            match file
                .as_ref()
                .and_then(|f| f.pMethods.as_ref())
                .and_then(|m| m.xSync)
            {
                Some(sync) => sync(file, ffi::SQLITE_SYNC_NORMAL),
                None => ffi::SQLITE_OK,
            }
        };
        check(rc)?;
    }
    Ok(())
}

fn check(rc: std::ffi::c_int) -> rusqlite::Result<()> {
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rc),
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_syncs_the_files_a_connection_has_open() {
        let (_dir, path) = crate::sqlite::writer::tests::schema();
        let conn = Connection::open(&path).expect("connect");
        // Before its first read the connection has no WAL open: nothing to sync there.
        flush(&conn).expect("flush before a read");
        conn.execute("INSERT INTO t (k, v) VALUES (1, 'x')", [])
            .expect("insert");
        flush(&conn).expect("flush");
    }
}
