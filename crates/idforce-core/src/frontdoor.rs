//! Frontdoor: an access token turned into a browser session (`/secur/frontdoor.jsp?sid=`), and
//! the Single Access UI Bridge (`/services/oauth2/singleaccess`), which trades an access token
//! for a one-time frontdoor URL (`…/secur/frontdoor.jsp?otp=…&startURL=…`).
//!
//! A one-time URL is kept as a single-use code, spent by the store's one-winner redemption.
//! Its key is not the keyed digest an authorization code is kept under but a hash of that
//! digest: nothing a client can send to the token endpoint digests to it (it would need a
//! preimage of the keyed hash), so a one-time URL can never be exchanged there for tokens (a
//! refresh token, for a minute's URL). It is bound to the host or site that issued it.

use crate::grant::TokenContext;
use crate::hosts::Entry;
use crate::model::{AuthCode, Millis, Session, User};
use crate::ports::Redemption;
use crate::session;
use crate::token;

/// How long a one-time frontdoor URL may wait to be opened: long enough for a CLI to start a
/// browser, short enough that a URL left in a terminal's history is spent.
pub const ONE_TIME_URL_LIFETIME_MS: Millis = 60_000;

/// Why a token does not open a browser session; answered as Salesforce's one-word refusals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No live session for the token, its user may not log in, its app is blocked, or it is
    /// another org's on this My Domain or site: `Bad_OAuth_Token`.
    BadToken(String),
    /// The token lacks the `web` and `full` scopes: `Invalid_Scope`.
    InvalidScope,
    /// A one-time URL unknown, spent, or expired.
    BadOneTimeUrl(String),
}

impl Refusal {
    /// The word Salesforce answers with (plain text, 403) at `singleaccess`.
    pub fn word(&self) -> &'static str {
        match self {
            Refusal::InvalidScope => "Invalid_Scope",
            Refusal::BadToken(_) | Refusal::BadOneTimeUrl(_) => "Bad_OAuth_Token",
        }
    }

    /// What the log line says.
    pub fn reason(&self) -> String {
        match self {
            Refusal::BadToken(why) | Refusal::BadOneTimeUrl(why) => why.clone(),
            Refusal::InvalidScope => "the token has neither the web nor the full scope".into(),
        }
    }
}

/// The session of an access token that may open a browser session here: live, its user and
/// app allowed, its org the entry's, and scoped `web` or `full`.
pub async fn bridged_session(
    ctx: &TokenContext<'_>,
    access_token: &str,
) -> Result<Session, Refusal> {
    let store_failed =
        |e: crate::ports::StoreError| Refusal::BadToken(format!("the store failed: {e}"));
    let sess = session::use_access_token(ctx.store, ctx.hasher, access_token, ctx.now)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| Refusal::BadToken("no live session has this access token".into()))?;
    if !session::still_allowed(ctx.store, &sess)
        .await
        .map_err(store_failed)?
    {
        let why = "the session's user is frozen or deactivated, or its app blocked";
        return Err(Refusal::BadToken(why.into()));
    }
    if !ctx.entry.admits(&sess.org_id) {
        let why = format!(
            "the session is org {}'s, not {}'s",
            sess.org_id, ctx.entry.base_url
        );
        return Err(Refusal::BadToken(why));
    }
    if !(sess.scopes.contains("web") || sess.scopes.contains("full")) {
        return Err(Refusal::InvalidScope);
    }
    Ok(sess)
}

/// A one-time frontdoor URL for `sess`, landing on `start` (a path on this host).
pub async fn one_time_url(
    ctx: &TokenContext<'_>,
    sess: &Session,
    start: Option<&str>,
) -> Result<String, Refusal> {
    let otp = token::mint_authorization_code();
    let code = AuthCode {
        digest: otp_digest(ctx, &otp),
        org_id: sess.org_id,
        user_id: sess.user_id,
        app_id: sess.app_id,
        redirect_uri: start.unwrap_or("/").to_owned(),
        scopes: sess.scopes.clone(),
        code_challenge: None,
        // Where it was issued: spent only there.
        nonce: Some(ctx.entry.base_url.clone()),
        auth_time: ctx.now,
        issued_at: ctx.now,
        expires_at: ctx.now + ONE_TIME_URL_LIFETIME_MS,
    };
    ctx.store
        .insert_code(&code)
        .await
        .map_err(|e| Refusal::BadToken(format!("the store failed: {e}")))?;
    let mut query = vec![("otp".to_owned(), otp)];
    if let Some(start) = start {
        query.push(("startURL".to_owned(), start.to_owned()));
    }
    Ok(format!(
        "{}/secur/frontdoor.jsp?{}",
        ctx.entry.base_url,
        crate::authorize::form_urlencoded_serialize(&query)
    ))
}

