//! What an admin does to users — create, change, reset a password or security token, unlock,
//! freeze, deactivate — shared by `idforce user …` and Setup's Manage Users, each change
//! recorded in the Setup Audit Trail under "Manage Users".

use idforce_core::model::{Millis, User};
use idforce_core::ports::StoreResult;
use idforce_core::sfid::{SfId, prefix};
use idforce_core::token::{self, CredentialHasher};
use idforce_store::{Backend, SessionFilter};
use serde_json::{Value, json};

use super::{audit, changes};
use crate::passwords;

/// The audit trail's section for users.
pub const SECTION: &str = "Manage Users";

/// A user as admins see it (`idforce user show`; what the audit trail compares): no password
/// or token, whether each is set.
pub fn user_view(u: &User, now: Millis) -> Value {
    json!({
        "id": u.id.to18(), "org_id": u.org_id.to18(), "username": u.username, "email": u.email,
        "first_name": u.first_name, "last_name": u.last_name, "profile": u.profile, "active": u.active,
        "frozen": u.frozen, "has_security_token": u.security_token.is_some(), "failed_logins": u.failed_logins,
        "locked": u.is_locked(now), "federation_id": u.federation_id,
    })
}

/// A temporary password: 16 characters with a prefix that satisfies common policies.
pub fn temporary_password() -> String {
    format!("Aa1!{}", &token::mint_client_id()[5..17])
}

/// Argon2id off the async threads (it is slow on purpose).
async fn hash(password: String) -> String {
    tokio::task::spawn_blocking(move || passwords::hash(&password))
        .await
        .unwrap_or_default()
}

/// The user of `org` who has this Federation ID, if any (an empty one is no one's). Federation
/// IDs are unique in their org, as Salesforce's are: a token exchange handler matches on them.
pub async fn federation_id_holder(
    store: &dyn Backend,
    org: &SfId,
    federation_id: &str,
) -> StoreResult<Option<SfId>> {
    let federation_id = federation_id.trim();
    if federation_id.is_empty() {
        return Ok(None);
    }
    let found = store
        .users_matching(
            org,
            idforce_core::token_exchange::MatchOn::FederationId,
            federation_id,
        )
        .await?;
    Ok(found.first().map(|u| u.id))
}

/// A new user of an org.
pub struct NewUser {
    pub org: SfId,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub profile: String,
    pub active: bool,
    /// `None`: a temporary one is made and returned.
    pub password: Option<String>,
    pub security_token: Option<String>,
    /// Salesforce's Federation ID (empty: none).
    pub federation_id: Option<String>,
}

/// Creates the user (and their profile, on first use); returns them and the temporary
/// password made for them, if one was. The username must be free (checked by the caller,
/// which says so in its own words; the store refuses a duplicate all the same).
pub async fn create(
    store: &dyn Backend,
    hasher: &CredentialHasher,
    new: NewUser,
    actor: &str,
    now: Millis,
) -> StoreResult<(User, Option<String>)> {
    let (password, shown) = match new.password {
        Some(p) => (p, None),
        None => {
            let p = temporary_password();
            (p.clone(), Some(p))
        }
    };
    let profile = crate::profiles::ensure(store, &new.org, &new.profile, now).await?;
    let user = User {
        id: store.next_id(prefix::USER).await?,
        org_id: new.org,
        username: new.username,
        email: new.email,
        first_name: new.first_name,
        last_name: new.last_name,
        // The org's spelling of the name, as apps compare it.
        profile: profile.name,
        active: new.active,
        password_hash: hash(password).await,
        security_token: new
            .security_token
            .map(|s| (hasher.digest(&s), s.chars().count())),
        failed_logins: 0,
        locked_until: None,
        created_at: now,
        updated_at: now,
        frozen: false,
        federation_id: new
            .federation_id
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty()),
    };
    store.save_user(&user).await?;
    let action = format!(
        "Created user {} with profile {:?}",
        user.username, user.profile
    );
    audit(store, Some(user.org_id), actor, SECTION, action, now).await;
    Ok((user, shown))
}

/// A change of a user's details; what is `None` stays.
#[derive(Debug, Default)]
pub struct UserChange {
    pub username: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub profile: Option<String>,
    pub active: Option<bool>,
    /// A new Federation ID; empty: none.
    pub federation_id: Option<String>,
}

