//! Configuration in layers: built-in defaults → a TOML file (`--config` or `KONTAKTVEI_CONFIG`)
//! → environment variables (`KONTAKTVEI_<KEY>`) → command-line flags.
//!
//! Written by hand rather than with a layering crate: there are few keys, and the one-line
//! errors must name the exact key (file key or variable) and say how to fix it.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `sqlite://…` (default) or `postgres://…`. May hold a password: never log it.
    pub database_url: String,
    pub database_max_connections: u32,
    pub log_format: LogFormat,
    pub log_level: String,
    /// The address patients reach the one-click acknowledgement page at (`{this}/k/{token}`);
    /// `None`: the address the server listens on.
    pub public_base_url: Option<String>,
    /// How often the escalation worker looks for due steps, in milliseconds.
    pub worker_interval_ms: u64,
    /// A shifted, faster clock for demonstrations and tests; `None` is the real time.
    pub clock: Option<kontaktvei_store::ShiftedClock>,
    /// SMS providers (`[[sms_provider]]` tables; file only). Empty: the outbox.
    pub sms_providers: Vec<kontaktvei_channels::sms::config::ProviderConfig>,
    /// Staff e-mail (`[email]`; file only). Default: kept in the database for admins to read.
    pub email: kontaktvei_channels::email::EmailConfig,
}

/// A configuration error: which key, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn err(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// The file layer: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLayer {
    listen: Option<String>,
    database_url: Option<String>,
    database_max_connections: Option<u32>,
    log_format: Option<String>,
    log_level: Option<String>,
    public_base_url: Option<String>,
    worker_interval_ms: Option<u64>,
    clock_start: Option<String>,
    clock_anchor: Option<String>,
    clock_speed: Option<f64>,
    #[serde(default)]
    sms_provider: Vec<kontaktvei_channels::sms::config::ProviderConfig>,
    #[serde(default)]
    email: kontaktvei_channels::email::EmailConfig,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://kontaktvei.db";

impl Config {
    /// Loads the layers. `env` is passed in (not read from the process here) so tests can
    /// give their own; `config_file` is the `--config` flag.
    pub fn load(
        config_file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        listen_flag: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let mut layer = FileLayer::default();
        let file: Option<PathBuf> = config_file
            .map(Path::to_path_buf)
            .or_else(|| env("KONTAKTVEI_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err("config", format!("cannot read {}: {e}", path.display())))?;
            layer = toml::from_str(&text).map_err(|e| toml_error(&path, &e))?;
        }

        let pick = |key: &str, from_file: Option<String>| -> Option<(String, String)> {
            let var = format!("KONTAKTVEI_{}", key.to_uppercase());
            match env(&var) {
                Some(v) => Some((var, v)),
                None => from_file.map(|v| (key.to_owned(), v)),
            }
        };

        let listen = match listen_flag {
            Some(flag) => ("--listen".to_owned(), flag.to_owned()),
            None => {
                pick("listen", layer.listen).unwrap_or(("listen".into(), DEFAULT_LISTEN.into()))
            }
        };
        let listen = listen.1.parse::<SocketAddr>().map_err(|_| {
            err(
                listen.0,
                format!(
                    "{:?} is not an address:port such as 127.0.0.1:8080",
                    listen.1
                ),
            )
        })?;

        let (db_key, database_url) = pick("database_url", layer.database_url)
            .unwrap_or(("database_url".into(), DEFAULT_DATABASE_URL.into()));
        if kontaktvei_store::Backend::of_url(&database_url).is_none() {
            // The URL may carry a password, so only its scheme is repeated back.
            let scheme = database_url.split(':').next().unwrap_or_default();
            return Err(err(
                db_key,
                format!(
                    "unsupported scheme {scheme:?}; use sqlite://FILE or postgres://USER:PASSWORD@HOST:PORT/DB"
                ),
            ));
        }

        let database_max_connections = match pick(
            "database_max_connections",
            layer.database_max_connections.map(|n| n.to_string()),
        ) {
            None => 10,
            Some((key, v)) => match v.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    return Err(err(
                        key,
                        format!("{v:?} must be a whole number from 1 to 1000"),
                    ));
                }
            },
        };

        let log_format = match pick("log_format", layer.log_format) {
            None => LogFormat::Text,
            Some((_, v)) if v == "text" => LogFormat::Text,
            Some((_, v)) if v == "json" => LogFormat::Json,
            Some((key, v)) => return Err(err(key, format!("{v:?} must be \"text\" or \"json\""))),
        };

