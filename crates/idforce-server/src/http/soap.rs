//! SOAP login (spec §12.17): `POST /services/Soap/u/NN.0` with the partner API's `login`
//! envelope, answered with `loginResponse` or a SOAP fault. It is how jsforce without a client
//! secret and simple-salesforce with a security token log in. The checks are the password
//! grant's (`grant::check_api_login`); the session is an access token like any other, owned by
//! the org's built-in "SOAP API" app.

use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use idforce_core::grant;
use idforce_core::login_history::LoginSubtype;
use idforce_core::model::{ConnectedApp, Org, User};
use idforce_core::ports::StoreError;
use idforce_core::scope::Scopes;
use idforce_core::sfid::prefix;
use idforce_core::{ErrorCode, OAuthError};
use quick_xml::events::Event;

use super::request::MAX_BODY;
use crate::state::AppState;

const ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Salesforce's words for every credential failure, locked users included.
const INVALID_LOGIN: &str = "Invalid username, password, security token; or user locked out.";
/// Salesforce's words for a call without a live session.
const INVALID_SESSION: &str = "Invalid Session ID found in SessionHeader: Illegal Session";
/// The name of each org's built-in app that owns SOAP sessions.
pub const SOAP_APP_NAME: &str = "SOAP API";

/// What a request body asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Call {
    Login {
        username: String,
        password: String,
    },
    /// `logout`, with the `SessionHeader`'s session id if there was one.
    Logout {
        session_id: Option<String>,
    },
    /// Any other operation of the partner API (not served here).
    Other(String),
}

/// A SOAP fault: `faultcode`, `faultstring`, and for login failures the `LoginFault` detail.
#[derive(Debug, PartialEq, Eq)]
pub struct Fault {
    code: String,
    message: String,
    login_fault: Option<&'static str>,
    /// An `UnexpectedErrorFault` detail's exception code (its message is the faultstring's
    /// after the code).
    unexpected: Option<&'static str>,
    /// idforce's reason, for `serve --explain`.
    reason: Option<super::report::Reason>,
}

impl Fault {
    fn client(message: impl Into<String>) -> Fault {
        Fault {
            code: "soapenv:Client".into(),
            message: message.into(),
            login_fault: None,
            unexpected: None,
            reason: None,
        }
    }

    fn invalid_login() -> Fault {
        Fault {
            code: "sf:INVALID_LOGIN".into(),
            message: format!("INVALID_LOGIN: {INVALID_LOGIN}"),
            login_fault: Some("INVALID_LOGIN"),
            unexpected: None,
            reason: None,
        }
    }

    /// A refused login of this `LoginFault` exception code, with its message.
    fn login(code: &'static str, message: &str) -> Fault {
        Fault {
            code: format!("sf:{code}"),
            message: format!("{code}: {message}"),
            login_fault: Some(code),
            unexpected: None,
            reason: None,
        }
    }

    /// A call whose `SessionHeader` names no live session.
    fn invalid_session(reason: &str) -> Fault {
        Fault {
            code: "sf:INVALID_SESSION_ID".into(),
            message: format!("INVALID_SESSION_ID: {INVALID_SESSION}"),
            login_fault: None,
            unexpected: Some("INVALID_SESSION_ID"),
            reason: Some(super::report::Reason::new(reason.to_owned())),
        }
    }

    fn server(message: &str) -> Fault {
        Fault {
            code: "soapenv:Server".into(),
            message: message.into(),
            login_fault: None,
            unexpected: None,
            reason: None,
        }
    }
}

