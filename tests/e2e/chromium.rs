//! The staff pages in a real browser: Debian's headless Chromium, driven over WebDriver by
//! Debian's chromedriver (through `fantoccini`), against the real server. Each role logs in by
//! typing into the login form and does its main job by clicking what a person would click;
//! every page on the way is checked with axe-core (WCAG 2.1 A/AA rules; no serious or critical
//! violation allowed) and photographed at desktop and phone width. The screenshots are kept in
//! `target/tmp/screenshots/` as the run's artefacts.
//!
//! axe-core comes from the npm registry (`.ci/run` installs it; `KONTAKTVEI_AXE_JS` names the
//! file). Without Chromium, chromedriver or axe-core these tests print why and skip — except
//! under `CI=true`, where they fail. They run on SQLite: what they test is the browser's side;
//! the same pages on PostgreSQL are covered by the form-level tests in `web*.rs`.

use crate::support::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub(crate) const DESKTOP: (u32, u32) = (1280, 900);
pub(crate) const PHONE: (u32, u32) = (320, 780);

fn axe_js() -> PathBuf {
    std::env::var_os("KONTAKTVEI_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".cache/kontaktvei-axe/node_modules/axe-core/axe.min.js")
        })
}

/// A browser on the app, logged in as nobody yet.
pub(crate) struct Chrome {
    client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    base: String,
    axe: String,
    shots: PathBuf,
    size: (u32, u32),
}

/// Chromium, or `None` (with the reason printed) when it cannot run here and this is not CI.
pub(crate) async fn chrome(app: &App, test: &str) -> Option<Chrome> {
    let axe = axe_js();
    let missing: Vec<String> = [Path::new(CHROMIUM), Path::new(CHROMEDRIVER), axe.as_path()]
        .into_iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        let why = format!(
            "browser test {test} needs {} (Debian's chromium and chromium-driver; axe-core from npm, see .ci/run)",
            missing.join(", ")
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why}");
        }
        eprintln!("skipped: {why}");
        return None;
    }
    let port = free_port();
    let driver = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                "--force-device-scale-factor=1", "--lang=nb",
                format!("--user-data-dir={}", profile.path().display()),
                format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            ],
        }),
    );
    let mut client = None;
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let client = client.expect("chromedriver answers within 10 s");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("screenshots")
        .join(test);
    std::fs::create_dir_all(&shots).unwrap();
    let chrome = Chrome {
        client,
        _driver: driver,
        _profile: profile,
        base: app.base.clone(),
        axe: std::fs::read_to_string(&axe).unwrap(),
        shots,
        size: DESKTOP,
    };
    chrome.resize(DESKTOP).await;
    Some(chrome)
}

impl Chrome {
    async fn resize(&self, (w, h): (u32, u32)) {
        self.client.set_window_size(w, h).await.unwrap();
    }

    pub(crate) async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// Desktop or phone width from now on.
    pub(crate) async fn width(&mut self, size: (u32, u32)) {
        self.size = size;
        self.resize(size).await;
    }