        let (level_key, log_level) =
            pick("log_level", layer.log_level).unwrap_or(("log_level".into(), "info".into()));
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(err(
                level_key,
                format!(
                    "{log_level:?} is not a log filter; use e.g. info or info,kontaktvei_gateway=debug"
                ),
            ));
        }

        let public_base_url = match pick("public_base_url", layer.public_base_url) {
            None => None,
            Some((key, v)) => {
                if !(v.starts_with("http://") || v.starts_with("https://"))
                    || v.contains(char::is_whitespace)
                {
                    return Err(err(
                        key,
                        format!(
                            "{v:?} must be an http:// or https:// address, e.g. https://kontakt.example.no"
                        ),
                    ));
                }
                Some(v.trim_end_matches('/').to_owned())
            }
        };

        let worker_interval_ms = match pick(
            "worker_interval_ms",
            layer.worker_interval_ms.map(|n| n.to_string()),
        ) {
            None => 1000,
            Some((key, v)) => match v.parse::<u64>() {
                Ok(n) if (10..=600_000).contains(&n) => n,
                _ => {
                    return Err(err(
                        key,
                        format!("{v:?} must be a whole number of milliseconds from 10 to 600000"),
                    ));
                }
            },
        };

        let instant = |key: String, v: String| {
            chrono::DateTime::parse_from_rfc3339(&v)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| {
                    err(
                        key,
                        format!("{v:?} is not an RFC 3339 time such as 2026-03-10T09:00:00+01:00"),
                    )
                })
        };
        let clock_start = pick("clock_start", layer.clock_start)
            .map(|(k, v)| instant(k, v))
            .transpose()?;
        let clock_anchor = pick("clock_anchor", layer.clock_anchor)
            .map(|(k, v)| instant(k, v))
            .transpose()?;
        let clock_speed = match pick("clock_speed", layer.clock_speed.map(|n| n.to_string())) {
            None => None,
            Some((key, v)) => match v.parse::<f64>() {
                Ok(n) if n > 0.0 && n <= 1_000_000.0 => Some(n),
                _ => {
                    return Err(err(
                        key,
                        format!("{v:?} must be a number above 0 (1 is real time)"),
                    ));
                }
            },
        };
        let clock = match (clock_start, clock_anchor, clock_speed) {
            (None, None, None) => None,
            (start, anchor, speed) => {
                let now = chrono::Utc::now();
                let anchor = anchor.unwrap_or(now);
                Some(kontaktvei_store::ShiftedClock {
                    start: start.unwrap_or(anchor),
                    anchor,
                    speed: speed.unwrap_or(1.0),
                })
            }
        };

        kontaktvei_channels::sms::config::check(&layer.sms_provider)
            .map_err(|e| err(e.key, e.message))?;

        if let Err(e) = kontaktvei_channels::email::Mailer::from_config(&layer.email) {
            let message = e.to_string();
            // The error names its key first ("email.smtp_host: …").
            let (key, message) = message
                .split_once(": ")
                .filter(|(k, _)| k.starts_with("email"))
                .map_or(("email".to_owned(), message.clone()), |(k, m)| {
                    (k.to_owned(), m.to_owned())
                });
            return Err(err(key, message));
        }

        Ok(Config {
            sms_providers: layer.sms_provider,
            email: layer.email,
            clock,
            listen,
            database_url,
            database_max_connections,
            log_format,
            log_level,
            public_base_url,
            worker_interval_ms,
        })
    }

    /// Loads from the real process environment.
    pub fn from_process(
        config_file: Option<&Path>,
        listen_flag: Option<&str>,
    ) -> Result<Config, ConfigError> {
        Self::load(config_file, &|k| std::env::var(k).ok(), listen_flag)
    }
}

