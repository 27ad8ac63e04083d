//! Orgs, users and connected apps: the directory every request reads (cached) and its writes.

use std::sync::Arc;

use async_trait::async_trait;
use idforce_core::model::{ConnectedApp, Org, Profile, User};
use idforce_core::ports::{Directory, StoreResult};
use idforce_core::sfid::SfId;
use idforce_core::token::Digest;
use idforce_core::token_exchange::MatchOn;
use rusqlite::params;

use super::{SqliteStore, all, change, one, scalar};
use crate::Accounts;
use crate::rows;

const ORG_BY_ID: &str = "SELECT id, name, instance_url, created_at, my_domain, logout_url, sites,
     allow_username_password_flow, allow_user_agent_flow, require_pkce_for_all_apps, time_zone,
     token_exchange_handlers FROM orgs WHERE id = ?1";
const ORG_BY_NAME: &str = "SELECT id, name, instance_url, created_at, my_domain, logout_url, sites,
     allow_username_password_flow, allow_user_agent_flow, require_pkce_for_all_apps, time_zone,
     token_exchange_handlers FROM orgs WHERE name = ?1";
const ORGS: &str = "SELECT id, name, instance_url, created_at, my_domain, logout_url, sites,
     allow_username_password_flow, allow_user_agent_flow, require_pkce_for_all_apps, time_zone,
     token_exchange_handlers FROM orgs ORDER BY id";
const SAVE_ORG: &str =
    "INSERT INTO orgs (id, name, instance_url, created_at, my_domain, logout_url, sites,
         allow_username_password_flow, allow_user_agent_flow, require_pkce_for_all_apps, time_zone,
         token_exchange_handlers)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, instance_url = excluded.instance_url,
         my_domain = excluded.my_domain, logout_url = excluded.logout_url, sites = excluded.sites,
         allow_username_password_flow = excluded.allow_username_password_flow,
         allow_user_agent_flow = excluded.allow_user_agent_flow,
         require_pkce_for_all_apps = excluded.require_pkce_for_all_apps,
         time_zone = excluded.time_zone,
         token_exchange_handlers = excluded.token_exchange_handlers";

const PROFILES: &str =
    "SELECT id, org_id, name, created_at, login_ip_ranges, login_hours FROM profiles
     WHERE ?1 IS NULL OR org_id = ?1 ORDER BY org_id, name";
/// Adds a profile or renames it; a name taken in its org is a conflict.
const SAVE_PROFILE: &str =
    "INSERT INTO profiles (id, org_id, name, created_at, login_ip_ranges, login_hours)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name,
         login_ip_ranges = excluded.login_ip_ranges, login_hours = excluded.login_hours";
const PROFILE_BY_NAME: &str = "SELECT id, org_id, name, created_at, login_ip_ranges, login_hours
     FROM profiles WHERE org_id = ?1 AND lower(name) = lower(?2) ORDER BY id LIMIT 1";

const USER_BY_ID: &str = concat!(
    "SELECT ",
    rows::user_columns!(),
    " FROM users WHERE id = ?1"
);
/// `username` is `COLLATE NOCASE`: this is an index lookup.
const USER_BY_USERNAME: &str = concat!(
    "SELECT ",
    rows::user_columns!(),
    " FROM users WHERE username = ?1"
);
const APP_BY_INITIAL_ACCESS_TOKEN: &str = concat!(
    "SELECT ",
    rows::app_columns!(),
    " FROM apps WHERE initial_access_token_digest = ?1"
);
/// `?1` an org, or NULL for every org.
const USERS: &str = concat!(
    "SELECT ",
    rows::user_columns!(),
    " FROM users WHERE ?1 IS NULL OR org_id = ?1 ORDER BY id"
);
const USERS_BY_USERNAME: &str = concat!(
    "SELECT ",
    rows::user_columns!(),
    " FROM users WHERE org_id = ?1 AND username = ?2 LIMIT 2"
);
const USERS_BY_EMAIL: &str = concat!(
    "SELECT ",
    rows::user_columns!(),
    " FROM users WHERE org_id = ?1 AND lower(email) = lower(?2) LIMIT 2"
);
const USERS_BY_FEDERATION_ID: &str = concat!(
    "SELECT ",
    rows::user_columns!(),
    " FROM users WHERE org_id = ?1 AND federation_id = ?2 LIMIT 2"
);
const SAVE_USER: &str = "INSERT INTO users (id, org_id, username, email, first_name, last_name, profile, active,
         password_hash, security_token_digest, security_token_len, failed_logins, locked_until,
         created_at, updated_at, frozen, federation_id)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
     ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id, username = excluded.username,
         email = excluded.email, first_name = excluded.first_name, last_name = excluded.last_name,
         profile = excluded.profile, active = excluded.active, password_hash = excluded.password_hash,
         security_token_digest = excluded.security_token_digest,
         security_token_len = excluded.security_token_len, failed_logins = excluded.failed_logins,
         locked_until = excluded.locked_until, updated_at = excluded.updated_at,
         frozen = excluded.frozen, federation_id = excluded.federation_id";

