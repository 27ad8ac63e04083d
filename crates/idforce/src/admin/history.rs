//! `idforce login-history`: Login History read from the store, as a table, JSON or CSV.

use idforce_server::login_history;
use idforce_store::{LoginHistoryQuery, LoginRecord};
use serde_json::{Value, json};

use super::{Admin, Result, now, table_of};

/// What `login-history` was asked for, as typed.
pub struct LoginFilter {
    pub org: Option<String>,
    pub user: Option<String>,
    pub app: Option<String>,
    pub since: Option<String>,
    /// `None`: 100 rows, or every row for CSV.
    pub limit: Option<u32>,
}

impl Admin {
    pub async fn run_login_history(&self, filter: LoginFilter, csv: bool) -> Result<()> {
        let query = LoginHistoryQuery {
            org: match &filter.org {
                Some(o) => Some(self.org(o).await?.id),
                None => None,
            },
            user: match &filter.user {
                Some(u) => Some(self.user(u).await?.id),
                None => None,
            },
            app: match &filter.app {
                Some(a) => Some(self.app(a).await?.id),
                None => None,
            },
            since: filter
                .since
                .as_deref()
                .map(|s| since(s, now()))
                .transpose()?,
            before: None,
            limit: filter.limit.unwrap_or(if csv { u32::MAX } else { 100 }),
        };
        let records = self
            .store
            .login_history(&query)
            .await
            .map_err(|e| e.to_string())?;
        if csv {
            print!("{}", login_history::csv(&records));
            return Ok(());
        }
        let rows: Vec<Value> = records.iter().map(view).collect();
        if self.json {
            self.print(&Value::Array(rows));
        } else {
            // The columns an admin scans first; `--json` and `--csv` have them all.
            print!("{}", table_of(&rows, 6));
        }
        Ok(())
    }
}

fn view(r: &LoginRecord) -> Value {
    let e = &r.event;
    json!({
        "login_at": e.at,
        "username": e.username,
        "source_ip": e.source_ip.map(|ip| ip.to_string()),
        "login_type": e.login_type().label(),
        "status": e.status.label(),
        "application": e.application,
        "login_subtype": e.subtype.as_str(),
        "browser": e.browser,
        "platform": e.platform,
        "login_url": e.login_url,
        "user_id": e.user_id.to18(),
        "app_id": e.app_id.map(|a| a.to18()),
    })
}

/// `--since`: an instant (a date is its midnight, UTC) or a span back from `now`.
fn since(given: &str, now: i64) -> Result<i64> {
    let given = given.trim();
    if let Ok(span) = humantime::parse_duration(given) {
        return Ok(now - i64::try_from(span.as_millis()).unwrap_or(i64::MAX));
    }
    let instant = if given.len() == 10 {
        format!("{given}T00:00:00Z")
    } else {
        given.to_owned()
    };
    let at = humantime::parse_rfc3339_weak(&instant).map_err(|_| {
        format!("--since {given:?}: expected a time (2026-12-01, 2026-12-01T08:00:00Z) or a span (24h, 7d)")
    })?;
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("--since {given:?}: before 1970"))?
        .as_millis();
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn since_takes_instants_dates_and_spans() {
        let now = 1_796_646_600_000; // 2026-12-07T12:30:00Z
        assert_eq!(super::since("24h", now), Ok(now - 86_400_000));
        assert_eq!(super::since("7d", now), Ok(now - 7 * 86_400_000));
        assert_eq!(super::since("2026-12-07", now), Ok(1_796_601_600_000));
        assert_eq!(super::since("2026-12-07T12:30:00Z", now), Ok(now),);
        assert!(
            super::since("yesterday", now)
                .unwrap_err()
                .contains("expected a time")
        );
    }
}
