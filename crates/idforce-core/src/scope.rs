//! OAuth scopes as Salesforce defines them (spec §3.1).

use crate::error::OAuthError;
use std::borrow::Cow;
use std::fmt;

/// Every scope a connected app may be given.
pub const KNOWN: &[&str] = &[
    "api",
    "web",
    "full",
    "chatter_api",
    "visualforce",
    "custom_permissions",
    "openid",
    "id",
    "profile",
    "email",
    "address",
    "phone",
    "refresh_token",
    "offline_access",
    "lightning",
    "content",
    "wave_api",
    "eclair_api",
    "pardot_api",
    "chatbot_api",
    "forgot_password",
    "user_registration_api",
    "pwdless_login_api",
    "sfap_api",
    "einstein_gpt_api",
    "mcp_api",
    "interaction_api",
    "scrt_api",
];

pub fn is_known(scope: &str) -> bool {
    KNOWN.contains(&scope) || scope.starts_with("cdp_")
}

/// `scope` as a set holds it: the `KNOWN` table's own string, or a copy of a `cdp_` scope;
/// `None` when it is not a scope at all.
fn held(scope: &str) -> Option<Cow<'static, str>> {
    match KNOWN.iter().find(|k| **k == scope) {
        Some(k) => Some(Cow::Borrowed(*k)),
        None => scope
            .starts_with("cdp_")
            .then(|| Cow::Owned(scope.to_owned())),
    }
}

/// An ordered set of scopes: order is kept as given so a response echoes what was asked.
/// A known scope is held as the `KNOWN` table's own string, so that copying a set (every
/// grant does) copies one list, not a string per scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Cow<'static, str>>);

impl Scopes {
    /// Parses a space-separated list (`+` has already been decoded by the form parser).
    /// Unknown scopes are an error.
    pub fn parse(s: &str) -> Result<Scopes, OAuthError> {
        let mut out = Scopes::default();
        for scope in s.split([' ', ',']).filter(|s| !s.is_empty()) {
            let held = held(scope).ok_or_else(|| OAuthError::unknown_scope(scope))?;
            out.push(held);
        }
        Ok(out)
    }

    pub fn from_list<I: IntoIterator<Item = S>, S: AsRef<str>>(
        list: I,
    ) -> Result<Scopes, OAuthError> {
        let mut out = Scopes::default();
        for s in list {
            let s = s.as_ref();
            let held = held(s).ok_or_else(|| OAuthError::unknown_scope(s))?;
            out.push(held);
        }
        Ok(out)
    }

    pub fn insert(&mut self, scope: &str) {
        self.push(held(scope).unwrap_or_else(|| Cow::Owned(scope.to_owned())));
    }

    fn push(&mut self, scope: Cow<'static, str>) {
        if !self.contains(&scope) {
            self.0.push(scope);
        }
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| s.as_ref())
    }

    /// Whether the app's scopes cover `scope`: `refresh_token` and `offline_access` are one
    /// scope, `full` covers all but `refresh_token`, `id` covers the basic OpenID claims.
    pub fn allows(&self, scope: &str) -> bool {
        if self.contains(scope) {
            return true;
        }
        match scope {
            "refresh_token" => self.contains("offline_access"),
            "offline_access" => self.contains("refresh_token"),
            "profile" | "email" | "address" | "phone" => {
                self.contains("id") || self.contains("full")
            }
            _ => self.contains("full") && !matches!(scope, "openid"),
        }
    }

    /// Grants the requested scopes if the app allows every one of them, else the app's own
    /// scopes when nothing was requested.
    pub fn grant(app: &Scopes, requested: Option<&Scopes>) -> Result<Scopes, OAuthError> {
        match requested {
            None => Ok(app.clone()),
            Some(req) if req.is_empty() => Ok(app.clone()),
            Some(req) => {
                for s in req.iter() {
                    if !app.allows(s) {
                        return Err(OAuthError::unknown_scope(s));
                    }
                }
                Ok(req.clone())
            }
        }
    }

    /// These scopes, but only those `limit` allows (an exchange grants no more than the
    /// token it was given, nor than the user approved).
    pub fn within(&self, limit: &Scopes) -> Scopes {
        Scopes(self.0.iter().filter(|s| limit.allows(s)).cloned().collect())
    }

    /// Scopes without the ones that only make sense for a refresh token.
    pub fn without(&self, drop: &[&str]) -> Scopes {
        Scopes(
            self.0
                .iter()
                .filter(|s| !drop.contains(&s.as_ref()))
                .cloned()
                .collect(),
        )
    }

    pub fn grants_refresh_token(&self) -> bool {
        self.contains("refresh_token") || self.contains("offline_access")
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut scopes = self.iter();
        if let Some(first) = scopes.next() {
            f.write_str(first)?;
        }
        scopes.try_for_each(|s| {
            f.write_str(" ")?;
            f.write_str(s)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_keeps_order_and_drops_duplicates() {
        let s = Scopes::parse("api  refresh_token api web").expect("known");
        assert_eq!(s.to_string(), "api refresh_token web");
    }

    #[test]
    fn unknown_scope_is_refused() {
        let err = Scopes::parse("api bogus").expect_err("unknown");
        assert_eq!(err.code.as_str(), "invalid_scope");
    }

    #[test]
    fn grant_checks_against_app() {
        let app = Scopes::parse("api web offline_access id").expect("known");
        let req = Scopes::parse("api refresh_token email").expect("known");
        assert_eq!(
            Scopes::grant(&app, Some(&req))
                .expect("allowed")
                .to_string(),
            "api refresh_token email"
        );
        let too_much = Scopes::parse("api chatter_api").expect("known");
        assert!(Scopes::grant(&app, Some(&too_much)).is_err());
        assert_eq!(Scopes::grant(&app, None).expect("default"), app);
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(picks in proptest::collection::vec(0..KNOWN.len(), 0..10)) {
            let s = Scopes::from_list(picks.iter().map(|&i| KNOWN[i])).expect("known");
            prop_assert_eq!(Scopes::parse(&s.to_string()).expect("known"), s);
        }
    }
}
