//! A minimal browser over HTTP: keeps cookies, never follows redirects on its own, and
//! reads the hidden fields of idforce's forms. Enough to drive the login and approval pages
//! the way a person would, without JavaScript (the pages have none).

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::helpers::*;

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn is_login(&self) -> bool {
        self.body.contains("name=\"startURL\"")
    }
    pub fn is_consent(&self) -> bool {
        self.body.contains("<h1>Allow Access?</h1>")
    }
    /// The hidden inputs of the page's form, in order.
    /// Where the page's first POST form goes.
    pub fn form_action(&self) -> Option<String> {
        let form = &self.body[self.body.find("<form method=\"post\" action=\"")? + 28..];
        Some(unescape(&form[..form.find('"')?]))
    }

    pub fn hidden(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find("<input type=\"hidden\" name=\"") {
            rest = &rest[i + 27..];
            let name = &rest[..rest.find('"').unwrap()];
            let v = &rest[rest.find("value=\"").unwrap() + 7..];
            let value = &v[..v.find('"').unwrap()];
            out.push((unescape(name), unescape(value)));
        }
        out
    }
    /// Query (or fragment) parameters of the redirect.
    pub fn redirect_params(&self) -> BTreeMap<String, String> {
        let loc = self.location.as_deref().expect("a redirect");
        let part = loc
            .split_once('#')
            .map(|(_, f)| f)
            .or_else(|| loc.split_once('?').map(|(_, q)| q))
            .unwrap_or("");
        form_urlencoded::parse(part.as_bytes())
            .into_owned()
            .collect()
    }
}

/// HTML character references, as a browser reads them: the named ones a page uses, and
/// numeric ones (`&#38;`, `&#x27;`).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "quot" => Some('"'),
            "apos" => Some('\''),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

pub struct Browser {
    pub base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    /// Opens an authorize URL, logs in, approves when asked, and returns the `code` of the
    /// redirect to the client.
    pub async fn approved_code(&mut self, url: &str, username: &str, password: &str) -> String {
        let page = self.authorize(url, username, password).await;
        let page = if page.is_consent() {
            self.decide(&page, true).await
        } else {
            page
        };
        page.redirect_params()["code"].clone()
    }

    pub fn new(s: &TestServer) -> Browser {
        Browser::at(&s.url)
    }

    /// A browser for a server at `base` (e.g. a node started as a process).
    pub fn at(base: &str) -> Browser {
        Browser::with(base, client())
    }

    /// The same, through a client of the test's (e.g. one that resolves My Domains).
    pub fn with(base: &str, http: reqwest::Client) -> Browser {
        Browser {
            base: base.to_owned(),
            http,
            cookies: BTreeMap::new(),
        }
    }

    fn url(&self, u: &str) -> String {
        if u.starts_with("http") {
            u.to_owned()
        } else {
            format!("{}{u}", self.base)
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn absorb(&mut self, r: reqwest::Response) -> Page {
        for c in r.headers().get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (kv, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get(LOCATION)
                .map(|l| l.to_str().unwrap().to_owned()),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, u: &str) -> Page {
        let r = self
            .http
            .get(self.url(u))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.absorb(r).await
    }

    pub async fn post(&mut self, u: &str, form: &[(String, String)]) -> Page {
        let r = self
            .http
            .post(self.url(u))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.absorb(r).await
    }

    /// Submits the login page shown in `page`.
    pub async fn log_in(&mut self, page: &Page, username: &str, password: &str) -> Page {
        assert!(page.is_login(), "expected the login page: {}", page.body);
        let mut form = page.hidden();
        form.push(("username".into(), username.into()));
        form.push(("pw".into(), password.into()));
        let action = page.form_action().unwrap_or_else(|| "/".into());
        self.post(&action, &form).await
    }

    /// Answers the approval page shown in `page`.
    pub async fn decide(&mut self, page: &Page, allow: bool) -> Page {
        assert!(
            page.is_consent(),
            "expected the approval page: {}",
            page.body
        );
        let mut form = page.hidden();
        form.push((
            "decision".into(),
            if allow { "allow" } else { "deny" }.into(),
        ));
        let action = page
            .form_action()
            .unwrap_or_else(|| "/setup/secur/RemoteAccessAuthorizationPage.apexp".into());
        self.post(&action, &form).await
    }

    /// Opens an authorize URL, logs in if asked, and returns the page after login (the
    /// approval page or the redirect to the client).
    pub async fn authorize(&mut self, url: &str, username: &str, password: &str) -> Page {
        let page = self.get(url).await;
        if !page.is_login() {
            return page;
        }
        let after = self.log_in(&page, username, password).await;
        assert_eq!(after.status, 302, "login failed: {}", after.body);
        self.get(after.location.as_deref().unwrap()).await
    }
}

pub fn authorize_url(client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    ser.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri);
    for (k, v) in extra {
        ser.append_pair(k, v);
    }
    let q = ser.finish();
    // A later response_type wins over the default.
    let q = if extra.iter().any(|(k, _)| *k == "response_type") {
        q.replacen("response_type=code&", "", 1)
    } else {
        q
    };
    format!("/services/oauth2/authorize?{q}")
}

/// A browser logged in on the login page as `username`.
pub async fn logged_in(s: &TestServer, username: &str, password: &str) -> Browser {
    let mut b = Browser::new(s);
    let page = b.get("/").await;
    let after = b.log_in(&page, username, password).await;
    assert_eq!(after.status, 302, "login failed: {}", after.body);
    b
}

/// The hidden CSRF field of a page's forms.
pub fn csrf_of(page: &Page) -> String {
    page.hidden()
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
        .expect("a CSRF field")
}

/// A form's fields as `Browser::post` takes them.
pub fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The error said beside a field: its text, found by the `id` the input names.
pub fn field_error(page: &Page, field: &str) -> Option<String> {
    let marker = format!("<p class=\"field-error\" id=\"{field}-error\">");
    let start = page.body.find(&marker)? + marker.len();
    let end = page.body[start..].find("</p>")? + start;
    Some(unescape(&page.body[start..end]))
}

/// The text of `<code id="…">`: a key, secret, token or password a page shows.
pub fn code_of(page: &Page, id: &str) -> Option<String> {
    let marker = format!("<code id=\"{id}\">");
    let start = page.body.find(&marker)? + marker.len();
    let end = page.body[start..].find('<')? + start;
    Some(unescape(&page.body[start..end]))
}
