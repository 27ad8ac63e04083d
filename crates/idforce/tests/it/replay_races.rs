//! Replays racing the original: a copied code or a copied rotating refresh token presented
//! alongside the real one. Whatever the interleaving, the replay must end every token the
//! original obtained (RFC 6819 §5.2.1.1, spec §10): a grant's writes and a replay's
//! revocation are each one transaction.

use std::sync::Arc;

use serde_json::Value;

use crate::browser::{Browser, authorize_url};
use crate::helpers::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CALLBACK: &str = "https://rotating.example/cb";
/// Concurrent presentations of one code or one refresh token per round.
const RACERS: usize = 8;

fn redeem_form(code: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("client_id", ROTATING_ID.to_owned()),
        ("client_secret", ROTATING_SECRET.to_owned()),
        ("redirect_uri", CALLBACK.to_owned()),
        ("code_verifier", VERIFIER.to_owned()),
    ]
}

fn refresh_form(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "refresh_token".to_owned()),
        ("client_id", ROTATING_ID.to_owned()),
        ("refresh_token", token.to_owned()),
    ]
}

/// Sends the same form `RACERS` times at once; the answers.
async fn race(s: &Arc<TestServer>, form: Vec<(&'static str, String)>) -> Vec<(u16, Value)> {
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (s, form) = (s.clone(), form.clone());
        tasks.push(tokio::spawn(async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.token(&form).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Whether introspection still calls a token active.
async fn active(s: &TestServer, token: &str) -> bool {
    let r = s
        .post_form(
            "/services/oauth2/introspect",
            &[
                ("token", token),
                ("client_id", ROTATING_ID),
                ("client_secret", ROTATING_SECRET),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["active"] == true
}

/// Every winner's access and refresh tokens, and how many answered 200.
fn winners(answers: &[(u16, Value)], refused: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for (st, body) in answers {
        if *st == 200 {
            tokens.push(body["access_token"].as_str().unwrap().to_owned());
            tokens.extend(body["refresh_token"].as_str().map(str::to_owned));
        } else {
            assert_error(*st, body, 400, "invalid_grant", refused);
        }
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_replay_races_leave_no_token_alive() {
    let rounds: usize = std::env::var("IDFORCE_REPLAY_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let s = Arc::new(TestServer::start().await);
    let mut browser = Browser::new(&s);
    let url = authorize_url(ROTATING_ID, CALLBACK, &[("code_challenge", CHALLENGE)]);
    let (mut live_after_code_races, mut live_after_refresh_races) = (0, 0);
    // The control: a code redeemed alone, and a refresh token used alone, stay live.
    let code = browser.approved_code(&url, ALICE, ALICE_PASSWORD).await;
    let alone = winners(&race_of_one(&s, redeem_form(&code)).await, "");
    assert_eq!(alone.len(), 2, "an access and a refresh token");
    for token in &alone {
        assert!(
            active(&s, token).await,
            "a grant without a replay stays live"
        );
    }
    for _ in 0..rounds {
        // A code presented eight times at once: one wins, the others are replays.
        let code = browser.approved_code(&url, ALICE, ALICE_PASSWORD).await;
        let answers = race(&s, redeem_form(&code)).await;
        let won = winners(&answers, "expired authorization code");
        assert_eq!(won.len(), 2, "exactly one redemption wins: {answers:?}");
        for token in &won {
            live_after_code_races += usize::from(active(&s, token).await);
        }

        // A rotating refresh token presented eight times at once.
        let code = browser.approved_code(&url, ALICE, ALICE_PASSWORD).await;
        let granted = winners(&race_of_one(&s, redeem_form(&code)).await, "");
        let answers = race(&s, refresh_form(&granted[1])).await;
        let won = winners(&answers, "expired access/refresh token");
        assert_eq!(won.len(), 2, "exactly one rotation wins: {answers:?}");
        for token in granted.iter().chain(&won) {
            live_after_refresh_races += usize::from(active(&s, token).await);
        }
    }
    assert_eq!(
        (live_after_code_races, live_after_refresh_races),
        (0, 0),
        "tokens left live after {rounds} code races and {rounds} refresh races"
    );
}

async fn race_of_one(s: &TestServer, form: Vec<(&'static str, String)>) -> Vec<(u16, Value)> {
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vec![s.token(&form).await]
}
