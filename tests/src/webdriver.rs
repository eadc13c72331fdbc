//! A small W3C WebDriver client for the browser tests: it starts Debian's
//! `chromedriver` on a free loopback port (killed by PID when dropped), opens
//! one headless Chromium session and sends it the few commands the tests use
//! (navigate, find by CSS, click, type, read text and attributes, run a
//! script, pointer actions, screenshots, alert text).
//!
//! It is plain JSON over HTTP on top of the `ureq` client the crate already
//! uses, rather than an async WebDriver crate (fantoccini, thirtyfour), which
//! would bring its own runtime and TLS stack for what is a few dozen requests
//! to a process on loopback.

use crate::{Process, free_port, wait_until};
use serde_json::{Value, json};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `chromium-driver` package puts the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The WebDriver key code of Enter (`\u{E007}`), for [`Browser::send_keys`].
pub const ENTER: &str = "\u{E007}";

/// A failed WebDriver command: the protocol's error code (`no such element`,
/// `no such alert`, ...) and message, or a transport failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebDriverError {
    /// The W3C error code, or `transport` when the driver could not be reached.
    pub code: String,
    /// What the driver said.
    pub message: String,
}

impl fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for WebDriverError {}

/// The result of a WebDriver command.
pub type Result<T> = std::result::Result<T, WebDriverError>;

fn transport(err: impl fmt::Display) -> WebDriverError {
    WebDriverError {
        code: "transport".to_string(),
        message: err.to_string(),
    }
}

/// A reference to an element of the current page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The W3C element key (`element-6066-...`) as the driver sent it.
    key: String,
    /// The element's id in the session.
    id: String,
}

impl Element {
    fn from_value(value: &Value) -> Result<Element> {
        let object = value
            .as_object()
            .ok_or_else(|| transport(format!("not an element: {value}")))?;
        let (key, id) = object
            .iter()
            .find(|(key, _)| key.starts_with("element-"))
            .ok_or_else(|| transport(format!("not an element: {value}")))?;
        let id = id
            .as_str()
            .ok_or_else(|| transport(format!("not an element: {value}")))?;
        Ok(Element {
            key: key.clone(),
            id: id.to_string(),
        })
    }

    /// The element as a script argument (`arguments[i]` is the DOM node).
    pub fn to_json(&self) -> Value {
        json!({ &self.key: &self.id })
    }
}

/// A headless Chromium driven through its own `chromedriver` process.
#[derive(Debug)]
pub struct Browser {
    http: ureq::Agent,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    driver: Process,
}

