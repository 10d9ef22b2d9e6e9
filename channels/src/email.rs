//! E-mail to staff (coordinators, administrators): the `[email]` table of the TOML file, checked
//! and turned into a [`Mailer`] that hands one [`Mail`] to the configured transport.
//!
//! ```toml
//! [email]
//! transport = "smtp"          # outbox (default) | file | smtp
//! from = "kontaktvei <noreply@example.no>"
//! smtp_host = "smtp.example.no"
//! smtp_port = 587             # default 587 for starttls, 465 for tls, 25 for none
//! smtp_tls = "starttls"       # starttls (default) | tls | none
//! smtp_username = "kontaktvei"
//! smtp_password = "…"
//! timeout_ms = 10000
//! # transport = "file" writes one .eml per mail into file_dir instead.
//! ```
//!
//! With the outbox (the default install) nothing leaves the machine: mails stay in the database
//! for administrators to read, and [`Mailer::send`] only says so. This module owns the transport
//! and the message format only; the queue, its retries and what the mails say live elsewhere.
//! A [`SendError::Temporary`] is worth retrying (4xx reply, server down, timeout, TLS trouble), a
//! [`SendError::Permanent`] is not (5xx reply, a recipient that is not an address). Error texts
//! carry the SMTP server's reply at most, never the body or the recipient.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::response::Response;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_FROM: &str = "kontaktvei <noreply@localhost>";
const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// `[email]` in the TOML config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `outbox` (default: mails stay in the database for admins to read), `file` or `smtp`.
    pub transport: Option<String>,
    /// Default `kontaktvei <noreply@localhost>`.
    pub from: Option<String>,
    /// file: the directory for the `.eml` files.
    pub file_dir: Option<String>,
    pub smtp_host: Option<String>,
    /// Default 587 for starttls, 465 for tls, 25 for none.
    pub smtp_port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    pub smtp_tls: Option<String>,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    /// smtp: the whole exchange, from connecting to the server's last reply; default 10 000,
    /// kept between 100 and 120 000. A timeout is temporary, but the server may have taken
    /// the mail: the retry carries the same Message-ID.
    pub timeout_ms: Option<u64>,
}

/// A mistake in `[email]`; each message names its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailConfigError {
    #[error("email.transport: {0:?} is not a transport; use \"outbox\", \"file\" or \"smtp\"")]
    UnknownTransport(String),
    #[error(
        "email.from: {0:?} is not a mail address; write e.g. \"kontaktvei <noreply@example.no>\""
    )]
    InvalidFrom(String),
    #[error("email.file_dir: give the directory for the .eml files when transport = \"file\"")]
    MissingFileDir,
    #[error("email.smtp_host: give the SMTP server's host name when transport = \"smtp\"")]
    MissingSmtpHost,
    #[error("email.smtp_host: {host:?} cannot be used for TLS: {reason}")]
    InvalidSmtpHost { host: String, reason: String },
    #[error("email.smtp_port: 0 is not a port")]
    InvalidSmtpPort,
    #[error("email.smtp_tls: {0:?} is not a TLS mode; use \"starttls\", \"tls\" or \"none\"")]
    UnknownTls(String),
    #[error("email.smtp_password: smtp_username is set, so give its password too")]
    MissingPassword,
    #[error("email.smtp_username: smtp_password is set, so give the user name too")]
    MissingUsername,
}

/// One mail to send.
#[derive(Clone)]
pub struct Mail {
    /// The recipient: `name@example.no` or `Name <name@example.no>`.
    pub to: String,
    pub subject: String,
    /// Plain text.
    pub body: String,
    /// Our id, sent as `Message-ID: <id@kontaktvei>` so a retried send can be recognised.
    /// Letters, digits, `-`, `.` and `_`.
    pub message_id: String,
}

impl fmt::Debug for Mail {
    /// Shows the id only: the address and the body stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("message_id", &self.message_id)
            .finish_non_exhaustive()
    }
}

/// Where a mail went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The outbox: nothing left the machine; the mail stays in the database.
    KeptInOutbox,
    /// Written to this `.eml` file.
    File { path: String },
    /// Accepted by the SMTP server, with its reply (e.g. `250 2.0.0 OK queued as 1234`).
    Smtp { response: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later.
    #[error("temporary: {0}")]
    Temporary(String),
    /// Trying again will not help.
    #[error("permanent: {0}")]
    Permanent(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    StartTls,
    Tls,
    None,
}

impl TlsMode {
    fn name(self) -> &'static str {
        match self {
            TlsMode::StartTls => "starttls",
            TlsMode::Tls => "tls",
            TlsMode::None => "none",
        }
    }
}

