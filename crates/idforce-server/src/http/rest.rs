//! The slice of the REST API that login clients touch after they get a token (spec §11,
//! §12.11–12.12): version discovery, the resource map, and the User and Organization records.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use idforce_core::identity::salesforce_datetime;
use idforce_core::model::Session;
use idforce_core::session;
use idforce_core::sfid::{SfId, prefix};
use serde_json::{Value, json};

use super::Outcome;
use super::identity::is_version;
use super::report::{self, Reason};
use super::request::bearer;
use crate::state::AppState;

/// JSON, indented when the client sends `X-PrettyPrint: 1`.
pub fn json(status: StatusCode, v: &Value, headers: &HeaderMap) -> Response {
    let pretty = headers
        .get("x-prettyprint")
        .is_some_and(|v| v.as_bytes() == b"1");
    let body = if pretty {
        serde_json::to_string_pretty(v)
    } else {
        serde_json::to_string(v)
    }
    .unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body,
    )
        .into_response()
}

fn rest_error(
    status: StatusCode,
    code: &'static str,
    message: &str,
    headers: &HeaderMap,
) -> Response {
    Outcome::with("-", code).attach(json(
        status,
        &json!([{ "message": message, "errorCode": code }]),
        headers,
    ))
}

fn not_found(headers: &HeaderMap) -> Response {
    rest_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
        headers,
    )
}

/// The live session behind a REST call, or the 401 that makes clients refresh (spec §6.6).
/// A token of another org is refused on an org's My Domain or site as an invalid one.
async fn api_session(
    s: &AppState,
    headers: &HeaderMap,
    entry: &idforce_core::hosts::Entry,
) -> Result<Session, Response> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(a) = auth {
        let scheme = a.split_whitespace().next().unwrap_or("");
        if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("oauth") {
            return Err(rest_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTH_HEADER",
                "INVALID_HEADER_TYPE",
                headers,
            ));
        }
    }
    let expired = || {
        rest_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
            headers,
        )
    };
    let Some(token) = bearer(headers, None) else {
        return Err(report::refused_bearer(s, None, expired()).await);
    };
    let sess =
        match session::use_access_token(s.store.as_ref(), &s.hasher, &token, s.clock.now()).await {
            Ok(Some(sess)) => sess,
            Ok(None) => return Err(report::refused_bearer(s, Some(&token), expired()).await),
            Err(_) => {
                return Err(rest_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVER_UNAVAILABLE",
                    "The store is unavailable; retry later",
                    headers,
                ));
            }
        };
    if !session::still_allowed(s.store.as_ref(), &sess)
        .await
        .unwrap_or(false)
    {
        let why = "the session's user is frozen or deactivated, or its app blocked";
        return Err(Reason::new(why).attach(expired()));
    }
    if !entry.admits(&sess.org_id) {
        let why = format!(
            "the token is org {}'s, not {}'s",
            sess.org_id, entry.base_url
        );
        return Err(Reason::new(why).attach(expired()));
    }
    if !(sess.scopes.contains("api") || sess.scopes.contains("full")) {
        let why = "the token's scopes include neither api nor full";
        return Err(Reason::new(why).attach(rest_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "This session is not valid for use with the REST API",
            headers,
        )));
    }
    Ok(sess)
}

/// Release label of an API version: v62.0 is Winter '25, three releases a year before it.
fn release_label(major: u32) -> String {
    let k = 62 - major;
    let (season, year) = match k % 3 {
        0 => ("Winter", 25 - k / 3),
        1 => ("Summer", 24 - k / 3),
        _ => ("Spring", 24 - k / 3),
    };
    format!("{season} '{year:02}")
}

pub async fn versions(req: Request) -> Response {
    let list: Vec<Value> = (31..=62)
        .map(|m| json!({ "label": release_label(m), "url": format!("/services/data/v{m}.0"), "version": format!("{m}.0") }))
        .collect();
    Outcome::ok("-").attach(json(StatusCode::OK, &Value::Array(list), req.headers()))
}

fn version_of(segment: &str) -> Option<&str> {
    segment.strip_prefix('v').filter(|v| is_version(v))
}

