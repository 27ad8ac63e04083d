//! Request parameters and response bodies of the token endpoint, independent of HTTP.

use base64::Engine;
use serde::Serialize;

use crate::error::OAuthError;

/// Form parameters of one request (body first, then query string). Empty values count as
/// absent (RFC 6749 §3.1); a name given twice is refused (RFC 6749 §3.2).
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Params {
        Params(pairs)
    }

    pub fn extend(&mut self, pairs: impl IntoIterator<Item = (String, String)>) {
        self.0.extend(pairs);
    }

    /// The first parameter name that occurs more than once, if any: the one whose second
    /// occurrence comes first.
    pub fn duplicate(&self) -> Option<&str> {
        // A request has a handful of names, where comparing each with the earlier ones is
        // cheapest; past that, a set keeps a request of thousands of names as cheap per name.
        const SCAN_UP_TO: usize = 16;
        if self.0.len() <= SCAN_UP_TO {
            return self.0.iter().enumerate().find_map(|(i, (k, _))| {
                self.0[..i]
                    .iter()
                    .any(|(k2, _)| k2 == k)
                    .then_some(k.as_str())
            });
        }
        let mut seen = std::collections::HashSet::with_capacity(self.0.len());
        self.0
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !seen.insert(*k))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty parameter, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::missing(name))
    }
}

/// Client credentials presented by HTTP Basic or in the body (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Whether the client used HTTP Basic, which changes how a failure is answered.
    pub basic: bool,
    /// A `private_key_jwt` client assertion (RFC 7523 §2.2), in place of a secret.
    pub assertion: Option<String>,
}

/// The `client_assertion_type` of a JWT client assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Decodes `Authorization: Basic base64(urlencode(id):urlencode(secret))`. Returns `None` when
/// the header is not Basic at all, and an error when it is Basic but unreadable.
pub fn parse_basic(header: &str) -> Option<Result<(String, String), OAuthError>> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bad = || OAuthError::bad_client_secret();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    Some(
        decoded
            .and_then(|s| {
                let (id, secret) = s.split_once(':')?;
                let dec = |v: &str| {
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8()
                        .ok()
                        .map(|c| c.into_owned())
                };
                Some((dec(id)?, dec(secret)?))
            })
            .ok_or_else(bad),
    )
}

impl ClientCredentials {
    /// Combines the Basic header and body fields. Both may be present only if they agree.
    pub fn from_request(
        params: &Params,
        basic: Option<Result<(String, String), OAuthError>>,
    ) -> Result<ClientCredentials, OAuthError> {
        let body_id = params.get("client_id").map(str::to_owned);
        let body_secret = params.get("client_secret").map(str::to_owned);
        let assertion = match (
            params.get("client_assertion_type"),
            params.get("client_assertion"),
        ) {
            (None, None) => None,
            (Some(CLIENT_ASSERTION_TYPE), Some(a)) => Some(a.to_owned()),
            _ => {
                return Err(OAuthError::new(
                    crate::error::ErrorCode::InvalidRequest,
                    "invalid client assertion type",
                ));
            }
        };
        if assertion.is_some() && (body_secret.is_some() || basic.is_some()) {
            // One way of authenticating (RFC 6749 §2.3).
            return Err(OAuthError::new(
                crate::error::ErrorCode::InvalidRequest,
                "client credentials given twice, differently",
            ));
        }
        match basic {
            None => Ok(ClientCredentials {
                client_id: body_id,
                client_secret: body_secret,
                basic: false,
                assertion,
            }),
            Some(Err(e)) => Err(e),
            Some(Ok((id, secret))) => {
                let agrees = body_id.as_deref().is_none_or(|b| b == id)
                    && body_secret.as_deref().is_none_or(|b| b == secret);
                if !agrees {
                    return Err(OAuthError::new(
                        crate::error::ErrorCode::InvalidRequest,
                        "client credentials given twice, differently",
                    ));
                }
                Ok(ClientCredentials {
                    client_id: Some(id),
                    client_secret: Some(secret).filter(|s| !s.is_empty()),
                    basic: true,
                    assertion: None,
                })
            }
        }
    }
}

/// What a grant answers: a session's tokens, or (the asset token flow) an asset token.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
// One per request, moved once into the response: boxing the common case buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Granted {
    Tokens(TokenResponse),
    AssetToken(AssetTokenResponse),
}

/// The asset token flow's answer (Salesforce's Postman collection, "Asset Token Flow").
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AssetTokenResponse {
    pub access_token: String,
    pub issued_token_type: &'static str,
    pub token_type: &'static str,
    pub expires_in: i64,
}

/// A successful token response, fields in Salesforce's order (spec §4).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The site's URL and id, for a token issued through an Experience Cloud site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sfdc_community_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sfdc_community_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub instance_url: String,
    pub id: String,
    pub token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// Token exchange's `issued_token_type` (RFC 8693 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(p: &[(&str, &str)]) -> Params {
        Params::new(
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn empty_is_absent_and_repeats_are_found() {
        let p = params(&[("a", ""), ("b", "1"), ("a", "2")]);
        assert_eq!(p.get("a"), Some("2"));
        assert_eq!(p.duplicate(), Some("a"));
        assert_eq!(params(&[("a", "")]).get("a"), None);
        assert_eq!(params(&[("a", "1"), ("b", "1")]).duplicate(), None);
    }

    #[test]
    fn the_first_repeated_name_is_found_in_long_requests_too() {
        let names: Vec<String> = (0..8000).map(|i| format!("p{i}")).collect();
        let mut pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        assert_eq!(params(&pairs).duplicate(), None);
        // p7 repeats later than p5 first repeats: the earliest second occurrence wins.
        pairs.insert(100, ("p5", "x"));
        pairs.push(("p7", "y"));
        assert_eq!(params(&pairs).duplicate(), Some("p5"));
        let short = [("a", "1"), ("b", "1"), ("c", "1"), ("b", "2"), ("a", "2")];
        assert_eq!(params(&short).duplicate(), Some("b"));
    }

    #[test]
    fn basic_header_decodes_percent_escapes() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("my%3Aid:s%25cret")
        );
        assert_eq!(
            parse_basic(&h),
            Some(Ok(("my:id".to_owned(), "s%cret".to_owned())))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert!(matches!(parse_basic("Basic !!!"), Some(Err(_))));
    }

    #[test]
    fn basic_and_body_must_agree() {
        let basic = || Some(Ok(("id".to_owned(), "secret".to_owned())));
        let same = params(&[("client_id", "id")]);
        assert!(ClientCredentials::from_request(&same, basic()).is_ok());
        let other = params(&[("client_id", "other")]);
        assert!(ClientCredentials::from_request(&other, basic()).is_err());
    }
}
