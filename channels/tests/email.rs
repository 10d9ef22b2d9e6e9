//! The staff e-mail transport (`email::Mailer`) against a **real** SMTP server: aiosmtpd, run by
//! Debian's `/usr/bin/python3` from `tests/smtp_server.py`, one server per test on a port the
//! kernel picks. The server writes every mail it accepts to a JSON file; the tests read those
//! files back (parsed by Python's e-mail package, so MIME encoding is checked by a real reader).
//!
//! Without `/usr/bin/python3` and its aiosmtpd the SMTP tests skip with a reason, except when
//! `CI=true`, where they fail.

use kontaktvei_channels::email::{EmailConfig, EmailConfigError, Mail, Mailer, SendError, Sent};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PYTHON: &str = "/usr/bin/python3";
const SUBJECT: &str = "Ny oppgave: ring pasienten før kl. 14 (Ærlig, Østre, Åsen)";
const BODY: &str = "Hei!\n\nPasienten på Ås har ikke svart. Ring før 14.00.\nÆØÅ æøå\n";

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kontaktvei-email-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One running `smtp_server.py`; killed on drop.
struct SmtpServer {
    port: u16,
    dir: TempDir,
    _child: Child,
}

impl SmtpServer {
    /// `None` (after saying why) when aiosmtpd is not installed; panics then if `CI=true`.
    async fn start(args: &[&str]) -> Option<SmtpServer> {
        let available = std::process::Command::new(PYTHON)
            .args(["-c", "import aiosmtpd.controller"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !available {
            let reason = format!(
                "{PYTHON} with aiosmtpd is missing (Debian: apt-get install python3-aiosmtpd)"
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true and the SMTP tests cannot run: {reason}");
            }
            eprintln!("skipped: {reason}");
            return None;
        }
        let dir = TempDir::new("smtp");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let log = std::fs::File::create(dir.0.join("server.log")).unwrap();
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg("0")
            .arg(&dir.0)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        let read = tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        let port = match read {
            Ok(Ok(_)) => line.trim().parse().ok(),
            _ => None,
        };
        let Some(port) = port else {
            let log = std::fs::read_to_string(dir.0.join("server.log")).unwrap_or_default();
            panic!("smtp_server.py did not print its port (got {line:?}); its log:\n{log}");
        };
        Some(SmtpServer {
            port,
            dir,
            _child: child,
        })
    }

    /// A mailer for this server: plain SMTP unless `cfg` says otherwise.
    fn mailer(&self, mut cfg: EmailConfig) -> Mailer {
        cfg.transport.get_or_insert("smtp".into());
        cfg.smtp_host.get_or_insert("127.0.0.1".into());
        cfg.smtp_port.get_or_insert(self.port);
        cfg.smtp_tls.get_or_insert("none".into());
        cfg.timeout_ms.get_or_insert(5_000);
        Mailer::from_config(&cfg).unwrap()
    }

    /// The mails it accepted, in order.
    fn received(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir.0)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort_by_key(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u32>().ok())
        });
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

fn mail(id: &str) -> Mail {
    Mail {
        to: "Kari Koordinator <kari@helse.example.no>".into(),
        subject: SUBJECT.into(),
        body: BODY.into(),
        message_id: id.into(),
    }
}

fn assert_delivered(got: &Value, id: &str) {
    assert_eq!(got["mail_from"], "noreply@localhost");
    assert_eq!(
        got["rcpt_tos"],
        serde_json::json!(["kari@helse.example.no"])
    );
    assert_eq!(got["subject"], SUBJECT);
    assert_eq!(got["to"], "Kari Koordinator <kari@helse.example.no>");
    assert_eq!(got["message_id"], format!("<{id}@kontaktvei>"));
    assert_eq!(got["content_type"], "text/plain");
    // SMTP data ends with a line break of its own.
    let body = got["body"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(body.trim_end(), BODY.trim_end());
    let raw = got["data"].as_str().unwrap();
    assert!(
        raw.contains(&format!("Message-ID: <{id}@kontaktvei>")),
        "{raw}"
    );
    assert!(raw.contains("\r\nDate: "), "{raw}");
    assert!(raw.contains("charset=utf-8"), "{raw}");
}

#[tokio::test]
async fn plain_smtp_send_arrives_with_subject_to_message_id_and_norwegian_letters() {
    let Some(server) = SmtpServer::start(&[]).await else {
        return;
    };
    let mailer = server.mailer(EmailConfig::default());
    assert_eq!(
        mailer.describe(),
        format!("smtp 127.0.0.1:{} (none)", server.port)
    );
    let sent = mailer
        .send(&mail("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"))
        .await;
    let Ok(Sent::Smtp { response }) = sent else {
        panic!("{sent:?}");
    };
    assert!(
        response.starts_with("250 2.0.0 OK queued as 1"),
        "{response}"
    );
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_delivered(&got[0], "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    assert_eq!(got[0]["auth_login"], Value::Null);
}

#[tokio::test]
async fn smtp_auth_logs_in_and_a_wrong_password_is_permanent() {
    let Some(server) = SmtpServer::start(&["--auth", "kontaktvei:s3cret pass"]).await else {
        return;
    };
    let with = |user: &str, password: &str| {
        server.mailer(EmailConfig {
            smtp_username: Some(user.into()),
            smtp_password: Some(password.into()),
            ..Default::default()
        })
    };
    let sent = with("kontaktvei", "s3cret pass")
        .send(&mail("auth-1"))
        .await;
    assert!(matches!(sent, Ok(Sent::Smtp { .. })), "{sent:?}");
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_delivered(&got[0], "auth-1");
    assert_eq!(got[0]["auth_login"], "kontaktvei");

    let wrong = with("kontaktvei", "wrong").send(&mail("auth-2")).await;
    let Err(SendError::Permanent(text)) = wrong else {
        panic!("{wrong:?}");
    };
    assert!(text.contains("535"), "{text}");
    assert!(!text.contains("wrong"), "{text}");

    // The server requires AUTH: without credentials nothing gets through.
    let anonymous = server
        .mailer(EmailConfig::default())
        .send(&mail("auth-3"))
        .await;
    assert!(
        matches!(anonymous, Err(SendError::Permanent(_))),
        "{anonymous:?}"
    );
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn a_451_is_temporary_and_the_retry_goes_through() {
    let Some(server) = SmtpServer::start(&["--refuse-first", "1"]).await else {
        return;
    };
    let mailer = server.mailer(EmailConfig::default());
    let first = mailer.send(&mail("retry-1")).await;
    let Err(SendError::Temporary(text)) = first else {
        panic!("{first:?}");
    };
    assert!(
        text.contains("451") && text.contains("try again later"),
        "{text}"
    );
    assert!(server.received().is_empty());

    let second = mailer.send(&mail("retry-1")).await;
    assert!(matches!(second, Ok(Sent::Smtp { .. })), "{second:?}");
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_delivered(&got[0], "retry-1");
}

#[tokio::test]
async fn a_550_is_permanent_and_names_neither_body_nor_address() {
    let Some(server) = SmtpServer::start(&["--reject-all"]).await else {
        return;
    };
    let sent = server
        .mailer(EmailConfig::default())
        .send(&mail("reject-1"))
        .await;
    let Err(SendError::Permanent(text)) = sent else {
        panic!("{sent:?}");
    };
    assert!(text.contains("550") && text.contains("rejected"), "{text}");
    assert!(
        !text.contains("kari") && !text.contains("Pasienten"),
        "{text}"
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn nothing_listening_is_temporary() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mailer = Mailer::from_config(&EmailConfig {
        transport: Some("smtp".into()),
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: Some(port),
        smtp_tls: Some("none".into()),
        ..Default::default()
    })
    .unwrap();
    let sent = mailer.send(&mail("down-1")).await;
    let Err(SendError::Temporary(text)) = sent else {
        panic!("{sent:?}");
    };
    assert!(text.contains("refused"), "{text}");
}

#[tokio::test]
async fn a_silent_server_times_out_as_temporary() {
    // Accepted by the kernel's backlog, but no greeting ever comes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mailer = Mailer::from_config(&EmailConfig {
        transport: Some("smtp".into()),
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: Some(port),
        smtp_tls: Some("none".into()),
        timeout_ms: Some(300),
        ..Default::default()
    })
    .unwrap();
    let started = std::time::Instant::now();
    let sent = mailer.send(&mail("silent-1")).await;
    let Err(SendError::Temporary(text)) = sent else {
        panic!("{sent:?}");
    };
    assert!(text.contains("no answer within 300 ms"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);
}

#[tokio::test]
async fn starttls_never_falls_back_to_plain_text() {
    // aiosmtpd here offers no STARTTLS; the mail must not go out unencrypted.
    let Some(server) = SmtpServer::start(&[]).await else {
        return;
    };
    let mailer = server.mailer(EmailConfig {
        smtp_tls: Some("starttls".into()),
        ..Default::default()
    });
    let sent = mailer.send(&mail("tls-1")).await;
    let Err(SendError::Temporary(text)) = sent else {
        panic!("{sent:?}");
    };
    assert!(text.contains("STARTTLS"), "{text}");
    let tls = server.mailer(EmailConfig {
        smtp_tls: Some("tls".into()),
        ..Default::default()
    });
    let sent = tls.send(&mail("tls-2")).await;
    assert!(matches!(sent, Err(SendError::Temporary(_))), "{sent:?}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_bad_recipient_or_message_id_is_permanent_and_nothing_is_sent() {
    let Some(server) = SmtpServer::start(&[]).await else {
        return;
    };
    let mailer = server.mailer(EmailConfig::default());
    let mut bad = mail("bad-1");
    bad.to = "not an address".into();
    let sent = mailer.send(&bad).await;
    let Err(SendError::Permanent(text)) = sent else {
        panic!("{sent:?}");
    };
    assert!(!text.contains("not an address"), "{text}");
    let mut bad = mail("bad id>\r\nBcc: x@y");
    bad.to = "kari@helse.example.no".into();
    let sent = mailer.send(&bad).await;
    assert!(matches!(sent, Err(SendError::Permanent(_))), "{sent:?}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn the_file_transport_writes_an_eml_with_the_subject() {
    let dir = TempDir::new("file");
    let mailer = Mailer::from_config(&EmailConfig {
        transport: Some("file".into()),
        file_dir: Some(dir.0.display().to_string()),
        from: Some("Kontaktvei Test <test@example.no>".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(!mailer.is_outbox());
    assert_eq!(mailer.describe(), format!("file {}", dir.0.display()));
    let sent = mailer.send(&mail("file-1")).await;
    let Ok(Sent::File { path }) = sent else {
        panic!("{sent:?}");
    };
    assert!(
        path.ends_with(".eml") && Path::new(&path).starts_with(&dir.0),
        "{path}"
    );
    let eml = std::fs::read_to_string(&path).unwrap();
    // Non-ASCII subjects are RFC 2047 encoded; the ASCII start is readable as is.
    assert!(eml.contains("Subject: "), "{eml}");
    assert!(eml.contains("Ny oppgave"), "{eml}");
    assert!(eml.contains("Message-ID: <file-1@kontaktvei>"), "{eml}");
    assert!(
        eml.contains("From: \"Kontaktvei Test\" <test@example.no>"),
        "{eml}"
    );

    // A missing directory is a passing problem an admin can fix.
    let gone = Mailer::from_config(&EmailConfig {
        transport: Some("file".into()),
        file_dir: Some(dir.0.join("missing").display().to_string()),
        ..Default::default()
    })
    .unwrap();
    let sent = gone.send(&mail("file-2")).await;
    let Err(SendError::Temporary(text)) = sent else {
        panic!("{sent:?}");
    };
    assert!(text.contains("email.file_dir"), "{text}");
}

#[tokio::test]
async fn the_outbox_keeps_mail_and_is_the_default() {
    let mailer = Mailer::from_config(&EmailConfig::default()).unwrap();
    assert!(mailer.is_outbox());
    assert_eq!(mailer.describe(), "outbox");
    assert_eq!(mailer.send(&mail("o-1")).await.unwrap(), Sent::KeptInOutbox);
    assert_eq!(
        Mailer::outbox().send(&mail("o-2")).await.unwrap(),
        Sent::KeptInOutbox
    );
}

#[test]
fn config_errors_name_their_key() {
    let check = |cfg: EmailConfig, key: &str| {
        let err: EmailConfigError = Mailer::from_config(&cfg).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with(&format!("{key}: ")), "{key}: {text}");
        text
    };
    let smtp = || EmailConfig {
        transport: Some("smtp".into()),
        smtp_host: Some("smtp.example.no".into()),
        ..Default::default()
    };
    let text = check(
        EmailConfig {
            transport: Some("sendmail".into()),
            ..Default::default()
        },
        "email.transport",
    );
    assert!(text.contains("\"outbox\", \"file\" or \"smtp\""), "{text}");
    assert_eq!(
        check(
            EmailConfig {
                transport: Some("smtp".into()),
                ..Default::default()
            },
            "email.smtp_host"
        ),
        "email.smtp_host: give the SMTP server's host name when transport = \"smtp\""
    );
    check(
        EmailConfig {
            from: Some("kontaktvei".into()),
            ..Default::default()
        },
        "email.from",
    );
    check(
        EmailConfig {
            transport: Some("file".into()),
            ..Default::default()
        },
        "email.file_dir",
    );
    check(
        EmailConfig {
            smtp_username: Some("kontaktvei".into()),
            ..smtp()
        },
        "email.smtp_password",
    );
    check(
        EmailConfig {
            smtp_password: Some("x".into()),
            ..smtp()
        },
        "email.smtp_username",
    );
    let text = check(
        EmailConfig {
            smtp_tls: Some("ssl".into()),
            ..smtp()
        },
        "email.smtp_tls",
    );
    assert!(text.contains("\"starttls\", \"tls\" or \"none\""), "{text}");
    check(
        EmailConfig {
            smtp_port: Some(0),
            ..smtp()
        },
        "email.smtp_port",
    );

    // Defaults: the ports follow the TLS mode.
    for (tls, port) in [("starttls", 587), ("tls", 465), ("none", 25)] {
        let mailer = Mailer::from_config(&EmailConfig {
            smtp_tls: Some(tls.into()),
            ..smtp()
        })
        .unwrap();
        assert_eq!(
            mailer.describe(),
            format!("smtp smtp.example.no:{port} ({tls})")
        );
    }
}

#[test]
fn the_config_rejects_unknown_keys() {
    let err = serde_json::from_value::<EmailConfig>(serde_json::json!({
        "transport": "smtp",
        "smtp_server": "smtp.example.no",
    }))
    .unwrap_err();
    assert!(err.to_string().contains("smtp_server"), "{err}");
}