pub async fn resources(
    State(s): State<AppState>,
    Path(version): Path<String>,
    axum::Extension(through): axum::Extension<super::Through>,
    headers: HeaderMap,
) -> Response {
    let Some(v) = version_of(&version) else {
        return not_found(&headers);
    };
    let sess = match api_session(&s, &headers, &through.0).await {
        Ok(sess) => sess,
        Err(r) => return r,
    };
    let base = format!("/services/data/v{v}");
    let identity = format!(
        "{}/id/{}/{}",
        s.settings.public_url,
        sess.org_id.to18(),
        sess.user_id.to18()
    );
    let mut map = serde_json::Map::new();
    for r in [
        "tooling",
        "metadata",
        "eclair",
        "folders",
        "prechatForms",
        "chatter",
        "tabs",
        "appMenu",
        "quickActions",
        "queryAll",
        "commerce",
        "wave",
        "search",
        "composite",
        "parameterizedSearch",
        "theme",
        "nouns",
        "recent",
        "licensing",
        "limits",
        "async-queries",
        "query",
        "match",
        "emailConnect",
        "compactLayouts",
        "knowledgeManagement",
        "sobjects",
        "actions",
        "support",
    ] {
        map.insert(r.to_owned(), Value::from(format!("{base}/{r}")));
    }
    map.insert("identity".to_owned(), Value::from(identity));
    Outcome::ok("-").attach(json(StatusCode::OK, &Value::Object(map), &headers))
}

pub async fn sobject(
    State(s): State<AppState>,
    Path((version, kind, id)): Path<(String, String, String)>,
    axum::Extension(through): axum::Extension<super::Through>,
    headers: HeaderMap,
) -> Response {
    let headers = &headers;
    let Some(v) = version_of(&version).map(str::to_owned) else {
        return not_found(headers);
    };
    let sess = match api_session(&s, headers, &through.0).await {
        Ok(sess) => sess,
        Err(r) => return r,
    };
    let Ok(id) = SfId::parse(&id) else {
        return not_found(headers);
    };
    let attributes = |t: &str| json!({ "type": t, "url": format!("/services/data/v{v}/sobjects/{t}/{}", id.to18()) });
    let record = match kind.as_str() {
        "User" if id.is(prefix::USER) => match s.store.user(&id).await {
            Ok(Some(u)) if u.org_id == sess.org_id => json!({
                "attributes": attributes("User"),
                "Id": u.id.to18(),
                "Username": u.username,
                "Name": u.display_name(),
                "FirstName": u.first_name,
                "LastName": u.last_name,
                "Email": u.email,
                "IsActive": u.active,
                "UserType": "Standard",
                "ProfileName": u.profile,
                "TimeZoneSidKey": "GMT",
                "LocaleSidKey": "en_US",
                "LanguageLocaleKey": "en_US",
                "CreatedDate": salesforce_datetime(u.created_at),
                "LastModifiedDate": salesforce_datetime(u.updated_at),
            }),
            _ => return not_found(headers),
        },
        "Organization" if id.is(prefix::ORG) && id == sess.org_id => match s.store.org(&id).await {
            Ok(Some(o)) => json!({
                "attributes": attributes("Organization"),
                "Id": o.id.to18(),
                "Name": o.name,
                "OrganizationType": "Developer Edition",
                "IsSandbox": false,
                "InstanceName": "IDF1",
                "NamespacePrefix": null,
                "TrialExpirationDate": null,
                "CreatedDate": salesforce_datetime(o.created_at),
            }),
            _ => return not_found(headers),
        },
        _ => return not_found(headers),
    };
    Outcome::ok("-").attach(json(StatusCode::OK, &record, headers))
}

pub async fn not_found_rest(req: Request) -> Response {
    not_found(req.headers())
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_labels() {
        assert_eq!(super::release_label(62), "Winter '25");
        assert_eq!(super::release_label(61), "Summer '24");
        assert_eq!(super::release_label(60), "Spring '24");
        assert_eq!(super::release_label(31), "Summer '14");
    }
}
