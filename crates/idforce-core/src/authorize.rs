//! The authorize endpoint's rules (spec §3.1–3.3, §6.2): which errors are shown on a page
//! and which go back to the client, what the user must do (log in, approve), and what is
//! sent back on success.

use std::sync::Arc;

use crate::error::{ErrorCode, OAuthError};
use crate::grant::{TokenContext, issue_grant};
use crate::login_history::{LoginStatus, LoginSubtype};
use crate::model::{AUTH_CODE_LIFETIME_MS, AuthCode, ConnectedApp, Org, PermittedUsers, User};
use crate::pkce;
use crate::scope::Scopes;
use crate::token;
use crate::wire::Params;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    Code,
    Token,
}

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub app: Arc<ConnectedApp>,
    pub response_type: ResponseType,
    /// `response_type=token id_token`: an id_token joins the tokens in the fragment.
    pub id_token: bool,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub immediate: bool,
    pub login_hint: Option<String>,
}

/// An authorize-endpoint failure: shown on a page when the client or redirect URI cannot be
/// trusted, otherwise sent to the redirect URI.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizeError {
    Page(OAuthError),
    Redirect {
        redirect_uri: String,
        response_type: ResponseType,
        state: Option<String>,
        error: OAuthError,
    },
}

impl AuthorizeRequest {
    pub fn fail(&self, error: OAuthError) -> AuthorizeError {
        AuthorizeError::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            response_type: self.response_type,
            state: self.state.clone(),
            error,
        }
    }
}

pub fn unsupported_response_type() -> OAuthError {
    OAuthError::new(
        ErrorCode::UnsupportedResponseType,
        "response type not supported",
    )
}

pub fn access_denied() -> OAuthError {
    OAuthError::new(ErrorCode::AccessDenied, "end-user denied authorization")
}

pub fn immediate_unsuccessful() -> OAuthError {
    OAuthError::new(ErrorCode::ImmediateUnsuccessful, "immediate_unsuccessful")
}

pub fn app_access_denied() -> OAuthError {
    OAuthError::new(
        ErrorCode::OAuthAppAccessDenied,
        "user is not admin approved to access this app",
    )
}