const APP_BY_ID: &str = concat!("SELECT ", rows::app_columns!(), " FROM apps WHERE id = ?1");
const APP_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    rows::app_columns!(),
    " FROM apps WHERE client_id = ?1"
);
const APP_BY_NAME: &str = concat!(
    "SELECT ",
    rows::app_columns!(),
    " FROM apps WHERE org_id = ?1 AND name = ?2"
);
/// `?1` an org, or NULL for every org.
const APPS: &str = concat!(
    "SELECT ",
    rows::app_columns!(),
    " FROM apps WHERE ?1 IS NULL OR org_id = ?1 ORDER BY id"
);
const SAVE_APP: &str = "INSERT INTO apps (id, org_id, name, client_id, secret_digest, callback_urls, scopes,
         certificate_der, permitted_users, profiles, pre_authorized_users, run_as,
         require_secret_for_web_server_flow, require_secret_for_refresh_token_flow, require_pkce,
         refresh_token_policy, rotate_refresh_tokens, session_timeout_secs, introspect_all_tokens,
         id_token_lifetime_secs, jwt_access_tokens, enforce_certificate_validity, secret_sealed, blocked,
         api_name, contact_email, oauth_enabled, device_flow, post_logout_redirect_uris,
         max_approvals_per_user, initial_access_token_digest, initial_access_token_sealed,
         jwks, jwks_uri, registration, ip_relaxation, token_exchange)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, client_id = excluded.client_id,
         secret_digest = excluded.secret_digest, callback_urls = excluded.callback_urls,
         scopes = excluded.scopes, certificate_der = excluded.certificate_der,
         permitted_users = excluded.permitted_users, profiles = excluded.profiles,
         pre_authorized_users = excluded.pre_authorized_users, run_as = excluded.run_as,
         require_secret_for_web_server_flow = excluded.require_secret_for_web_server_flow,
         require_secret_for_refresh_token_flow = excluded.require_secret_for_refresh_token_flow,
         require_pkce = excluded.require_pkce, refresh_token_policy = excluded.refresh_token_policy,
         rotate_refresh_tokens = excluded.rotate_refresh_tokens,
         session_timeout_secs = excluded.session_timeout_secs,
         introspect_all_tokens = excluded.introspect_all_tokens,
         id_token_lifetime_secs = excluded.id_token_lifetime_secs,
         jwt_access_tokens = excluded.jwt_access_tokens,
         enforce_certificate_validity = excluded.enforce_certificate_validity,
         secret_sealed = excluded.secret_sealed, blocked = excluded.blocked,
         api_name = excluded.api_name, contact_email = excluded.contact_email,
         oauth_enabled = excluded.oauth_enabled, device_flow = excluded.device_flow,
         post_logout_redirect_uris = excluded.post_logout_redirect_uris,
         max_approvals_per_user = excluded.max_approvals_per_user,
         initial_access_token_digest = excluded.initial_access_token_digest,
         initial_access_token_sealed = excluded.initial_access_token_sealed,
         jwks = excluded.jwks, jwks_uri = excluded.jwks_uri,
         registration = excluded.registration, ip_relaxation = excluded.ip_relaxation,
         token_exchange = excluded.token_exchange";

const HAS_APPROVED: &str = "SELECT count(*) FROM approvals WHERE user_id = ?1 AND app_id = ?2";

