//! The identity URL document (spec §8) and the session checks in front of it.

use serde_json::{Value, json};

use crate::grant::IssuerSettings;
use crate::model::{Millis, Org, User};

/// The REST API version `latest` stands for.
pub const LATEST_API_VERSION: &str = "62.0";

/// Formats epoch milliseconds as Salesforce does in identity documents:
/// `2024-01-31T12:00:00.000+0000`.
pub fn salesforce_datetime(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// The identity document of `user`. `version` (e.g. "59.0") replaces `{version}` in `urls`
/// when given.
pub fn document(settings: &IssuerSettings, org: &Org, user: &User, version: Option<&str>) -> Value {
    let instance = settings.instance_url(org);
    let (org18, user18, org15) = (org.id.to18(), user.id.to18(), org.id.as15());
    let v = version.unwrap_or("{version}");
    let data = format!("{instance}/services/data/v{v}");
    let photo = format!("{instance}/profilephoto/005/F");
    json!({
        "id": settings.identity_url(org, user),
        "asserted_user": true,
        "user_id": user18,
        "organization_id": org18,
        "username": user.username,
        "nick_name": user.username.split('@').next().unwrap_or_default(),
        "display_name": user.display_name(),
        "email": user.email,
        "email_verified": true,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "timezone": "GMT",
        "photos": { "picture": photo, "thumbnail": format!("{photo}/T") },
        "addr_street": null, "addr_city": null, "addr_state": null,
        "addr_country": null, "addr_zip": null,
        "mobile_phone": null,
        "mobile_phone_verified": false,
        "is_lightning_login_user": false,
        "status": { "created_date": null, "body": null },
        "urls": {
            "enterprise": format!("{instance}/services/Soap/c/{v}/{org15}"),
            "metadata": format!("{instance}/services/Soap/m/{v}/{org15}"),
            "partner": format!("{instance}/services/Soap/u/{v}/{org15}"),
            "rest": format!("{data}/"),
            "sobjects": format!("{data}/sobjects/"),
            "search": format!("{data}/search/"),
            "query": format!("{data}/query/"),
            "recent": format!("{data}/recent/"),
            "tooling_soap": format!("{instance}/services/Soap/T/{v}/{org15}"),
            "tooling_rest": format!("{data}/tooling/"),
            "profile": format!("{instance}/{user18}"),
            "feeds": format!("{data}/chatter/feeds"),
            "groups": format!("{data}/chatter/groups"),
            "users": format!("{data}/chatter/users"),
            "feed_items": format!("{data}/chatter/feed-items"),
            "feed_elements": format!("{data}/chatter/feed-elements"),
            "custom_domain": instance,
        },
        "active": user.active,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": 0,
        "last_modified_date": salesforce_datetime(user.updated_at),
        "is_app_installed": true,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn datetime_format() {
        assert_eq!(
            super::salesforce_datetime(0),
            "1970-01-01T00:00:00.000+0000"
        );
        assert_eq!(
            super::salesforce_datetime(1_278_448_101_416),
            "2010-07-06T20:28:21.416+0000"
        );
    }
}