/// Validates an authorization request against its app.
pub async fn validate(
    ctx: &TokenContext<'_>,
    params: &Params,
) -> Result<AuthorizeRequest, AuthorizeError> {
    if let Some(name) = params.duplicate() {
        return Err(AuthorizeError::Page(OAuthError::duplicated(name)));
    }
    let app = match params.get("client_id") {
        Some(id) => crate::grant::app_of_consumer_key(ctx, id)
            .await
            .map_err(|e| AuthorizeError::Page(e.into()))?,
        None => None,
    }
    .ok_or(AuthorizeError::Page(OAuthError::unknown_client()))?;
    // The built-in success page (the login host's, or that of the host or site the request
    // came through) takes user-agent-flow tokens for any app (spec §1).
    let mut kinds: Vec<&str> = params
        .get("response_type")
        .unwrap_or_default()
        .split(' ')
        .filter(|k| !k.is_empty())
        .collect();
    kinds.sort_unstable();
    let token_flow = kinds == ["token"] || kinds == ["id_token", "token"];
    let redirect_uri = params
        .get("redirect_uri")
        .filter(|r| {
            app.callback_urls.iter().any(|c| c == r)
                || (token_flow && is_success_page(r, success_bases(ctx)))
        })
        .ok_or(AuthorizeError::Page(OAuthError::redirect_uri_mismatch()))?
        .to_owned();
    let (response_type, id_token) = match kinds.as_slice() {
        ["code"] => (ResponseType::Code, false),
        ["token"] => (ResponseType::Token, false),
        ["id_token", "token"] => (ResponseType::Token, true),
        _ => {
            // Unknown response types get their error in the query, the code flow's place.
            return Err(AuthorizeError::Redirect {
                redirect_uri,
                response_type: ResponseType::Code,
                state: params.get("state").map(str::to_owned),
                error: unsupported_response_type(),
            });
        }
    };
    let prompt = params.get("prompt").unwrap_or_default();
    let mut req = AuthorizeRequest {
        scopes: Scopes::default(),
        response_type,
        id_token,
        redirect_uri,
        state: params.get("state").map(str::to_owned),
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge: params.get("code_challenge").map(str::to_owned),
        prompt_login: prompt.split(' ').any(|p| p == "login"),
        prompt_consent: prompt.split(' ').any(|p| p == "consent"),
        immediate: params.get("immediate") == Some("true"),
        login_hint: params.get("login_hint").map(str::to_owned),
        app,
    };
    if req.app.blocked {
        let why = format!("app {} is blocked", req.app.id);
        return Err(req.fail(OAuthError::app_blocked().because(why)));
    }
    let oauth = match ctx.store.org(&req.app.org_id).await {
        Ok(org) => org.map(|o| o.oauth).unwrap_or_default(),
        Err(e) => return Err(AuthorizeError::Page(e.into())),
    };
    if response_type == ResponseType::Token && !oauth.allow_user_agent_flow {
        let why = "the org does not allow OAuth user-agent flows";
        return Err(req.fail(unsupported_response_type().because(why)));
    }
    let requested = params
        .get("scope")
        .map(Scopes::parse)
        .transpose()
        .map_err(|e| req.fail(e))?;
    req.scopes = Scopes::grant(&req.app.scopes, requested.as_ref()).map_err(|e| req.fail(e))?;
    if id_token && req.nonce.is_none() {
        return Err(req.fail(OAuthError::new(
            ErrorCode::InvalidRequest,
            "nonce is required",
        )));
    }
    if id_token && !req.scopes.contains("openid") {
        req.scopes.insert("openid");
    }
    if response_type == ResponseType::Code {
        pkce::check_method(params.get("code_challenge_method")).map_err(|e| req.fail(e))?;
        if (req.app.require_pkce || oauth.require_pkce_for_all_apps) && req.code_challenge.is_none()
        {
            let why = match req.app.require_pkce {
                true => "the app requires PKCE",
                false => "the org requires PKCE of every app",
            };
            return Err(req.fail(
                OAuthError::new(ErrorCode::InvalidRequest, "missing required code challenge")
                    .because(why),
            ));
        }
    }
    Ok(req)
}

impl AuthorizeRequest {
    /// The flow Login History names a login through this request by.
    pub fn login_subtype(&self) -> LoginSubtype {
        match self.response_type {
            ResponseType::Code => LoginSubtype::WebServer,
            ResponseType::Token => LoginSubtype::UserAgent,
        }
    }
}

/// What stands between a logged-in user and the redirect.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Consent,
    Issue,
    Refuse(OAuthError),
}

/// Admin-approved apps admit pre-authorized users only and never ask; all-users apps ask
/// unless an earlier approval covers the scopes (and `prompt=consent` was not sent).
pub fn next_step(req: &AuthorizeRequest, user: &User, approved: Option<&Scopes>) -> Next {
    if let Some(refused) = user.login_refusal() {
        return Next::Refuse(refused.through(&req.app));
    }
    match req.app.permitted_users {
        PermittedUsers::AdminApproved if req.app.pre_authorizes(user) => Next::Issue,
        PermittedUsers::AdminApproved => Next::Refuse(
            app_access_denied()
                .in_login_history(user, LoginStatus::NotApprovedForAccess)
                .through(&req.app),
        ),
        PermittedUsers::AllUsers => {
            let covered = approved.is_some_and(|a| req.scopes.iter().all(|s| a.allows(s)));
            if covered && !req.prompt_consent {
                Next::Issue
            } else if req.immediate {
                Next::Refuse(immediate_unsuccessful())
            } else {
                Next::Consent
            }
        }
    }
}