impl SqliteStore {
    fn read_user(&self, sql: &'static str, key: &str) -> StoreResult<Option<Arc<User>>> {
        self.db
            .read(|c| one(c, sql, [key], |r| rows::user(r)))
            .map(|u| u.map(Arc::new))
    }

    fn read_app(&self, sql: &'static str, key: &str) -> StoreResult<Option<Arc<ConnectedApp>>> {
        self.db
            .read(|c| one(c, sql, [key], |r| rows::app(r)))
            .map(|a| a.map(Arc::new))
    }

    async fn write_directory<F>(&self, work: F) -> StoreResult<()>
    where
        F: FnOnce(&rusqlite::Connection) -> StoreResult<usize> + Send + 'static,
    {
        self.db.write_statement(work).await.map(drop)
    }
}

#[async_trait]
impl Directory for SqliteStore {
    async fn org(&self, id: &SfId) -> StoreResult<Option<Arc<Org>>> {
        self.db
            .read(|c| one(c, ORG_BY_ID, [id.as15()], |r| rows::org(r)))
            .map(|o| o.map(Arc::new))
    }

    async fn user(&self, id: &SfId) -> StoreResult<Option<Arc<User>>> {
        self.read_user(USER_BY_ID, id.as15())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<Arc<User>>> {
        self.login_user(username).await
    }

    async fn login_user(&self, username: &str) -> StoreResult<Option<Arc<User>>> {
        self.read_user(USER_BY_USERNAME, username)
    }

    async fn app(&self, id: &SfId) -> StoreResult<Option<Arc<ConnectedApp>>> {
        self.read_app(APP_BY_ID, id.as15())
    }

    async fn profile(&self, org: &SfId, name: &str) -> StoreResult<Option<Arc<Profile>>> {
        let found = self
            .db
            .read(|c| one(c, PROFILE_BY_NAME, [org.as15(), name], |r| rows::profile(r)))?;
        Ok(found.map(Arc::new))
    }

    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<Arc<ConnectedApp>>> {
        self.read_app(APP_BY_CLIENT_ID, client_id)
    }

    async fn has_approved(&self, user: &SfId, app: &SfId) -> StoreResult<bool> {
        let n: i64 = self
            .db
            .read(|c| scalar(c, HAS_APPROVED, [user.as15(), app.as15()]))?
            .unwrap_or(0);
        Ok(n > 0)
    }

    async fn users_matching(
        &self,
        org: &SfId,
        on: MatchOn,
        value: &str,
    ) -> StoreResult<Vec<Arc<User>>> {
        let sql = match on {
            MatchOn::Username => USERS_BY_USERNAME,
            MatchOn::Email => USERS_BY_EMAIL,
            MatchOn::FederationId => USERS_BY_FEDERATION_ID,
        };
        let found = self
            .db
            .read(|c| all(c, sql, [org.as15(), value], |r| rows::user(r)))?;
        Ok(found.into_iter().map(Arc::new).collect())
    }
}

#[async_trait]
impl Accounts for SqliteStore {
    async fn is_empty(&self) -> StoreResult<bool> {
        let n: i64 = self
            .db
            .read(|c| scalar(c, "SELECT count(*) FROM orgs", []))?
            .unwrap_or(0);
        Ok(n == 0)
    }

    async fn save_org(&self, org: &Org) -> StoreResult<()> {
        let org = org.clone();
        self.write_directory(move |c| {
            change(
                c,
                SAVE_ORG,
                params![
                    org.id.as15(),
                    org.name,
                    org.instance_url,
                    org.created_at,
                    org.my_domain,
                    org.logout_url,
                    rows::sites_json(&org.sites),
                    org.oauth.allow_username_password_flow,
                    org.oauth.allow_user_agent_flow,
                    org.oauth.require_pkce_for_all_apps,
                    org.time_zone,
                    idforce_core::token_exchange::handlers_to_json(&org.token_exchange_handlers),
                ],
            )
        })
        .await
    }

    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>> {
        self.db
            .read(|c| one(c, ORG_BY_NAME, [name], |r| rows::org(r)))
    }

    async fn orgs(&self) -> StoreResult<Vec<Org>> {
        self.db.read(|c| all(c, ORGS, [], |r| rows::org(r)))
    }

