//! Reading OAuth parameters the way Salesforce does (spec §2, §12.1–12.3): form bodies with or
//! without a charset, chunked or not, multipart forms, and the query string of a POST.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, Method, header};
use idforce_core::OAuthError;
use idforce_core::wire::{Params, parse_basic};

/// Largest body accepted at the OAuth endpoints; a JWT assertion is a few KiB.
pub const MAX_BODY: usize = 64 * 1024;

pub struct OAuthRequest {
    pub method: Method,
    pub headers: HeaderMap,
    pub params: Params,
}

impl OAuthRequest {
    pub fn basic(&self) -> Option<Result<(String, String), OAuthError>> {
        self.headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_basic)
    }

    /// The host the request was addressed to, without a port.
    pub fn host(&self) -> Option<&str> {
        host(&self.headers)
    }
}

/// The address the request came from (the TCP peer: idforce trusts no forwarding header).
pub fn peer(req: &Request) -> Option<std::net::SocketAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
}

/// The `Host` a request was addressed to, without a port.
pub fn host(headers: &HeaderMap) -> Option<&str> {
    let h = headers.get(header::HOST)?.to_str().ok()?;
    Some(match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => h,
    })
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

/// Body parameters first (they win ties in `Params::get`), then the query string. A body that
/// is not a form (JSON, XML, too large, unreadable) contributes nothing, which makes the
/// request fail as Salesforce's does: `unsupported_grant_type` at the token endpoint.
pub async fn read(req: Request) -> OAuthRequest {
    let (parts, body) = req.into_parts();
    let (method, headers) = (parts.method, parts.headers);
    let query = parts
        .uri
        .query()
        .map(|q| form_pairs(q.as_bytes()))
        .unwrap_or_default();
    let mut params = Params::default();
    match media_type(&headers).as_deref() {
        Some("multipart/form-data") => {
            // The multipart reader takes its boundary from the headers: only this rare body
            // pays for a copy of them.
            let mut req = Request::new(body);
            *req.headers_mut() = headers.clone();
            if let Ok(mut mp) = Multipart::from_request(req, &()).await {
                let mut pairs = Vec::new();
                while let Ok(Some(field)) = mp.next_field().await {
                    let name = field.name().unwrap_or_default().to_owned();
                    match field.text().await {
                        Ok(value) => pairs.push((name, value)),
                        Err(_) => break,
                    }
                }
                params.extend(pairs);
            }
        }
        Some("application/x-www-form-urlencoded") | None => {
            if let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await {
                params.extend(form_pairs(&bytes));
            }
        }
        Some(_) => drain(body).await,
    }
    params.extend(query);
    OAuthRequest {
        method,
        headers,
        params,
    }
}

/// Reads and discards a body we will not use, so the connection stays reusable.
async fn drain(body: Body) {
    let _ = axum::body::to_bytes(body, MAX_BODY).await;
}

/// The bearer token of a request: `Authorization: Bearer …` or `?oauth_token=…`.
pub fn bearer(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth")
        })
        .map(|(_, token)| token.trim().to_owned());
    if header_token.is_some() {
        return header_token;
    }
    query.and_then(|q| {
        form_pairs(q.as_bytes())
            .into_iter()
            .find(|(k, v)| (k == "oauth_token" || k == "access_token") && !v.is_empty())
            .map(|(_, v)| v)
    })
}

pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query.and_then(|q| {
        form_pairs(q.as_bytes())
            .into_iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v)
    })
}
