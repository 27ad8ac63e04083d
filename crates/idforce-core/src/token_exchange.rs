//! Token exchange (RFC 8693, as Salesforce implements it): the declarative handlers that stand
//! in for Salesforce's Apex `Auth.Oauth2TokenExchangeHandler` — each vouches for the tokens
//! one other issuer signs and names the user they are for — the connected app's token
//! exchange settings, and the token types a request may name.

use serde::{Deserialize, Serialize};

use crate::model::{ConnectedApp, Org, User};

pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// What a `subject_token_type` (or `requested_token_type`) names: Salesforce's five values
/// (the Apex enum `Auth.OAuth2TokenExchangeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    AccessToken,
    RefreshToken,
    IdToken,
    Jwt,
    Saml2,
}

impl TokenType {
    pub fn parse(s: &str) -> Option<TokenType> {
        match s.strip_prefix("urn:ietf:params:oauth:token-type:")? {
            "access_token" => Some(TokenType::AccessToken),
            "refresh_token" => Some(TokenType::RefreshToken),
            "id_token" => Some(TokenType::IdToken),
            // Salesforce spells it `JWT`; RFC 8693 spells it `jwt`.
            "JWT" | "jwt" => Some(TokenType::Jwt),
            "saml2" => Some(TokenType::Saml2),
            _ => None,
        }
    }

    pub fn urn(self) -> &'static str {
        match self {
            TokenType::AccessToken => "urn:ietf:params:oauth:token-type:access_token",
            TokenType::RefreshToken => "urn:ietf:params:oauth:token-type:refresh_token",
            TokenType::IdToken => "urn:ietf:params:oauth:token-type:id_token",
            TokenType::Jwt => "urn:ietf:params:oauth:token-type:jwt",
            TokenType::Saml2 => "urn:ietf:params:oauth:token-type:saml2",
        }
    }
}

/// Which user field a handler matches the token's user claim against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MatchOn {
    /// The username, compared without regard to case (as logins compare it).
    #[default]
    Username,
    /// The email address, without regard to case; two users of the org with that address
    /// match none (the token cannot say which).
    Email,
    /// Salesforce's Federation ID, compared exactly (Salesforce compares it case-sensitively).
    FederationId,
}

impl MatchOn {
    pub fn parse(s: &str) -> Option<MatchOn> {
        match s {
            "username" => Some(MatchOn::Username),
            "email" => Some(MatchOn::Email),
            "federation_id" => Some(MatchOn::FederationId),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MatchOn::Username => "username",
            MatchOn::Email => "email",
            MatchOn::FederationId => "federation_id",
        }
    }

    /// Whether `user` is the one `value` names.
    pub fn matches(self, user: &User, value: &str) -> bool {
        match self {
            MatchOn::Username => user.username.eq_ignore_ascii_case(value),
            MatchOn::Email => user.email.eq_ignore_ascii_case(value),
            MatchOn::FederationId => user.federation_id.as_deref() == Some(value),
        }
    }
}

/// A declarative token exchange handler of an org (`[[org.token_exchange_handler]]`): it
/// accepts JWTs that `issuer` signed for `audience`, verified with a certificate's key or the
/// keys published at `jwks_uri`, and maps the claim `user_claim` to a user of the org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handler {
    pub name: String,
    pub issuer: String,
    pub audience: String,
    /// DER of the X.509 certificate whose key signs the tokens (base64 when stored).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_base64")]
    pub certificate_der: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    pub user_claim: String,
    #[serde(default)]
    pub match_on: MatchOn,
}

/// The claim a handler reads the user from unless told otherwise.
pub const DEFAULT_USER_CLAIM: &str = "sub";

/// A connected app's "Enable Token Exchange Flow" settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSettings {
    /// "Enable Token Exchange Flow".
    #[serde(default)]
    pub enabled: bool,
    /// "Require Secret for Token Exchange Flow".
    #[serde(default = "yes")]
    pub require_secret: bool,
    /// The handlers of the org the app may use; the first is its default.
    #[serde(default)]
    pub handlers: Vec<String>,
    /// "Enable Asset Tokens", with its settings; `None`: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_tokens: Option<AssetTokens>,
}

/// A connected app's asset token settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetTokens {
    /// "Token Valid for", in seconds.
    pub lifetime_secs: i64,
    /// "Asset Audiences": the asset token's `aud` (this server's URL when none is given).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// "Asset Signing Certificate": its DER, and its RSA private key (PKCS#8) sealed under the
    /// system secret (purpose `asset_key_purpose`). `None`: the org's keys sign, those
    /// published at /id/keys.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_base64")]
    pub certificate_der: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_base64")]
    pub key_sealed: Option<Vec<u8>>,
}

/// How long an asset token is valid unless the app says otherwise.
pub const DEFAULT_ASSET_TOKEN_LIFETIME_SECS: i64 = 60;

/// The purpose an app's asset signing key is sealed for.
pub fn asset_key_purpose(app: &crate::sfid::SfId) -> String {
    format!("idforce asset token key {}", app.as15())
}

fn yes() -> bool {
    true
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            enabled: false,
            require_secret: true,
            handlers: Vec::new(),
            asset_tokens: None,
        }
    }
}