/// Reads a SOAP 1.1 envelope: the first element of its body is the call.
pub fn parse(body: &str) -> Result<Call, Fault> {
    let malformed =
        |e: &dyn std::fmt::Display| Fault::client(format!("Unable to parse the request: {e}"));
    let mut reader = quick_xml::Reader::from_str(body);
    // Element local names from the root down to the current element.
    let mut path: Vec<String> = Vec::new();
    let mut operation: Option<String> = None;
    let (mut username, mut password) = (None::<String>, None::<String>);
    let mut session_id = None::<String>;
    let mut text = String::new();
    loop {
        let event = reader.read_event().map_err(|e| malformed(&e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.local_name().as_ref().to_owned();
                if path.is_empty() && name != "Envelope" {
                    return Err(Fault::client("The request is not a SOAP envelope"));
                }
                if path.len() == 2 && path[1] == "Body" && operation.is_none() {
                    operation = Some(name.clone());
                }
                // An empty element has no text and no end of its own.
                if matches!(event, Event::Start(_)) {
                    path.push(name);
                    text.clear();
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(c) => text.push_str(&c.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| malformed(&e))? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r)
                        .ok_or_else(|| Fault::client(format!("Unknown entity &{};", &*r)))?
                        .to_owned(),
                };
                text.push_str(&resolved);
            }
            Event::End(_) => {
                // The session of any call: Envelope/Header/SessionHeader/sessionId.
                if path.len() == 4
                    && path[1] == "Header"
                    && path[2] == "SessionHeader"
                    && path[3] == "sessionId"
                {
                    session_id = Some(std::mem::take(&mut text).trim().to_owned());
                }
                // Arguments are the children of the call: Envelope/Body/login/username.
                if path.len() == 4 && operation.as_deref() == Some("login") {
                    match path[3].as_str() {
                        "username" => username = Some(std::mem::take(&mut text)),
                        "password" => password = Some(std::mem::take(&mut text)),
                        _ => {}
                    }
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match operation.as_deref() {
        Some("login") => Ok(Call::Login {
            username: username.unwrap_or_default().trim().to_owned(),
            password: password.unwrap_or_default(),
        }),
        Some("logout") => Ok(Call::Logout { session_id }),
        Some(other) => Ok(Call::Other(other.to_owned())),
        None => Err(Fault::client("The SOAP envelope has no body")),
    }
}

/// `POST /services/Soap/u/{version}`.
pub async fn partner(
    State(s): State<AppState>,
    Path(version): Path<String>,
    req: Request,
) -> Response {
    let Some(version) = api_version(&version) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let (parts, body) = req.into_parts();
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return fault(&Fault::client(
                "The request body is too large or unreadable",
            ));
        }
    };
    let call = match std::str::from_utf8(&body) {
        Ok(text) => parse(text),
        Err(_) => Err(Fault::client("The request is not UTF-8")),
    };
    match call {
        Ok(Call::Login { username, password }) => {
            let peer = parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0);
            let entry = parts
                .extensions
                .get::<super::Through>()
                .map(|t| t.0.as_ref());
            match login(&s, &parts.headers, peer, entry, &username, &password).await {
                Ok(answer) => xml(StatusCode::OK, &answer.render(&version)),
                Err(f) => fault(&f),
            }
        }
        Ok(Call::Logout { session_id }) => match logout(&s, session_id.as_deref()).await {
            Ok(()) => xml(
                StatusCode::OK,
                &format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soapenv:Envelope xmlns:soapenv=\"{ENVELOPE_NS}\" xmlns=\"urn:partner.soap.sforce.com\">\
<soapenv:Body><logoutResponse/></soapenv:Body></soapenv:Envelope>"
                ),
            ),
            Err(f) => fault(&f),
        },
        Ok(Call::Other(op)) => fault(&Fault::client(format!(
            "No operation available for request {{urn:partner.soap.sforce.com}}{op}, please check the WSDL for the service."
        ))),
        Err(f) => fault(&f),
    }
}

/// `logout`: ends the session the `SessionHeader` names, as revoking its access token does.
async fn logout(s: &AppState, session_id: Option<&str>) -> Result<(), Fault> {
    let Some(token) = session_id.filter(|t| !t.is_empty()) else {
        return Err(Fault::invalid_session("no SessionHeader with a sessionId"));
    };
    let now = s.clock.now();
    match idforce_core::revoke::revoke(s.store.as_ref(), &s.hasher, token, now).await {
        Ok(()) => Ok(()),
        Err(e) if e.code == idforce_core::ErrorCode::ServerError => Err(Fault::server(
            "The service is unavailable; try again shortly.",
        )),
        Err(_) => Err(Fault::invalid_session(
            "the SessionHeader names no live session",
        )),
    }
}