    async fn save_profile(&self, p: &Profile) -> StoreResult<()> {
        let p = p.clone();
        self.write_directory(move |c| {
            change(
                c,
                SAVE_PROFILE,
                params![
                    p.id.as15(),
                    p.org_id.as15(),
                    p.name,
                    p.created_at,
                    rows::ip_ranges_json(&p.login_ip_ranges),
                    p.login_hours.as_ref().map(rows::login_hours_json),
                ],
            )
        })
        .await
    }

    async fn profiles(&self, org: Option<&SfId>) -> StoreResult<Vec<Profile>> {
        let org = org.map(|o| o.as15());
        self.db
            .read(|c| all(c, PROFILES, [org], |r| rows::profile(r)))
    }

    async fn save_user(&self, u: &User) -> StoreResult<()> {
        let u = u.clone();
        self.write_directory(move |c| {
            change(
                c,
                SAVE_USER,
                params![
                    u.id.as15(),
                    u.org_id.as15(),
                    u.username,
                    u.email,
                    u.first_name,
                    u.last_name,
                    u.profile,
                    u.active,
                    u.password_hash,
                    u.security_token.as_ref().map(|(d, _)| &d[..]),
                    u.security_token.as_ref().map(|(_, n)| *n as i64),
                    i64::from(u.failed_logins),
                    u.locked_until,
                    u.created_at,
                    u.updated_at,
                    u.frozen,
                    u.federation_id,
                ],
            )
        })
        .await
    }

    async fn users(&self, org: Option<&SfId>) -> StoreResult<Vec<User>> {
        let org = org.map(|o| o.as15());
        self.db.read(|c| all(c, USERS, [org], |r| rows::user(r)))
    }

    async fn save_app(&self, a: &ConnectedApp) -> StoreResult<()> {
        let a = a.clone();
        self.write_directory(move |c| {
            let (callbacks, profiles, pre) = rows::app_lists(&a);
            change(
                c,
                SAVE_APP,
                params![
                    a.id.as15(),
                    a.org_id.as15(),
                    a.name,
                    a.client_id,
                    a.secret_digest.as_ref().map(|d| &d[..]),
                    callbacks,
                    a.scopes.to_string(),
                    a.certificate_der,
                    a.permitted_users.as_str(),
                    profiles,
                    pre,
                    a.run_as.map(|id| id.as15().to_owned()),
                    a.require_secret_for_web_server_flow,
                    a.require_secret_for_refresh_token_flow,
                    a.require_pkce,
                    a.refresh_token_policy.to_string(),
                    a.rotate_refresh_tokens,
                    a.session_timeout_secs,
                    a.introspect_all_tokens,
                    a.id_token_lifetime_secs,
                    a.jwt_access_tokens,
                    a.enforce_certificate_validity,
                    a.secret_sealed,
                    a.blocked,
                    a.api_name,
                    a.contact_email,
                    a.oauth_enabled,
                    a.device_flow,
                    rows::to_json(&a.post_logout_redirect_uris),
                    a.max_approvals_per_user,
                    a.initial_access_token.as_ref().map(|t| t.digest.to_vec()),
                    a.initial_access_token.as_ref().map(|t| t.sealed.clone()),
                    a.jwks,
                    a.jwks_uri,
                    a.registration.as_ref().map(rows::registration_json),
                    a.ip_relaxation.as_str(),
                    a.token_exchange.to_json(),
                ],
            )
        })
        .await
    }

    async fn app_by_initial_access_token(
        &self,
        digest: &Digest,
    ) -> StoreResult<Option<ConnectedApp>> {
        self.db.read(|c| {
            one(c, APP_BY_INITIAL_ACCESS_TOKEN, [&digest[..]], |r| {
                rows::app(r)
            })
        })
    }

    async fn app_by_name(&self, org: &SfId, name: &str) -> StoreResult<Option<ConnectedApp>> {
        self.db
            .read(|c| one(c, APP_BY_NAME, [org.as15(), name], |r| rows::app(r)))
    }

    async fn apps(&self, org: Option<&SfId>) -> StoreResult<Vec<ConnectedApp>> {
        let org = org.map(|o| o.as15());
        self.db.read(|c| all(c, APPS, [org], |r| rows::app(r)))
    }
}