/// Applies `change` to `user` and saves them; a deactivation ends their sessions (their refresh
/// tokens stay, refused as an inactive user's until they are reactivated, as Salesforce's are).
/// Returns how many sessions ended.
pub async fn update(
    store: &dyn Backend,
    user: &mut User,
    change: UserChange,
    actor: &str,
    now: Millis,
) -> StoreResult<u64> {
    let before = user_view(user, now);
    let old_name = user.username.clone();
    if let Some(v) = change.username {
        user.username = v;
    }
    if let Some(v) = change.email {
        user.email = v;
    }
    if let Some(v) = change.first_name {
        user.first_name = v;
    }
    if let Some(v) = change.last_name {
        user.last_name = v;
    }
    if let Some(v) = change.federation_id {
        user.federation_id = Some(v.trim().to_owned()).filter(|f| !f.is_empty());
    }
    if let Some(p) = change.profile {
        user.profile = crate::profiles::ensure(store, &user.org_id, &p, now)
            .await?
            .name;
    }
    let deactivated = change.active == Some(false) && user.active;
    if let Some(v) = change.active {
        user.active = v;
    }
    user.updated_at = now;
    store.save_user(user).await?;
    let action = format!(
        "Changed user {old_name}: {}",
        changes(&before, &user_view(user, now))
    );
    audit(store, Some(user.org_id), actor, SECTION, action, now).await;
    if deactivated {
        Ok(store
            .revoke_sessions(SessionFilter::User(user.id), false, now)
            .await?
            .0)
    } else {
        Ok(0)
    }
}

/// Gives the user `password`, or a temporary one that is returned to be shown once; a
/// locked-out user is unlocked, as Salesforce's password reset does.
pub async fn set_password(
    store: &dyn Backend,
    user: &mut User,
    password: Option<String>,
    actor: &str,
    now: Millis,
) -> StoreResult<Option<String>> {
    let (password, shown) = match password {
        Some(p) => (p, None),
        None => {
            let p = temporary_password();
            (p.clone(), Some(p))
        }
    };
    user.password_hash = hash(password).await;
    user.failed_logins = 0;
    user.locked_until = None;
    user.updated_at = now;
    store.save_user(user).await?;
    let action = format!("Reset the password of {}", user.username);
    audit(store, Some(user.org_id), actor, SECTION, action, now).await;
    Ok(shown)
}

/// Lets a locked-out user log in again at once.
pub async fn unlock(
    store: &dyn Backend,
    user: &mut User,
    actor: &str,
    now: Millis,
) -> StoreResult<()> {
    user.failed_logins = 0;
    user.locked_until = None;
    store.save_user(user).await?;
    audit(
        store,
        Some(user.org_id),
        actor,
        SECTION,
        format!("Unlocked user {}", user.username),
        now,
    )
    .await;
    Ok(())
}

/// Freezes or unfreezes. Frozen users are "kicked out of active sessions"; their refresh
/// tokens stay, refused while frozen. Returns how many sessions ended.
pub async fn set_frozen(
    store: &dyn Backend,
    user: &mut User,
    frozen: bool,
    actor: &str,
    now: Millis,
) -> StoreResult<u64> {
    user.frozen = frozen;
    user.updated_at = now;
    store.save_user(user).await?;
    let did = if frozen { "Froze" } else { "Unfroze" };
    audit(
        store,
        Some(user.org_id),
        actor,
        SECTION,
        format!("{did} user {}", user.username),
        now,
    )
    .await;
    if frozen {
        Ok(store
            .revoke_sessions(SessionFilter::User(user.id), false, now)
            .await?
            .0)
    } else {
        Ok(0)
    }
}

/// A new security token, returned to be shown once (Salesforce emails it); logins appending
/// the old one are refused from now on.
pub async fn reset_security_token(
    store: &dyn Backend,
    hasher: &CredentialHasher,
    user: &mut User,
    actor: &str,
    now: Millis,
) -> StoreResult<String> {
    let fresh = token::mint_security_token();
    user.security_token = Some((hasher.digest(&fresh), fresh.chars().count()));
    user.updated_at = now;
    store.save_user(user).await?;
    let action = format!("Reset the security token of {}", user.username);
    audit(store, Some(user.org_id), actor, SECTION, action, now).await;
    Ok(fresh)
}