/// `62.0`, and `62` for `62.0`.
fn api_version(v: &str) -> Option<String> {
    let (major, minor) = v.split_once('.').unwrap_or((v, "0"));
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    (digits(major) && digits(minor)).then(|| format!("{major}.{minor}"))
}

struct LoginAnswer {
    session_id: String,
    instance_url: String,
    org: Arc<Org>,
    user: Arc<User>,
    session_seconds: i64,
}

async fn login(
    s: &AppState,
    headers: &axum::http::HeaderMap,
    peer: Option<std::net::SocketAddr>,
    entry: Option<&idforce_core::hosts::Entry>,
    username: &str,
    password: &str,
) -> Result<LoginAnswer, Fault> {
    let ring = s.keys.current(s.clock.now()).await;
    let ctx = s.token_context(headers, peer, &ring, entry);
    let checked = match grant::check_api_login(&ctx, username, password).await {
        // SOAP sessions belong to the org's built-in app, which relaxes nothing.
        Ok(user) => grant::admit_login(&ctx, &user, None, idforce_core::login_policy::Entry::Login)
            .await
            .map(|()| user),
        Err(e) => Err(e),
    };
    let user = match checked {
        Ok(user) => user,
        Err(e) => {
            super::report::record_refusal(s, &ctx, &e, LoginSubtype::SoapApiLogin).await;
            let reported = super::report::failure("SOAP login", &e, &s.database);
            return Err(Fault {
                reason: Some(reported.0),
                ..login_fault(e)
            });
        }
    };
    let unavailable = || Fault::server("The service is unavailable; try again shortly.");
    let org = s
        .store
        .org(&user.org_id)
        .await
        .ok()
        .flatten()
        .ok_or_else(unavailable)?;
    let app = soap_app(s, &org).await.map_err(|_| unavailable())?;
    let session_id = grant::start_session(&ctx, &org, &user, &app, app.scopes.clone())
        .await
        .map_err(|_| unavailable())?;
    tracing::info!(user = %user.id, "SOAP login");
    Ok(LoginAnswer {
        session_id,
        instance_url: s.settings.instance_url(&org),
        org,
        user,
        session_seconds: app.session_timeout_secs,
    })
}

fn login_fault(e: OAuthError) -> Fault {
    match e.code {
        ErrorCode::ServerError => Fault::server("The service is unavailable; try again shortly."),
        ErrorCode::TemporarilyUnavailable => Fault {
            code: "sf:SERVER_UNAVAILABLE".into(),
            message: "SERVER_UNAVAILABLE: too many logins in progress; retry shortly".into(),
            login_fault: None,
            unexpected: None,
            reason: None,
        },
        _ if e == OAuthError::ip_restricted() => Fault::login(
            "LOGIN_DURING_RESTRICTED_DOMAIN",
            "you are not allowed to log in from this IP address",
        ),
        _ if e == OAuthError::outside_login_hours() => Fault::login(
            "LOGIN_DURING_RESTRICTED_TIME",
            "you are not allowed to log in at this time",
        ),
        _ if e == OAuthError::login_rate_exceeded() => {
            Fault::login("LOGIN_RATE_EXCEEDED", "login rate exceeded")
        }
        // Wrong password or token, unknown or inactive user, locked out: one answer.
        _ => Fault::invalid_login(),
    }
}

/// The org's built-in app that owns SOAP sessions, made on first use.
async fn soap_app(s: &AppState, org: &Org) -> Result<Arc<ConnectedApp>, StoreError> {
    let client_id = format!(
        "{}{}",
        idforce_core::model::BUILTIN_SOAP_APP_PREFIX,
        org.id.as15()
    );
    if let Some(app) = s.store.app_by_client_id(&client_id).await? {
        return Ok(app);
    }
    // A SOAP session is a full session of the user, as in Salesforce.
    let scopes = Scopes::parse("api web full").map_err(|e| StoreError::Invalid(e.to_string()))?;
    let app = ConnectedApp::new(
        s.store.next_id(prefix::CONNECTED_APP).await?,
        org.id,
        SOAP_APP_NAME.into(),
        client_id.clone(),
        scopes,
    );
    match s.store.save_app(&app).await {
        Ok(()) => Ok(Arc::new(app)),
        // Another request made it first.
        Err(StoreError::Conflict(_)) => s
            .store
            .app_by_client_id(&client_id)
            .await?
            .ok_or_else(|| StoreError::NotFound("SOAP API app".into())),
        Err(e) => Err(e),
    }
}