fn toml_error(path: &Path, e: &toml::de::Error) -> ConfigError {
    // toml's message spans several lines with a source excerpt; keep its first line.
    let message = e
        .message()
        .lines()
        .next()
        .unwrap_or("cannot parse")
        .to_owned();
    let key = match e.span() {
        Some(span) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let line_start = text[..span.start.min(text.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            let line = text[line_start..].lines().next().unwrap_or_default();
            line.split('=').next().unwrap_or_default().trim().to_owned()
        }
        None => String::new(),
    };
    let key = if key.is_empty() {
        path.display().to_string()
    } else {
        key
    };
    err(key, format!("{message} (in {})", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;

    fn load(
        file: Option<&str>,
        vars: &[(&str, &str)],
        flag: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        if let Some(text) = file {
            tmp.write_all(text.as_bytes()).unwrap();
        }
        Config::load(file.map(|_| tmp.path()), &|k| vars.get(k).cloned(), flag)
    }

    #[test]
    fn the_shipped_example_file_is_valid_and_says_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kontaktvei.example.toml");
        let c = Config::load(Some(&path), &|_| None, None).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.database_max_connections, 10);
    }

    #[test]
    fn defaults_need_no_configuration() {
        let c = load(None, &[], None).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://kontaktvei.db");
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn env_beats_file_and_flag_beats_env() {
        let file = "listen = \"127.0.0.1:9000\"\ndatabase_max_connections = 3\n";
        let c = load(Some(file), &[], None).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.database_max_connections, 3);
        let c = load(Some(file), &[("KONTAKTVEI_LISTEN", "127.0.0.1:9001")], None).unwrap();
        assert_eq!(c.listen.port(), 9001);
        let c = load(
            Some(file),
            &[("KONTAKTVEI_LISTEN", "127.0.0.1:9001")],
            Some("127.0.0.1:0"),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 0);
    }

    #[test]
    fn a_shifted_clock_is_opt_in() {
        assert!(
            load(None, &[], None).unwrap().clock.is_none(),
            "real time by default"
        );
        let c = load(
            None,
            &[
                ("KONTAKTVEI_CLOCK_START", "2026-03-10T09:00:00+01:00"),
                ("KONTAKTVEI_CLOCK_SPEED", "60"),
            ],
            None,
        )
        .unwrap();
        let clock = c.clock.unwrap();
        assert_eq!(clock.start.to_rfc3339(), "2026-03-10T08:00:00+00:00");
        assert_eq!(clock.speed, 60.0);
        let e = load(None, &[("KONTAKTVEI_CLOCK_SPEED", "0")], None).unwrap_err();
        assert_eq!(e.key, "KONTAKTVEI_CLOCK_SPEED");
        let e = load(Some("clock_start = \"tuesday\"\n"), &[], None).unwrap_err();
        assert_eq!(e.key, "clock_start");
        let e = load(
            None,
            &[("KONTAKTVEI_PUBLIC_BASE_URL", "kontakt.example.no")],
            None,
        )
        .unwrap_err();
        assert_eq!(e.key, "KONTAKTVEI_PUBLIC_BASE_URL");
    }

    #[test]
    fn sms_providers_are_checked_at_load() {
        let ok = "[[sms_provider]]\nname = \"kannel\"\nkind = \"kannel\"\nurl = \"http://127.0.0.1:13013/cgi-bin/sendsms\"\nusername = \"u\"\npassword = \"p\"\nsecret = \"0123456789abcdef0123\"\n";
        assert_eq!(load(Some(ok), &[], None).unwrap().sms_providers.len(), 1);
        let no_secret = ok.replace("secret = \"0123456789abcdef0123\"\n", "");
        assert_eq!(
            load(Some(&no_secret), &[], None).unwrap_err().key,
            "sms_provider[0].secret"
        );
        let bad_kind = ok.replace("kind = \"kannel\"", "kind = \"pigeon\"");
        assert_eq!(
            load(Some(&bad_kind), &[], None).unwrap_err().key,
            "sms_provider[0].kind"
        );
        let bad_url = ok.replace("http://127.0.0.1:13013/cgi-bin/sendsms", "not a url");
        assert_eq!(
            load(Some(&bad_url), &[], None).unwrap_err().key,
            "sms_provider[0].url"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let e = load(None, &[("KONTAKTVEI_LISTEN", "nowhere")], None).unwrap_err();
        assert_eq!(e.key, "KONTAKTVEI_LISTEN");
        let e = load(Some("database_url = \"mysql://x\"\n"), &[], None).unwrap_err();
        assert_eq!(e.key, "database_url");
        assert!(
            !e.to_string().contains("mysql://x"),
            "never echo the URL: {e}"
        );
        let e = load(
            Some("listen = \"127.0.0.1:1\"\nlisten_port = 3\n"),
            &[],
            None,
        )
        .unwrap_err();
        assert_eq!(e.key, "listen_port", "{e}");
        let e = load(Some("log_format = \"xml\"\n"), &[], None).unwrap_err();
        assert_eq!(e.key, "log_format");
        let e = load(None, &[("KONTAKTVEI_DATABASE_MAX_CONNECTIONS", "0")], None).unwrap_err();
        assert_eq!(e.key, "KONTAKTVEI_DATABASE_MAX_CONNECTIONS");
        let e = load(Some("database_max_connections = \"many\"\n"), &[], None).unwrap_err();
        assert_eq!(e.key, "database_max_connections", "{e}");
    }
}
