//! Rendering responses: JSON by default, or form-encoded / XML when the request asks
//! (`format=` or `Accept:`), always uncacheable; and the one place an `OAuthError` becomes HTTP.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use idforce_core::wire::Params;
use idforce_core::{ErrorCode, OAuthError};
use serde::Serialize;
use serde_json::{Map, Value};

/// Salesforce's cache headers on every OAuth answer.
pub const NO_STORE: &str = "no-cache,must-revalidate,max-age=0,no-store,private";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    UrlEncoded,
    Xml,
}

impl Format {
    /// `format=` wins; otherwise the first recognised media type of `Accept`, read left to right.
    pub fn of(params: &Params, headers: &HeaderMap) -> Format {
        match params.get("format") {
            Some("urlencoded") => return Format::UrlEncoded,
            Some("xml") => return Format::Xml,
            Some("json") => return Format::Json,
            _ => {}
        }
        first_accepted(
            headers,
            &[
                ("application/json", Format::Json),
                ("*/*", Format::Json),
                ("application/x-www-form-urlencoded", Format::UrlEncoded),
                ("application/xml", Format::Xml),
                ("text/xml", Format::Xml),
            ],
        )
        .unwrap_or(Format::Json)
    }
}

/// The first media type of `Accept`, read left to right, that `known` names.
pub fn first_accepted<T: Copy>(headers: &HeaderMap, known: &[(&str, T)]) -> Option<T> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.split(',').find_map(|media| {
        let media = media.split(';').next().unwrap_or("").trim();
        known.iter().find(|(m, _)| *m == media).map(|(_, t)| *t)
    })
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn render(format: Format, status: StatusCode, body: &Map<String, Value>) -> Response {
    let (content_type, text) = match format {
        Format::Json => return json_text(status, serde_json::to_string(body).unwrap_or_default()),
        Format::UrlEncoded => {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in body {
                ser.append_pair(k, &scalar(v));
            }
            (
                "application/x-www-form-urlencoded;charset=UTF-8",
                ser.finish(),
            )
        }
        Format::Xml => {
            let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><OAuth>");
            for (k, v) in body {
                s.push_str(&format!("<{k}>{}</{k}>", xml_escape(&scalar(v))));
            }
            s.push_str("</OAuth>");
            ("application/xml;charset=UTF-8", s)
        }
    };
    no_store((status, [(header::CONTENT_TYPE, content_type)], text).into_response())
}

fn json_text(status: StatusCode, text: String) -> Response {
    let content_type = [(header::CONTENT_TYPE, "application/json;charset=UTF-8")];
    no_store((status, content_type, text).into_response())
}

pub fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
    );
    r
}

pub fn ok<T: Serialize>(format: Format, body: &T) -> Response {
    // JSON, the common case, is written straight from `body`: the same text as through a
    // `Value` map (fields in declaration order), without building the map.
    if format == Format::Json {
        return match serde_json::to_string(body) {
            Ok(text) => json_text(StatusCode::OK, text),
            Err(_) => error(format, &OAuthError::server_error(), false),
        };
    }
    match serde_json::to_value(body) {
        Ok(Value::Object(map)) => render(format, StatusCode::OK, &map),
        _ => error(format, &OAuthError::server_error(), false),
    }
}

/// Too many requests from one client or address (idforce's own answer; Salesforce documents
/// none for the device flow): 429, `slow_down` (RFC 8628's word for "too fast"), and how many
/// seconds to wait in `Retry-After`.
pub fn throttled(format: Format, retry_after_secs: i64) -> Response {
    let mut body = Map::new();
    body.insert("error".into(), Value::from("slow_down"));
    body.insert(
        "error_description".into(),
        Value::from(format!(
            "too many requests; retry in {retry_after_secs} seconds"
        )),
    );
    let mut r = render(format, StatusCode::TOO_MANY_REQUESTS, &body);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

/// An OAuth error. A client that authenticated with HTTP Basic and failed gets 401 and a
/// `WWW-Authenticate` challenge (RFC 6749 §5.2); everything else Salesforce answers with 400.
pub fn error(format: Format, e: &OAuthError, basic: bool) -> Response {
    let mut body = Map::new();
    body.insert("error".into(), Value::from(e.code.as_str()));
    body.insert(
        "error_description".into(),
        Value::from(e.description.as_ref()),
    );
    let basic_failure = basic && e.code == ErrorCode::InvalidClient;
    let status = if basic_failure {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST)
    };
    let mut r = render(format, status, &body);
    if e.code == ErrorCode::TemporarilyUnavailable {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if basic_failure {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"idforce\""),
        );
    }
    r
}
