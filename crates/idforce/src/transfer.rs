//! `idforce export` / `idforce import`: move orgs, users, apps, approvals, signing keys and
//! (optionally) live refresh tokens between any two stores, e.g. SQLite → PostgreSQL.
//!
//! The document carries the credential-hashing key, because the stored digests (client
//! secrets, security tokens, refresh tokens) are only valid under it. It, the signing keys and
//! the client secrets stay sealed under the system secret, which the document names by
//! fingerprint (`sealed_with`): the importing side needs that secret. Import is idempotent:
//! records are written by id.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use idforce_core::model::{
    ConnectedApp, Org, PermittedUsers, RefreshToken, RefreshTokenPolicy, Site, User,
};
use idforce_core::ports::SecretBox;
use idforce_core::scope::Scopes;
use idforce_core::sfid::SfId;
use idforce_server::app;
use idforce_server::secrets::SystemSecret;
use idforce_store::{Backend, StoredKey};
use serde_json::{Value, json};

const FORMAT: &str = "idforce-export-2";
/// Exports made before the system secret: the hashing key in the clear.
const FORMAT_1: &str = "idforce-export-1";

type R<T> = Result<T, String>;

fn b64(v: &[u8]) -> Value {
    Value::from(B64.encode(v))
}

fn opt_b64(v: Option<&[u8]>) -> Value {
    v.map_or(Value::Null, b64)
}

fn field<'a>(v: &'a Value, k: &str) -> R<&'a Value> {
    v.get(k).ok_or_else(|| format!("missing field {k}"))
}

fn text(v: &Value, k: &str) -> R<String> {
    field(v, k)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{k} is not text"))
}

fn opt_text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn int(v: &Value, k: &str) -> R<i64> {
    field(v, k)?
        .as_i64()
        .ok_or_else(|| format!("{k} is not a number"))
}

fn opt_int(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

fn flag(v: &Value, k: &str) -> R<bool> {
    field(v, k)?
        .as_bool()
        .ok_or_else(|| format!("{k} is not true/false"))
}

fn bytes(v: &Value, k: &str) -> R<Vec<u8>> {
    B64.decode(text(v, k)?).map_err(|e| format!("{k}: {e}"))
}

fn opt_bytes(v: &Value, k: &str) -> R<Option<Vec<u8>>> {
    opt_text(v, k)
        .map(|t| B64.decode(t).map_err(|e| format!("{k}: {e}")))
        .transpose()
}

fn digest(v: &Value, k: &str) -> R<Option<[u8; 32]>> {
    opt_bytes(v, k)?
        .map(|b| <[u8; 32]>::try_from(b.as_slice()).map_err(|_| format!("{k} is not 32 bytes")))
        .transpose()
}

fn id(v: &Value, k: &str) -> R<SfId> {
    SfId::parse(&text(v, k)?).map_err(|e| format!("{k}: {e}"))
}

fn list(v: &Value, k: &str) -> R<Vec<String>> {
    Ok(field(v, k)?
        .as_array()
        .ok_or_else(|| format!("{k} is not a list"))?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect())
}

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id.as15(), "org_id": u.org_id.as15(), "username": u.username, "email": u.email,
        "first_name": u.first_name, "last_name": u.last_name, "profile": u.profile, "active": u.active,
        "password_hash": u.password_hash,
        "security_token_digest": opt_b64(u.security_token.as_ref().map(|(d, _)| &d[..])),
        "security_token_len": u.security_token.as_ref().map(|(_, n)| *n),
        "failed_logins": u.failed_logins, "locked_until": u.locked_until,
        "created_at": u.created_at, "updated_at": u.updated_at, "frozen": u.frozen,
        "federation_id": u.federation_id,
    })
}

fn user_from(v: &Value) -> R<User> {
    let token = digest(v, "security_token_digest")?
        .zip(opt_int(v, "security_token_len").map(|n| n as usize));
    Ok(User {
        id: id(v, "id")?,
        org_id: id(v, "org_id")?,
        username: text(v, "username")?,
        email: text(v, "email")?,
        first_name: text(v, "first_name")?,
        last_name: text(v, "last_name")?,
        profile: text(v, "profile")?,
        active: flag(v, "active")?,
        password_hash: text(v, "password_hash")?,
        security_token: token,
        failed_logins: int(v, "failed_logins")? as u32,
        locked_until: opt_int(v, "locked_until"),
        created_at: int(v, "created_at")?,
        updated_at: int(v, "updated_at")?,
        // Exports from before freezing existed have no such field.
        frozen: v.get("frozen").and_then(Value::as_bool).unwrap_or(false),
        federation_id: opt_text(v, "federation_id"),
    })
}

