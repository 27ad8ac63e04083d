//! The OAuth errors idforce sends, worded as Salesforce words them (spec §6).
//!
//! Every wire error is built here, by name, so a description cannot drift between flows.
//! HTTP status is decided by the transport layer from the code (see `ErrorCode::status`).

use std::borrow::Cow;
use std::fmt;

use crate::login_history::{LoginStatus, RefusedLogin};
use crate::model::{ConnectedApp, User};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is missing a parameter, repeats one, or is otherwise malformed.
    InvalidRequest,
    /// Salesforce's own code for an unknown `client_id`.
    InvalidClientId,
    /// Client authentication failed (RFC 6749 §5.2).
    InvalidClient,
    /// The grant (credentials, assertion, code, refresh token) is invalid, expired or revoked.
    InvalidGrant,
    /// The grant type is not supported, or the body is not a form.
    UnsupportedGrantType,
    /// The user may not use this connected app.
    InvalidAppAccess,
    InvalidScope,
    UnsupportedTokenType,
    InvalidToken,
    RedirectUriMismatch,
    UnsupportedResponseType,
    AccessDenied,
    ImmediateUnsuccessful,
    /// Salesforce's authorize-endpoint code for a user an admin-approved app does not admit.
    OAuthAppAccessDenied,
    /// An app an admin has blocked (Connected Apps OAuth Usage → Block).
    OAuthAppBlocked,
    /// Device flow (RFC 8628 §3.5): the user has not decided yet; the device polls too fast;
    /// the device code has expired.
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    /// Storage or another dependency failed; nothing about the request is wrong.
    ServerError,
    /// Too much work queued (password checks): retry shortly.
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClientId => "invalid_client_id",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidAppAccess => "invalid_app_access",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::RedirectUriMismatch => "redirect_uri_mismatch",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::ImmediateUnsuccessful => "immediate_unsuccessful",
            ErrorCode::OAuthAppAccessDenied => "OAUTH_APP_ACCESS_DENIED",
            ErrorCode::OAuthAppBlocked => "OAUTH_APP_BLOCKED",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// Salesforce answers every token-endpoint error with 400 (spec §6.1); only a failure of
    /// the server itself is a 5xx.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// An error a client receives: `{"error": code, "error_description": description}`, and,
/// for the log line of its request only, why it happened. The wire answer is Salesforce's,
/// deliberately vague ("authentication failure"); the cause says what was wrong.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    cause: Option<Box<Cause>>,
    /// The Login History record of a refused login of a known user.
    login: Option<Box<RefusedLogin>>,
}

/// Why a request failed: for the log line, and sent only by a server run with `--explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The request was refused: what was wrong with it.
    Refused(Cow<'static, str>),
    /// The store failed (which store is the server's to add).
    Store(String),
    /// A fault of this server: a bug, a key it could not use.
    Fault(Cow<'static, str>),
}

/// Two errors are the same answer when the client sees the same thing; the cause is not part
/// of the answer.
impl PartialEq for OAuthError {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.description == other.description
    }
}

impl Eq for OAuthError {}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

