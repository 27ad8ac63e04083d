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
    /// The TCP peer.
    pub peer: Option<std::net::SocketAddr>,
    /// Where the request came through (set by `http::through`).
    pub entry: Option<super::Through>,
}

impl OAuthRequest {
    pub fn basic(&self) -> Option<Result<(String, String), OAuthError>> {
        self.headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_basic)
    }

    /// Where the request came through, if the router was told (`http::through`).
    pub fn entry(&self) -> Option<&idforce_core::hosts::Entry> {
        self.entry.as_ref().map(|t| t.0.as_ref())
    }

    /// The same, the login host's when the router was not told.
    pub fn entry_or(
        &self,
        s: &crate::state::AppState,
    ) -> std::sync::Arc<idforce_core::hosts::Entry> {
        super::Through::or_login(self.entry.as_ref(), s)
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

/// The client's address: the TCP peer, unless the peer is a trusted proxy; then the nearest
/// address of `X-Forwarded-For` (read right to left, each proxy appending the one it heard
/// from) that is not itself a trusted proxy. A client cannot forge its way past the first
/// untrusted hop: what it wrote itself is to the left of it.
pub fn client_ip(
    peer: Option<std::net::SocketAddr>,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<std::net::IpAddr> {
    // A server listening on `[::]` sees IPv4 peers as `::ffff:a.b.c.d`.
    let peer = peer?.ip().to_canonical();
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    // Right to left: each hop was written by the proxy to its right. An entry that is not an
    // address ends the walk (whoever wrote it is not to be believed further), the last good
    // hop standing; a client cannot push the real one out by writing junk to its left.
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`), as some proxies write them.
fn parse_hop(hop: &str) -> Option<std::net::IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<std::net::IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip().to_canonical())
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
    let peer = peer(&req);
    let (mut parts, body) = req.into_parts();
    let entry = parts.extensions.remove::<super::Through>();
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
                    // A file that is not text (a DER certificate) keeps its place as
                    // replacement characters: the field's check refuses it, the form's other
                    // fields are still read.
                    match field.bytes().await {
                        Ok(value) => {
                            pairs.push((name, String::from_utf8_lossy(&value).into_owned()))
                        }
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
        peer,
        entry,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let proxies = [
            crate::config::parse_network("10.0.0.0/8").unwrap(),
            crate::config::parse_network("127.0.0.1").unwrap(),
        ];
        let from = |ip: &str| Some(std::net::SocketAddr::new(ip.parse().unwrap(), 4242));
        let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
        // An untrusted peer is the client, whatever it forwards.
        assert_eq!(
            client_ip(from("203.0.113.9"), &xff(&["1.2.3.4"]), &proxies),
            ip("203.0.113.9")
        );
        // A trusted proxy: the address it heard from.
        assert_eq!(
            client_ip(from("10.1.2.3"), &xff(&["198.51.100.7"]), &proxies),
            ip("198.51.100.7")
        );
        // A chain of trusted proxies: the first untrusted from the right; what the client
        // forged further left is ignored.
        assert_eq!(
            client_ip(
                from("127.0.0.1"),
                &xff(&["6.6.6.6, 198.51.100.7", "10.9.9.9"]),
                &proxies
            ),
            ip("198.51.100.7")
        );
        // Junk a client writes to the left stops the walk there, at the last good hop: it
        // cannot push its real address out. Ports, and IPv4 peers seen through an IPv6 socket.
        assert_eq!(
            client_ip(from("10.1.2.3"), &xff(&["junk, 198.51.100.7"]), &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(from("10.1.2.3"), &xff(&["198.51.100.7:5678"]), &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(from("::ffff:10.1.2.3"), &xff(&["198.51.100.7"]), &proxies),
            ip("198.51.100.7")
        );
        // No header, or only an entry that is not an address: the proxy itself.
        assert_eq!(
            client_ip(from("10.1.2.3"), &HeaderMap::new(), &proxies),
            ip("10.1.2.3")
        );
        assert_eq!(
            client_ip(from("10.1.2.3"), &xff(&["unknown"]), &proxies),
            ip("10.1.2.3")
        );
        // Nothing trusted (the default): always the peer.
        assert_eq!(
            client_ip(from("10.1.2.3"), &xff(&["198.51.100.7"]), &[]),
            ip("10.1.2.3")
        );
    }
}