/// Escapes text for XML element content.
fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

impl LoginAnswer {
    fn render(&self, version: &str) -> String {
        let org15 = self.org.id.as15();
        let base = self.instance_url.trim_end_matches('/');
        let user = &self.user;
        let nil = |name: &str| format!("<{name} xsi:nil=\"true\"/>");
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soapenv:Envelope xmlns:soapenv=\"{ENVELOPE_NS}\" xmlns=\"urn:partner.soap.sforce.com\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
<soapenv:Body><loginResponse><result>\
<metadataServerUrl>{base}/services/Soap/m/{version}/{org15}</metadataServerUrl>\
<passwordExpired>false</passwordExpired>\
<sandbox>false</sandbox>\
<serverUrl>{base}/services/Soap/u/{version}/{org15}</serverUrl>\
<sessionId>{session}</sessionId>\
<userId>{user_id}</userId>\
<userInfo>\
<accessibilityMode>false</accessibilityMode>\
<chatterExternal>false</chatterExternal>\
<currencySymbol>$</currencySymbol>\
<orgAttachmentFileSizeLimit>26214400</orgAttachmentFileSizeLimit>\
<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>\
<orgDefaultCurrencyLocale>en_US</orgDefaultCurrencyLocale>\
<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>\
<orgHasPersonAccounts>false</orgHasPersonAccounts>\
<organizationId>{org18}</organizationId>\
<organizationMultiCurrency>false</organizationMultiCurrency>\
<organizationName>{org_name}</organizationName>\
{profile}{role}\
<sessionSecondsValid>{seconds}</sessionSecondsValid>\
{currency}\
<userEmail>{email}</userEmail>\
<userFullName>{full_name}</userFullName>\
<userId>{user_id}</userId>\
<userLanguage>en_US</userLanguage>\
<userLocale>en_US</userLocale>\
<userName>{username}</userName>\
<userTimeZone>GMT</userTimeZone>\
<userType>Standard</userType>\
<userUiSkin>Theme3</userUiSkin>\
</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>",
            base = esc(base),
            session = esc(&self.session_id),
            user_id = user.id.to18(),
            org18 = self.org.id.to18(),
            org_name = esc(&self.org.name),
            profile = nil("profileId"),
            role = nil("roleId"),
            seconds = self.session_seconds,
            currency = nil("userDefaultCurrencyIsoCode"),
            email = esc(&user.email),
            full_name = esc(&user.display_name()),
            username = esc(&user.username),
        )
    }
}

