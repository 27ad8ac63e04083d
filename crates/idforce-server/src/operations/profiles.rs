//! What an admin does to profiles — create (perhaps by cloning), choose the connected apps a
//! profile may use — shared by `idforce profile …` and Setup's Profiles.

use idforce_core::model::{Millis, Org, Profile};
use idforce_core::ports::StoreResult;
use idforce_core::sfid::SfId;
use idforce_store::Backend;

use super::audit;

/// The audit trail's section for profiles.
pub const SECTION: &str = "Profiles";

/// Creates the profile `name` in `org`. Cloning copies the connected-app access: every app
/// admitting `clone` admits the new profile too. The name must be free (checked by the
/// caller, which says so in its own words).
pub async fn create(
    store: &dyn Backend,
    org: &Org,
    name: &str,
    clone: Option<&Profile>,
    actor: &str,
    now: Millis,
) -> StoreResult<Profile> {
    let mut profile = crate::profiles::ensure(store, &org.id, name, now).await?;
    if let Some(source) = clone {
        // A clone starts with the source's login restrictions, as Salesforce's does.
        if (&source.login_ip_ranges, source.login_hours)
            != (&profile.login_ip_ranges, profile.login_hours)
        {
            profile.login_ip_ranges = source.login_ip_ranges.clone();
            profile.login_hours = source.login_hours;
            store.save_profile(&profile).await?;
        }
        for mut app in store.apps(Some(&org.id)).await? {
            if app.admits_profile(&source.name) && !app.admits_profile(&profile.name) {
                app.profiles.push(profile.name.clone());
                store.save_app(&app).await?;
            }
        }
    }
    let cloned = clone.map_or(String::new(), |c| format!(", cloned from {:?}", c.name));
    let action = format!(
        "Created profile {:?} in org {:?}{cloned}",
        profile.name, org.name
    );
    audit(store, Some(org.id), actor, SECTION, action, now).await;
    Ok(profile)
}

/// Makes exactly the apps of `allowed` (by id) admit `profile` among the org's apps; returns
/// the names of the apps given and taken away.
pub async fn set_app_access(
    store: &dyn Backend,
    profile: &Profile,
    allowed: &[SfId],
    actor: &str,
    now: Millis,
) -> StoreResult<(Vec<String>, Vec<String>)> {
    let (mut given, mut taken) = (Vec::new(), Vec::new());
    for mut app in store.apps(Some(&profile.org_id)).await? {
        if app.is_builtin() {
            continue;
        }
        let wanted = allowed.contains(&app.id);
        if wanted == app.admits_profile(&profile.name) {
            continue;
        }
        if wanted {
            app.profiles.push(profile.name.clone());
            given.push(app.name.clone());
        } else {
            app.profiles
                .retain(|p| !p.eq_ignore_ascii_case(&profile.name));
            taken.push(app.name.clone());
        }
        store.save_app(&app).await?;
    }
    if !given.is_empty() || !taken.is_empty() {
        let action = format!(
            "Changed the connected app access of profile {:?}: given {given:?}, taken away {taken:?}",
            profile.name
        );
        audit(store, Some(profile.org_id), actor, SECTION, action, now).await;
    }
    Ok((given, taken))
}