fn app_json(a: &ConnectedApp) -> Value {
    json!({
        "id": a.id.as15(), "org_id": a.org_id.as15(), "name": a.name, "client_id": a.client_id,
        "secret_digest": opt_b64(a.secret_digest.as_ref().map(|d| &d[..])), "callback_urls": a.callback_urls,
        "scopes": a.scopes.to_string(), "certificate_der": opt_b64(a.certificate_der.as_deref()),
        "permitted_users": a.permitted_users.as_str(), "profiles": a.profiles,
        "pre_authorized_users": a.pre_authorized_users.iter().map(|u| u.as15().to_owned()).collect::<Vec<_>>(),
        "run_as": a.run_as.map(|u| u.as15().to_owned()),
        "require_secret_for_web_server_flow": a.require_secret_for_web_server_flow,
        "require_secret_for_refresh_token_flow": a.require_secret_for_refresh_token_flow,
        "require_pkce": a.require_pkce, "refresh_token_policy": a.refresh_token_policy.to_string(),
        "rotate_refresh_tokens": a.rotate_refresh_tokens, "session_timeout_secs": a.session_timeout_secs,
        "introspect_all_tokens": a.introspect_all_tokens, "id_token_lifetime_secs": a.id_token_lifetime_secs,
        "jwt_access_tokens": a.jwt_access_tokens,
        "enforce_certificate_validity": a.enforce_certificate_validity,
        "secret_sealed": opt_b64(a.secret_sealed.as_deref()), "blocked": a.blocked,
        "api_name": a.api_name, "contact_email": a.contact_email,
        "oauth_enabled": a.oauth_enabled, "device_flow": a.device_flow,
        "post_logout_redirect_uris": a.post_logout_redirect_uris,
        "max_approvals_per_user": a.max_approvals_per_user,
        "initial_access_token_digest": opt_b64(a.initial_access_token.as_ref().map(|t| &t.digest[..])),
        "initial_access_token_sealed": opt_b64(a.initial_access_token.as_ref().map(|t| &t.sealed[..])),
        "jwks": a.jwks, "jwks_uri": a.jwks_uri,
        "registration": a.registration.as_ref().map(idforce_core::registration::Registration::to_json),
        "ip_relaxation": a.ip_relaxation.as_str(),
        "token_exchange": serde_json::from_str::<Value>(&a.token_exchange.to_json()).unwrap_or(Value::Null),
    })
}

