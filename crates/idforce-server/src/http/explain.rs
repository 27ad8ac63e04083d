//! `serve --explain`: idforce's own reason for a refusal, sent beside Salesforce's answer.
//! Salesforce's descriptions are deliberately vague ("authentication failure"); on a developer's
//! machine the reason the log line gets is worth more on the wire. Never on by default: it
//! tells a caller which usernames exist and why a guess failed.
//!
//! The reason rides on the response as a `report::Reason` extension; this layer, installed
//! only with `--explain`, writes it into the `X-Idforce-Reason` header of every answer that
//! has one, and into the `idforce_reason` field of a JSON body (the first element of a REST
//! error array). Form-encoded and plain-text bodies keep Salesforce's exact bytes: jsforce and
//! other clients parse them.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use super::report::Reason;

pub const HEADER: &str = "x-idforce-reason";
pub const FIELD: &str = "idforce_reason";

/// Larger bodies are never OAuth errors; they pass untouched.
const MAX_BODY: usize = 64 * 1024;

pub async fn explain(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let Some(Reason(why)) = response.extensions().get::<Reason>().cloned() else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    if let Ok(value) = HeaderValue::from_str(&header_text(&why)) {
        parts.headers.insert(HEADER, value);
    }
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let small = axum::body::HttpBody::size_hint(&body)
        .upper()
        .is_some_and(|n| n <= MAX_BODY as u64);
    if !json || !small {
        return Response::from_parts(parts, body);
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => return Response::from_parts(parts, Body::empty()),
    };
    let mut doc: Value = match serde_json::from_slice(&bytes) {
        Ok(doc) => doc,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    let target = match &mut doc {
        Value::Array(items) => items.first_mut().and_then(Value::as_object_mut),
        other => other.as_object_mut(),
    };
    let Some(object) = target else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    object.insert(FIELD.into(), Value::from(why.as_ref()));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(doc.to_string()))
}

/// A header value holds visible ASCII and spaces only: anything else (a non-ASCII username in a
/// reason) becomes `?`; the JSON field keeps it exact.
fn header_text(why: &str) -> String {
    why.chars()
        .take(1024)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_is_visible_ascii() {
        assert_eq!(header_text("no user ab12"), "no user ab12");
        assert_eq!(header_text("user jörg\nlocked"), "user j?rg?locked");
        assert!(HeaderValue::from_str(&header_text("a\u{0}b\r\nc")).is_ok());
    }
}
