//! Setup's New / Edit Connected App form: what an admin typed, kept as typed so a failed save
//! shows it again, checked field by field (each error belongs beside its field), then turned
//! into the same `AppSpec` the config file and `idforce app update` give `seed::update_app`.

use idforce_core::model::{ConnectedApp, User, is_api_name};
use idforce_core::wire::Params;

use crate::config::AppSpec;
use crate::seed::is_callback_url;

/// One choice of "Selected OAuth Scopes": Salesforce's label and the scopes it grants.
pub struct ScopeOption {
    /// The form's value: the first scope's name.
    pub key: &'static str,
    pub label: &'static str,
    pub scopes: &'static [&'static str],
}

const fn option(
    key: &'static str,
    label: &'static str,
    scopes: &'static [&'static str],
) -> ScopeOption {
    ScopeOption { key, label, scopes }
}

/// The scopes Setup offers, in Salesforce's order (alphabetical by label).
pub const SCOPE_OPTIONS: &[ScopeOption] = &[
    option(
        "wave_api",
        "Access Analytics REST API resources (wave_api)",
        &["wave_api"],
    ),
    option(
        "chatter_api",
        "Access Connect REST API resources (chatter_api)",
        &["chatter_api"],
    ),
    option(
        "lightning",
        "Access Lightning applications (lightning)",
        &["lightning"],
    ),
    option(
        "visualforce",
        "Access Visualforce applications (visualforce)",
        &["visualforce"],
    ),
    option(
        "content",
        "Access content resources (content)",
        &["content"],
    ),
    option(
        "custom_permissions",
        "Access custom permissions (custom_permissions)",
        &["custom_permissions"],
    ),
    option(
        "id",
        "Access the identity URL service (id, profile, email, address, phone)",
        &["id", "profile", "email", "address", "phone"],
    ),
    option(
        "openid",
        "Access unique user identifiers (openid)",
        &["openid"],
    ),
    option("full", "Full access (full)", &["full"]),
    option("api", "Manage user data via APIs (api)", &["api"]),
    option("web", "Manage user data via Web browsers (web)", &["web"]),
    option(
        "refresh_token",
        "Perform requests at any time (refresh_token, offline_access)",
        &["refresh_token", "offline_access"],
    ),
];

/// The form as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppForm {
    pub name: String,
    pub api_name: String,
    pub contact_email: String,
    pub oauth_enabled: bool,
    /// One URL per line.
    pub callback_urls: String,
    pub digital_signatures: bool,
    /// A certificate uploaded with this submission (PEM), if any.
    pub certificate: Option<String>,
    /// Keys of `SCOPE_OPTIONS` ticked.
    pub scopes: Vec<String>,
    pub require_pkce: bool,
    pub secret_web_server: bool,
    pub secret_refresh: bool,
    pub client_credentials: bool,
    /// Username of the run-as user.
    pub run_as: String,
    pub device_flow: bool,
    pub jwt_access_tokens: bool,
    /// "Enable Token Exchange Flow" and "Require Secret for Token Exchange Flow".
    pub token_exchange: bool,
    pub secret_token_exchange: bool,
    /// "Enable Asset Tokens", "Token Valid for" (seconds, as typed), "Asset Audiences" (one
    /// per line).
    pub asset_tokens: bool,
    pub asset_token_lifetime: String,
    pub asset_audiences: String,
}

/// A field's error, said beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The `id` of the input it belongs to.
    pub field: &'static str,
    pub message: String,
}

/// The error said beside `field`, if it has one (each form page's `error()` in its template).
pub fn message_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.as_str())
}

