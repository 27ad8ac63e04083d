//! Login History's queries, shared by both backends (each binds the arguments its own way).

use idforce_core::model::Millis;

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
    if let Some((at, id)) = query.before {
        let (a, same, i) = (
            bind(&mut args, Arg::Int(at)),
            bind(&mut args, Arg::Int(at)),
            bind(&mut args, Arg::Int(id)),
        );
        conditions.push(format!("(at < {a} OR (at = {same} AND id < {i}))"));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let limit = bind(&mut args, Arg::Int(i64::from(query.limit)));
    let sql = format!(
        "SELECT {LOGIN_HISTORY_COLUMNS} FROM login_history{filter} ORDER BY at DESC, id DESC LIMIT {limit}"
    );
    (sql, args)
}

/// Where a purge stops: every row at or before this (time, id) goes. Rows older than
/// `before`, and the rows older than the newest `keep` (`newest_dropped`: the first row past
/// them, if there are more), whichever reaches further.
pub(crate) fn purge_bound(before: Millis, newest_dropped: Option<(Millis, i64)>) -> (Millis, i64) {
    let by_age = (before, -1);
    match newest_dropped {
        Some(by_count) if by_count > by_age => by_count,
        _ => by_age,
    }
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
            sql.ends_with("FROM login_history ORDER BY at DESC, id DESC LIMIT ?1"),
            "{sql}"
        );
        assert_eq!(args.len(), 1);
        let user = idforce_core::SfId::parse("005000000000001").unwrap();
        let (sql, args) = listing(
            &LoginHistoryQuery {
                user: Some(user),
                since: Some(5),
                before: Some((9, 3)),
                limit: 10,
                ..Default::default()
            },
            question,
        );
        assert!(
            sql.ends_with(
                "WHERE user_id = ?1 AND at >= ?2 AND (at < ?3 OR (at = ?4 AND id < ?5)) \
                 ORDER BY at DESC, id DESC LIMIT ?6"
            ),
            "{sql}"
        );
        assert_eq!(args.len(), 6);
    }

    #[test]
    fn the_purge_reaches_as_far_as_either_bound() {
        assert_eq!(purge_bound(100, None), (100, -1));
        assert_eq!(purge_bound(100, Some((50, 7))), (100, -1));
        assert_eq!(purge_bound(100, Some((100, 7))), (100, 7));
        assert_eq!(purge_bound(100, Some((200, 7))), (200, 7));
    }
}
