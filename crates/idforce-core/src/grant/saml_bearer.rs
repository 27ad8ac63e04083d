//! SAML 2.0 bearer assertion flow (RFC 7522; Salesforce's "OAuth 2.0 SAML Bearer Assertion
//! Flow", docs/salesforce-compatibility.md): an assertion signed with the key of the connected
//! app's certificate, naming the app (`Issuer`, its consumer key), the user (`NameID`, a
//! username) and this server (`Audience`; the token endpoint as the bearer confirmation's
//! `Recipient`). No client secret and no refresh token; the user must have approved the app, as
//! for JWT bearer. The XML signature is the `SamlVerifier`'s to check (outside default builds).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use super::{REFRESH_SCOPES, TokenContext, granted_scopes, jwt_bearer, open_session};
use crate::assertion::CLOCK_SKEW_SECS;
use crate::error::OAuthError;
use crate::login_history::LoginSubtype;
use crate::ports::{SamlAssertion, SamlRefusal};
use crate::wire::{Params, TokenResponse};

pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:saml2-bearer";

/// The largest assertion read, decoded: a signed assertion is a few KiB.
const MAX_ASSERTION: usize = 64 * 1024;

const SALESFORCE_TOKEN_ENDPOINTS: [&str; 2] = [
    "https://login.salesforce.com/services/oauth2/token",
    "https://test.salesforce.com/services/oauth2/token",
];

pub(super) async fn exchange(
    ctx: &TokenContext<'_>,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let invalid = |why: String| OAuthError::invalid_assertion().because(why);
    let refused = |e: SamlRefusal| match e {
        SamlRefusal::Unsupported => OAuthError::unsupported_grant_type()
            .because("a SAML bearer assertion: this build reads no SAML (feature saml-bearer)"),
        SamlRefusal::Invalid(why) => invalid(why),
    };
    let encoded = params
        .get("assertion")
        .ok_or_else(|| invalid("no assertion".into()))?;
    let xml = decode(encoded).map_err(invalid)?;
    // Which app's certificate to verify with; nothing else is taken from the unverified text,
    // and the verified assertion must name the same issuer.
    let issuer = ctx
        .saml
        .claimed_issuer(&xml)
        .map_err(refused)?
        .trim()
        .to_owned();
    let app = super::app_of_consumer_key(ctx, &issuer)
        .await?
        .ok_or_else(|| super::unknown_client(ctx, &issuer))?;
    let certificate = app
        .certificate_der
        .as_deref()
        .ok_or_else(|| invalid("the app has no certificate to verify it".into()))?;
    let assertion = ctx.saml.verify(&xml, certificate).await.map_err(refused)?;
    jwt_bearer::check_certificate_validity(ctx, &app, certificate)?;
    if assertion.issuer.trim() != issuer {
        return Err(invalid(
            "the signed Issuer is not the one the unsigned text named".into(),
        ));
    }
    let expires_at = check_times(&assertion, ctx.now / 1000).map_err(invalid)?;
    check_recipient(ctx, &assertion).map_err(invalid)?;

    let (user, org) = jwt_bearer::asserted_user(ctx, &assertion.name_id).await?;
    check_audiences(&assertion, &jwt_bearer::accepted_audiences(ctx, &org)).map_err(invalid)?;
    jwt_bearer::check_user(ctx, &user, &app)
        .await
        .map_err(|e| e.through(&app))?;
    let scopes = granted_scopes(params, &app.scopes.without(REFRESH_SCOPES))?;
    super::count_login(ctx, &user)
        .await
        .map_err(|e| e.through(&app))?;

    // Spent once, in the transaction of the session it pays for, and kept until it expires.
    let expires_at = expires_at
        .saturating_add(CLOCK_SKEW_SECS)
        .saturating_mul(1000);
    let opened = open_session(
        ctx,
        &org,
        &user,
        &app,
        scopes,
        None,
        LoginSubtype::SamlBearer,
    )?;
    let key = crate::assertion::ledger_key(
        &format!("idforce saml assertion\0{issuer}\0{}", assertion.id),
        expires_at,
    );
    let fresh = ctx
        .store
        .spend_assertion(&key, expires_at, ctx.now, &opened.tokens(None))
        .await?;
    if !fresh {
        return Err(invalid(format!(
            "an assertion used before (replay of {})",
            assertion.id
        )));
    }
    let mut response = opened.response(ctx, &org, &user, None);
    // As JWT bearer's: neither signature nor issued_at.
    response.issued_at = None;
    Ok(response)
}

