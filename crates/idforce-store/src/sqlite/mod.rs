//! The embedded SQLite store (WAL mode), migrated at open. One process owns a database file:
//! its writer thread makes every write (`writer.rs`), readers run on the caller's thread.

mod accounts;
mod approvals;
mod audit;
mod checkpoint;
mod codes;
mod device_codes;
mod keys;
mod ledger;
mod login_history;
mod logins;
mod migrations;
mod purge;
mod serve_lock;
mod tokens;
mod transfer;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use idforce_core::ports::{StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::rows::Columns;
use ledger::Ledger;
use writer::Database;
pub(crate) use writer::{change, error};

pub struct SqliteStore {
    db: Arc<Database>,
    /// Spent assertions (see `ledger.rs`).
    ledger: Arc<Ledger>,
    /// Held by a serving process (`StoreSettings::serve`).
    _serving: Option<serve_lock::ServeLock>,
    /// Password checks in flight (`logins.rs`).
    checks: logins::ChecksInFlight,
}

/// How a database URL asks for its file to be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    ReadWrite,
    /// Created if missing (`?mode=rwc`).
    Create,
}

/// The file and mode of a `sqlite://path[?mode=rw|rwc]` (or `sqlite:path`) URL.
fn parse_url(url: &str) -> StoreResult<(PathBuf, Mode)> {
    let invalid = |why: &str| StoreError::Invalid(format!("{why}: {url}"));
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| invalid("not a SQLite URL"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut mode = Mode::ReadWrite;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        mode = match pair {
            "mode=rw" => Mode::ReadWrite,
            "mode=rwc" => Mode::Create,
            _ => {
                return Err(invalid(
                    "unsupported SQLite URL option (only mode=rw or mode=rwc)",
                ));
            }
        };
    }
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| invalid("the SQLite path is not UTF-8"))?;
    if path.is_empty() || path == ":memory:" {
        return Err(invalid("a SQLite store needs a file path"));
    }
    Ok((PathBuf::from(path.as_ref()), mode))
}

/// The file of a SQLite URL, if it is one.
pub(crate) fn file_of(url: &str) -> Option<PathBuf> {
    parse_url(url).ok().map(|(path, _)| path)
}

/// Creates an empty database file readable by its owner only. SQLite gives the files it makes
/// beside it (`-wal`, `-shm`) the database file's permissions.
fn create_private(path: &std::path::Path) -> StoreResult<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(StoreError::Unavailable(format!(
                "cannot create {}: its directory {} does not exist",
                path.display(),
                path.parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .map_or(".".into(), |d| d.display().to_string())
            )))
        }
        Err(e) => Err(StoreError::Unavailable(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

impl SqliteStore {
    /// Opens the database of `url`; with `serve`, as the one process serving it.
    pub async fn open(url: &str, serve: bool) -> StoreResult<SqliteStore> {
        let (path, mode) = parse_url(url)?;
        if mode == Mode::ReadWrite && !path.exists() {
            return Err(StoreError::Invalid(format!(
                "no SQLite database at {} (a URL ending in ?mode=rwc creates one)",
                path.display()
            )));
        }
        if !path.exists() {
            create_private(&path)?;
        }
        // Before anything is written: a second server must not even migrate.
        let serving = serve
            .then(|| serve_lock::ServeLock::take(&path))
            .transpose()?;
        let opened = path.clone();
        tokio::task::spawn_blocking(move || migrations::apply(&opened))
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration task: {e}")))??;
        let db = Arc::new(Database::open(&path)?);
        let ledger = Ledger::open(db.clone()).await?;
        Ok(SqliteStore {
            db,
            ledger,
            _serving: serving,
            checks: Default::default(),
        })
    }
}

impl Columns for Row<'_> {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.get(i).map_err(error)
    }
    fn int(&self, i: usize) -> StoreResult<i64> {
        self.get(i).map_err(error)
    }
    fn blob(&self, i: usize) -> StoreResult<Vec<u8>> {
        self.get(i).map_err(error)
    }
    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.get(i).map_err(error)
    }
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.get(i).map_err(error)
    }
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        self.get(i).map_err(error)
    }
    fn opt_blob(&self, i: usize) -> StoreResult<Option<Vec<u8>>> {
        self.get(i).map_err(error)
    }
}

/// The row a query finds, if any, decoded.
pub(crate) fn one<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    c.prepare_cached(sql)
        .and_then(|mut st| st.query_row(params, |r| Ok(decode(r))).optional())
        .map_err(error)?
        .transpose()
}

/// Every row a query finds, decoded.
pub(crate) fn all<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut st = c.prepare_cached(sql).map_err(error)?;
    let rows = st.query_map(params, |r| Ok(decode(r))).map_err(error)?;
    rows.map(|r| r.map_err(error).and_then(|decoded| decoded))
        .collect()
}

/// A single value (`count(*)`, a scalar column) of the row a query finds, if any.
pub(crate) fn scalar<T: rusqlite::types::FromSql>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Option<T>> {
    c.prepare_cached(sql)
        .and_then(|mut st| st.query_row(params, |r| r.get(0)).optional())
        .map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_file_and_a_mode() {
        let p = |u: &str| parse_url(u).map(|(p, m)| (p.display().to_string(), m));
        assert_eq!(
            p("sqlite://idforce.db?mode=rwc").ok(),
            Some(("idforce.db".into(), Mode::Create))
        );
        assert_eq!(
            p("sqlite:///var/lib/x%20y.db").ok(),
            Some(("/var/lib/x y.db".into(), Mode::ReadWrite))
        );
        assert_eq!(
            p("sqlite:a.db").ok(),
            Some(("a.db".into(), Mode::ReadWrite))
        );
        assert!(p("sqlite://a.db?cache=shared").is_err());
        assert!(p("sqlite::memory:").is_err());
        assert!(p("sqlite://").is_err());
    }
}
