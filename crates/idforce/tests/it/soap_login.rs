//! SOAP login over HTTP (spec §12.17): the Postman collection's envelope, security tokens,
//! lockout, faults, and the session it returns used like any access token.

use serde_json::Value;

use crate::helpers::*;

/// The Auth folder's "SOAP Login" request, as Postman sends it.
pub fn postman_envelope(username: &str, password: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">
  <env:Body>
    <n1:login xmlns:n1="urn:partner.soap.sforce.com">
      <n1:username><![CDATA[{username}]]></n1:username>
      <n1:password><![CDATA[{password}]]></n1:password>
    </n1:login>
  </env:Body>
</env:Envelope>"#
    )
}

pub async fn soap(s: &TestServer, path: &str, body: String) -> (u16, String) {
    let r = client()
        .post(s.at(path))
        .header("Content-Type", "text/xml")
        .header("SOAPAction", "login")
        .header("charset", "UTF-8")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    let text = r.text().await.unwrap();
    if status != 404 {
        assert_eq!(ct, "text/xml; charset=utf-8", "{text}");
    }
    (status, text)
}

fn assert_invalid_login(status: u16, body: &str) {
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        element(body, "faultcode").as_deref(),
        Some("sf:INVALID_LOGIN"),
        "{body}"
    );
    assert_eq!(
        element(body, "faultstring").as_deref(),
        Some("INVALID_LOGIN: Invalid username, password, security token; or user locked out."),
    );
    assert_eq!(
        element(body, "sf:exceptionCode").as_deref(),
        Some("INVALID_LOGIN")
    );
    assert_eq!(
        element(body, "sf:exceptionMessage").as_deref(),
        Some("Invalid username, password, security token; or user locked out.")
    );
}

#[tokio::test]
async fn postman_soap_login_and_the_session_it_returns() {
    let s = TestServer::start().await;
    let (st, body) = soap(
        &s,
        "/services/Soap/u/62.0",
        postman_envelope(ALICE, ALICE_PASSWORD),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("<loginResponse><result>"), "{body}");
    assert_eq!(
        element(&body, "serverUrl").unwrap(),
        format!("{}/services/Soap/u/62.0/{ORG_ID_15}", s.url)
    );
    assert_eq!(
        element(&body, "metadataServerUrl").unwrap(),
        format!("{}/services/Soap/m/62.0/{ORG_ID_15}", s.url)
    );
    assert_eq!(
        element(&body, "organizationId").unwrap(),
        "00D000000000001EAA"
    );
    assert_eq!(element(&body, "userName").unwrap(), ALICE);
    assert_eq!(element(&body, "userFullName").unwrap(), "Alice Example");
    assert_eq!(element(&body, "organizationName").unwrap(), "Acme");
    assert_eq!(element(&body, "sessionSecondsValid").unwrap(), "7200");
    assert_eq!(element(&body, "passwordExpired").unwrap(), "false");
    let user_id = element(&body, "userId").unwrap();
    assert_eq!(user_id.len(), 18);
    // The session id has the access token's shape (spec §5) and works as one.
    let session = element(&body, "sessionId").unwrap();
    assert!(session.starts_with(&format!("{ORG_ID_15}!A")), "{session}");
    let r = client()
        .get(s.at("/services/oauth2/userinfo"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["user_id"], user_id.as_str());
    let r = client()
        .get(s.at("/services/data/v62.0/"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the REST API accepts a SOAP session");
    // Revocation ends it, as it ends any session.
    let r = s
        .post_form("/services/oauth2/revoke", &[("token", session.as_str())])
        .await;
    assert_eq!(r.status(), 200);
    let r = client()
        .get(s.at("/services/oauth2/userinfo"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Versions: `50.0`, and a bare `50`.
    let (st, body) = soap(
        &s,
        "/services/Soap/u/50",
        postman_envelope(ALICE, ALICE_PASSWORD),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(
        element(&body, "serverUrl")
            .unwrap()
            .contains("/Soap/u/50.0/")
    );
    // The org's built-in app is made once.
    let (st, _) = soap(
        &s,
        "/services/Soap/u/62.0",
        postman_envelope(ALICE, ALICE_PASSWORD),
    )
    .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn soap_login_needs_the_security_token_and_counts_failures() {
    let s = TestServer::start().await;
    let path = "/services/Soap/u/62.0";
    // Bob has a security token: the password alone is not enough.
    let (st, body) = soap(&s, path, postman_envelope(BOB, BOB_PASSWORD)).await;
    assert_invalid_login(st, &body);
    let (st, body) = soap(
        &s,
        path,
        postman_envelope(BOB, &format!("{BOB_PASSWORD}{BOB_TOKEN}")),
    )
    .await;
    assert_eq!(st, 200, "{body}");

    // Unknown and inactive users get the same answer.
    let (st, body) = soap(&s, path, postman_envelope("nobody@acme.test", "x")).await;
    assert_invalid_login(st, &body);
    let (st, body) = soap(&s, path, postman_envelope("carol@acme.test", "Autumn2026!")).await;
    assert_invalid_login(st, &body);

    // Three failures lock Alice out (the test config's lockout), for SOAP and OAuth alike.
    for _ in 0..3 {
        let (st, body) = soap(&s, path, postman_envelope(ALICE, "wrong")).await;
        assert_invalid_login(st, &body);
    }
    let (st, body) = soap(&s, path, postman_envelope(ALICE, ALICE_PASSWORD)).await;
    assert_invalid_login(st, &body);
    let (st, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_error(st, &body, 400, "invalid_grant", "authentication failure");
}

#[tokio::test]
async fn soap_faults_for_what_is_not_a_login() {
    let s = TestServer::start().await;
    let path = "/services/Soap/u/62.0";
    for body in ["", "not xml at all <", "<html><body/></html>", "<a><b></a>"] {
        let (st, text) = soap(&s, path, body.to_owned()).await;
        assert_eq!(st, 500, "{body}: {text}");
        assert_eq!(
            element(&text, "faultcode").as_deref(),
            Some("soapenv:Client"),
            "{text}"
        );
    }
    let query = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><query xmlns="urn:partner.soap.sforce.com"><queryString>SELECT Id FROM Account</queryString></query></s:Body></s:Envelope>"#;
    let (st, text) = soap(&s, path, query.to_owned()).await;
    assert_eq!(st, 500);
    assert_eq!(
        element(&text, "faultstring").as_deref(),
        Some(
            "No operation available for request {urn:partner.soap.sforce.com}query, please check the WSDL for the service."
        )
    );
    let (st, _) = soap(
        &s,
        "/services/Soap/u/latest",
        postman_envelope(ALICE, ALICE_PASSWORD),
    )
    .await;
    assert_eq!(st, 404);
    let r = client().get(s.at(path)).send().await.unwrap();
    assert_eq!(r.status(), 405);
}