/// Spends a one-time URL's `otp`: its user (still allowed to log in here) and where to land.
pub async fn spend_one_time_url(
    ctx: &TokenContext<'_>,
    otp: &str,
) -> Result<(std::sync::Arc<User>, String), Refusal> {
    let store_failed =
        |e: crate::ports::StoreError| Refusal::BadOneTimeUrl(format!("the store failed: {e}"));
    let digest = otp_digest(ctx, otp);
    let (code, spent) = ctx
        .store
        .code(&digest)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| Refusal::BadOneTimeUrl("no such one-time URL".into()))?;
    if spent {
        return Err(Refusal::BadOneTimeUrl(
            "the one-time URL was used before".into(),
        ));
    }
    if ctx.now >= code.expires_at {
        return Err(Refusal::BadOneTimeUrl("the one-time URL expired".into()));
    }
    if !ctx.entry.admits(&code.org_id) || code.nonce.as_deref() != Some(&ctx.entry.base_url) {
        let why = format!(
            "the URL was issued at {}, not {}",
            code.nonce.as_deref().unwrap_or("?"),
            ctx.entry.base_url
        );
        return Err(Refusal::BadOneTimeUrl(why));
    }
    match ctx
        .store
        .redeem_code(&digest, ctx.now, None)
        .await
        .map_err(store_failed)?
    {
        Redemption::Redeemed => {}
        Redemption::Reused | Redemption::Unknown => {
            return Err(Refusal::BadOneTimeUrl(
                "the one-time URL was used before".into(),
            ));
        }
    }
    let user = ctx
        .store
        .user(&code.user_id)
        .await
        .map_err(store_failed)?
        .filter(|u| u.may_use_tokens())
        .ok_or_else(|| Refusal::BadOneTimeUrl("its user is gone, frozen or deactivated".into()))?;
    Ok((user, code.redirect_uri))
}

fn otp_digest(ctx: &TokenContext<'_>, otp: &str) -> token::Digest {
    let keyed = ctx.hasher.digest(otp);
    crate::grant::sha256(&[b"idforce frontdoor one-time URL\0".as_slice(), &keyed].concat())
}

/// Where a frontdoor may send the browser: a path on the host it came through (with or
/// without its leading slash, as the `sf` CLI sends them), or an absolute URL of that very
/// host and scheme reduced to its path. Anything that could leave the host (`//…`, `/\…`,
/// another origin, a scheme) is `None`.
pub fn return_path(given: &str, entry: &Entry) -> Option<String> {
    let given = given.trim();
    if given.is_empty() || given.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    let origin = origin_of(&entry.base_url);
    let path = match given.strip_prefix(origin) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => given,
    };
    if path.starts_with("//")
        || path.contains("://")
        || path.starts_with(|c: char| c != '/' && !c.is_ascii_alphanumeric())
    {
        return None;
    }
    // A relative path without its slash must not be a scheme (`javascript:`).
    let first = path.split(['/', '?', '#']).next().unwrap_or("");
    if !path.starts_with('/') && first.contains(':') {
        return None;
    }
    Some(if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    })
}

/// `scheme://authority` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frontdoor_returns_only_to_its_own_host() {
        let entry = Entry::login_host("http://acme.my.localhost:8080");
        for (given, want) in [
            (
                "/lightning/setup/SetupOneHome/home",
                Some("/lightning/setup/SetupOneHome/home"),
            ),
            (
                "lightning/setup/ManageUsers/home",
                Some("/lightning/setup/ManageUsers/home"),
            ),
            ("/apex/Page?x=1#frag", Some("/apex/Page?x=1#frag")),
            (
                "http://acme.my.localhost:8080/services/oauth2/authorize?a=b",
                Some("/services/oauth2/authorize?a=b"),
            ),
            ("http://acme.my.localhost:8080", Some("")),
            ("//evil.test/x", None),
            ("/\\evil.test", None),
            ("https://evil.test/", None),
            ("http://acme.my.localhost:8080.evil.test/", None),
            ("javascript:alert(1)", None),
            ("", None),
            ("/x\ny", None),
        ] {
            let want = want.map(|w| {
                if w.is_empty() {
                    "/".to_owned()
                } else {
                    w.to_owned()
                }
            });
            assert_eq!(return_path(given, &entry), want, "{given:?}");
        }
    }
}
