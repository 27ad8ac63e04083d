//! The requests of `shared/seeds` and of the reference Postman collection's Auth folder, as
//! written, with only the host replaced.

use serde_json::{Value, json};

use crate::helpers::*;

/// Seed 000: the Postman "JWT Bearer Token Flow" item, then its test script, which splits `id`
/// into org and user ids and calls the "ID Token" item on `instance_url`.
#[tokio::test]
async fn seed_000_jwt_bearer_postman_item_and_test_script() {
    let s = TestServer::start().await;
    let assertion = sign_jwt(
        &json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": "https://login.salesforce.com", "exp": now_secs() + 180 }),
    );
    let r = s
        .http
        .post(format!("{}{}/services/oauth2/token", s.url, ""))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type={}&assertion={assertion}",
            "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let json_data: Value = r.json().await.unwrap();
    for field in ["access_token", "scope", "instance_url", "id", "token_type"] {
        assert!(json_data[field].is_string(), "{field}");
    }
    // const id = jsonData.id.split('/'); _userId = id.pop(); _orgId = id.pop();
    let mut id: Vec<&str> = json_data["id"].as_str().unwrap().split('/').collect();
    let user_id = id.pop().unwrap();
    let org_id = id.pop().unwrap();
    assert!(user_id.starts_with("005") && org_id.starts_with("00D"));
    let endpoint = json_data["instance_url"].as_str().unwrap();
    let r = s
        .http
        .get(format!("{endpoint}/id/{org_id}/{user_id}"))
        .header("Content-Type", "application/json")
        .bearer_auth(json_data["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["username"], ALICE);
}

/// Seed 000 as Postman sends it with the collection's empty `assertion` variable.
#[tokio::test]
async fn seed_000_with_an_empty_assertion() {
    let s = TestServer::start().await;
    let (st, body) = s.jwt_login("").await;
    assert_error(st, &body, 400, "invalid_grant", "invalid assertion");
}

/// Runs curl off the async runtime (the server under test shares it).
async fn curl(args: &[&str]) -> (String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || curl_blocking(&args))
        .await
        .expect("curl ran")
}

fn curl_blocking(args: &[String]) -> (String, String) {
    let out = std::process::Command::new("curl")
        .arg("-sS")
        .args(args)
        .arg("-w")
        .arg("\n%{http_code}")
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (body.to_owned(), code.to_owned())
}

/// Seed 003: the forum thread's two curl commands, host replaced.
#[tokio::test]
async fn seed_003_forum_curl_commands() {
    let s = TestServer::start().await;
    let url = s.at("/services/oauth2/token");
    let (body, code) = curl(&[
        "-v",
        "-k",
        &url,
        "-d",
        "grant_type=password",
        "-d",
        &format!("client_id={INTEGRATION_ID}"),
        "-d",
        &format!("client_secret={INTEGRATION_SECRET}"),
        "-d",
        &format!("username={ALICE}"),
        "-d",
        &format!("password={ALICE_PASSWORD}"),
    ])
    .await;
    assert_eq!(code, "200", "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        token["access_token"].as_str().unwrap().len(),
        112,
        "\"about 110 characters\""
    );

    let (body, code) = curl(&[
        "-d", &format!("username={ALICE}&client_secret={INTEGRATION_SECRET}&password={ALICE_PASSWORD}&grant_type=password&client_id={INTEGRATION_ID}"),
        "-H", "Accept: application/json", &url,
    ]).await;
    assert_eq!(code, "200", "{body}");
    // "If you did something stupid (like I did when I didn't encode the URL properly)":
    // an unencoded `+` in the password becomes a space.
    let (body, code) = curl(&["-d", &format!("username={BOB}&client_secret={INTEGRATION_SECRET}&password=a+b&grant_type=password&client_id={INTEGRATION_ID}"), &url]).await;
    assert_eq!(code, "400");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error_description"],
        "authentication failure"
    );
    // "Now you can REST": instance_url is where API calls go.
    let (body, code) = curl(&[
        "-H",
        &format!(
            "Authorization: Bearer {}",
            token["access_token"].as_str().unwrap()
        ),
        &format!(
            "{}/services/data/v62.0/",
            token["instance_url"].as_str().unwrap()
        ),
    ])
    .await;
    assert_eq!(code, "200", "{body}");
}

/// Seed 004 / reference "OpenID Connect Token Introspection Endpoint".
#[tokio::test]
async fn seed_004_introspection_postman_item() {
    let s = TestServer::start().await;
    let token = s.alice_token().await;
    let r = s
        .http
        .post(s.at("/services/oauth2/introspect"))
        .header("Accept", "application/json")
        .form(&[
            ("token", token.as_str()),
            ("token_type_hint", "access_token"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "access_token");
}

/// Reference "OAuth Username Password" ({{password}}{{secretToken}}) and "Revoke Token".
#[tokio::test]
async fn reference_password_and_revoke_items() {
    let s = TestServer::start().await;
    let r = s
        .http
        .post(s.at("/services/oauth2/token"))
        .header("Accept", "application/json")
        .form(&[
            ("grant_type", "password"),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("username", BOB),
            ("password", &format!("{BOB_PASSWORD}{BOB_TOKEN}")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .http
        .post(s.at("/services/oauth2/revoke"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