/// Issues what the request asked for and returns the redirect parameters, in order.
pub async fn issue(
    ctx: &TokenContext<'_>,
    req: &AuthorizeRequest,
    org: &Org,
    user: &User,
    auth_time: i64,
) -> Result<Vec<(String, String)>, OAuthError> {
    let mut out = Vec::new();
    match req.response_type {
        ResponseType::Code => {
            let code = token::mint_authorization_code();
            ctx.store
                .insert_code(&AuthCode {
                    digest: ctx.hasher.digest(&code),
                    org_id: org.id,
                    user_id: user.id,
                    app_id: req.app.id,
                    redirect_uri: req.redirect_uri.clone(),
                    scopes: req.scopes.clone(),
                    code_challenge: req.code_challenge.clone(),
                    nonce: req.nonce.clone(),
                    auth_time,
                    issued_at: ctx.now,
                    expires_at: ctx.now + AUTH_CODE_LIFETIME_MS,
                })
                .await?;
            out.push(("code".to_owned(), code));
            if let Some((url, id)) = ctx.entry.community() {
                out.push(("sfdc_community_url".to_owned(), url.to_owned()));
                out.push(("sfdc_community_id".to_owned(), id.to18()));
            }
        }
        ResponseType::Token => {
            let mut scopes = req.scopes.clone();
            if !refresh_allowed_in_fragment(&req.redirect_uri, success_bases(ctx)) {
                scopes = scopes.without(&["refresh_token", "offline_access"]);
            }
            let mut t = issue_grant(ctx, org, user, &req.app, scopes.clone()).await?;
            if req.id_token {
                crate::grant::attach_id_token(
                    ctx,
                    org,
                    user,
                    &req.app,
                    &scopes,
                    &mut t,
                    req.nonce.as_deref(),
                    auth_time,
                )?;
            }
            out.push(("access_token".to_owned(), t.access_token));
            if let Some(r) = t.refresh_token {
                out.push(("refresh_token".to_owned(), r));
            }
            if let (Some(url), Some(id)) = (t.sfdc_community_url, t.sfdc_community_id) {
                out.push(("sfdc_community_url".to_owned(), url));
                out.push(("sfdc_community_id".to_owned(), id));
            }
            out.push(("instance_url".to_owned(), t.instance_url));
            out.push(("id".to_owned(), t.id));
            if let Some(i) = t.issued_at {
                out.push(("issued_at".to_owned(), i));
            }
            if let Some(sig) = t.signature {
                out.push(("signature".to_owned(), sig));
            }
            if let Some(s) = t.scope {
                out.push(("scope".to_owned(), s));
            }
            out.push(("token_type".to_owned(), "Bearer".to_owned()));
            if let Some(id) = t.id_token {
                out.push(("id_token".to_owned(), id));
            }
        }
    }
    if let Some(s) = &req.state {
        out.push(("state".to_owned(), s.clone()));
    }
    Ok(out)
}

/// The user-agent flow hands out a refresh token only to the built-in success page or to a
/// non-web (custom scheme) redirect, where the token cannot leak through a web server's logs
/// (spec §3.3).
fn refresh_allowed_in_fragment(redirect_uri: &str, bases: [&str; 2]) -> bool {
    is_success_page(redirect_uri, bases)
        || !(redirect_uri.starts_with("https://") || redirect_uri.starts_with("http://"))
}

/// idforce's built-in success page under one of `bases`: the login host's URL, and that of the
/// host or site the request came through.
fn is_success_page(redirect_uri: &str, bases: [&str; 2]) -> bool {
    bases.iter().any(|base| {
        redirect_uri
            .strip_prefix(base.trim_end_matches('/'))
            .is_some_and(|rest| rest == "/services/oauth2/success")
    })
}

fn success_bases<'a>(ctx: &'a TokenContext<'_>) -> [&'a str; 2] {
    [&ctx.entry.base_url, &ctx.settings.public_url]
}

