//! A small W3C WebDriver client over reqwest, for driving Debian's chromium through
//! chromedriver. Only what the page tests need: navigate, find, type, click, read, resize,
//! screenshot.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct WebDriver {
    http: reqwest::Client,
    base: String,
    driver: Child,
}

pub fn available() -> bool {
    std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists()
}

impl WebDriver {
    pub async fn start() -> WebDriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = crate::helpers::client();
        let root = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{root}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1280,900",
                         // Nothing outside this machine answers here: a redirect to another
                         // host (a seed's callback URL) fails at once instead of waiting on DNS.
                         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost, EXCLUDE *.localhost"]
            }
        }}});
        let r: Value = http
            .post(format!("{root}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_owned();
        WebDriver {
            http,
            base: format!("{root}/session/{session}"),
            driver,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    /// Types into a field and checks that the text arrived there: a page's `autofocus` can
    /// move focus while keys are being sent, as it can under a person's fingers.
    pub async fn type_into(&self, css: &str, text: &str) {
        for _ in 0..5 {
            let el = self.find(css).await;
            self.cmd(
                reqwest::Method::POST,
                &format!("/element/{el}/clear"),
                Some(json!({})),
            )
            .await;
            self.cmd(
                reqwest::Method::POST,
                &format!("/element/{el}/value"),
                Some(json!({ "text": text })),
            )
            .await;
            let value = self
                .cmd(
                    reqwest::Method::GET,
                    &format!("/element/{el}/property/value"),
                    None,
                )
                .await;
            if value.as_str() == Some(text) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not type into {css}");
    }

    /// Clicks and waits until the page has changed: a form submission navigates after the
    /// click command has returned.
    pub async fn click(&self, css: &str) {
        let before = self.source().await;
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
        for _ in 0..200 {
            let ready = self
                .http
                .post(format!("{}/execute/sync", self.base))
                .json(&json!({ "script": "return document.readyState", "args": [] }))
                .send()
                .await
                .ok();
            let complete = match ready {
                Some(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["value"].as_str().map(|s| s == "complete"))
                    .unwrap_or(false),
                None => false,
            };
            if complete && self.source().await != before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("clicking {css} changed nothing within 5 s");
    }

    /// Opens a URL that ends somewhere unreachable (a redirect to another host): the error
    /// page's address is where the browser was sent.
    pub async fn goto_unreachable(&self, url: &str) {
        let _ = self
            .http
            .post(format!("{}/url", self.base))
            .json(&json!({ "url": url }))
            .send()
            .await;
    }

    /// Clicks what changes no page: a checkbox, a radio button, an option of a list.
    pub async fn tick(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Whether a checkbox, radio button or option is chosen.
    pub async fn is_selected(&self, css: &str) -> bool {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{el}/selected"),
            None,
        )
        .await
        .as_bool()
        .unwrap_or(false)
    }

    /// Chooses a file in a file input, as a person picking it would.
    pub async fn upload(&self, css: &str, path: &std::path::Path) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": path.display().to_string() })),
        )
        .await;
    }

    /// The text of an element.
    pub async fn text(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.cmd(reqwest::Method::GET, &format!("/element/{el}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Presses keys in whatever has keyboard focus (WebDriver's key codes: `\u{E004}` Tab,
    /// `\u{E007}` Enter, `\u{E00D}` Space).
    pub async fn keys(&self, keys: &str) {
        // As a keyboard types them (the Actions API), wherever focus is: sending them to an
        // element would make a file input take them for a file's name.
        let presses: Vec<Value> = keys
            .chars()
            .flat_map(|k| {
                let k = k.to_string();
                [
                    json!({ "type": "keyDown", "value": k }),
                    json!({ "type": "keyUp", "value": k }),
                ]
            })
            .collect();
        self.cmd(
            reqwest::Method::POST,
            "/actions",
            Some(json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": presses }] })),
        )
        .await;
    }

    /// The element that has keyboard focus, by id.
    pub async fn focused_id(&self) -> String {
        let v = self
            .cmd(reqwest::Method::GET, "/element/active", None)
            .await;
        let el = v[ELEMENT].as_str().unwrap().to_owned();
        let id = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{el}/attribute/id"),
                None,
            )
            .await;
        id.as_str().unwrap_or_default().to_owned()
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// Saves a PNG screenshot under the test target directory and returns its path.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let b64 = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl WebDriver {
    /// Ends the browser session (closing chromium) before chromedriver is stopped.
    pub async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
