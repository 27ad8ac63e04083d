//! Login History as people read it: the columns of Salesforce's Login History page, and its
//! CSV download. Shared by Setup's page and `idforce login-history`.

use idforce_store::LoginRecord;

/// The columns, as Salesforce's Login History names them.
pub const COLUMNS: [&str; 10] = [
    "Login Time",
    "Username",
    "Source IP",
    "Login Type",
    "Login Subtype",
    "Status",
    "Application",
    "Browser",
    "Platform",
    "Login URL",
];

/// A row's cells, in the order of `COLUMNS`; the time in UTC, RFC 3339.
pub fn cells(record: &LoginRecord) -> [String; 10] {
    let e = &record.event;
    [
        time(e.at),
        e.username.clone(),
        e.source_ip.map_or_else(String::new, |ip| ip.to_string()),
        e.login_type().label().to_owned(),
        e.subtype.as_str().to_owned(),
        e.status.label().to_owned(),
        e.application.clone(),
        e.browser.clone(),
        e.platform.clone(),
        e.login_url.clone(),
    ]
}

/// Milliseconds since the epoch, as `2026-12-07T12:30:00Z`.
pub fn time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// The rows as CSV (RFC 4180, a header line first). Usernames and app names are chosen by
/// whoever creates them, and a spreadsheet runs a cell that starts with `=`, `+`, `-` or `@`
/// as a formula: such a cell is written with a leading `'`, as OWASP advises.
pub fn csv(records: &[LoginRecord]) -> String {
    let mut out = line(COLUMNS.iter().map(|c| c.to_string()));
    for r in records {
        out.push_str(&line(cells(r).into_iter()));
    }
    out
}

fn line(cells: impl Iterator<Item = String>) -> String {
    let quoted: Vec<String> = cells
        .map(|c| format!("\"{}\"", neutralise(&c).replace('"', "\"\"")))
        .collect();
    format!("{}\r\n", quoted.join(","))
}

fn neutralise(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use idforce_core::login_history::{LoginEvent, LoginStatus, LoginSubtype};
    use idforce_core::sfid::SfId;

    use super::*;

    fn record(username: &str, application: &str) -> LoginRecord {
        LoginRecord {
            id: 1,
            event: LoginEvent {
                at: 1_796_646_600_000,
                org_id: SfId::parse("00D000000000001").unwrap(),
                user_id: SfId::parse("005000000000001").unwrap(),
                username: username.into(),
                subtype: LoginSubtype::UsernamePassword,
                status: LoginStatus::InvalidPassword,
                source_ip: Some("198.51.100.7".parse().unwrap()),
                app_id: None,
                application: application.into(),
                browser: "Unknown".into(),
                platform: "Unknown".into(),
                login_url: "login.idforce.test".into(),
            },
        }
    }

    #[test]
    fn the_csv_has_salesforce_columns_and_quotes_every_cell() {
        let text = csv(&[record("alice@acme.test", "Say \"hi\", app")]);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "\"Login Time\",\"Username\",\"Source IP\",\"Login Type\",\"Login Subtype\",\"Status\",\
             \"Application\",\"Browser\",\"Platform\",\"Login URL\""
        );
        assert_eq!(
            lines[1],
            "\"2026-12-07T12:30:00Z\",\"alice@acme.test\",\"198.51.100.7\",\"Remote Access 2.0\",\
             \"OauthUsernamePassword\",\"Invalid Password\",\"Say \"\"hi\"\", app\",\"Unknown\",\
             \"Unknown\",\"login.idforce.test\""
        );
        assert_eq!(lines[2], "", "each line ends with CRLF");
    }

    #[test]
    fn cells_a_spreadsheet_would_run_are_neutralised() {
        for evil in ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\tx"] {
            let text = csv(&[record("u@x", evil)]);
            assert!(
                text.contains(&format!(",\"'{}\",", evil.replace('"', "\"\""))),
                "{text}"
            );
        }
        // Control: an ordinary name is written as it is.
        assert!(csv(&[record("u@x", "Integration")]).contains(",\"Integration\","));
    }
}
