//! Setup's New / Edit User form: what an admin typed, kept as typed, checked field by field as
//! Salesforce's form checks it (Last Name, Email, Username and Profile required; a username is
//! an email address, unique across every org).

use idforce_core::model::{Profile, User};
use idforce_core::wire::Params;

use crate::app_form::{FieldError, is_email};
use crate::operations::users::UserChange;

/// The form as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserForm {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub username: String,
    pub profile: String,
    pub active: bool,
    /// Single Sign On Information's Federation ID (optional).
    pub federation_id: String,
}

fn error(field: &'static str, message: &str) -> FieldError {
    FieldError {
        field,
        message: message.to_owned(),
    }
}

const REQUIRED: &str = "You must enter a value.";

impl UserForm {
    /// A new user starts active.
    pub fn blank() -> UserForm {
        UserForm {
            active: true,
            ..UserForm::default()
        }
    }

    pub fn of(u: &User) -> UserForm {
        UserForm {
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            email: u.email.clone(),
            username: u.username.clone(),
            profile: u.profile.clone(),
            active: u.active,
            federation_id: u.federation_id.clone().unwrap_or_default(),
        }
    }

    pub fn parse(p: &Params) -> UserForm {
        let text = |k: &str| p.get(k).unwrap_or_default().trim().to_owned();
        UserForm {
            first_name: text("first_name"),
            last_name: text("last_name"),
            email: text("email"),
            username: text("username"),
            profile: text("profile"),
            active: p.get("active").is_some(),
            federation_id: text("federation_id"),
        }
    }

    /// Checks every field. `editing` is the user being changed (`None` for a new one), `me`
    /// the admin saving, `profiles` the org's, `taken` whether another user (of any org) has
    /// the username typed. The change names every field: an edit saves the whole form.
    pub fn check(
        &self,
        editing: Option<&User>,
        me: &User,
        profiles: &[Profile],
        taken: bool,
    ) -> Result<UserChange, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.first_name.chars().count() > 40 {
            errors.push(error("first_name", "Use 40 characters or fewer."));
        }
        if self.last_name.is_empty() {
            errors.push(error("last_name", REQUIRED));
        } else if self.last_name.chars().count() > 80 {
            errors.push(error("last_name", "Use 80 characters or fewer."));
        }
        if self.email.is_empty() {
            errors.push(error("email", REQUIRED));
        } else if !is_email(&self.email) {
            errors.push(error(
                "email",
                "Enter an email address, like jane@example.com.",
            ));
        }
        if self.username.is_empty() {
            errors.push(error("username", REQUIRED));
        } else if !is_email(&self.username) {
            errors.push(error(
                "username",
                "A username is in the form of an email address, like jane@acme.example.",
            ));
        } else if taken {
            errors.push(error(
                "username",
                "This username is taken: usernames are unique across every org.",
            ));
        }
        let profile = profiles
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(&self.profile));
        match profile {
            None => errors.push(error("profile", "Choose a profile.")),
            // An admin cannot take away their own way back into Setup.
            Some(p)
                if editing.is_some_and(|u| u.id == me.id)
                    && !p.name.eq_ignore_ascii_case(crate::profiles::ADMIN) =>
            {
                errors.push(error(
                    "profile",
                    "You can't change your own profile: another administrator can.",
                ));
            }
            Some(_) => {}
        }
        if self.federation_id.chars().count() > 512 {
            errors.push(error("federation_id", "Use 512 characters or fewer."));
        }
        if !self.active && editing.is_some_and(|u| u.id == me.id) {
            errors.push(error("active", "You can't deactivate your own user."));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(UserChange {
            username: Some(self.username.clone()),
            email: Some(self.email.clone()),
            first_name: Some(self.first_name.clone()),
            last_name: Some(self.last_name.clone()),
            profile: profile.map(|p| p.name.clone()),
            active: Some(self.active),
            federation_id: Some(self.federation_id.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idforce_core::sfid::SfId;

    fn profile(name: &str) -> Profile {
        Profile {
            id: SfId::parse("00e000000000001").unwrap(),
            org_id: SfId::parse("00D000000000001").unwrap(),
            name: name.into(),
            created_at: 0,
            login_ip_ranges: Vec::new(),
            login_hours: None,
        }
    }

    fn user(id: &str, username: &str) -> User {
        User {
            id: SfId::parse(id).unwrap(),
            org_id: SfId::parse("00D000000000001").unwrap(),
            username: username.into(),
            email: username.into(),
            first_name: String::new(),
            last_name: "Admin".into(),
            profile: "System Administrator".into(),
            active: true,
            password_hash: String::new(),
            security_token: None,
            failed_logins: 0,
            locked_until: None,
            created_at: 0,
            updated_at: 0,
            frozen: false,
            federation_id: None,
        }
    }

    fn typed(pairs: &[(&str, &str)]) -> UserForm {
        UserForm::parse(&Params::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
    }

    fn profiles() -> Vec<Profile> {
        vec![profile("System Administrator"), profile("Standard User")]
    }

    #[test]
    fn a_good_form_names_every_field_in_the_orgs_spelling() {
        let me = user("005000000000001", "admin@acme.test");
        let form = typed(&[
            ("first_name", "Jane"),
            ("last_name", "Doe"),
            ("email", "jane@acme.test"),
            ("username", "jane@acme.test"),
            ("profile", "standard user"),
            ("active", "on"),
        ]);
        let change = form.check(None, &me, &profiles(), false).unwrap();
        assert_eq!(change.profile.as_deref(), Some("Standard User"));
        assert_eq!(change.active, Some(true));
    }

    #[test]
    fn each_bad_field_has_its_error_and_a_taken_username_is_refused() {
        let me = user("005000000000001", "admin@acme.test");
        let form = typed(&[
            ("email", "nope"),
            ("username", "jane"),
            ("profile", "Ghost"),
        ]);
        let errors = form.check(None, &me, &profiles(), false).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["last_name", "email", "username", "profile"]);
        let form = typed(&[
            ("last_name", "Doe"),
            ("email", "jane@acme.test"),
            ("username", "jane@acme.test"),
            ("profile", "Standard User"),
        ]);
        assert!(form.check(None, &me, &profiles(), false).is_ok(), "control");
        let errors = form.check(None, &me, &profiles(), true).unwrap_err();
        assert_eq!(errors[0].field, "username");
    }

    #[test]
    fn an_admin_cannot_lock_themselves_out() {
        let me = user("005000000000001", "admin@acme.test");
        let mut form = UserForm::of(&me);
        assert!(
            form.check(Some(&me), &me, &profiles(), false).is_ok(),
            "control"
        );
        form.active = false;
        form.profile = "Standard User".into();
        let errors = form.check(Some(&me), &me, &profiles(), false).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["profile", "active"]);
        // Another admin's user may be changed so.
        let other = user("005000000000002", "other@acme.test");
        let mut form = UserForm::of(&other);
        form.active = false;
        form.profile = "Standard User".into();
        assert!(form.check(Some(&other), &me, &profiles(), false).is_ok());
    }
}
