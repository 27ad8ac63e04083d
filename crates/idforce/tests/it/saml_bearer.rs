//! The SAML 2.0 bearer assertion flow over HTTP. Without the `saml-bearer` feature (the default
//! build) the grant is not supported; with it, an assertion the test signs with Debian's
//! `xmlsec1` tool logs the user in once, and a changed or replayed one is refused.

use crate::helpers::*;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:saml2-bearer";

#[cfg(not(feature = "saml-bearer"))]
#[tokio::test]
async fn without_the_feature_the_grant_is_not_supported() {
    use base64::Engine;
    let s = TestServer::start().await;
    let xml = "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"/>";
    let assertion = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(xml);
    let (st, e) = s
        .token(&[("grant_type", GRANT), ("assertion", &assertion)])
        .await;
    assert_error(
        st,
        &e,
        400,
        "unsupported_grant_type",
        "grant type not supported",
    );
    // Control: the same server serves JWT bearer.
    let jwt = sign_jwt(&serde_json::json!({
        "iss": INTEGRATION_ID, "sub": ALICE, "aud": s.url, "exp": now_secs() + 60,
    }));
    assert_eq!(s.jwt_login(&jwt).await.0, 200);
}

#[cfg(feature = "saml-bearer")]
mod with_xmlsec {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::Value;

    use super::*;

    fn rfc3339(secs: i64) -> String {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
        humantime::format_rfc3339_seconds(t).to_string()
    }

    /// An assertion as Salesforce's sample has it, signed by `xmlsec1 --sign` with the key of
    /// the Integration app's certificate.
    fn signed_assertion(dir: &std::path::Path, id: &str, name_id: &str, server: &str) -> String {
        signed_for(dir, id, name_id, server, server)
    }

    /// The same, for an audience and a recipient (token endpoint) of one's choosing.
    fn signed_for(
        dir: &std::path::Path,
        id: &str,
        name_id: &str,
        audience: &str,
        server: &str,
    ) -> String {
        let now = now_secs();
        let template = format!(
            r##"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" IssueInstant="{issued}" Version="2.0"><saml:Issuer>{INTEGRATION_ID}</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/></ds:Signature><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{until}" Recipient="{server}/services/oauth2/token"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{issued}" NotOnOrAfter="{until}"><saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions></saml:Assertion>"##,
            issued = rfc3339(now - 5),
            until = rfc3339(now + 300),
        );
        let path = dir.join(format!("{id}.xml"));
        std::fs::write(&path, template).unwrap();
        let out = std::process::Command::new("xmlsec1")
            .args(["--sign", "--privkey-pem"])
            .arg(fixture("jwt.key"))
            .args([
                "--id-attr:ID",
                "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                "--output",
                "-",
            ])
            .arg(&path)
            .output()
            .expect("xmlsec1 (Debian's xmlsec1 package) signs the test's assertions");
        assert!(
            out.status.success(),
            "xmlsec1: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    async fn present(s: &TestServer, xml: &str) -> (u16, Value) {
        s.token(&[
            ("grant_type", GRANT),
            ("assertion", &URL_SAFE_NO_PAD.encode(xml)),
        ])
        .await
    }

    #[tokio::test]
    async fn a_signed_assertion_logs_the_user_in_once() {
        let s = TestServer::start().await;
        let xml = signed_assertion(s.dir.path(), "_a1", ALICE, &s.url);
        let (st, r) = present(&s, &xml).await;
        assert_eq!(st, 200, "{r}");
        assert!(r.get("refresh_token").is_none(), "{r}");
        let me: Value = s
            .http
            .get(r["id"].as_str().unwrap())
            .bearer_auth(r["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["username"], ALICE);

        // Spent: the same assertion again is refused.
        let (st, e) = present(&s, &xml).await;
        assert_error(st, &e, 400, "invalid_grant", "invalid assertion");
        // Changed after signing: refused (a fresh ID, so that a replay is not the reason).
        let other =
            signed_assertion(s.dir.path(), "_a2", ALICE, &s.url).replace(ALICE, "bob@acme.test");
        let (st, e) = present(&s, &other).await;
        assert_error(st, &e, 400, "invalid_grant", "invalid assertion");
        // For another server's token endpoint, or another audience: refused.
        let elsewhere = signed_assertion(s.dir.path(), "_a3", ALICE, "https://elsewhere.example");
        let (st, e) = present(&s, &elsewhere).await;
        assert_error(st, &e, 400, "invalid_grant", "invalid assertion");
        let other_audience = signed_for(
            s.dir.path(),
            "_a5",
            ALICE,
            "https://elsewhere.example",
            &s.url,
        );
        let (st, e) = present(&s, &other_audience).await;
        assert_error(st, &e, 400, "invalid_grant", "invalid assertion");
        // Salesforce's audience is taken (as JWT bearer's is).
        let salesforce = signed_for(
            s.dir.path(),
            "_a6",
            ALICE,
            "https://login.salesforce.com",
            &s.url,
        );
        assert_eq!(present(&s, &salesforce).await.0, 200);
        // Control: a fresh assertion for this server still works.
        let fresh = signed_assertion(s.dir.path(), "_a4", ALICE, &s.url);
        assert_eq!(present(&s, &fresh).await.0, 200);
    }
}
