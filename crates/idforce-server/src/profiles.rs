//! Profiles are made when first named: by a user (`[[org.user]] profile`, `user create
//! --profile`), by an app's profile access, or by `[[org.profile]]` and `profile create`.
//! Stores from before profiles were things get theirs at start (`backfill`).

use idforce_core::model::{Millis, Profile};
use idforce_core::ports::{StoreError, StoreResult};
use idforce_core::sfid::{SfId, prefix};
use idforce_store::Backend;

/// The profile that may open Setup.
pub const ADMIN: &str = "System Administrator";

/// The profile `name` of `org`, made if it is missing. Nodes starting together may both make
/// it: the loser's conflict means it exists, and it is read back.
pub async fn ensure(
    store: &dyn Backend,
    org: &SfId,
    name: &str,
    now: Millis,
) -> StoreResult<Profile> {
    if let Some(p) = find(store, org, name).await? {
        return Ok(p);
    }
    let profile = Profile {
        id: store.next_id(prefix::PROFILE).await?,
        org_id: *org,
        name: name.to_owned(),
        created_at: now,
        login_ip_ranges: Vec::new(),
        login_hours: None,
    };
    match store.save_profile(&profile).await {
        Ok(()) => Ok(profile),
        Err(StoreError::Conflict(why)) => find(store, org, name)
            .await?
            .ok_or(StoreError::Conflict(why)),
        Err(e) => Err(e),
    }
}

/// The profile `name` of `org`, if it exists. Names are compared ignoring ASCII case, as apps
/// compare the profiles they admit (`ConnectedApp::pre_authorizes`).
pub async fn find(store: &dyn Backend, org: &SfId, name: &str) -> StoreResult<Option<Profile>> {
    Ok(store
        .profiles(Some(org))
        .await?
        .into_iter()
        .find(|p| p.name.eq_ignore_ascii_case(name)))
}

/// Sets what is given of a profile's login restrictions (`None` leaves one as it is; an
/// empty list or map removes it) and saves it if that changed it.
pub async fn restrict(
    store: &dyn Backend,
    mut profile: Profile,
    ip_ranges: Option<&[String]>,
    hours: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<Profile, crate::seed::SeedError> {
    use idforce_core::login_policy::{IpRange, LoginHours};
    let invalid = |what: &str, why: String| {
        crate::seed::SeedError::Config(crate::config::ConfigError::Invalid(format!(
            "profile {:?}: {what}: {why}",
            profile.name
        )))
    };
    let before = profile.clone();
    if let Some(ranges) = ip_ranges {
        profile.login_ip_ranges = ranges
            .iter()
            .map(|r| IpRange::parse(r))
            .collect::<Result<_, _>>()
            .map_err(|why| invalid("login_ip_ranges", why))?;
    }
    if let Some(days) = hours {
        profile.login_hours = if days.is_empty() {
            None
        } else {
            Some(
                LoginHours::from_days(days.iter().map(|(d, w)| (d.as_str(), w.as_str())))
                    .map_err(|why| invalid("login_hours", why))?,
            )
        };
    }
    if profile != before {
        store.save_profile(&profile).await?;
    }
    Ok(profile)
}

/// Makes every profile a user or an app names; returns how many were missing.
pub async fn backfill(store: &dyn Backend, now: Millis) -> StoreResult<usize> {
    use std::collections::BTreeMap;
    // Keyed by the name in ASCII lower case; the first spelling met is the one made.
    let key = |org: SfId, name: &str| (org, name.to_ascii_lowercase());
    let existing: BTreeMap<_, ()> = store
        .profiles(None)
        .await?
        .iter()
        .map(|p| (key(p.org_id, &p.name), ()))
        .collect();
    let mut missing = BTreeMap::new();
    let users = store.users(None).await?;
    let apps = store.apps(None).await?;
    let named = users.iter().map(|u| (u.org_id, &u.profile)).chain(
        apps.iter()
            .flat_map(|a| a.profiles.iter().map(|p| (a.org_id, p))),
    );
    for (org, name) in named {
        if !existing.contains_key(&key(org, name)) {
            missing.entry(key(org, name)).or_insert((org, name.clone()));
        }
    }
    for (org, name) in missing.values() {
        ensure(store, org, name, now).await?;
    }
    Ok(missing.len())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use idforce_core::model::{ConnectedApp, Org, User};
    use idforce_store::testing::MemoryStore;

    use super::*;

    #[tokio::test]
    async fn every_profile_named_exists_once() {
        let store: Arc<dyn Backend> = Arc::new(MemoryStore::new());
        let org = Org {
            id: store.next_id(prefix::ORG).await.unwrap(),
            name: "Acme".into(),
            instance_url: None,
            created_at: 1,
            my_domain: None,
            logout_url: None,
            sites: Vec::new(),
            oauth: Default::default(),
            time_zone: "UTC".into(),
            token_exchange_handlers: Vec::new(),
        };
        store.save_org(&org).await.unwrap();
        let user = User {
            id: store.next_id(prefix::USER).await.unwrap(),
            org_id: org.id,
            username: "a@acme.test".into(),
            email: "a@acme.test".into(),
            first_name: String::new(),
            last_name: String::new(),
            profile: "System Administrator".into(),
            active: true,
            password_hash: String::new(),
            security_token: None,
            failed_logins: 0,
            locked_until: None,
            created_at: 1,
            updated_at: 1,
            frozen: false,
            federation_id: None,
        };
        store.save_user(&user).await.unwrap();
        let mut app = ConnectedApp::new(
            store.next_id(prefix::CONNECTED_APP).await.unwrap(),
            org.id,
            "App".into(),
            "3MVG9profiles".into(),
            idforce_core::scope::Scopes::from_list(["api"]).unwrap(),
        );
        app.profiles = vec!["System Administrator".into(), "Integration User".into()];
        store.save_app(&app).await.unwrap();

        assert_eq!(backfill(store.as_ref(), 2).await.unwrap(), 2);
        let names: Vec<String> = store
            .profiles(Some(&org.id))
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["Integration User", "System Administrator"]);
        // Again: nothing missing, nothing made twice.
        assert_eq!(backfill(store.as_ref(), 3).await.unwrap(), 0);
        let again = ensure(store.as_ref(), &org.id, "System Administrator", 4)
            .await
            .unwrap();
        assert_eq!(again.created_at, 2);
        assert_eq!(store.profiles(None).await.unwrap().len(), 2);
    }
}
