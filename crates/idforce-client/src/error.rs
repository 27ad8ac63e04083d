//! One error type for every call: the server's OAuth error as sent, or why there was none.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused, with Salesforce's `error` and `error_description`.
    #[error("{error}: {description}")]
    OAuth {
        status: u16,
        error: String,
        description: String,
    },
    /// An answer that is not the expected shape (the wrong host, a proxy's page, …).
    #[error("unexpected answer (HTTP {status}): {body}")]
    Unexpected { status: u16, body: String },
    /// The request did not get an answer.
    #[error("request failed: {0}")]
    Http(reqwest::Error),
    /// The login URL is not an `http(s)://host[:port]` address.
    #[error(
        "login URL {given:?}: {why}; expected https://host[:port], e.g. https://login.salesforce.com or http://127.0.0.1:8080"
    )]
    LoginUrl { given: String, why: String },
    /// The private key for a JWT assertion could not be read.
    #[error("private key: {0}")]
    Key(String),
    /// The web flow's local callback: cannot listen, or the browser came back wrong.
    #[error("callback: {0}")]
    Callback(String),
}

impl Error {
    /// The OAuth error code, if the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// A device that should wait and poll again: `authorization_pending` or `slow_down`.
    pub fn is_pending(&self) -> bool {
        matches!(self.code(), Some("authorization_pending" | "slow_down"))
    }

    /// One line of help for the usual causes of this error.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::OAuth { description, .. } => match description.as_str() {
                "authentication failure" => Some(
                    "Check the password; append the user's security token to it, or log in from an allowed IP range.",
                ),
                "user hasn't approved this consumer" => Some(
                    "Check the username first: the answer is the same for a user that does not exist on this login host (a sandbox user at login.salesforce.com, say). If it exists, approve the app once through the web flow, or have an admin pre-authorize the user's profile (admin-approved apps).",
                ),
                "audience is invalid" => Some(
                    "The assertion's aud must be the login host: login.salesforce.com for production, test.salesforce.com for sandboxes.",
                ),
                "client identifier invalid" => {
                    Some("Check the consumer key, and that the app exists on this login host.")
                }
                "invalid client credentials" => Some("Check the consumer secret."),
                "expired access/refresh token" => {
                    Some("Log in again: the refresh token was revoked or has expired.")
                }
                "user is not admin approved to access this app" => {
                    Some("Add the user's profile to the app, or pre-authorize the user.")
                }
                _ => None,
            },
            Error::Unexpected {
                status: 404 | 405, ..
            } => Some(
                "This host does not answer OAuth requests: log in at the login URL, then use the instance_url for API calls.",
            ),
            Error::Unexpected { .. } => Some(
                "Is the login URL right? Use the login host (or My Domain), not the instance URL.",
            ),
            _ => None,
        }
    }
}