fn app_from(v: &Value) -> R<ConnectedApp> {
    let ids = |k: &str| -> R<Vec<SfId>> {
        list(v, k)?
            .iter()
            .map(|s| SfId::parse(s).map_err(|e| e.to_string()))
            .collect()
    };
    Ok(ConnectedApp {
        id: id(v, "id")?,
        org_id: id(v, "org_id")?,
        name: text(v, "name")?,
        client_id: text(v, "client_id")?,
        secret_digest: digest(v, "secret_digest")?,
        callback_urls: list(v, "callback_urls")?,
        scopes: Scopes::parse(&text(v, "scopes")?).map_err(|e| e.to_string())?,
        certificate_der: opt_bytes(v, "certificate_der")?,
        permitted_users: PermittedUsers::parse(&text(v, "permitted_users")?)
            .ok_or("bad permitted_users")?,
        profiles: list(v, "profiles")?,
        pre_authorized_users: ids("pre_authorized_users")?,
        run_as: opt_text(v, "run_as")
            .map(|s| SfId::parse(&s).map_err(|e| e.to_string()))
            .transpose()?,
        require_secret_for_web_server_flow: flag(v, "require_secret_for_web_server_flow")?,
        require_secret_for_refresh_token_flow: flag(v, "require_secret_for_refresh_token_flow")?,
        require_pkce: flag(v, "require_pkce")?,
        refresh_token_policy: RefreshTokenPolicy::parse(&text(v, "refresh_token_policy")?)
            .ok_or("bad refresh_token_policy")?,
        rotate_refresh_tokens: flag(v, "rotate_refresh_tokens")?,
        session_timeout_secs: int(v, "session_timeout_secs")?,
        introspect_all_tokens: flag(v, "introspect_all_tokens")?,
        id_token_lifetime_secs: int(v, "id_token_lifetime_secs")?,
        jwt_access_tokens: flag(v, "jwt_access_tokens")?,
        // Both absent from exports made before they existed.
        enforce_certificate_validity: v
            .get("enforce_certificate_validity")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        secret_sealed: opt_bytes(v, "secret_sealed")?,
        blocked: v.get("blocked").and_then(Value::as_bool).unwrap_or(false),
        // Absent from exports made before Setup's form: what those apps were then.
        api_name: opt_text(v, "api_name").unwrap_or_else(|| {
            idforce_core::model::api_name_of(&text(v, "name").unwrap_or_default())
        }),
        contact_email: opt_text(v, "contact_email").unwrap_or_default(),
        oauth_enabled: v
            .get("oauth_enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        device_flow: v
            .get("device_flow")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        // These four are absent from exports made before client registration.
        initial_access_token: match (
            digest(v, "initial_access_token_digest")?,
            opt_bytes(v, "initial_access_token_sealed")?,
        ) {
            (Some(digest), Some(sealed)) => {
                Some(idforce_core::model::ShownSecret { digest, sealed })
            }
            _ => None,
        },
        jwks: opt_text(v, "jwks"),
        jwks_uri: opt_text(v, "jwks_uri"),
        token_exchange: match v.get("token_exchange") {
            None | Some(Value::Null) => Default::default(),
            Some(t) => idforce_core::token_exchange::AppSettings::from_json(&t.to_string())
                .filter(|s| {
                    s.asset_tokens
                        .as_ref()
                        .is_none_or(|a| (1..=86_400).contains(&a.lifetime_secs))
                })
                .ok_or("bad token_exchange")?,
        },
        ip_relaxation: match opt_text(v, "ip_relaxation") {
            Some(r) => {
                idforce_core::login_policy::IpRelaxation::parse(&r).ok_or("bad ip_relaxation")?
            }
            None => Default::default(),
        },
        registration: match v.get("registration") {
            None | Some(Value::Null) => None,
            Some(r) => Some(
                idforce_core::registration::Registration::from_json(r).ok_or("bad registration")?,
            ),
        },
        max_approvals_per_user: v
            .get("max_approvals_per_user")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(idforce_core::model::DEFAULT_MAX_APPROVALS_PER_USER),
        post_logout_redirect_uris: if v.get("post_logout_redirect_uris").is_some() {
            list(v, "post_logout_redirect_uris")?
        } else {
            Vec::new()
        },
    })
}

/// A flag, or its default in exports from before it.
fn flag_or(v: &Value, k: &str, default: bool) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(default)
}

/// An org's sites (exports from before sites have none).
fn sites_from(org: &Value) -> R<Vec<Site>> {
    let Some(sites) = org.get("sites").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    sites
        .iter()
        .map(|s| {
            Ok(Site {
                id: id(s, "id")?,
                name: text(s, "name")?,
                path: idforce_core::hosts::check_site_path(&text(s, "path")?)?,
            })
        })
        .collect()
}

fn key_json(k: &StoredKey) -> Value {
    json!({
        "kid": k.kid, "created_at": k.created_at, "retired_at": k.retired_at, "publish_until": k.publish_until,
        "private_key": b64(&k.private_key), "encrypted": k.encrypted, "modulus": b64(&k.modulus), "exponent": b64(&k.exponent),
    })
}

fn key_from(v: &Value) -> R<StoredKey> {
    Ok(StoredKey {
        kid: text(v, "kid")?,
        created_at: int(v, "created_at")?,
        retired_at: opt_int(v, "retired_at"),
        publish_until: opt_int(v, "publish_until"),
        private_key: bytes(v, "private_key")?,
        encrypted: flag(v, "encrypted")?,
        modulus: bytes(v, "modulus")?,
        exponent: bytes(v, "exponent")?,
    })
}

fn refresh_json(r: &RefreshToken) -> Value {
    json!({
        "digest": b64(&r.digest), "family": b64(&r.family), "org_id": r.org_id.as15(), "user_id": r.user_id.as15(),
        "app_id": r.app_id.as15(), "scopes": r.scopes.to_string(), "family_started_at": r.family_started_at,
        "issued_at": r.issued_at, "last_used_at": r.last_used_at,
    })
}

fn refresh_from(v: &Value) -> R<RefreshToken> {
    Ok(RefreshToken {
        digest: digest(v, "digest")?.ok_or("missing digest")?,
        family: <[u8; 16]>::try_from(bytes(v, "family")?.as_slice())
            .map_err(|_| "family is not 16 bytes")?,
        org_id: id(v, "org_id")?,
        user_id: id(v, "user_id")?,
        app_id: id(v, "app_id")?,
        scopes: Scopes::parse(&text(v, "scopes")?).map_err(|e| e.to_string())?,
        family_started_at: int(v, "family_started_at")?,
        issued_at: int(v, "issued_at")?,
        last_used_at: int(v, "last_used_at")?,
        rotated: false,
        revoked: false,
    })
}

