//! How requests reach the token endpoint (spec §2, §12.1–12.3) and what malformed ones get.

use serde_json::Value;

use crate::helpers::*;

fn password_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("grant_type", "password"),
        ("client_id", INTEGRATION_ID),
        ("client_secret", INTEGRATION_SECRET),
        ("username", ALICE),
        ("password", ALICE_PASSWORD),
    ]
}

fn encoded(form: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded_encode(form);
    s.shrink_to_fit();
    s
}

fn form_urlencoded_encode(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn content_types_real_clients_send() {
    let s = TestServer::start().await;
    let url = s.at("/services/oauth2/token");
    let body = encoded(&password_form());
    for ct in [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded;charset=UTF-8",
        "application/x-www-form-urlencoded; charset=utf-8",
    ] {
        let r = s
            .http
            .post(&url)
            .header("content-type", ct)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{ct}");
    }
    // Chunked, no Content-Length (jsforce, sf).
    let mut chunked = String::new();
    for c in body.as_bytes().chunks(7) {
        chunked.push_str(&format!(
            "{:x}\r\n{}\r\n",
            c.len(),
            String::from_utf8_lossy(c)
        ));
    }
    chunked.push_str("0\r\n\r\n");
    let request = format!(
        "POST /services/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunked}"
    );
    let answer = raw_http(&s.url, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"access_token\":\"00D"), "{answer}");
    // Multipart (a Postman item).
    let mut mp = reqwest::multipart::Form::new();
    for (k, v) in password_form() {
        mp = mp.text(k, v);
    }
    let r = s.http.post(&url).multipart(mp).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Parameters in the query string of a POST.
    let r = s.http.post(format!("{url}?{body}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn response_formats() {
    let s = TestServer::start().await;
    let url = s.at("/services/oauth2/token");
    let mut form = password_form();
    form.push(("format", "urlencoded"));
    let r = s.http.post(&url).form(&form).send().await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with("access_token=00D") && text.contains("&token_type=Bearer"),
        "{text}"
    );

    let r = s
        .http
        .post(&url)
        .header("accept", "application/xml")
        .form(&password_form())
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains("<OAuth><access_token>00D")
            && text.contains("<token_type>Bearer</token_type>"),
        "{text}"
    );

    let r = s
        .http
        .post(&url)
        .header("accept", "text/html, application/json")
        .form(&password_form())
        .send()
        .await
        .unwrap();
    assert!(r.json::<Value>().await.unwrap()["access_token"].is_string());

    // Errors follow the same format.
    let r = s
        .http
        .post(&url)
        .form(&[("grant_type", "bogus"), ("format", "urlencoded")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        "error=unsupported_grant_type&error_description=grant+type+not+supported"
    );
}

#[tokio::test]
async fn unsupported_grants_and_bodies() {
    let s = TestServer::start().await;
    let url = s.at("/services/oauth2/token");
    let expect = |st: u16, b: &Value| {
        assert_error(
            st,
            b,
            400,
            "unsupported_grant_type",
            "grant type not supported",
        )
    };

    let (st, b) = s.token(&[("grant_type", "bogus")]).await;
    expect(st, &b);
    let (st, b) = s.token(&[("client_id", INTEGRATION_ID)]).await;
    expect(st, &b);
    let (st, b) = s.token(&[]).await;
    expect(st, &b);

    // A JSON body is not a form.
    let r = s
        .http
        .post(&url)
        .json(&serde_json::json!({"grant_type": "password", "client_id": INTEGRATION_ID}))
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    expect(st, &r.json().await.unwrap());

    // GET (what an http→https redirect makes of a POST), even with the right parameters.
    let r = s
        .http
        .get(format!("{url}?{}", encoded(&password_form())))
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    expect(st, &r.json().await.unwrap());
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let r = s
            .http
            .request(method, &url)
            .form(&password_form())
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        expect(st, &r.json().await.unwrap());
    }
}

#[tokio::test]
async fn duplicated_parameters_are_refused() {
    let s = TestServer::start().await;
    let mut form = password_form();
    form.push(("username", BOB));
    let (st, b) = s.token(&form).await;
    assert_error(
        st,
        &b,
        400,
        "invalid_request",
        "duplicate parameter: username",
    );
    // The same name in body and query string counts too.
    let r = s
        .http
        .post(s.at("/services/oauth2/token?client_id=other"))
        .form(&password_form())
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    assert_error(
        st,
        &r.json().await.unwrap(),
        400,
        "invalid_request",
        "duplicate parameter: client_id",
    );
}

#[tokio::test]
async fn oversized_and_garbled_bodies_get_an_answer() {
    let s = TestServer::start().await;
    let url = s.at("/services/oauth2/token");
    let huge = format!("grant_type=password&junk={}", "a".repeat(200_000));
    let r = s
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x00, b'&'])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .http
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=x")
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