impl Browser {
    /// Starts chromedriver (its output in `dir/chromedriver.log`) and a
    /// headless Chromium session with its profile in `dir/chrome-profile`.
    pub fn start(dir: &Path) -> Result<Browser> {
        for path in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(path).exists() {
                return Err(transport(format!(
                    "{path} is missing: install Debian's chromium and chromium-driver (scripts/test.sh does)"
                )));
            }
        }
        let port = free_port();
        let mut command = Command::new(CHROMEDRIVER);
        command.arg(format!("--port={port}"));
        let driver = Process::spawn("chromedriver", &mut command, &dir.join("chromedriver.log"));
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        wait_until("chromedriver to answer /status", Duration::from_secs(30), || {
            http.get(format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut response| response.body_mut().read_json::<Value>().ok())
                .is_some_and(|status| status["value"]["ready"] == true)
        });
        let profile: PathBuf = dir.join("chrome-profile");
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "timeouts": { "script": 30_000, "pageLoad": 60_000, "implicit": 0 },
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                        "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                        format!("--user-data-dir={}", profile.display()),
                    ],
                },
            }},
        });
        let mut browser = Browser {
            http,
            session: String::new(),
            driver,
        };
        let answer = browser.request("POST", &format!("{base}/session"), Some(capabilities))?;
        let id = answer["sessionId"]
            .as_str()
            .ok_or_else(|| transport(format!("no sessionId in {answer}")))?;
        browser.session = format!("{base}/session/{id}");
        Ok(browser)
    }

    /// Sends one command; answers its `value`, or the driver's error.
    fn request(&self, method: &str, url: &str, body: Option<Value>) -> Result<Value> {
        let answer = match method {
            "GET" => self.http.get(url).call(),
            "DELETE" => self.http.delete(url).call(),
            _ => self.http.post(url).send_json(body.unwrap_or_else(|| json!({}))),
        };
        let mut response = answer.map_err(transport)?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(transport)?;
        let value: Value = serde_json::from_str(&text).map_err(|err| transport(format!("{err}: {text}")))?;
        let value = value.get("value").cloned().unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(WebDriverError {
                code: value["error"].as_str().unwrap_or("unknown error").to_string(),
                message: value["message"].as_str().unwrap_or_default().to_string(),
            })
        }
    }

    fn get(&self, path: &str) -> Result<Value> {
        self.request("GET", &format!("{}{path}", self.session), None)
    }

    fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.request("POST", &format!("{}{path}", self.session), Some(body))
    }

    /// Opens `url` and waits for its load event.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({ "url": url })).map(drop)
    }

    /// The current page's URL.
    pub fn url(&self) -> Result<String> {
        Ok(self.get("/url")?.as_str().unwrap_or_default().to_string())
    }

    /// The first element matching the CSS `selector`.
    pub fn find(&self, selector: &str) -> Result<Element> {
        Element::from_value(&self.post("/element", json!({ "using": "css selector", "value": selector }))?)
    }

    /// Every element matching the CSS `selector`, in document order.
    pub fn find_all(&self, selector: &str) -> Result<Vec<Element>> {
        let found = self.post("/elements", json!({ "using": "css selector", "value": selector }))?;
        found
            .as_array()
            .map(|items| items.iter().map(Element::from_value).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Clicks the element (scrolled into view first, as a user would).
    pub fn click(&self, element: &Element) -> Result<()> {
        self.post(&format!("/element/{}/click", element.id), json!({}))
            .map(drop)
    }

    /// Empties an input or text area.
    pub fn clear(&self, element: &Element) -> Result<()> {
        self.post(&format!("/element/{}/clear", element.id), json!({}))
            .map(drop)
    }

    /// Types `text` into the element ([`ENTER`] presses Enter).
    pub fn send_keys(&self, element: &Element, text: &str) -> Result<()> {
        self.post(&format!("/element/{}/value", element.id), json!({ "text": text }))
            .map(drop)
    }

    /// The element's rendered text.
    pub fn text(&self, element: &Element) -> Result<String> {
        Ok(self
            .get(&format!("/element/{}/text", element.id))?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// An attribute of the element, None when it has none.
    pub fn attribute(&self, element: &Element, name: &str) -> Result<Option<String>> {
        Ok(self
            .get(&format!("/element/{}/attribute/{name}", element.id))?
            .as_str()
            .map(str::to_string))
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page
    /// and answers what it returns.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
    }

    /// Runs `script` in the page; it finishes by calling
    /// `arguments[arguments.length - 1](result)`, which is answered.
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/async", json!({ "script": script, "args": args }))
    }

    /// Performs W3C input `actions` (a list of input sources), then releases them.
    pub fn perform_actions(&self, actions: Value) -> Result<()> {
        self.post("/actions", json!({ "actions": actions }))?;
        self.request("DELETE", &format!("{}/actions", self.session), None)
            .map(drop)
    }

    /// The text of an open alert, confirm or prompt dialog; the error
    /// `no such alert` when none is open.
    pub fn alert_text(&self) -> Result<String> {
        Ok(self.get("/alert/text")?.as_str().unwrap_or_default().to_string())
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        let encoded = self.get("/screenshot")?;
        let png = decode_base64(encoded.as_str().unwrap_or_default())
            .ok_or_else(|| transport("the screenshot is not base64"))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(transport)?;
        }
        std::fs::write(path, png).map_err(transport)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends Chromium through the driver; the driver itself goes with `driver`.
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &self.session.clone(), None);
        }
        self.driver.kill();
    }
}

/// Standard base64 (with or without padding); None on any other character.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut buffer = 0u32;
    let mut bits = 0u32;
    for byte in text.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b'=') {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("AAEC/w==").as_deref(), Some(&[0u8, 1, 2, 255][..]));
        assert_eq!(decode_base64("a*b"), None);
    }
}