const fn e(code: ErrorCode, description: &'static str) -> OAuthError {
    OAuthError {
        code,
        description: Cow::Borrowed(description),
        cause: None,
        login: None,
    }
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            cause: None,
            login: None,
        }
    }

    /// The same answer, refused for this reason (for the log; on the wire only under
    /// `serve --explain`).
    pub fn because(mut self, why: impl Into<Cow<'static, str>>) -> Self {
        self.cause = Some(Box::new(Cause::Refused(why.into())));
        self
    }

    /// The same answer, for a login of `user` that Login History records as `status`.
    pub fn in_login_history(mut self, user: &User, status: LoginStatus) -> Self {
        self.login = Some(Box::new(RefusedLogin::new(user, status)));
        self
    }

    /// Names the app a refused login was made through, unless one is named already.
    pub fn through(mut self, app: &ConnectedApp) -> Self {
        if let Some(login) = self.login.as_mut()
            && login.app.is_none()
        {
            login.app = Some((app.id, app.name.clone()));
        }
        self
    }

    /// What Login History records of this refusal, if it refused a known user's login.
    pub fn refused_login(&self) -> Option<&RefusedLogin> {
        self.login.as_deref()
    }

    /// `server_error`, for a fault of this server.
    pub fn fault(why: impl Into<Cow<'static, str>>) -> Self {
        let mut e = OAuthError::server_error();
        e.cause = Some(Box::new(Cause::Fault(why.into())));
        e
    }

    /// `server_error`, for a store that failed.
    pub fn store_failure(why: impl fmt::Display) -> Self {
        let mut e = OAuthError::server_error();
        e.cause = Some(Box::new(Cause::Store(why.to_string())));
        e
    }

    /// Why it happened: the recorded cause, or, for a refusal nobody explained, its answer.
    pub fn cause(&self) -> Cause {
        match &self.cause {
            Some(cause) => (**cause).clone(),
            None if self.code == ErrorCode::ServerError => Cause::Fault(self.description.clone()),
            None => Cause::Refused(self.description.clone()),
        }
    }

    /// A device authorization request for an app without "Enable for Device Flow" (observed:
    /// forcedotcom/code-builder-feedback#263).
    pub fn device_flow_disabled() -> Self {
        e(
            ErrorCode::InvalidGrant,
            "device flow is not enabled for the app",
        )
    }
    pub fn unknown_client() -> Self {
        e(ErrorCode::InvalidClientId, "client identifier invalid")
    }
    pub fn bad_client_secret() -> Self {
        e(ErrorCode::InvalidClient, "invalid client credentials")
    }
    pub fn authentication_failure() -> Self {
        e(ErrorCode::InvalidGrant, "authentication failure")
    }
    /// Observed on Salesforce's authorize redirects for a blocked app; the token endpoint is
    /// assumed to answer the same (docs/salesforce-compatibility.md).
    pub fn app_blocked() -> Self {
        e(ErrorCode::OAuthAppBlocked, "this app is blocked by admin")
    }
    /// Salesforce's answer once a user has logged in more often than its login rate allows
    /// (n8n#31948, forcedotcom/cli#3297).
    pub fn login_rate_exceeded() -> Self {
        e(ErrorCode::InvalidGrant, "login rate exceeded")
    }
    /// A login from outside the profile's Login IP Ranges (forceworkbench#772, setup-sfdx#17).
    pub fn ip_restricted() -> Self {
        e(ErrorCode::InvalidGrant, "ip restricted")
    }
    /// A login outside the profile's Login Hours (inferred from the older combined "ip
    /// restricted or invalid login hours"; docs/salesforce-compatibility.md).
    pub fn outside_login_hours() -> Self {
        e(ErrorCode::InvalidGrant, "invalid login hours")
    }
    /// Token exchange for an app without "Enable Token Exchange Flow" (inferred: Salesforce
    /// documents no answer; worded as the device flow's; docs/salesforce-compatibility.md).
    pub fn token_exchange_disabled() -> Self {
        e(
            ErrorCode::InvalidGrant,
            "token exchange flow is not enabled for the app",
        )
    }
    /// A `subject_token_type` or `requested_token_type` that is not one of Salesforce's
    /// (inferred, RFC 8693 §2.2.2's code).
    pub fn unsupported_token_type_for_exchange(parameter: &str) -> Self {
        OAuthError::new(
            ErrorCode::InvalidRequest,
            format!("unsupported {parameter}"),
        )
    }
    /// A subject token the handler does not vouch for, or that names no user (inferred: an
    /// Apex handler's refusal answers its own message; the declared handlers have none).
    pub fn invalid_subject_token() -> Self {
        e(ErrorCode::InvalidGrant, "invalid subject token")
    }
    /// An actor token the asset token flow cannot read or trust (inferred).
    pub fn invalid_actor_token() -> Self {
        e(ErrorCode::InvalidGrant, "invalid actor token")
    }
    /// The asset token flow for an app without "Enable Asset Tokens" (inferred).
    pub fn asset_tokens_disabled() -> Self {
        e(
            ErrorCode::InvalidGrant,
            "asset tokens are not enabled for the app",
        )
    }
    pub fn inactive_user() -> Self {
        e(ErrorCode::InvalidGrant, "inactive user")
    }
    pub fn unsupported_grant_type() -> Self {
        e(ErrorCode::UnsupportedGrantType, "grant type not supported")
    }
    pub fn expired_token() -> Self {
        e(ErrorCode::InvalidGrant, "expired access/refresh token")
    }
    pub fn expired_code() -> Self {
        e(ErrorCode::InvalidGrant, "expired authorization code")
    }
    pub fn invalid_code() -> Self {
        e(ErrorCode::InvalidGrant, "invalid authorization code")
    }
    pub fn invalid_code_verifier() -> Self {
        e(ErrorCode::InvalidGrant, "invalid code verifier")
    }
    pub fn not_approved() -> Self {
        e(
            ErrorCode::InvalidGrant,
            "user hasn't approved this consumer",
        )
    }
    pub fn audience_invalid() -> Self {
        e(ErrorCode::InvalidGrant, "audience is invalid")
    }
    pub fn invalid_assertion() -> Self {
        e(ErrorCode::InvalidGrant, "invalid assertion")
    }
    pub fn not_admin_approved() -> Self {
        e(
            ErrorCode::InvalidAppAccess,
            "user is not admin approved to access this app",
        )
    }
    pub fn wrong_domain() -> Self {
        e(
            ErrorCode::InvalidGrant,
            "request not supported on this domain",
        )
    }
    pub fn no_run_as_user() -> Self {
        e(
            ErrorCode::InvalidGrant,
            "no client credentials user enabled",
        )
    }
    pub fn redirect_uri_mismatch() -> Self {
        e(
            ErrorCode::RedirectUriMismatch,
            "redirect_uri must match configuration",
        )
    }
    pub fn must_use_post() -> Self {
        e(ErrorCode::InvalidRequest, "must use HTTP POST")
    }
    pub fn missing(parameter: &str) -> Self {
        OAuthError::new(
            ErrorCode::InvalidRequest,
            format!("missing required parameter: {parameter}"),
        )
    }
    pub fn duplicated(parameter: &str) -> Self {
        OAuthError::new(
            ErrorCode::InvalidRequest,
            format!("duplicate parameter: {parameter}"),
        )
    }
    pub fn unknown_scope(scope: &str) -> Self {
        OAuthError::new(
            ErrorCode::InvalidScope,
            format!("the requested scope is not allowed: {scope}"),
        )
    }
    pub fn unsupported_token_type() -> Self {
        e(
            ErrorCode::UnsupportedTokenType,
            "this token type is not supported",
        )
    }
    /// Device flow (spec §3.8 names the codes; the wording is RFC 8628's, in Salesforce's
    /// lowercase style).
    pub fn authorization_pending() -> Self {
        e(ErrorCode::AuthorizationPending, "authorization pending")
    }
    pub fn slow_down() -> Self {
        e(ErrorCode::SlowDown, "polling too frequently; slow down")
    }
    pub fn expired_device_code() -> Self {
        e(ErrorCode::ExpiredToken, "expired device code")
    }
    pub fn invalid_device_code() -> Self {
        e(ErrorCode::InvalidGrant, "invalid device code")
    }
    pub fn device_denied() -> Self {
        e(ErrorCode::AccessDenied, "end-user denied authorization")
    }
    pub fn invalid_token() -> Self {
        e(ErrorCode::InvalidToken, "invalid token")
    }
    /// Too many logins are waiting for a password check (idforce's own answer: Salesforce
    /// documents none for this).
    pub fn overloaded() -> Self {
        e(
            ErrorCode::TemporarilyUnavailable,
            "too many logins in progress; retry shortly",
        )
        .because("the password-check queue is full")
    }
    pub fn server_error() -> Self {
        e(
            ErrorCode::ServerError,
            "the server could not complete the request; retry later",
        )
    }
}
