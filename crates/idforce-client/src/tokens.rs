//! The shapes of the answers, and reading them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Error;

/// A token response (spec §4). Fields a flow does not send are `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub instance_url: String,
    /// The identity URL.
    pub id: String,
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// The device authorization answer (spec §3.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceCodes {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    /// Seconds between polls.
    pub interval: u64,
}

/// A JSON answer of the expected shape, or the OAuth error the server sent instead.
pub(crate) async fn json<T: DeserializeOwned>(r: reqwest::Response) -> Result<T, Error> {
    let status = r.status().as_u16();
    let body = r.text().await.map_err(Error::Http)?;
    if (200..300).contains(&status)
        && let Ok(v) = serde_json::from_str(&body)
    {
        return Ok(v);
    }
    Err(refusal(status, &body))
}

/// An answer with no body worth reading (revocation).
pub(crate) async fn empty(r: reqwest::Response) -> Result<(), Error> {
    let status = r.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = r.text().await.map_err(Error::Http)?;
    Err(refusal(status, &body))
}

/// The OAuth error in a refusal: JSON at the token endpoint, form-encoded at revocation
/// (spec §6.3), one word of text at the identity URL (§6.5).
fn refusal(status: u16, body: &str) -> Error {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
        #[serde(default)]
        error_description: String,
    }
    if let Ok(e) = serde_json::from_str::<OAuthError>(body) {
        return Error::OAuth {
            status,
            error: e.error,
            description: e.error_description,
        };
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    if let Some((_, error)) = pairs.iter().find(|(k, _)| k == "error") {
        let description = pairs
            .iter()
            .find(|(k, _)| k == "error_description")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        return Error::OAuth {
            status,
            error: error.clone(),
            description,
        };
    }
    let word = body.trim();
    if status == 403
        && !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Error::OAuth {
            status,
            error: word.to_owned(),
            description: String::new(),
        };
    }
    Error::Unexpected {
        status,
        body: body.chars().take(300).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_in_every_shape_salesforce_uses() {
        let e = refusal(
            400,
            r#"{"error":"invalid_grant","error_description":"authentication failure"}"#,
        );
        assert_eq!(e.code(), Some("invalid_grant"));
        assert!(e.hint().unwrap().contains("security token"));
        let e = refusal(
            400,
            "error=unsupported_token_type&error_description=this%20token%20type%20is%20not%20supported",
        );
        assert_eq!(
            e.to_string(),
            "unsupported_token_type: this token type is not supported"
        );
        let e = refusal(403, "Bad_OAuth_Token");
        assert_eq!(e.code(), Some("Bad_OAuth_Token"));
        let e = refusal(
            400,
            r#"{"error":"invalid_grant","error_description":"user hasn't approved this consumer"}"#,
        );
        assert!(e.hint().unwrap().contains("web flow"));
        let e = refusal(
            400,
            r#"{"error":"invalid_grant","error_description":"audience is invalid"}"#,
        );
        assert!(e.hint().unwrap().contains("test.salesforce.com"));
        let e = refusal(404, "<html>Not here</html>");
        assert!(matches!(e, Error::Unexpected { status: 404, .. }));
        assert!(e.hint().unwrap().contains("instance_url"));
    }
}