pub async fn export(store: &dyn Backend, secrets: &SystemSecret, refresh_tokens: bool) -> R<Value> {
    let e = |e: idforce_core::ports::StoreError| e.to_string();
    let sealed_hash_key = store
        .meta(app::HASH_KEY)
        .await
        .map_err(e)?
        .ok_or("the store has no credential-hashing key")?;
    let orgs: Vec<Value> = store.orgs().await.map_err(e)?.iter().map(|o: &Org| json!({
        "id": o.id.as15(), "name": o.name, "instance_url": o.instance_url, "created_at": o.created_at,
        "my_domain": o.my_domain, "logout_url": o.logout_url,
        "allow_username_password_flow": o.oauth.allow_username_password_flow,
        "allow_user_agent_flow": o.oauth.allow_user_agent_flow,
        "require_pkce_for_all_apps": o.oauth.require_pkce_for_all_apps,
        "time_zone": o.time_zone,
        "token_exchange_handlers": serde_json::from_str::<Value>(
            &idforce_core::token_exchange::handlers_to_json(&o.token_exchange_handlers),
        ).unwrap_or(Value::Null),
        "sites": o.sites.iter().map(|s| json!({"id": s.id.as15(), "name": s.name, "path": s.path})).collect::<Vec<_>>(),
    })).collect();
    let profiles: Vec<Value> = store.profiles(None).await.map_err(e)?.iter().map(|p| json!({
        "id": p.id.as15(), "org_id": p.org_id.as15(), "name": p.name, "created_at": p.created_at,
        "login_ip_ranges": p.login_ip_ranges, "login_hours": p.login_hours,
    })).collect();
    let users: Vec<Value> = store
        .users(None)
        .await
        .map_err(e)?
        .iter()
        .map(user_json)
        .collect();
    let apps: Vec<Value> = store
        .apps(None)
        .await
        .map_err(e)?
        .iter()
        .map(app_json)
        .collect();
    let approvals: Vec<Value> = store
        .approvals()
        .await
        .map_err(e)?
        .iter()
        .map(|(u, a, s, t)| {
            json!({
                "user_id": u.as15(), "app_id": a.as15(), "scopes": s.to_string(), "created_at": t,
            })
        })
        .collect();
    let keys: Vec<Value> = store
        .signing_keys()
        .await
        .map_err(e)?
        .iter()
        .map(key_json)
        .collect();
    let serials: Vec<Value> = store
        .serials()
        .await
        .map_err(e)?
        .iter()
        .map(|(p, n)| json!({ "prefix": p, "next": n }))
        .collect();
    let refresh: Vec<Value> = if refresh_tokens {
        store
            .all_live_refresh_tokens()
            .await
            .map_err(e)?
            .iter()
            .map(refresh_json)
            .collect()
    } else {
        Vec::new()
    };
    Ok(json!({
        "format": FORMAT, "sealed_with": secrets.fingerprint(),
        "credential_hash_key_sealed": b64(&sealed_hash_key), "serials": serials, "orgs": orgs,
        "profiles": profiles, "users": users, "apps": apps, "approvals": approvals, "signing_keys": keys, "refresh_tokens": refresh,
    }))
}

