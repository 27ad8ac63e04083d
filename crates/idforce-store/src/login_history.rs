//! Login History's queries, shared by both backends (each binds the arguments its own way).

use crate::LoginHistoryQuery;
use crate::rows::LOGIN_HISTORY_COLUMNS;

/// Rows deleted per purge statement: few enough that no statement holds the write lock long.
pub(crate) const PURGE_SLICE: i64 = 2_000;

/// An argument of a built query.
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// The listing `query` asks for, with `mark(n)` the n-th placeholder (`?n` or `$n`). Only
/// the conditions asked for are written, so that each query can use its index.
pub(crate) fn listing(query: &LoginHistoryQuery, mark: fn(usize) -> String) -> (String, Vec<Arg>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let bind = |args: &mut Vec<Arg>, arg: Arg| -> String {
        args.push(arg);
        mark(args.len())
    };
    if let Some(org) = &query.org {
        let m = bind(&mut args, Arg::Text(org.as15().to_owned()));
        conditions.push(format!("org_id = {m}"));
    }
    if let Some(user) = &query.user {
        let m = bind(&mut args, Arg::Text(user.as15().to_owned()));
        conditions.push(format!("user_id = {m}"));
    }
    if let Some(app) = &query.app {
        let m = bind(&mut args, Arg::Text(app.as15().to_owned()));
        conditions.push(format!("app_id = {m}"));
    }
    if let Some(since) = query.since {
        let m = bind(&mut args, Arg::Int(since));
        conditions.push(format!("at >= {m}"));
    }
    if let Some(id) = query.before {
        let i = bind(&mut args, Arg::Int(id));
        conditions.push(format!("id < {i}"));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let limit = bind(&mut args, Arg::Int(i64::from(query.limit)));
    let sql = format!(
        "SELECT {LOGIN_HISTORY_COLUMNS} FROM login_history{filter} ORDER BY id DESC LIMIT {limit}"
    );
    (sql, args)
}

/// Where a purge stops: every row with an id up to this goes. Rows are found in the order they
/// were recorded (by id, the table's own key: no index on time costs each grant's insert), so
/// "older than `before`" is every row ahead of the first recorded at or after it
/// (`first_kept_by_age`; none: every row is older, up to the `last` one there was when the
/// purge began — rows recorded while it runs stay), and "past the newest `keep`" every row up
/// to the first past them (`newest_dropped`); whichever reaches further.
pub(crate) fn purge_bound(
    first_kept_by_age: Option<i64>,
    last: Option<i64>,
    newest_dropped: Option<i64>,
) -> i64 {
    let by_age = match first_kept_by_age {
        Some(id) => id - 1,
        None => last.unwrap_or(-1),
    };
    by_age.max(newest_dropped.unwrap_or(-1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(n: usize) -> String {
        format!("?{n}")
    }

    #[test]
    fn listings_name_only_what_was_asked() {
        let (sql, args) = listing(
            &LoginHistoryQuery {
                limit: 50,
                ..Default::default()
            },
            question,
        );
        assert!(
            sql.ends_with("FROM login_history ORDER BY id DESC LIMIT ?1"),
            "{sql}"
        );
        assert_eq!(args.len(), 1);
        let user = idforce_core::SfId::parse("005000000000001").unwrap();
        let (sql, args) = listing(
            &LoginHistoryQuery {
                user: Some(user),
                since: Some(5),
                before: Some(3),
                limit: 10,
                ..Default::default()
            },
            question,
        );
        assert!(
            sql.ends_with("WHERE user_id = ?1 AND at >= ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4"),
            "{sql}"
        );
        assert_eq!(args.len(), 4);
    }

    #[test]
    fn the_purge_reaches_as_far_as_either_bound() {
        // Every row older: all there were go (not those recorded since); an empty table: none.
        assert_eq!(purge_bound(None, Some(30), None), 30);
        assert_eq!(purge_bound(None, None, None), -1);
        assert_eq!(purge_bound(Some(1), Some(30), None), 0);
        // Age reaches id 9, the count id 4: up to 9. The count further: up to 20.
        assert_eq!(purge_bound(Some(10), Some(30), Some(4)), 9);
        assert_eq!(purge_bound(Some(10), Some(30), Some(20)), 20);
    }
}
