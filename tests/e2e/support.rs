//! The test harness: spawn the binary, create organisations through its CLI, and speak JSON.

use reqwest::StatusCode;
use serde_json::Value;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_kontaktvei");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test.
pub struct TestDb {
    pub url: String,
    dir: PathBuf,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// `None` when the backend is not available here (and that is allowed).
    pub async fn new(backend: Backend) -> Option<TestDb> {
        let dir =
            std::env::temp_dir().join(format!("kontaktvei-e2e-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        match backend {
            Backend::Sqlite => Some(TestDb {
                url: format!("sqlite://{}", dir.join("kontaktvei.db").display()),
                dir,
                postgres: None,
            }),
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var("KONTAKTVEI_TEST_DATABASE_URL") else {
                    if std::env::var("CI").is_ok_and(|v| v == "true") {
                        panic!(
                            "CI=true but KONTAKTVEI_TEST_DATABASE_URL is not set: the PostgreSQL tests must run in CI"
                        );
                    }
                    eprintln!(
                        "skipping the PostgreSQL run: KONTAKTVEI_TEST_DATABASE_URL is not set"
                    );
                    return None;
                };
                let name = format!("kv_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = connect_pg(&admin_url).await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create the test database");
                let mut url =
                    url::Url::parse(&admin_url).expect("KONTAKTVEI_TEST_DATABASE_URL is a URL");
                url.set_path(&format!("/{name}"));
                Some(TestDb {
                    url: url.to_string(),
                    dir,
                    postgres: Some((admin_url, name)),
                })
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    async fn drop_database(&self) {
        if let Some((admin_url, name)) = &self.postgres {
            let mut conn = connect_pg(admin_url).await;
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn connect_pg(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at KONTAKTVEI_TEST_DATABASE_URL: {e}"))
}

/// The output of one CLI run.
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// A running gateway on its own database.
pub struct App {
    pub db: TestDb,
    pub base: String,
    pub http: reqwest::Client,
    child: Option<Child>,
    /// The server's clock runs this far ahead of the real one (see [`daytime_shift`]).
    shift: chrono::TimeDelta,
    anchor: chrono::DateTime<chrono::Utc>,
    /// How many times faster than real time the server's clock runs.
    speed: f64,
    /// The address `serve` listens on (port 0 unless a test needs to know it in advance).
    pub listen: String,
    /// A configuration file given to every command (`--config`).
    pub config: Option<PathBuf>,
}

/// How far to move the server's clock so the tests run in Oslo daytime, whenever they run: SMS
/// wait out quiet hours (21–08), so a test at 01:00 would see no SMS. Zero between 08:30 and
/// 20:00 Oslo time, else up to the next 09:00 (at most 13 h, less than any booking's lead time
/// in these tests).
pub fn daytime_shift(real: chrono::DateTime<chrono::Utc>) -> chrono::TimeDelta {
    use chrono::{TimeZone, Timelike};
    let local = real.with_timezone(&chrono_tz::Europe::Oslo);
    let minutes = local.hour() * 60 + local.minute();
    if (8 * 60 + 30..20 * 60).contains(&minutes) {
        return chrono::TimeDelta::zero();
    }
    let mut day = local.date_naive();
    if minutes >= 20 * 60 {
        day = day.succ_opt().unwrap();
    }
    let nine = chrono_tz::Europe::Oslo
        .from_local_datetime(&day.and_hms_opt(9, 0, 0).unwrap())
        .earliest()
        .unwrap();
    nine.with_timezone(&chrono::Utc) - real
}

impl App {
    /// A server whose clock runs `speed` times as fast as real time (3600: an hour a second).
    /// A server listening on `listen` with this TOML configuration (an address known in advance,
    /// for peers such as Kannel that must be told where to call back).
    pub async fn start_configured(db: TestDb, listen: &str, toml: &str) -> App {
        let mut app = App::start_fast(db, 1.0).await;
        let file = app.db.dir().join("kontaktvei.toml");
        std::fs::write(&file, toml).unwrap();
        app.listen = listen.to_owned();
        app.config = Some(file);
        app.restart().await;
        app
    }

    pub async fn start_fast(db: TestDb, speed: f64) -> App {
        let anchor = chrono::Utc::now();
        let mut app = App {
            db,
            base: String::new(),
            http: reqwest::Client::new(),
            child: None,
            shift: daytime_shift(anchor),
            anchor,
            speed,
            listen: "127.0.0.1:0".into(),
            config: None,
        };
        app.restart().await;
        app
    }

    /// The server's "now".
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let real = (chrono::Utc::now() - self.anchor)
            .num_microseconds()
            .unwrap_or(0);
        self.anchor
            + self.shift
            + chrono::TimeDelta::microseconds((real as f64 * self.speed) as i64)
    }

    /// (Re)starts the server process on the same database.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut child = self
            .command(&["serve", "--listen", &self.listen.clone()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn kontaktvei serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the server announced its address within 30 s")
            .unwrap()
            .expect("the server printed a line");
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"));
        self.base = base.trim().to_owned();
        self.child = Some(child);
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit code.
    pub async fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = child.id()?.to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .expect("the server stops within 15 s of SIGTERM")
            .unwrap();
        status.code()
    }

    /// The binary with this test's database and no stray configuration.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(args)
            .current_dir(self.db.dir())
            .env_remove("KONTAKTVEI_CONFIG")
            .env_remove("KONTAKTVEI_LISTEN")
            .env("KONTAKTVEI_DATABASE_URL", &self.db.url)
            .env("KONTAKTVEI_DATABASE_MAX_CONNECTIONS", "4")
            .env("KONTAKTVEI_WORKER_INTERVAL_MS", "50")
            .env(
                "KONTAKTVEI_CLOCK_START",
                (self.anchor + self.shift).to_rfc3339(),
            )
            .env("KONTAKTVEI_CLOCK_ANCHOR", self.anchor.to_rfc3339())
            .env("KONTAKTVEI_CLOCK_SPEED", self.speed.to_string())
            .env("RUST_LOG", "warn");
        cmd
    }

    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        cli_output(self.command(args)).await
    }

    /// `admin add-org`: the new organisation's id and its admin key.
    pub async fn add_org(&self, name: &str, kind: &str) -> (String, String) {
        let out = self
            .cli(&["admin", "add-org", "--name", name, "--kind", kind])
            .await;
        assert_eq!(out.code, 0, "add-org failed: {}", out.stderr);
        let v = out.json();
        (
            v["organisation_id"].as_str().unwrap().to_owned(),
            v["api_key"].as_str().unwrap().to_owned(),
        )
    }

    /// `admin key create`: a key with another role.
    pub async fn add_key(&self, org: &str, role: &str) -> String {
        let out = self
            .cli(&["admin", "key", "create", "--org", org, "--role", role])
            .await;
        assert_eq!(out.code, 0, "key create failed: {}", out.stderr);
        out.json()["api_key"].as_str().unwrap().to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    pub async fn get(&self, key: &str, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    pub async fn patch(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .patch(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    /// Registers a patient and returns its id (panics unless 201).
    pub async fn patient(&self, key: &str, name: &str) -> String {
        let (status, body) = self
            .post(
                key,
                "/patients",
                serde_json::json!({"name": name, "birth_year": 1979, "language": "nb"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

pub async fn cli_output(mut cmd: Command) -> CliOutput {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run kontaktvei");
    CliOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Status and JSON body; problem responses must be `application/problem+json`.
pub async fn answer(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(
            content_type, "application/problem+json",
            "error answers are problem+json: {body}"
        );
        assert_eq!(
            body["status"].as_u64(),
            Some(u64::from(status.as_u16())),
            "{body}"
        );
    }
    (status, body)
}

/// A free loopback port (bound and released; fine for a test that uses it at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 50 ms for up to 10 s until it returns `Some`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for: {what}");
}

/// The field names a 422 answer lists.
pub fn error_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// An RFC 3339 time `minutes` from now (real time; the server's clock is at most 13 h ahead).
pub fn in_minutes(minutes: i64) -> String {
    (chrono::Utc::now() + chrono::TimeDelta::minutes(minutes)).to_rfc3339()
}

/// Runs one scenario on a fresh database of `backend`, then removes the database, also when the
/// scenario panicked.
pub async fn run<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(App) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_at_speed(backend, 1.0, scenario).await;
}

/// [`run`] with the server's clock running `speed` times as fast as real time.
pub async fn run_at_speed<F, Fut>(backend: Backend, speed: f64, scenario: F)
where
    F: FnOnce(App) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let url = db.url.clone();
    let cleanup = TestDb {
        url,
        dir: db.dir.clone(),
        postgres: db.postgres.clone(),
    };
    let outcome = tokio::spawn(async move {
        let app = App::start_fast(db, speed).await;
        scenario(app).await;
    })
    .await;
    cleanup.drop_database().await;
    if let Err(e) = outcome
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// `scenarios!(a, b)` makes `a::sqlite`, `a::postgres`, `b::sqlite`, … from `async fn a(app: App)`.
#[macro_export]
macro_rules! scenarios {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::support::run($crate::support::Backend::Sqlite, super::$name).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::support::run($crate::support::Backend::Postgres, super::$name).await;
                }
            }
        )+
    };
}
