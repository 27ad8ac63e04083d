//! The identity URL (spec §8, §6.5) and the REST slice clients call after login (spec §6.6,
//! §11, §12.9, §12.11–12.12).

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn identity_url_with_bearer_or_oauth_token() {
    let s = TestServer::start().await;
    let login = s.password_login(ALICE, ALICE_PASSWORD).await;
    let (id, token) = (
        login["id"].as_str().unwrap(),
        login["access_token"].as_str().unwrap(),
    );
    let by_header: Value = s
        .http
        .get(id)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = s
        .http
        .get(format!("{id}?format=json&oauth_token={token}"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let by_query: Value = r.json().await.unwrap();
    assert_eq!(by_header, by_query);
    assert_eq!(by_header["id"], id);
    assert_eq!(by_header["username"], ALICE);
    assert_eq!(by_header["organization_id"], "00D000000000001EAA");
    assert_eq!(by_header["user_id"].as_str().unwrap().len(), 18);
    assert!(id.ends_with(by_header["user_id"].as_str().unwrap()));
    assert_eq!(by_header["display_name"], "Alice Example");
    assert_eq!(by_header["user_type"], "STANDARD");
    assert_eq!(by_header["active"], true);
    for field in [
        "asserted_user",
        "nick_name",
        "email",
        "email_verified",
        "first_name",
        "last_name",
        "timezone",
        "photos",
        "addr_city",
        "mobile_phone",
        "is_lightning_login_user",
        "status",
        "language",
        "locale",
        "utcOffset",
        "last_modified_date",
        "is_app_installed",
    ] {
        assert!(by_header.get(field).is_some(), "missing {field}");
    }
    let rest = by_header["urls"]["rest"].as_str().unwrap();
    assert_eq!(rest, format!("{}/services/data/v{{version}}/", s.url));
    assert!(
        by_header["urls"]["partner"]
            .as_str()
            .unwrap()
            .ends_with(ORG_ID_15)
    );

    let v: Value = s
        .http
        .get(format!("{id}?version=latest"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["urls"]["rest"], format!("{}/services/data/v62.0/", s.url));
    let xml = s
        .http
        .get(format!("{id}?format=xml"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        xml.contains("<username>alice@acme.test</username>"),
        "{xml}"
    );
    let xml = s
        .http
        .get(id)
        .header("accept", "application/xml")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(xml.starts_with("<?xml"));
    // The 18-character ids are case-insensitive.
    let r = s
        .http
        .get(id.to_lowercase())
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn identity_url_errors_are_one_word() {
    let s = TestServer::start().await;
    let login = s.password_login(ALICE, ALICE_PASSWORD).await;
    let (id, token) = (
        login["id"].as_str().unwrap(),
        login["access_token"].as_str().unwrap(),
    );
    let check = |status: u16, word: &'static str| {
        move |r: reqwest::Response| async move {
            assert_eq!(r.status().as_u16(), status);
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
            assert_eq!(r.text().await.unwrap(), word);
        }
    };
    check(403, "Bad_OAuth_Token")(s.http.get(id).send().await.unwrap()).await;
    check(403, "Bad_OAuth_Token")(
        s.http
            .get(id)
            .bearer_auth("00D000000000001!AQnope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    check(403, "Bad_OAuth_Token")(
        s.http
            .get(id)
            .bearer_auth(tamper(token))
            .send()
            .await
            .unwrap(),
    )
    .await;

    // Another user's identity.
    let bob = admin(&database_url(s.dir.path()), &["user", "show", BOB]);
    let bob_url = format!(
        "{}/id/00D000000000001EAA/{}",
        s.url,
        bob["id"].as_str().unwrap()
    );
    check(403, "No_Access")(
        s.http
            .get(&bob_url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let other_org = id.replace("00D000000000001EAA", "00D8d0000000002EAA");
    check(403, "Wrong_Org")(
        s.http
            .get(&other_org)
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    check(404, "Bad_Id")(
        s.http
            .get(s.at("/id/nonsense/005"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    check(406, "Invalid_Version")(
        s.http
            .get(format!("{id}?version=abc"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn rest_versions_resources_and_records() {
    let s = TestServer::start().await;
    let login = s.password_login(ALICE, ALICE_PASSWORD).await;
    let token = login["access_token"].as_str().unwrap();
    let user_id = login["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    let versions: Value = s
        .http
        .get(s.at("/services/data"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = versions.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["version"], "62.0");
    assert_eq!(last["url"], "/services/data/v62.0");

    let res: Value = s
        .http
        .get(s.at("/services/data/v62.0/"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["identity"], login["id"]);
    assert_eq!(res["sobjects"], "/services/data/v62.0/sobjects");

    let me: Value = s
        .http
        .get(s.at(&format!("/services/data/v51.0/sobjects/User/{user_id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["Id"], user_id.as_str());
    assert_eq!(me["Username"], ALICE);
    assert_eq!(me["Name"], "Alice Example");
    assert_eq!(me["IsActive"], true);
    assert_eq!(me["attributes"]["type"], "User");

    let org: Value = s
        .http
        .get(s.at("/services/data/v62.0/sobjects/Organization/00D000000000001"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (org["Id"].as_str(), org["Name"].as_str()),
        (Some("00D000000000001EAA"), Some("Acme"))
    );

    let pretty = s
        .http
        .get(s.at("/services/data/v62.0/"))
        .bearer_auth(token)
        .header("X-PrettyPrint", "1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pretty.contains("\n  \""), "{pretty}");
}

#[tokio::test]
async fn rest_errors() {
    let s = TestServer::start().await;
    let token = s.alice_token().await;
    let expired = serde_json::json!([{ "message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID" }]);
    for auth in [
        None,
        Some("Bearer nope".to_owned()),
        Some(format!("Bearer {}", tamper(&token))),
    ] {
        let mut req = s.http.get(s.at("/services/data/v62.0/"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.json::<Value>().await.unwrap(), expired);
    }
    let r = s
        .http
        .get(s.at("/services/data/v62.0/"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()[0]["errorCode"],
        "INVALID_AUTH_HEADER"
    );

    // Another org's records and unknown resources are not found.
    for path in [
        "/services/data/v62.0/sobjects/User/005000000000000",
        "/services/data/v62.0/sobjects/Organization/00D8d0000000002",
        "/services/data/v62.0/sobjects/Account/001000000000000",
        "/services/data/v62.0/query",
        "/services/data/vX/",
    ] {
        let r = s
            .http
            .get(s.at(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(
            r.json::<Value>().await.unwrap()[0]["errorCode"],
            "NOT_FOUND"
        );
    }

    // A session without the api scope may not use the REST API.
    let (st, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", AUDITOR_ID),
            ("client_secret", AUDITOR_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_eq!(st, 200, "{body}");
    let r = s
        .http
        .get(s.at("/services/data/v62.0/"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()[0]["message"],
        "This session is not valid for use with the REST API"
    );
}
