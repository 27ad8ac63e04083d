//! OpenID Connect documents (spec §8): id_token claims and the userinfo response, with
//! standard claims filtered by scope.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::grant::{IssuerSettings, sha256};
use crate::identity::salesforce_datetime;
use crate::model::{ConnectedApp, Millis, Org, User};
use crate::scope::Scopes;

/// Which standard claim groups the scopes release. Salesforce-style scopes (`id`, `full`, or
/// no OpenID scope at all) release them all, as Salesforce does.
fn releases(scopes: &Scopes, group: &str) -> bool {
    let oidc_aware = ["openid", "profile", "email", "address", "phone"]
        .iter()
        .any(|s| scopes.contains(s));
    !oidc_aware || scopes.contains(group) || scopes.contains("id") || scopes.contains("full")
}

/// `at_hash` / `c_hash`: the left half of SHA-256 of the value, base64url (OIDC Core §3.1.3.6).
pub fn half_hash(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(&sha256(value.as_bytes())[..16])
}

fn standard_claims(
    out: &mut Map<String, Value>,
    settings: &IssuerSettings,
    org: &Org,
    user: &User,
    scopes: &Scopes,
    updated_at: Value,
) {
    let instance = settings.instance_url(org);
    if releases(scopes, "profile") {
        out.insert("name".into(), json!(user.display_name()));
        out.insert("preferred_username".into(), json!(user.username));
        out.insert("given_name".into(), json!(user.first_name));
        out.insert("family_name".into(), json!(user.last_name));
        out.insert(
            "nickname".into(),
            json!(user.username.split('@').next().unwrap_or_default()),
        );
        out.insert("zoneinfo".into(), json!("GMT"));
        out.insert("locale".into(), json!("en_US"));
        out.insert(
            "picture".into(),
            json!(format!("{instance}/profilephoto/005/F")),
        );
        out.insert(
            "profile".into(),
            json!(format!("{instance}/{}", user.id.to18())),
        );
        out.insert("updated_at".into(), updated_at);
    }
    if releases(scopes, "email") {
        out.insert("email".into(), json!(user.email));
        out.insert("email_verified".into(), json!(true));
    }
    if releases(scopes, "address") {
        out.insert("address".into(), json!({ "country": null }));
    }
    if releases(scopes, "phone") {
        out.insert("phone_number".into(), Value::Null);
        out.insert("phone_number_verified".into(), json!(false));
    }
}

/// What goes into an id_token besides the user.
pub struct IdTokenFacts<'a> {
    /// The URL the token was issued at (login host, My Domain or site): its `iss`.
    pub issuer: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: Millis,
    pub access_token: Option<&'a str>,
    pub code: Option<&'a str>,
}

/// The claims of an id_token (OIDC Core §2, spec §8). `updated_at` is a number here: the
/// `openidconnect` crate rejects a string in an id_token (spec §12.10).
pub fn id_token_claims(
    settings: &IssuerSettings,
    org: &Org,
    user: &User,
    app: &ConnectedApp,
    scopes: &Scopes,
    facts: &IdTokenFacts<'_>,
    now: Millis,
) -> Value {
    let mut c = Map::new();
    c.insert("iss".into(), json!(facts.issuer));
    c.insert("sub".into(), json!(settings.identity_url(org, user)));
    c.insert("aud".into(), json!(app.client_id));
    c.insert("exp".into(), json!(now / 1000 + app.id_token_lifetime_secs));
    c.insert("iat".into(), json!(now / 1000));
    c.insert("auth_time".into(), json!(facts.auth_time / 1000));
    if let Some(n) = facts.nonce {
        c.insert("nonce".into(), json!(n));
    }
    if let Some(at) = facts.access_token {
        c.insert("at_hash".into(), json!(half_hash(at)));
    }
    if let Some(code) = facts.code {
        c.insert("c_hash".into(), json!(half_hash(code)));
    }
    standard_claims(
        &mut c,
        settings,
        org,
        user,
        scopes,
        json!(user.updated_at / 1000),
    );
    Value::Object(c)
}

/// The userinfo response (spec §8, §12.10): `sub` equal to the id_token's, `user_id` and
/// `organization_id` always, standard claims as the scopes allow, `updated_at` as a string.
pub fn userinfo(settings: &IssuerSettings, org: &Org, user: &User, scopes: &Scopes) -> Value {
    let instance = settings.instance_url(org);
    let mut c = Map::new();
    c.insert("sub".into(), json!(settings.identity_url(org, user)));
    c.insert("user_id".into(), json!(user.id.to18()));
    c.insert("organization_id".into(), json!(org.id.to18()));
    let updated = salesforce_datetime(user.updated_at);
    // RFC 3339 with a Z: "2017-07-09T17:21:58Z".
    let updated = format!("{}Z", &updated[..19]);
    standard_claims(&mut c, settings, org, user, scopes, json!(updated));
    if releases(scopes, "profile") {
        let photo = format!("{instance}/profilephoto/005/F");
        c.insert(
            "photos".into(),
            json!({ "picture": photo, "thumbnail": format!("{photo}/T") }),
        );
    }
    c.insert("is_salesforce_integration_user".into(), json!(false));
    let data = format!("{instance}/services/data/v{{version}}");
    c.insert(
        "urls".into(),
        json!({
            "rest": format!("{data}/"),
            "sobjects": format!("{data}/sobjects/"),
            "query": format!("{data}/query/"),
            "profile": format!("{instance}/{}", user.id.to18()),
            "custom_domain": instance,
        }),
    );
    c.insert("active".into(), json!(user.active));
    c.insert("user_type".into(), json!("STANDARD"));
    c.insert("language".into(), json!("en_US"));
    c.insert("locale".into(), json!("en_US"));
    c.insert("utcOffset".into(), json!(0));
    c.insert("is_app_installed".into(), json!(true));
    Value::Object(c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn half_hash_matches_the_oidc_example() {
        // OIDC Core A.3's access token and at_hash.
        assert_eq!(
            super::half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