/// What an import wrote.
pub async fn import(store: &dyn Backend, secrets: &SystemSecret, doc: &Value) -> R<Value> {
    let e = |e: idforce_core::ports::StoreError| e.to_string();
    let hash_key = match doc.get("format").and_then(Value::as_str) {
        Some(FORMAT) => {
            let sealed = bytes(doc, "credential_hash_key_sealed")?;
            secrets
                .open(app::HASH_KEY_PURPOSE, &sealed)
                .ok_or_else(|| {
                    idforce_server::secrets::cannot_open(secrets, &sealed, "this export's keys")
                })?
        }
        Some(FORMAT_1) => bytes(doc, "credential_hash_key")?,
        _ => return Err(format!("not an idforce export (expected format {FORMAT})")),
    };
    let current = app::hash_key(store, secrets)
        .await
        .map_err(|e| e.to_string())?;
    if current != hash_key {
        if !store.is_empty().await.map_err(e)? {
            return Err("the target store already holds data under another hashing key; import into an empty store".into());
        }
        let sealed = secrets.seal(app::HASH_KEY_PURPOSE, &hash_key);
        store.set_meta(app::HASH_KEY, &sealed).await.map_err(e)?;
    }
    let items = |k: &str| {
        doc.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for s in items("serials") {
        store
            .raise_serial(&text(&s, "prefix")?, int(&s, "next")?)
            .await
            .map_err(e)?;
    }
    for o in items("orgs") {
        store
            .save_org(&Org {
                id: id(&o, "id")?,
                name: text(&o, "name")?,
                instance_url: opt_text(&o, "instance_url"),
                created_at: int(&o, "created_at")?,
                my_domain: opt_text(&o, "my_domain")
                    .map(|d| idforce_core::hosts::check_my_domain(&d))
                    .transpose()?,
                logout_url: opt_text(&o, "logout_url"),
                sites: sites_from(&o)?,
                oauth: idforce_core::model::OAuthSettings {
                    allow_username_password_flow: flag_or(&o, "allow_username_password_flow", true),
                    allow_user_agent_flow: flag_or(&o, "allow_user_agent_flow", true),
                    require_pkce_for_all_apps: flag_or(&o, "require_pkce_for_all_apps", false),
                },
                time_zone: opt_text(&o, "time_zone").unwrap_or_else(|| "UTC".to_owned()),
                token_exchange_handlers: match o.get("token_exchange_handlers") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(h) => {
                        let handlers =
                            idforce_core::token_exchange::handlers_from_json(&h.to_string())
                                .ok_or("bad token_exchange_handlers")?;
                        for h in &handlers {
                            idforce_core::token_exchange::check_handler(h)
                                .map_err(|why| format!("token exchange handler {why}"))?;
                        }
                        handlers
                    }
                },
            })
            .await
            .map_err(e)?;
    }
    for p in items("profiles") {
        let profile = idforce_core::model::Profile {
            id: id(&p, "id")?,
            org_id: id(&p, "org_id")?,
            name: text(&p, "name")?,
            created_at: int(&p, "created_at")?,
            // Both absent from exports made before login restrictions.
            login_ip_ranges: match p.get("login_ip_ranges") {
                Some(v) => serde_json::from_value(v.clone()).map_err(|e| e.to_string())?,
                None => Vec::new(),
            },
            login_hours: match p.get("login_hours") {
                None | Some(Value::Null) => None,
                Some(v) => Some(serde_json::from_value(v.clone()).map_err(|e| e.to_string())?),
            },
        };
        match store.save_profile(&profile).await {
            Ok(()) => {}
            // The target made its own of that name (at its start): keep it, with the export's
            // login restrictions.
            Err(idforce_core::ports::StoreError::Conflict(_)) => {
                let own = store
                    .profile(&profile.org_id, &profile.name)
                    .await
                    .map_err(e)?
                    .ok_or("a profile in conflict that cannot be found")?;
                let restricted = idforce_core::model::Profile {
                    login_ip_ranges: profile.login_ip_ranges.clone(),
                    login_hours: profile.login_hours,
                    ..(*own).clone()
                };
                store.save_profile(&restricted).await.map_err(e)?;
            }
            Err(other) => return Err(other.to_string()),
        }
    }
    for u in items("users") {
        store.save_user(&user_from(&u)?).await.map_err(e)?;
    }
    for a in items("apps") {
        store.save_app(&app_from(&a)?).await.map_err(e)?;
    }
    for a in items("approvals") {
        let scopes = Scopes::parse(&text(&a, "scopes")?).map_err(|e| e.to_string())?;
        store
            .approve(
                &id(&a, "user_id")?,
                &id(&a, "app_id")?,
                &scopes,
                int(&a, "created_at")?,
            )
            .await
            .map_err(e)?;
    }
    for k in items("signing_keys") {
        store.put_signing_key(&key_from(&k)?).await.map_err(e)?;
    }
    // Keys of an older export (plain, or sealed the old way) are sealed now; keys this secret
    // cannot open stop the import here, saying which secret they need.
    idforce_server::keys::migrate(store, secrets)
        .await
        .map_err(|e| e.to_string())?;
    // Exports from before profiles were things name them only on users and apps.
    idforce_server::profiles::backfill(store, crate::admin::now())
        .await
        .map_err(e)?;
    let mut refresh = 0;
    for r in items("refresh_tokens") {
        match store.insert_refresh_token(&refresh_from(&r)?).await {
            Ok(()) => refresh += 1,
            Err(idforce_core::ports::StoreError::Conflict(_)) => {}
            Err(other) => return Err(other.to_string()),
        }
    }
    Ok(json!({
        "orgs": items("orgs").len(), "profiles": items("profiles").len(), "users": items("users").len(), "apps": items("apps").len(),
        "approvals": items("approvals").len(), "signing_keys": items("signing_keys").len(), "refresh_tokens": refresh,
    }))
}