/// The assertion's XML from the request's base64url (Salesforce's encoding; standard base64
/// and padding, `=` or Ping's `,`, are taken too).
fn decode(encoded: &str) -> Result<String, String> {
    let trimmed = encoded.trim().trim_end_matches(['=', ',']);
    if trimmed.len() > MAX_ASSERTION * 4 / 3 + 4 {
        return Err(format!("an assertion larger than {MAX_ASSERTION} bytes"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
        .map_err(|_| "an assertion that is not base64url".to_owned())?;
    String::from_utf8(bytes).map_err(|_| "an assertion that is not UTF-8 XML".to_owned())
}

/// Holds the assertion to its validity window (with the usual skew) and its bearer
/// confirmation's; returns when it stops being valid (seconds).
fn check_times(a: &SamlAssertion, now: i64) -> Result<i64, String> {
    let until = a
        .not_on_or_after
        .ok_or("an assertion without Conditions NotOnOrAfter")?;
    if until.saturating_add(CLOCK_SKEW_SECS) <= now {
        return Err(format!("an assertion that expired at {until}"));
    }
    if let Some(from) = a.not_before
        && from.saturating_sub(CLOCK_SKEW_SECS) > now
    {
        return Err(format!("an assertion not valid before {from}"));
    }
    let (_, confirmed_until) = a
        .bearer
        .as_ref()
        .ok_or("an assertion without a bearer SubjectConfirmation")?;
    let confirmed_until =
        confirmed_until.ok_or("a bearer SubjectConfirmationData without NotOnOrAfter")?;
    if confirmed_until.saturating_add(CLOCK_SKEW_SECS) <= now {
        return Err(format!(
            "a bearer confirmation that expired at {confirmed_until}"
        ));
    }
    Ok(until.min(confirmed_until))
}

/// Every `AudienceRestriction` must name this server (SAML core §2.5.1.4), compared as JWT
/// bearer's audiences are: without a trailing slash, whatever the case.
fn check_audiences(a: &SamlAssertion, accepted: &[String]) -> Result<(), String> {
    let norm = |s: &str| s.trim().trim_end_matches('/').to_ascii_lowercase();
    let accepted: Vec<String> = accepted.iter().map(|s| norm(s)).collect();
    if a.audience_restrictions.is_empty() {
        return Err("an assertion without an AudienceRestriction".into());
    }
    match a
        .audience_restrictions
        .iter()
        .find(|r| !r.iter().any(|aud| accepted.contains(&norm(aud))))
    {
        Some(r) => Err(format!("an assertion for other audiences: {r:?}")),
        None => Ok(()),
    }
}

/// The bearer confirmation's `Recipient` must be this token endpoint (on the host asked, or the
/// login host), or one of Salesforce's when those are accepted.
fn check_recipient(ctx: &TokenContext<'_>, a: &SamlAssertion) -> Result<(), String> {
    let recipient = a
        .bearer
        .as_ref()
        .and_then(|(r, _)| r.as_deref())
        .ok_or("a bearer SubjectConfirmationData without Recipient")?;
    let endpoint = |base: &str| format!("{}/services/oauth2/token", base.trim_end_matches('/'));
    let accepted = [
        endpoint(&ctx.entry.base_url),
        endpoint(&ctx.settings.public_url),
    ];
    let salesforce =
        ctx.settings.accept_salesforce_audiences && SALESFORCE_TOKEN_ENDPOINTS.contains(&recipient);
    if accepted.iter().any(|e| e == recipient) || salesforce {
        return Ok(());
    }
    Err(format!("an assertion for the recipient {recipient:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assertion(now: i64) -> SamlAssertion {
        SamlAssertion {
            id: "_a1".into(),
            issuer: "3MVG9".into(),
            name_id: "alice@acme.test".into(),
            audience_restrictions: vec![vec!["https://login.salesforce.com".into()]],
            not_before: Some(now - 10),
            not_on_or_after: Some(now + 300),
            bearer: Some((
                Some("https://idforce.test/services/oauth2/token".into()),
                Some(now + 200),
            )),
        }
    }

    #[test]
    fn the_validity_window_and_the_bearer_confirmation_are_held() {
        let now = 1_800_000_000;
        assert_eq!(check_times(&assertion(now), now), Ok(now + 200));
        let with = |change: fn(&mut SamlAssertion)| {
            let mut a = assertion(now);
            change(&mut a);
            check_times(&a, now).unwrap_err()
        };
        assert!(with(|a| a.not_on_or_after = None).contains("NotOnOrAfter"));
        assert!(with(|a| a.not_on_or_after = Some(1_800_000_000 - 600)).contains("expired"));
        assert!(with(|a| a.not_before = Some(1_800_000_000 + 600)).contains("before"));
        assert!(with(|a| a.bearer = None).contains("bearer"));
        assert!(with(|a| a.bearer = Some((None, None))).contains("NotOnOrAfter"));
        assert!(with(|a| a.bearer = Some((None, Some(1_800_000_000 - 600)))).contains("expired"));
    }

    #[test]
    fn every_audience_restriction_must_name_this_server() {
        let now = 1_800_000_000;
        let accepted = vec!["https://login.salesforce.com".to_owned()];
        let with = |restrictions: Vec<Vec<&str>>| {
            let mut a = assertion(now);
            a.audience_restrictions = restrictions
                .into_iter()
                .map(|r| r.into_iter().map(str::to_owned).collect())
                .collect();
            check_audiences(&a, &accepted)
        };
        assert_eq!(with(vec![vec!["https://LOGIN.salesforce.com/"]]), Ok(()));
        assert_eq!(
            with(vec![vec![
                "https://other.example",
                "https://login.salesforce.com"
            ]]),
            Ok(())
        );
        assert!(with(vec![]).unwrap_err().contains("without"));
        assert!(
            with(vec![
                vec!["https://login.salesforce.com"],
                vec!["https://other.example"]
            ])
            .unwrap_err()
            .contains("other audiences")
        );
    }

    #[test]
    fn assertions_are_read_as_base64url_or_base64() {
        let xml = "<saml:Assertion>é?</saml:Assertion>";
        for encoded in [
            URL_SAFE_NO_PAD.encode(xml),
            format!("{}=", URL_SAFE_NO_PAD.encode(xml)),
            base64::engine::general_purpose::STANDARD.encode(xml),
            format!("{},", URL_SAFE_NO_PAD.encode(xml)),
        ] {
            assert_eq!(decode(&encoded).as_deref(), Ok(xml), "{encoded}");
        }
        assert!(decode("not base64!").is_err());
        assert!(
            decode(&"A".repeat(MAX_ASSERTION * 2))
                .unwrap_err()
                .contains("larger")
        );
    }
}