#[derive(Clone)]
enum Transport {
    Outbox,
    File {
        dir: PathBuf,
        transport: AsyncFileTransport<Tokio1Executor>,
    },
    Smtp {
        host: String,
        port: u16,
        tls: TlsMode,
        username: Option<String>,
        /// lettre bounds only the TCP connect; we bound the whole exchange.
        timeout: Duration,
        transport: Arc<AsyncSmtpTransport<Tokio1Executor>>,
    },
}

/// Sends [`Mail`] through the configured transport. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl fmt::Debug for Mailer {
    /// No secrets: the password never appears, nor does lettre's own state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mailer");
        d.field("transport", &self.describe())
            .field("from", &self.from.to_string());
        if let Transport::Smtp { username, .. } = &self.transport {
            d.field("smtp_username", username);
        }
        d.finish()
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Mailer {
    /// Checks `[email]` and builds the mailer. Connects to nothing.
    pub fn from_config(cfg: &EmailConfig) -> Result<Mailer, EmailConfigError> {
        let from_text = non_empty(&cfg.from).unwrap_or(DEFAULT_FROM);
        let from: Mailbox = from_text
            .parse()
            .map_err(|_| EmailConfigError::InvalidFrom(from_text.to_owned()))?;
        let kind = non_empty(&cfg.transport).unwrap_or("outbox");
        let transport = match kind {
            "outbox" => Transport::Outbox,
            "file" => {
                let dir = non_empty(&cfg.file_dir).ok_or(EmailConfigError::MissingFileDir)?;
                Transport::File {
                    dir: PathBuf::from(dir),
                    transport: AsyncFileTransport::new(dir),
                }
            }
            "smtp" => smtp(cfg)?,
            other => return Err(EmailConfigError::UnknownTransport(other.to_owned())),
        };
        let smtp_keys_set = cfg.smtp_host.is_some()
            || cfg.smtp_port.is_some()
            || cfg.smtp_tls.is_some()
            || cfg.smtp_username.is_some()
            || cfg.smtp_password.is_some();
        if kind != "smtp" && smtp_keys_set {
            tracing::warn!(
                transport = kind,
                "email.smtp_* keys are set but email.transport is not \"smtp\"; they are ignored"
            );
        }
        if kind != "file" && cfg.file_dir.is_some() {
            tracing::warn!(
                transport = kind,
                "email.file_dir is set but email.transport is not \"file\"; it is ignored"
            );
        }
        Ok(Mailer { from, transport })
    }

    /// The default install: mails stay in the database.
    pub fn outbox() -> Mailer {
        Mailer {
            from: DEFAULT_FROM.parse().expect("the default sender parses"),
            transport: Transport::Outbox,
        }
    }

    pub fn is_outbox(&self) -> bool {
        matches!(self.transport, Transport::Outbox)
    }

    /// For logs and the admin pages: `outbox`, `file /var/mail/kontaktvei`,
    /// `smtp 127.0.0.1:2525 (starttls)`. No secrets.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Outbox => "outbox".to_owned(),
            Transport::File { dir, .. } => format!("file {}", dir.display()),
            Transport::Smtp {
                host, port, tls, ..
            } => format!("smtp {host}:{port} ({})", tls.name()),
        }
    }

    /// Hands the mail to the transport. The outbox sends nothing and answers
    /// [`Sent::KeptInOutbox`].
    pub async fn send(&self, mail: &Mail) -> Result<Sent, SendError> {
        if let Transport::Outbox = self.transport {
            return Ok(Sent::KeptInOutbox);
        }
        let message = self.message(mail)?;
        match &self.transport {
            Transport::Outbox => Ok(Sent::KeptInOutbox),
            Transport::File { dir, transport } => {
                let id = transport.send(message).await.map_err(|e| {
                    SendError::Temporary(format!(
                        "cannot write to email.file_dir {}: {e}",
                        dir.display()
                    ))
                })?;
                let path = dir.join(format!("{id}.eml"));
                Ok(Sent::File {
                    path: path.display().to_string(),
                })
            }
            Transport::Smtp {
                transport, timeout, ..
            } => match tokio::time::timeout(*timeout, transport.send(message)).await {
                Err(_elapsed) => Err(SendError::Temporary(format!(
                    "{}: no answer within {} ms",
                    self.describe(),
                    timeout.as_millis()
                ))),
                Ok(Ok(response)) => Ok(Sent::Smtp {
                    response: reply_text(&response),
                }),
                Ok(Err(e)) => {
                    let text = format!("{}: {e}", self.describe());
                    if e.is_permanent() {
                        Err(SendError::Permanent(text))
                    } else {
                        Err(SendError::Temporary(text))
                    }
                }
            },
        }
    }

    fn message(&self, mail: &Mail) -> Result<Message, SendError> {
        let to: Mailbox = mail.to.trim().parse().map_err(|_| {
            SendError::Permanent("the recipient is not a valid e-mail address".into())
        })?;
        if !valid_id(&mail.message_id) {
            return Err(SendError::Permanent(
                "the message id must be letters, digits, '-', '.' and '_'".into(),
            ));
        }
        // A header is one line.
        let subject: String = mail
            .subject
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{}@kontaktvei>", mail.message_id)))
            .date_now()
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| SendError::Permanent(format!("cannot build the mail: {e}")))
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn reply_text(response: &Response) -> String {
    let lines: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), lines.join(" "))
        .trim_end()
        .to_owned()
}