impl AppSettings {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn from_json(text: &str) -> Option<AppSettings> {
        serde_json::from_str(text).ok()
    }
}

/// An org's handlers as stored: a JSON list.
pub fn handlers_to_json(handlers: &[Handler]) -> String {
    serde_json::to_string(handlers).unwrap_or_else(|_| "[]".into())
}

pub fn handlers_from_json(text: &str) -> Option<Vec<Handler>> {
    serde_json::from_str(text).ok()
}

/// The handler that judges a token exchange through `app`: the one the request names with
/// `token_handler` (which the app must list), else the app's default (its first). `Err`
/// says why none may (for the log line).
pub fn handler_for<'a>(
    org: &'a Org,
    app: &ConnectedApp,
    named: Option<&str>,
) -> Result<&'a Handler, String> {
    let name = match named {
        Some(n) if app.token_exchange.handlers.iter().any(|h| h == n) => n,
        Some(n) => {
            let shown: String = n.chars().take(64).collect();
            return Err(format!(
                "token_handler {:?} is not one of the app's handlers",
                shown
            ));
        }
        None => app
            .token_exchange
            .handlers
            .first()
            .ok_or("the app lists no token exchange handler")?,
    };
    org.token_exchange_handlers
        .iter()
        .find(|h| h.name == name)
        .ok_or_else(|| format!("the org has no token exchange handler {name:?}"))
}

/// Checks what a handler is given in the config file or by an admin: a name, an issuer and
/// an audience, exactly one source of keys, and a claim to read the user from.
pub fn check_handler(h: &Handler) -> Result<(), String> {
    if h.name.trim().is_empty() {
        return Err("has no name".into());
    }
    for (field, value) in [
        ("issuer", &h.issuer),
        ("audience", &h.audience),
        ("user_claim", &h.user_claim),
    ] {
        if value.trim().is_empty() {
            return Err(format!("{:?}: {field} is empty", h.name));
        }
    }
    match (&h.certificate_der, &h.jwks_uri) {
        (Some(_), Some(_)) => Err(format!(
            "{:?}: give either certificate or jwks_uri, not both",
            h.name
        )),
        (None, None) => Err(format!(
            "{:?}: needs a certificate or a jwks_uri to verify tokens with",
            h.name
        )),
        _ => Ok(()),
    }
}

mod opt_base64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| STANDARD.decode(text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_types_read_salesforces_and_rfc_8693s_spellings() {
        for (urn, t) in [
            (
                "urn:ietf:params:oauth:token-type:access_token",
                TokenType::AccessToken,
            ),
            (
                "urn:ietf:params:oauth:token-type:refresh_token",
                TokenType::RefreshToken,
            ),
            (
                "urn:ietf:params:oauth:token-type:id_token",
                TokenType::IdToken,
            ),
            ("urn:ietf:params:oauth:token-type:JWT", TokenType::Jwt),
            ("urn:ietf:params:oauth:token-type:jwt", TokenType::Jwt),
            ("urn:ietf:params:oauth:token-type:saml2", TokenType::Saml2),
        ] {
            assert_eq!(TokenType::parse(urn), Some(t), "{urn}");
            assert_eq!(TokenType::parse(t.urn()), Some(t));
        }
        for bad in [
            "",
            "access_token",
            "urn:ietf:params:oauth:token-type:Access_Token",
            "urn:ietf:params:oauth:token-type:saml1",
        ] {
            assert_eq!(TokenType::parse(bad), None, "{bad}");
        }
    }

    fn handler() -> Handler {
        Handler {
            name: "Okta".into(),
            issuer: "https://idp.example".into(),
            audience: "idforce".into(),
            certificate_der: Some(vec![1, 2, 3]),
            jwks_uri: None,
            user_claim: "sub".into(),
            match_on: MatchOn::Email,
        }
    }

    #[test]
    fn handlers_round_trip_and_are_checked() {
        let h = handler();
        assert_eq!(check_handler(&h), Ok(()));
        let text = handlers_to_json(std::slice::from_ref(&h));
        assert_eq!(handlers_from_json(&text), Some(vec![h.clone()]));
        let both = Handler {
            jwks_uri: Some("https://idp.example/keys".into()),
            ..h.clone()
        };
        assert!(check_handler(&both).unwrap_err().contains("not both"));
        let neither = Handler {
            certificate_der: None,
            ..h.clone()
        };
        assert!(check_handler(&neither).unwrap_err().contains("needs"));
        let no_issuer = Handler {
            issuer: " ".into(),
            ..h
        };
        assert!(check_handler(&no_issuer).unwrap_err().contains("issuer"));
    }

    #[test]
    fn app_settings_default_to_off_with_the_secret_required() {
        let s = AppSettings::from_json("{}").unwrap();
        assert_eq!(s, AppSettings::default());
        assert!(!s.enabled && s.require_secret);
        let on = AppSettings {
            enabled: true,
            require_secret: false,
            handlers: vec!["Okta".into()],
            asset_tokens: Some(AssetTokens {
                lifetime_secs: 300,
                audiences: vec!["https://devices.example".into()],
                certificate_der: Some(vec![1, 2]),
                key_sealed: Some(vec![3, 4]),
            }),
        };
        assert_eq!(AppSettings::from_json(&on.to_json()), Some(on));
    }
}