/// The redirect location: parameters in the query for the code flow, in the fragment for the
/// token flow, form-encoded (`+` for space).
pub fn redirect_location(
    redirect_uri: &str,
    response_type: ResponseType,
    params: &[(String, String)],
) -> String {
    let mut ser = form_urlencoded_serialize(params);
    match response_type {
        ResponseType::Code => {
            let sep = if redirect_uri.contains('?') { '&' } else { '?' };
            ser.insert(0, sep);
            format!("{redirect_uri}{ser}")
        }
        ResponseType::Token => {
            ser.insert(0, '#');
            format!(
                "{}{ser}",
                redirect_uri.split('#').next().unwrap_or(redirect_uri)
            )
        }
    }
}

pub(crate) fn form_urlencoded_serialize(params: &[(String, String)]) -> String {
    let enc = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The redirect for an error, with `error`, `error_description` and `state`.
pub fn error_location(
    redirect_uri: &str,
    response_type: ResponseType,
    state: Option<&str>,
    error: &OAuthError,
) -> String {
    let mut params = vec![
        ("error".to_owned(), error.code.as_str().to_owned()),
        (
            "error_description".to_owned(),
            error.description.to_string(),
        ),
    ];
    if let Some(s) = state {
        params.push(("state".to_owned(), s.to_owned()));
    }
    redirect_location(redirect_uri, response_type, &params)
}

/// A callback URL is matched exactly, so it must be one a browser can be sent to: a scheme
/// (`https`, `http`, or an app's own), something after it, no spaces and no fragment (RFC
/// 6749 §3.1.2). Schemes that run code in the browser are refused, and so is `host:port/…`
/// without a scheme (it parses as the scheme `localhost`).
pub fn is_callback_url(u: &str) -> bool {
    let Some((scheme, rest)) = u.split_once(':') else {
        return false;
    };
    let scripted = ["javascript", "data", "vbscript", "file"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s));
    let a_port = rest.starts_with(|c: char| c.is_ascii_digit());
    if scripted || a_port || scheme.eq_ignore_ascii_case("localhost") {
        return false;
    }
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let rest_ok = if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        rest.strip_prefix("//")
            .is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
    } else {
        !rest.is_empty()
    };
    scheme_ok && rest_ok && !u.chars().any(|c| c.is_whitespace() || c == '#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let p = vec![
            ("code".to_owned(), "aPrx.x==".to_owned()),
            ("state".to_owned(), "a b".to_owned()),
        ];
        assert_eq!(
            redirect_location("https://app/cb", ResponseType::Code, &p),
            "https://app/cb?code=aPrx.x%3D%3D&state=a+b"
        );
        assert_eq!(
            redirect_location("https://app/cb?x=1", ResponseType::Code, &p),
            "https://app/cb?x=1&code=aPrx.x%3D%3D&state=a+b"
        );
        let t = vec![("access_token".to_owned(), "00D!AQ".to_owned())];
        assert_eq!(
            redirect_location("https://app/cb", ResponseType::Token, &t),
            "https://app/cb#access_token=00D%21AQ"
        );
        assert_eq!(
            error_location(
                "https://app/cb",
                ResponseType::Code,
                Some("s"),
                &access_denied()
            ),
            "https://app/cb?error=access_denied&error_description=end-user+denied+authorization&state=s"
        );
    }

    #[test]
    fn refresh_in_fragment_only_where_safe() {
        let bases = ["http://x/partners", "http://x"];
        assert!(refresh_allowed_in_fragment(
            "http://x/services/oauth2/success",
            bases
        ));
        assert!(refresh_allowed_in_fragment(
            "http://x/partners/services/oauth2/success",
            bases
        ));
        assert!(refresh_allowed_in_fragment("myapp://callback", bases));
        assert!(!refresh_allowed_in_fragment("https://app/cb", bases));
        assert!(!refresh_allowed_in_fragment(
            "http://x/other/services/oauth2/success",
            bases
        ));
    }
}