fn xml(status: StatusCode, body: &str) -> Response {
    let mut r = (status, body.to_owned()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

/// Faults travel with HTTP 500, as SOAP 1.1 and Salesforce do.
fn fault(f: &Fault) -> Response {
    let detail = match (f.login_fault, f.unexpected) {
        (Some(code), _) => format!(
            "<detail><sf:LoginFault xsi:type=\"sf:LoginFault\">\
<sf:exceptionCode>{code}</sf:exceptionCode>\
<sf:exceptionMessage>{}</sf:exceptionMessage>\
</sf:LoginFault></detail>",
            esc(INVALID_LOGIN)
        ),
        (None, Some(code)) => format!(
            "<detail><sf:UnexpectedErrorFault xsi:type=\"sf:UnexpectedErrorFault\">\
<sf:exceptionCode>{code}</sf:exceptionCode>\
<sf:exceptionMessage>{}</sf:exceptionMessage>\
</sf:UnexpectedErrorFault></detail>",
            esc(INVALID_SESSION)
        ),
        (None, None) => String::new(),
    };
    let r = xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soapenv:Envelope xmlns:soapenv=\"{ENVELOPE_NS}\" xmlns:sf=\"urn:fault.partner.soap.sforce.com\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
<soapenv:Body><soapenv:Fault><faultcode>{code}</faultcode><faultstring>{message}</faultstring>{detail}</soapenv:Fault></soapenv:Body></soapenv:Envelope>",
            code = esc(&f.code),
            message = esc(&f.message),
        ),
    );
    match &f.reason {
        Some(reason) => reason.clone().attach(r),
        None => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(username: &str, password: &str) -> Result<Call, Fault> {
        Ok(Call::Login {
            username: username.into(),
            password: password.into(),
        })
    }

    #[test]
    fn reads_the_session_header_of_a_logout() {
        let body = r#"<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">
<env:Header><SessionHeader xmlns="urn:partner.soap.sforce.com"><sessionId> 00Dx!AQ </sessionId></SessionHeader></env:Header>
<env:Body><n1:logout xmlns:n1="urn:partner.soap.sforce.com"/></env:Body></env:Envelope>"#;
        assert_eq!(
            parse(body),
            Ok(Call::Logout {
                session_id: Some("00Dx!AQ".into())
            })
        );
        let bare = r#"<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body><logout/></env:Body></env:Envelope>"#;
        assert_eq!(parse(bare), Ok(Call::Logout { session_id: None }));
    }

    #[test]
    fn reads_the_postman_envelope_with_cdata() {
        let body = r#"<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">
  <env:Body>
    <n1:login xmlns:n1="urn:partner.soap.sforce.com">
      <n1:username><![CDATA[alice@acme.test]]></n1:username>
      <n1:password><![CDATA[Winter2026!<&>TOKEN]]></n1:password>
    </n1:login>
  </env:Body>
</env:Envelope>"#;
        assert_eq!(parse(body), login("alice@acme.test", "Winter2026!<&>TOKEN"));
    }

    #[test]
    fn reads_simple_salesforce_and_jsforce_envelopes_with_entities() {
        // simple-salesforce: a CallOptions header, escaped text.
        let ss = r#"<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">
<env:Header><urn:CallOptions><urn:client>RestForce</urn:client><urn:defaultNamespace>sf</urn:defaultNamespace></urn:CallOptions></env:Header>
<env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>bob@acme.test</n1:username>
<n1:password>a&amp;b&lt;c&#62;&#x21;TOKEN</n1:password></n1:login></env:Body></env:Envelope>"#;
        assert_eq!(parse(ss), login("bob@acme.test", "a&b<c>!TOKEN"));
        // jsforce: default namespace, no prefix on the call.
        let js = r#"<se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Header/><se:Body><login xmlns="urn:partner.soap.sforce.com"><username>u@x</username><password>p w</password></login></se:Body></se:Envelope>"#;
        assert_eq!(parse(js), login("u@x", "p w"));
    }

    #[test]
    fn other_calls_and_broken_envelopes() {
        let query = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><query/></s:Body></s:Envelope>"#;
        assert_eq!(parse(query), Ok(Call::Other("query".into())));
        assert!(matches!(parse("<a><b></a>"), Err(f) if f.code == "soapenv:Client"));
        assert!(matches!(parse("<html/>"), Err(f) if f.code == "soapenv:Client"));
        assert!(matches!(parse(""), Err(f) if f.code == "soapenv:Client"));
        let entity = r#"<s:Envelope xmlns:s="x"><s:Body><login><username>&bogus;</username></login></s:Body></s:Envelope>"#;
        assert!(matches!(parse(entity), Err(f) if f.code == "soapenv:Client"));
    }

    #[test]
    fn versions() {
        assert_eq!(api_version("62.0").as_deref(), Some("62.0"));
        assert_eq!(api_version("50").as_deref(), Some("50.0"));
        for bad in ["", "v62.0", "62.x", "1234.0", "../x"] {
            assert_eq!(api_version(bad), None, "{bad}");
        }
    }
}