    /// Types into the field labelled `label` (the `<label>` text, as a person finds it).
    pub(crate) async fn fill(&self, label: &str, text: &str) {
        let field = self.labelled(label).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("cannot type into {label:?}: {e}"));
        field.send_keys(text).await.unwrap();
    }

    /// Chooses the option whose text is `option` in the select labelled `label`.
    pub(crate) async fn choose(&self, label: &str, option: &str) {
        let select = self.labelled(label).await;
        select.select_by_label(option).await.unwrap();
    }

    async fn labelled(&self, label: &str) -> fantoccini::elements::Element {
        let xpath = format!("//label[normalize-space()={}]", xpath_literal(label));
        let label_el = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no field labelled {label:?}: {e}"));
        let id = label_el.attr("for").await.unwrap().expect("label has for");
        self.client.find(Locator::Id(&id)).await.unwrap()
    }

    /// Clicks the first button or link with this text and waits for the next page.
    pub(crate) async fn click(&self, text: &str) {
        let xpath = format!(
            "(//button[normalize-space()={t}] | //a[normalize-space()={t}])[1]",
            t = xpath_literal(text)
        );
        let el = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("nothing to click called {text:?}: {e}"));
        self.submit(el).await;
    }

    /// Clicks and waits until the old page is gone (every button here submits a form).
    async fn submit(&self, el: fantoccini::elements::Element) {
        let before = self.client.find(Locator::Css("html")).await.unwrap();
        el.click().await.unwrap();
        for _ in 0..100 {
            if before.tag_name().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks a button inside the element (a card, a row) that contains `within`.
    pub(crate) async fn click_in(&self, within: &str, text: &str) {
        let xpath = format!(
            "(//*[(self::article or self::li or self::tr or self::details) and contains(normalize-space(), {w})]//button[normalize-space()={t}])[1]",
            w = xpath_literal(within),
            t = xpath_literal(text)
        );
        let el = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no {text:?} button near {within:?}: {e}"));
        self.submit(el).await;
    }

    /// Opens a `<details>` section by clicking its summary (unless it is open already).
    pub(crate) async fn open(&self, summary: &str) {
        let xpath = format!("//summary[normalize-space()={}]", xpath_literal(summary));
        let found = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no section {summary:?}: {e}"));
        let details = found.find(Locator::XPath("..")).await.unwrap();
        if details.attr("open").await.unwrap().is_none() {
            found.click().await.unwrap();
        }
    }

    /// What a person reads on the page.
    pub(crate) async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub(crate) async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    pub(crate) async fn sees(&self, what: &str) {
        let text = self.text().await;
        assert!(text.contains(what), "{what:?} not on the page:\n{text}");
    }

    /// Logs in through the login form, as a person does.
    pub(crate) async fn log_in(&self, username: &str, password: &str) {
        self.goto("/staff/login").await;
        self.fill("Brukernavn", username).await;
        self.fill("Passord", password).await;
        self.click("Logg inn").await;
        assert_eq!(self.path().await, "/staff", "{}", self.text().await);
    }

    /// Runs axe-core on the page: no serious or critical WCAG 2.1 A/AA violation, and the page
    /// is as wide as the window (nothing to scroll sideways at 320 px).
    pub(crate) async fn check(&self, page: &str) {
        let script = format!(
            "{}\nconst done = arguments[arguments.length - 1];\
             axe.run(document, {{runOnly: {{type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}}})\
               .then(r => done(r.violations.map(v => ({{id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.html).slice(0, 3)}}))))\
               .catch(e => done([{{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}}]));",
            self.axe
        );
        let violations = self.client.execute_async(&script, vec![]).await.unwrap();
        let serious: Vec<&Value> = violations
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            serious.is_empty(),
            "{page}: axe-core finds serious violations: {serious:#?}"
        );
        let overflow = self
            .client
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap_or(0) <= 0,
            "{page}: wider than the window by {overflow} px"
        );
    }

    /// Checks the page and saves a screenshot of the whole page at desktop and at phone width.
    pub(crate) async fn look(&mut self, name: &str) {
        let size = self.size;
        for (label, width) in [("desktop", DESKTOP), ("phone", PHONE)] {
            self.resize(width).await;
            self.check(&format!("{name} ({label})")).await;
            let height = self
                .client
                // The window's size includes the browser's own frame.
                .execute(
                    "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight;",
                    vec![],
                )
                .await
                .unwrap()
                .as_u64()
                .unwrap_or(900) as u32;
            self.resize((width.0, height.clamp(400, 6000))).await;
            self.client
                .execute("window.scrollTo(0, 0);", vec![])
                .await
                .unwrap();
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(self.shots.join(format!("{name}-{label}.png")), png).unwrap();
        }
        self.width(size).await;
    }

    pub(crate) async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// A string as an XPath literal (XPath 1.0 has no escapes).
fn xpath_literal(s: &str) -> String {
    if !s.contains('\'') {
        format!("'{s}'")
    } else if !s.contains('"') {
        format!("\"{s}\"")
    } else {
        let parts: Vec<String> = s.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}