fn smtp(cfg: &EmailConfig) -> Result<Transport, EmailConfigError> {
    let host = non_empty(&cfg.smtp_host).ok_or(EmailConfigError::MissingSmtpHost)?;
    let tls = match non_empty(&cfg.smtp_tls).unwrap_or("starttls") {
        "starttls" => TlsMode::StartTls,
        "tls" => TlsMode::Tls,
        "none" => TlsMode::None,
        other => return Err(EmailConfigError::UnknownTls(other.to_owned())),
    };
    let port = match cfg.smtp_port {
        Some(0) => return Err(EmailConfigError::InvalidSmtpPort),
        Some(p) => p,
        None => match tls {
            TlsMode::StartTls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        },
    };
    let username = non_empty(&cfg.smtp_username);
    // A password may be anything, spaces included; only "missing" is checked.
    let password = cfg.smtp_password.as_deref().filter(|p| !p.is_empty());
    let credentials = match (username, password) {
        (Some(u), Some(p)) => Some(Credentials::new(u.to_owned(), p.to_owned())),
        (Some(_), None) => return Err(EmailConfigError::MissingPassword),
        (None, Some(_)) => return Err(EmailConfigError::MissingUsername),
        (None, None) => None,
    };
    let bad_host = |e: lettre::transport::smtp::Error| EmailConfigError::InvalidSmtpHost {
        host: host.to_owned(),
        reason: e.to_string(),
    };
    let builder = match tls {
        TlsMode::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(bad_host)?
        }
        TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(bad_host)?,
        TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
    };
    let timeout = Duration::from_millis(
        cfg.timeout_ms
            .unwrap_or(DEFAULT_TIMEOUT_MS)
            .clamp(100, 120_000),
    );
    let mut builder = builder.port(port).timeout(Some(timeout));
    if let Some(credentials) = credentials {
        builder = builder
            .credentials(credentials)
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(Transport::Smtp {
        host: host.to_owned(),
        port,
        tls,
        username: username.map(str::to_owned),
        timeout,
        transport: Arc::new(builder.build()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let cfg = EmailConfig {
            transport: Some("smtp".into()),
            smtp_host: Some("smtp.example.no".into()),
            smtp_username: Some("kontaktvei".into()),
            smtp_password: Some("hemmelig-Passord-42".into()),
            ..Default::default()
        };
        let mailer = Mailer::from_config(&cfg).unwrap();
        for text in [
            format!("{mailer:?}"),
            format!("{mailer:#?}"),
            mailer.describe(),
        ] {
            assert!(!text.contains("hemmelig"), "{text}");
        }
        assert_eq!(mailer.describe(), "smtp smtp.example.no:587 (starttls)");
        assert!(format!("{mailer:?}").contains("kontaktvei"));
    }

    #[test]
    fn mail_debug_hides_address_and_body() {
        let mail = Mail {
            to: "ola@example.no".into(),
            subject: "s".into(),
            body: "kode 1234".into(),
            message_id: "m1".into(),
        };
        let text = format!("{mail:?}");
        assert!(!text.contains("ola@") && !text.contains("1234"), "{text}");
    }

    #[test]
    fn default_is_the_outbox() {
        let mailer = Mailer::from_config(&EmailConfig::default()).unwrap();
        assert!(mailer.is_outbox());
        assert!(Mailer::outbox().is_outbox());
        assert_eq!(mailer.describe(), "outbox");
    }
}
