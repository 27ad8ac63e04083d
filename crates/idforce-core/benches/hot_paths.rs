//! Micro-benchmarks of the functions every token request runs: `cargo bench -p idforce-core`.
//! The end-to-end figures are bench/'s; these say where a change to one function moves them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use criterion::{Criterion, criterion_group, criterion_main};
use idforce_core::assertion;
use idforce_core::sfid::{self, SfId, prefix};
use idforce_core::token::{self, CredentialHasher};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../idforce/tests/fixtures");

fn pem_der(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture");
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("PEM body")
}

fn hasher() -> CredentialHasher {
    CredentialHasher::new(&token::random_bytes::<32>())
}

/// Minting an access token and computing the key it is stored under.
fn mint_access_token(c: &mut Criterion) {
    let hasher = hasher();
    let org = SfId::mint(prefix::ORG, 42);
    c.bench_function("mint access token and its storage key", |b| {
        b.iter(|| {
            let token = token::mint_access_token(&org, black_box(1_700_000_000_000));
            hasher.session_key(&token)
        })
    });
}

/// The keyed-hash check of a presented consumer secret (no Argon2: secrets are 256 random bits).
fn verify_client_secret(c: &mut Criterion) {
    let hasher = hasher();
    let secret = token::mint_client_secret();
    let stored = hasher.digest(&secret);
    c.bench_function("verify client secret", |b| {
        b.iter(|| assert!(hasher.matches(black_box(&secret), &stored)))
    });
}

/// Parsing a JWT bearer assertion, checking its RS256 signature against the app's certificate
/// and its audience, and the key it is spent under.
fn verify_assertion(c: &mut Criterion) {
    let key = RsaKeyPair::from_pkcs8(&pem_der("jwt.key")).expect("PKCS#8 RSA key");
    let certificate = pem_der("jwt.crt");
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        br#"{"iss":"3MVG9bench","sub":"bench@bench.test","aud":"https://login.salesforce.com","exp":4102444800}"#,
    );
    let input = format!("{header}.{claims}");
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .expect("signs");
    let compact = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
    let audiences = vec!["https://login.salesforce.com".to_owned()];
    c.bench_function("verify JWT bearer assertion", |b| {
        b.iter(|| {
            let parsed = assertion::parse(black_box(&compact)).unwrap();
            parsed.verify_signature(&certificate).unwrap();
            parsed.claims.check_audience(&audiences).unwrap();
            assertion::ledger_key(&compact, parsed.claims.exp * 1000)
        })
    });
}

/// The 18-character form of an id (its case-insensitive checksum).
fn id_checksum(c: &mut Criterion) {
    let id = SfId::parse("005i00000018Pda").expect("id");
    c.bench_function("id checksum", |b| {
        b.iter(|| sfid::checksum(black_box(id.as15().as_bytes().try_into().unwrap())))
    });
    c.bench_function("id to 18 characters", |b| b.iter(|| black_box(&id).to18()));
}

/// The repeated-name check every token request runs, per name: a normal request's eight names
/// and a 64 KiB body's eight thousand should cost about the same each.
fn duplicate_names(c: &mut Criterion) {
    let mut group = c.benchmark_group("duplicate parameter check");
    for n in [8usize, 8000] {
        let params = idforce_core::wire::Params::new(
            (0..n).map(|i| (format!("p{i}"), "v".to_owned())).collect(),
        );
        group.throughput(criterion::Throughput::Elements(n as u64));
        group.bench_function(format!("{n} names"), |b| {
            b.iter(|| black_box(&params).duplicate().is_some())
        });
    }
    group.finish();
}

criterion_group!(
    hot_paths,
    duplicate_names,
    mint_access_token,
    verify_client_secret,
    verify_assertion,
    id_checksum
);
criterion_main!(hot_paths);