fn error(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

const REQUIRED: &str = "You must enter a value.";

impl AppForm {
    /// What Salesforce's New Connected App form starts with: OAuth on, both secrets and PKCE
    /// required, device flow off.
    pub fn blank() -> AppForm {
        AppForm {
            oauth_enabled: true,
            require_pkce: true,
            secret_web_server: true,
            secret_refresh: true,
            secret_token_exchange: true,
            asset_token_lifetime: idforce_core::token_exchange::DEFAULT_ASSET_TOKEN_LIFETIME_SECS
                .to_string(),
            ..AppForm::default()
        }
    }

    /// The form for an app as it is now.
    pub fn of(app: &ConnectedApp, run_as: Option<&str>) -> AppForm {
        AppForm {
            name: app.name.clone(),
            api_name: app.api_name.clone(),
            contact_email: app.contact_email.clone(),
            oauth_enabled: app.oauth_enabled,
            callback_urls: app.callback_urls.join("\n"),
            digital_signatures: app.certificate_der.is_some(),
            certificate: None,
            // Ticked when the app has all of a choice's scopes; one that has some of them keeps
            // just those unless the box is ticked (see `check`).
            scopes: SCOPE_OPTIONS
                .iter()
                .filter(|o| o.scopes.iter().all(|s| app.scopes.contains(s)))
                .map(|o| o.key.to_owned())
                .collect(),
            require_pkce: app.require_pkce,
            secret_web_server: app.require_secret_for_web_server_flow,
            secret_refresh: app.require_secret_for_refresh_token_flow,
            client_credentials: app.run_as.is_some(),
            run_as: run_as.unwrap_or_default().to_owned(),
            device_flow: app.device_flow,
            jwt_access_tokens: app.jwt_access_tokens,
            token_exchange: app.token_exchange.enabled,
            secret_token_exchange: app.token_exchange.require_secret,
            asset_tokens: app.token_exchange.asset_tokens.is_some(),
            asset_token_lifetime: app
                .token_exchange
                .asset_tokens
                .as_ref()
                .map_or(
                    idforce_core::token_exchange::DEFAULT_ASSET_TOKEN_LIFETIME_SECS,
                    |a| a.lifetime_secs,
                )
                .to_string(),
            asset_audiences: app
                .token_exchange
                .asset_tokens
                .as_ref()
                .map(|a| a.audiences.join("\n"))
                .unwrap_or_default(),
        }
    }

    /// The form as submitted (a checkbox is ticked when present).
    pub fn parse(p: &Params) -> AppForm {
        let text = |k: &str| p.get(k).unwrap_or_default().trim().to_owned();
        let ticked = |k: &str| p.get(k).is_some();
        AppForm {
            name: text("name"),
            api_name: text("api_name"),
            contact_email: text("contact_email"),
            oauth_enabled: ticked("oauth_enabled"),
            callback_urls: p.get("callback_urls").unwrap_or_default().to_owned(),
            digital_signatures: ticked("digital_signatures"),
            certificate: p
                .get("certificate")
                .filter(|c| !c.trim().is_empty())
                .map(str::to_owned),
            scopes: p
                .pairs()
                .filter(|(k, v)| *k == "scope" && SCOPE_OPTIONS.iter().any(|o| o.key == *v))
                .map(|(_, v)| v.to_owned())
                .collect(),
            require_pkce: ticked("require_pkce"),
            secret_web_server: ticked("secret_web_server"),
            secret_refresh: ticked("secret_refresh"),
            client_credentials: ticked("client_credentials"),
            run_as: text("run_as"),
            device_flow: ticked("device_flow"),
            jwt_access_tokens: ticked("jwt_access_tokens"),
            token_exchange: ticked("token_exchange"),
            secret_token_exchange: ticked("secret_token_exchange"),
            asset_tokens: ticked("asset_tokens"),
            asset_token_lifetime: text("asset_token_lifetime"),
            asset_audiences: p.get("asset_audiences").unwrap_or_default().to_owned(),
        }
    }

    fn callback_list(&self) -> Vec<String> {
        self.callback_urls
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The API name to save: the one typed, or Salesforce's proposal from the name.
    fn api_name_to_save(&self) -> String {
        if self.api_name.is_empty() {
            idforce_core::model::api_name_of(&self.name)
        } else {
            self.api_name.clone()
        }
    }

    /// Checks every field against the org's other apps (`others`, the edited one excluded) and
    /// users, and gives the change to make, or every field's error.
    pub fn check(
        &self,
        editing: Option<&ConnectedApp>,
        others: &[ConnectedApp],
        users: &[User],
    ) -> Result<AppSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.name.is_empty() {
            errors.push(error("name", REQUIRED));
        } else if self.name.chars().count() > 80 {
            errors.push(error("name", "Use 80 characters or fewer."));
        } else if others
            .iter()
            .any(|a| a.name.eq_ignore_ascii_case(&self.name))
        {
            errors.push(error(
                "name",
                "A connected app with this name already exists in your org.",
            ));
        }
        let api_name = self.api_name_to_save();
        if !is_api_name(&api_name) {
            errors.push(error(
                "api_name",
                "Use letters, digits and underscores only: begin with a letter, with no two \
                 underscores together and none at the end.",
            ));
        } else if others
            .iter()
            .any(|a| a.api_name.eq_ignore_ascii_case(&api_name))
        {
            errors.push(error(
                "api_name",
                "Another connected app of your org has this API Name.",
            ));
        }
        if self.contact_email.is_empty() {
            errors.push(error("contact_email", REQUIRED));
        } else if !is_email(&self.contact_email) {
            errors.push(error(
                "contact_email",
                "Enter an email address, like admin@example.com.",
            ));
        }
        let callbacks = self.callback_list();
        let mut run_as = None;
        let mut certificate = None;
        if self.oauth_enabled {
            if callbacks.is_empty() {
                errors.push(error("callback_urls", REQUIRED));
            } else if let Some(bad) = callbacks.iter().find(|u| !is_callback_url(u)) {
                errors.push(error(
                    "callback_urls",
                    format!(
                        "{bad} is not a callback URL: give an absolute URL without a fragment, \
                         such as https://app.example/callback or myapp://callback."
                    ),
                ));
            }
            if self.scopes.is_empty() {
                errors.push(error("scopes", "Select at least one OAuth scope."));
            }
            let has_certificate = editing.is_some_and(|a| a.certificate_der.is_some());
            if self.digital_signatures {
                match &self.certificate {
                    Some(pem) => match certificate_of(pem) {
                        Ok(der) => certificate = Some(der),
                        Err(why) => errors.push(error(
                            "certificate",
                            format!("Upload an X.509 certificate in PEM format ({why})."),
                        )),
                    },
                    None if !has_certificate => {
                        errors.push(error("certificate", "Upload a certificate."));
                    }
                    None => {}
                }
            }
            if self.asset_tokens
                && !self
                    .asset_token_lifetime
                    .parse::<i64>()
                    .is_ok_and(|s| (1..=86_400).contains(&s))
            {
                errors.push(error(
                    "asset_token_lifetime",
                    "Enter a number of seconds from 1 to 86400.",
                ));
            }
            if self.client_credentials {
                match users
                    .iter()
                    .find(|u| u.username.eq_ignore_ascii_case(&self.run_as))
                {
                    _ if self.run_as.is_empty() => errors.push(error("run_as", REQUIRED)),
                    Some(u) if u.active => run_as = Some(u.username.clone()),
                    Some(_) => errors.push(error("run_as", "This user is inactive.")),
                    None => errors.push(error("run_as", "No user of your org has this username.")),
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut spec = AppSpec {
            name: self.name.clone(),
            api_name: Some(api_name),
            contact_email: Some(self.contact_email.clone()),
            oauth_enabled: Some(self.oauth_enabled),
            ..AppSpec::default()
        };
        // Without OAuth the section is hidden, as in Salesforce: its settings stay as they were.
        if self.oauth_enabled {
            spec.callback_urls = Some(callbacks);
            let mut scopes: Vec<String> = SCOPE_OPTIONS
                .iter()
                .filter(|o| self.scopes.iter().any(|k| k == o.key))
                .flat_map(|o| o.scopes.iter().map(|s| (*s).to_owned()))
                .collect();
            // Scopes the form does not offer (set by the config file or the CLI) stay, and so
            // do those of a choice the app has only some of (shown unticked) if it stays
            // unticked: an edit never widens nor narrows what it was not asked to.
            if let Some(app) = editing {
                let ticked = |o: &ScopeOption| self.scopes.iter().any(|k| k == o.key);
                let kept = |s: &&str| match SCOPE_OPTIONS.iter().find(|o| o.scopes.contains(s)) {
                    None => true,
                    Some(o) => !ticked(o) && !o.scopes.iter().all(|x| app.scopes.contains(x)),
                };
                scopes.extend(app.scopes.iter().filter(kept).map(str::to_owned));
            }
            spec.scopes = Some(scopes);
            if self.digital_signatures {
                spec.certificate_der = certificate;
            } else {
                spec.remove_certificate = true;
            }
            spec.require_pkce = Some(self.require_pkce);
            spec.require_secret_for_web_server_flow = Some(self.secret_web_server);
            spec.require_secret_for_refresh_token_flow = Some(self.secret_refresh);
            spec.run_as = Some(run_as.unwrap_or_default());
            spec.device_flow = Some(self.device_flow);
            spec.jwt_access_tokens = Some(self.jwt_access_tokens);
            spec.token_exchange = Some(self.token_exchange);
            spec.require_secret_for_token_exchange = Some(self.secret_token_exchange);
            spec.asset_tokens = Some(self.asset_tokens);
            if self.asset_tokens {
                spec.asset_token_lifetime = Some(format!("{}s", self.asset_token_lifetime));
                spec.asset_token_audiences = Some(
                    self.asset_audiences
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect(),
                );
            }
        }
        Ok(spec)
    }
}

/// Largest certificate upload read: a PEM certificate is a few KiB.
const MAX_CERTIFICATE: usize = 64 * 1024;

/// The DER form of an uploaded PEM certificate. The upload is only ever parsed: never read as
/// a path, as the config file's `certificate` may be.
fn certificate_of(pem: &str) -> Result<Vec<u8>, String> {
    if pem.len() > MAX_CERTIFICATE {
        return Err("the file is larger than 64 KiB".into());
    }
    if !pem.trim_start().starts_with("-----BEGIN") {
        return Err("the file is not PEM".into());
    }
    crate::config::parse_certificate(pem.as_bytes()).map_err(|e| e.to_string())
}

/// A plausible email address: one `@` with something on each side, a dot in the domain, no
/// spaces (the mailbox is the admin's business; this catches typing slips).
pub fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idforce_core::model::ConnectedApp;
    use idforce_core::scope::Scopes;
    use idforce_core::sfid::SfId;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn seed_002() -> Params {
        params(&[
            ("name", "JWT Demo"),
            ("contact_email", "admin@acme.test"),
            ("oauth_enabled", "on"),
            (
                "callback_urls",
                "https://login.salesforce.com/oauth2/callback\r\n",
            ),
            ("scope", "api"),
            ("scope", "web"),
            ("scope", "refresh_token"),
            ("secret_web_server", "on"),
            ("secret_refresh", "on"),
        ])
    }

    fn app(name: &str, api_name: &str) -> ConnectedApp {
        let id = SfId::parse("0H4000000000001").unwrap();
        let org = SfId::parse("00D000000000001").unwrap();
        let mut a = ConnectedApp::new(
            id,
            org,
            name.into(),
            "3MVG9x".into(),
            Scopes::parse("api").unwrap(),
        );
        a.api_name = api_name.into();
        a
    }

    #[test]
    fn seed_002s_app_becomes_a_spec_with_salesforces_scopes() {
        let form = AppForm::parse(&seed_002());
        let spec = form.check(None, &[], &[]).unwrap();
        assert_eq!(spec.api_name.as_deref(), Some("JWT_Demo"));
        assert_eq!(
            spec.callback_urls,
            Some(vec![
                "https://login.salesforce.com/oauth2/callback".to_owned()
            ])
        );
        assert_eq!(
            spec.scopes,
            Some(
                ["api", "web", "refresh_token", "offline_access"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(spec.require_pkce, Some(false));
        assert_eq!(spec.device_flow, Some(false));
        assert_eq!(spec.run_as.as_deref(), Some(""));
        assert!(spec.remove_certificate);
    }

    #[test]
    fn each_bad_field_is_named_with_its_own_error() {
        // Control: the good form passes.
        assert!(AppForm::parse(&seed_002()).check(None, &[], &[]).is_ok());
        let form = AppForm::parse(&params(&[
            ("name", "Taken"),
            ("api_name", "bad__name_"),
            ("contact_email", "not an email"),
            ("oauth_enabled", "on"),
            ("callback_urls", "javascript:alert(1)"),
            ("digital_signatures", "on"),
            ("client_credentials", "on"),
            ("run_as", "nobody@acme.test"),
        ]));
        let errors = form.check(None, &[app("taken", "Other")], &[]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "name",
                "api_name",
                "contact_email",
                "callback_urls",
                "scopes",
                "certificate",
                "run_as"
            ]
        );
    }

    #[test]
    fn the_api_name_is_unique_and_proposed_from_the_name() {
        let form = AppForm::parse(&seed_002());
        let errors = form
            .check(None, &[app("Other", "JWT_Demo")], &[])
            .unwrap_err();
        assert_eq!(errors[0].field, "api_name");
        assert_eq!(
            idforce_core::model::api_name_of("9 lives -- app!"),
            "X9_lives_app"
        );
    }

    #[test]
    fn without_oauth_its_settings_are_left_alone() {
        let mut p = seed_002();
        p = params(
            &p.pairs()
                .filter(|(k, _)| *k != "oauth_enabled" && *k != "scope")
                .collect::<Vec<_>>(),
        );
        let spec = AppForm::parse(&p).check(None, &[], &[]).unwrap();
        assert_eq!(spec.oauth_enabled, Some(false));
        assert_eq!((spec.callback_urls, spec.scopes), (None, None));
    }

    #[test]
    fn an_edit_keeps_scopes_the_form_does_not_offer() {
        let mut existing = app("JWT Demo", "JWT_Demo");
        existing.scopes = Scopes::parse("api cdp_query_api").unwrap();
        let form = AppForm::of(&existing, None);
        assert_eq!(form.scopes, ["api"]);
        let mut typed = form.clone();
        typed.contact_email = "a@acme.test".into();
        typed.callback_urls = "https://app.example/cb".into();
        let spec = typed.check(Some(&existing), &[], &[]).unwrap();
        assert_eq!(
            spec.scopes,
            Some(vec!["api".to_owned(), "cdp_query_api".to_owned()])
        );
    }

    #[test]
    fn an_uploaded_certificate_is_never_taken_for_a_path() {
        let mut p = seed_002();
        p.extend([
            ("digital_signatures".to_owned(), "on".to_owned()),
            ("certificate".to_owned(), "/etc/hostname".to_owned()),
        ]);
        let errors = AppForm::parse(&p).check(None, &[], &[]).unwrap_err();
        assert_eq!(errors[0].field, "certificate");
        assert!(
            errors[0].message.contains("not PEM"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn an_edit_neither_widens_nor_narrows_a_choice_the_app_has_part_of() {
        let mut existing = app("JWT Demo", "JWT_Demo");
        existing.scopes = Scopes::parse("api email offline_access").unwrap();
        let mut typed = AppForm::of(&existing, None);
        assert_eq!(typed.scopes, ["api"], "partial choices are not ticked");
        typed.contact_email = "a@acme.test".into();
        typed.callback_urls = "https://app.example/cb".into();
        let spec = typed.check(Some(&existing), &[], &[]).unwrap();
        assert_eq!(
            spec.scopes,
            Some(
                ["api", "email", "offline_access"]
                    .map(String::from)
                    .to_vec()
            )
        );
        // Ticking the choice grants all of it.
        typed.scopes.push("id".into());
        let spec = typed.check(Some(&existing), &[], &[]).unwrap();
        assert_eq!(
            spec.scopes,
            Some(
                [
                    "id",
                    "profile",
                    "email",
                    "address",
                    "phone",
                    "api",
                    "offline_access"
                ]
                .map(String::from)
                .to_vec()
            )
        );
    }

    #[test]
    fn emails_are_plausible() {
        for good in ["a@b.co", "first.last+tag@mail.example.com"] {
            assert!(is_email(good), "{good}");
        }
        for bad in ["", "a", "a@b", "@b.co", "a@.co", "a b@c.co", "a@b.co."] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
