//! One serving process per SQLite file. `serve` holds an exclusive `flock` on a file beside
//! the database (`<database>.lock`) for as long as it runs; the kernel drops it when the
//! process ends, even by SIGKILL, so no stale lock is left behind. Admin commands take no
//! lock: they work beside a running server, as SQLite lets several processes do.
//!
//! Beside the database rather than on it: closing any descriptor of the database file would
//! drop SQLite's own POSIX locks held by this process, and on NFS `flock` is emulated with
//! those same locks.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use idforce_core::ports::{StoreError, StoreResult};

/// Held while the process serves the database; dropping it releases the lock.
pub(crate) struct ServeLock {
    _file: File,
}

/// The lock of a database, named after its real path: a symlink or a relative path to the
/// same file must find the same lock.
pub(crate) fn lock_path(database: &Path) -> PathBuf {
    let real = database.canonicalize().unwrap_or_else(|_| {
        // Not created yet: its folder's real path and its name.
        let folder = database.parent().filter(|p| !p.as_os_str().is_empty());
        let folder = folder.unwrap_or(Path::new("."));
        let name = database.file_name().unwrap_or(database.as_os_str());
        folder
            .canonicalize()
            .unwrap_or_else(|_| folder.to_owned())
            .join(name)
    });
    let mut path = real.into_os_string();
    path.push(".lock");
    PathBuf::from(path)
}

impl ServeLock {
    pub(crate) fn take(database: &Path) -> StoreResult<ServeLock> {
        let path = lock_path(database);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        // SAFETY: flock only reads the descriptor, which `file` keeps open.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(ServeLock { _file: file });
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Err(StoreError::Invalid(format!(
                "another idforce server is serving {} (it holds {}); stop it first, or use \
                 PostgreSQL to run several nodes on one store",
                database.display(),
                path.display()
            )))
        } else {
            Err(StoreError::Unavailable(format!(
                "{}: {err}",
                path.display()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("idforce.db");
        let first = ServeLock::take(&db).expect("first");
        let second = ServeLock::take(&db).err().expect("refused");
        assert!(
            second.to_string().contains("another idforce server"),
            "{second}"
        );
        drop(first);
        ServeLock::take(&db).expect("free again");
    }

    #[test]
    fn a_symlink_to_the_database_finds_the_same_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("real.db");
        std::fs::write(&db, b"").expect("file");
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&db, &link).expect("symlink");
        let _first = ServeLock::take(&db).expect("first");
        assert!(
            ServeLock::take(&link).is_err(),
            "the link is the same database"
        );
        // The control: another database has a lock of its own.
        let other = dir.path().join("other.db");
        ServeLock::take(&other).expect("another database");
    }
}
