//! The identity URL `GET /id/{org}/{user}` (spec §8, §6.5): errors are one word of plain text.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use idforce_core::identity::{self, LATEST_API_VERSION};
use idforce_core::session;
use idforce_core::sfid::SfId;
use serde_json::Value;

use super::Outcome;
use super::report::{self, Reason};
use super::request::{bearer, query_param};
use crate::state::AppState;

fn plain(status: StatusCode, word: &'static str) -> Response {
    Outcome::with("-", word).attach(
        (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain;charset=UTF-8"),
            )],
            word,
        )
            .into_response(),
    )
}

pub async fn identity(
    State(s): State<AppState>,
    Path((org, user)): Path<(String, String)>,
    req: Request,
) -> Response {
    let query = req.uri().query().map(str::to_owned);
    let q = query.as_deref();
    let Some(token) = bearer(req.headers(), q) else {
        return report::refused_bearer(&s, None, plain(StatusCode::FORBIDDEN, "Bad_OAuth_Token"))
            .await;
    };
    let (Ok(org_id), Ok(user_id)) = (SfId::parse(&org), SfId::parse(&user)) else {
        return plain(StatusCode::NOT_FOUND, "Bad_Id");
    };
    let now = s.clock.now();
    let sess = match session::use_access_token(s.store.as_ref(), &s.hasher, &token, now).await {
        Ok(Some(sess)) => sess,
        Ok(None) => {
            let refused = plain(StatusCode::FORBIDDEN, "Bad_OAuth_Token");
            return report::refused_bearer(&s, Some(&token), refused).await;
        }
        Err(_) => return plain(StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
    };
    if !session::still_allowed(s.store.as_ref(), &sess)
        .await
        .unwrap_or(false)
    {
        let why = "the session's user is frozen or deactivated, or its app blocked";
        return Reason::new(why).attach(plain(StatusCode::FORBIDDEN, "Bad_OAuth_Token"));
    }
    if sess.org_id != org_id {
        let why = format!(
            "the token is of org {}, the URL names {org_id}",
            sess.org_id
        );
        return Reason::new(why).attach(plain(StatusCode::FORBIDDEN, "Wrong_Org"));
    }
    if sess.user_id != user_id {
        let why = format!(
            "the token is of user {}, the URL names {user_id}",
            sess.user_id
        );
        return Reason::new(why).attach(plain(StatusCode::FORBIDDEN, "No_Access"));
    }
    let version = match query_param(q, "version").as_deref() {
        None => None,
        Some("latest") => Some(LATEST_API_VERSION.to_owned()),
        Some(v) if is_version(v) => Some(v.to_owned()),
        Some(_) => return plain(StatusCode::NOT_ACCEPTABLE, "Invalid_Version"),
    };
    let (Ok(Some(org)), Ok(Some(user))) =
        (s.store.org(&org_id).await, s.store.user(&user_id).await)
    else {
        return plain(StatusCode::NOT_FOUND, "Bad_Id");
    };
    if !user.may_use_tokens() {
        return plain(StatusCode::FORBIDDEN, "Inactive");
    }
    let doc = identity::document(&s.settings, &org, &user, version.as_deref());
    let xml = match query_param(q, "format").as_deref() {
        Some("xml") => true,
        Some(_) => false,
        None => prefers_xml(req.headers()),
    };
    let response = if let Some(cb) = query_param(q, "callback") {
        if !cb
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.$".contains(&b))
        {
            return plain(StatusCode::NOT_ACCEPTABLE, "Invalid_Callback");
        }
        (
            [(header::CONTENT_TYPE, "application/javascript")],
            format!("{cb}({doc})"),
        )
            .into_response()
    } else if xml {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><user>");
        to_xml(&doc, &mut out);
        out.push_str("</user>");
        (
            [(header::CONTENT_TYPE, "application/xml;charset=UTF-8")],
            out,
        )
            .into_response()
    } else {
        super::rest::json(StatusCode::OK, &doc, req.headers())
    };
    Outcome::ok("-").attach(response)
}

/// `NN.N`: the form every API version takes.
pub fn is_version(v: &str) -> bool {
    v.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && a.len() <= 3
            && b.len() == 1
            && (a.to_owned() + b).bytes().all(|c| c.is_ascii_digit())
    })
}

/// Accept is read left to right; `*/*` and JSON mean JSON (spec §2).
fn prefers_xml(headers: &axum::http::HeaderMap) -> bool {
    super::respond::first_accepted(
        headers,
        &[
            ("application/xml", true),
            ("text/xml", true),
            ("application/json", false),
            ("*/*", false),
        ],
    )
    .unwrap_or(false)
}

fn to_xml(v: &Value, out: &mut String) {
    if let Value::Object(map) = v {
        for (k, v) in map {
            match v {
                Value::Null => out.push_str(&format!("<{k} xsi:nil=\"true\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"/>")),
                Value::Object(_) => {
                    out.push_str(&format!("<{k}>"));
                    to_xml(v, out);
                    out.push_str(&format!("</{k}>"));
                }
                Value::String(s) => out.push_str(&format!(
                    "<{k}>{}</{k}>",
                    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
                )),
                other => out.push_str(&format!("<{k}>{other}</{k}>")),
            }
        }
    }
}
