//! idforce's protocol layer: Salesforce's OAuth 2.0 rules as plain functions over storage
//! traits. Nothing here knows about HTTP or SQL.

pub mod assertion;
pub mod authorize;
pub mod certificate;
pub mod device;
pub mod error;
pub mod external_jwt;
pub mod frontdoor;
pub mod grant;
pub mod hosts;
pub mod identity;
pub mod introspect;
pub mod jwks;
pub mod login_history;
pub mod login_policy;
pub mod model;
pub mod oidc;
pub mod pkce;
pub mod ports;
pub mod registration;
pub mod revoke;
pub mod scope;
pub mod session;
pub mod sfid;
pub mod token;
pub mod token_exchange;
pub mod wire;

pub use error::{ErrorCode, OAuthError};
pub use sfid::SfId;
