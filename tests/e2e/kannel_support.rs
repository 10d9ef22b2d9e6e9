//! A real Kannel for the end-to-end tests: `bearerbox` + `smsbox` from Debian's `kannel`
//! package, with `fakesmsc` (from `kannel-extras`) playing the operator's SMS centre.
//! Everything listens on 127.0.0.1 only, on free ports, with a configuration written to a
//! fresh temporary directory; every process dies when the [`Kannel`] is dropped.
//!
//! ```text
//!   our gateway ──GET /cgi-bin/sendsms──▶ smsbox ──▶ bearerbox ──fake smsc──▶ fakesmsc ("the phone")
//!   our gateway ◀──GET dlr-url (%d = 8, then 1)───── smsbox ◀── bearerbox
//!   our gateway ◀──GET get-url (MO)── smsbox ◀── bearerbox ◀── fakesmsc (send_from_phone)
//!        └── text/plain answer body ──▶ reply SMS to the phone (max-messages = 1)
//! ```
//!
//! * [`Kannel::start`] takes the `get-url` of the `sms-service` (the inbound hook), e.g.
//!   `{base}/hooks/sms/kannel/{secret}/inbound?from=%p&to=%P&text=%a`.
//! * [`Kannel::received`] / [`Kannel::wait_for_received`]: the MT messages the fake SMS centre
//!   got. [`Kannel::send_from_phone`]: inject an MO message, as if a patient had texted us.
//!
//! Without Kannel installed, [`Kannel::start`] returns `None` after printing why (tests skip);
//! under `CI=true` it panics instead, so CI cannot pass without having run them. Install with
//! `apt-get install kannel kannel-extras` (`fakesmsc` is in `kannel-extras`, not `kannel`).
//!
//! # What Kannel 1.4.5 (Debian 12) was observed to do with this configuration
//!
//! * `sendsms` answers `202` with body `0: Accepted for delivery` (`3: Queued for later
//!   delivery` if the SMSC were down); `403` for a wrong user or password. No per-user setting
//!   is needed for `dlr-url`: any `sendsms-user` may pass `dlr-mask` + `dlr-url` (URL-encoded).
//! * The `to` parameter must encode `+` as `%2B`: a bare `+` is a space, which Kannel strips
//!   (or treats as a list separator), so `+4791234567` arrives as `4791234567`.
//! * With `dlr-mask=31` and fakesmsc, the `dlr-url` is fetched twice, in this order:
//!   `status=8` with `%A` = `ACK/` (accepted by the SMSC), then `status=1` with `%A` empty
//!   (delivered). fakesmsc never produces 2 / 4 / 16. Other text in the dlr-url (our own
//!   `ref=`) comes back untouched.
//! * The `get-url` for an MO `+4791234567 → 2222 "ok  K7MX3Q"` is fetched as
//!   `…/inbound?from=%2B4791234567&to=2222&text=ok+K7MX3Q`: `%p` keeps the number exactly as
//!   the SMSC gave it (with or without `+`), URL-encoded; `%a` is form-encoded UTF-8 (space as
//!   `+`, `æ` as `%C3%A6`) with runs of spaces squeezed to one.
//! * The answer to the `get-url` becomes a reply SMS from the MO's receiver (`2222`) to its
//!   sender, only when it is `200`/`202` with `Content-Type: text/plain` (or `text/html`, whose
//!   tags are stripped); `charset=` is honoured (UTF-8, ISO-8859-1 → correct æøå). With no
//!   content type it is sent as 8-bit data; other types would become "Result could not be
//!   represented as an SMS message." — we set that, "could not fetch" (non-2xx answer or
//!   connection refused) and "request failed" to "" so that, with `omit-empty = true`, nothing
//!   at all reaches the patient in those cases (the defaults would text them Kannel's English
//!   error strings). An empty body sends nothing. `max-messages = 1` truncates a long answer
//!   to one SMS (160 GSM characters). A reply in GSM-7 turns characters outside the GSM
//!   alphabet (Sami á č đ ŋ š ŧ ž) into `?`, exactly like `sendsms` with `coding=0`; the
//!   answer can ask for UCS-2 with the header `X-Kannel-Coding: 2`
//!   (`accept-x-kannel-headers = true`).
//! * fakesmsc logs each MT line it gets as `… DEBUG: Got message N: <LINE>` (on stderr), where
//!   `LINE` is `FROM TO text TEXT` (7-bit: the text raw, in UTF-8 — æøå and € survive),
//!   `FROM TO data URLENC` (8-bit), `FROM TO ucs-2 URLENC` (UCS-2 = UTF-16BE bytes) or, for
//!   each part of a concatenated message, `FROM TO udh URLENC_UDH data URLENC_PART` (UDH
//!   `05 00 03 ref total seq`; parts hold 153 GSM-7 characters, or 67 UCS-2 ones; the part's
//!   bytes are UTF-8 for 7-bit and UTF-16BE for UCS-2 — told apart here by NUL bytes).
//!   URL encoding writes space as `+`. A newline inside a 7-bit text ends the line, so the rest
//!   shows up as extra "Got message" lines; [`Kannel::received`] glues them back (a line that
//!   does not look like `FROM TO text|data|ucs-2|udh …` continues the previous text).
//! * An MO is injected by writing `FROM TO text TEXT` to the stdin of the one fakesmsc client
//!   (the fake SMSC accepts a single client). fakesmsc reads at most 255 bytes per line and
//!   polls its socket about once a second, so MT messages show up within ~1 s.
#![allow(dead_code)] // not every test uses every helper

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// Where Debian puts the programs (`kannel` and `kannel-extras`), then `$PATH`.
const BEARERBOX: &[&str] = &["/usr/sbin/bearerbox", "/usr/local/sbin/bearerbox"];
const SMSBOX: &[&str] = &["/usr/sbin/smsbox", "/usr/local/sbin/smsbox"];
const FAKESMSC: &[&str] = &[
    "/usr/lib/kannel/test/fakesmsc",
    "/usr/local/lib/kannel/test/fakesmsc",
];

/// The number the `sms-service` replies come from when the MO's receiver is empty, and the
/// sender of `sendsms` messages without `from`.
pub const GLOBAL_SENDER: &str = "2222";

/// fakesmsc's stdin buffer is 256 bytes (`fgets`), newline included.
const MAX_MO_LINE: usize = 255;

/// One mobile-terminated message as the fake SMS centre received it (concatenated parts are
/// joined into one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSms {
    pub from: String,
    pub to: String,
    pub text: String,
    /// Number of SMS parts it took (1 unless concatenated).
    pub segments: usize,
    /// Whether it was sent as UCS-2 (`coding=2`) rather than GSM-7 / 8-bit.
    pub ucs2: bool,
}

/// A running Kannel (bearerbox + smsbox + fakesmsc); everything is killed on drop.
pub struct Kannel {
    /// `http://127.0.0.1:PORT/cgi-bin/sendsms`
    pub sendsms_url: String,
    pub username: String,
    pub password: String,
    /// bearerbox's admin interface, e.g. `{admin_url}/status.txt?password={admin_password}`.
    pub admin_url: String,
    pub admin_password: String,
    /// The directory with `kannel.conf` and the logs (`bearerbox.log`, `smsbox.log`,
    /// `fakesmsc.log`); kept when a test panics, removed otherwise.
    pub dir: PathBuf,
    // Field order is drop order: the phone first, the bearerbox last.
    fakesmsc_stdin: Mutex<std::io::PipeWriter>,
    fakesmsc: Child,
    smsbox: Child,
    bearerbox: Child,
    /// Every "Got message" line of fakesmsc so far (the `LINE` inside `<…>`).
    lines: Arc<Mutex<Vec<Vec<u8>>>>,
}

struct Binaries {
    bearerbox: PathBuf,
    smsbox: PathBuf,
    fakesmsc: PathBuf,
}

fn find_binary(candidates: &[&str], name: &str) -> Option<PathBuf> {
    if let Some(found) = candidates.iter().map(PathBuf::from).find(|p| p.is_file()) {
        return Some(found);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn find_binaries() -> Result<Binaries, String> {
    let bearerbox = find_binary(BEARERBOX, "bearerbox")
        .ok_or("bearerbox not found (apt-get install kannel)")?;
    let smsbox =
        find_binary(SMSBOX, "smsbox").ok_or("smsbox not found (apt-get install kannel)")?;
    let fakesmsc = find_binary(FAKESMSC, "fakesmsc")
        .ok_or("fakesmsc not found (apt-get install kannel-extras)")?;
    Ok(Binaries {
        bearerbox,
        smsbox,
        fakesmsc,
    })
}

/// Distinct free ports on 127.0.0.1 (all held open together, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Kannel's configuration syntax: a double-quoted string with `"` and `\` escaped.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

struct Ports {
    admin: u16,
    smsbox: u16,
    fake_smsc: u16,
    sendsms: u16,
}

fn config(
    ports: &Ports,
    admin_password: &str,
    username: &str,
    password: &str,
    get_url: &str,
) -> String {
    format!(
        r#"# Written by tests/e2e/kannel_support.rs
group = core
admin-port = {admin}
admin-interface = "127.0.0.1"
admin-password = {admin_password}
admin-allow-ip = "127.0.0.1"
smsbox-port = {smsbox}
smsbox-interface = "127.0.0.1"
box-deny-ip = "*.*.*.*"
box-allow-ip = "127.0.0.1"
dlr-storage = internal
log-level = 0

group = smsc
smsc = fake
smsc-id = fake
port = {fake_smsc}
our-host = "127.0.0.1"
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = "127.0.0.1"
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
sendsms-interface = "127.0.0.1"
global-sender = "{GLOBAL_SENDER}"
log-level = 0
# Kannel's defaults would text the patient English error strings when our inbound hook fails
# or answers something unusable; empty strings plus omit-empty send nothing instead.
reply-couldnotfetch = ""
reply-couldnotrepresent = ""
reply-requestfailed = ""

group = sendsms-user
username = {username}
password = {password}
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
get-url = {get_url}
max-messages = 1
omit-empty = true
accept-x-kannel-headers = true
"#,
        admin = ports.admin,
        smsbox = ports.smsbox,
        fake_smsc = ports.fake_smsc,
        sendsms = ports.sendsms,
        admin_password = quoted(admin_password),
        username = quoted(username),
        password = quoted(password),
        get_url = quoted(get_url),
    )
}

fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).unwrap()
}

/// Last lines of a log in the temp dir, for failure messages.
fn tail(dir: &Path, name: &str, lines: usize) -> String {
    let text = std::fs::read(dir.join(name)).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    format!("--- {name} ---\n{}", all[start..].join("\n"))
}

/// Copies fakesmsc's output to its log file and keeps every "Got message" line.
fn capture(
    stream: impl AsyncRead + Unpin + Send + 'static,
    log: std::fs::File,
    lines: Arc<Mutex<Vec<Vec<u8>>>>,
) {
    const MARK: &[u8] = b"Got message ";
    tokio::spawn(async move {
        let mut log = log;
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let _ = log.write_all(&line);
            let _ = log.flush();
            let Some(at) = line.windows(MARK.len()).position(|w| w == MARK) else {
                continue;
            };
            // "Got message 12: <LINE>\n"
            let rest = &line[at + MARK.len()..];
            let Some(open) = rest.windows(3).position(|w| w == b": <") else {
                continue;
            };
            let mut body = rest[open + 3..].to_vec();
            while matches!(body.last(), Some(b'\n' | b'\r')) {
                body.pop();
            }
            if body.last() == Some(&b'>') {
                body.pop();
            }
            lines.lock().unwrap().push(body);
        }
    });
}

impl Kannel {
    /// Starts Kannel with `get_url` as the `sms-service`'s URL (Kannel's escapes such as
    /// `%p`, `%P`, `%a` are substituted per MO message). `None` (after saying why) when Kannel
    /// is not installed; panics then under `CI=true`, and whenever Kannel fails to start.
    pub async fn start(get_url: &str) -> Option<Kannel> {
        let binaries = match find_binaries() {
            Ok(b) => b,
            Err(why) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("CI=true but Kannel is not usable: {why}");
                }
                eprintln!("skipping the Kannel end-to-end test: {why}");
                return None;
            }
        };
        // A port taken between probing and binding makes a box exit: try again with new ones.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(&binaries, get_url).await {
                Ok(kannel) => return Some(kannel),
                Err(e) => {
                    eprintln!("Kannel did not start, retrying: {e}");
                    last_error = e;
                }
            }
        }
        panic!("Kannel did not start: {last_error}");
    }

    async fn try_start(bin: &Binaries, get_url: &str) -> Result<Kannel, String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("kontaktvei-kannel-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let p = free_ports(4);
        let ports = Ports {
            admin: p[0],
            smsbox: p[1],
            fake_smsc: p[2],
            sendsms: p[3],
        };
        let admin_password = format!("admin-{}", &id[..12]);
        let username = "kontaktvei".to_string();
        let password = format!("pw-{}", &id[12..24]);
        let conf = dir.join("kannel.conf");
        std::fs::write(
            &conf,
            config(&ports, &admin_password, &username, &password, get_url),
        )
        .unwrap();

        let admin_url = format!("http://127.0.0.1:{}", ports.admin);
        let status_url = format!("{admin_url}/status.txt?password={admin_password}");
        let sendsms_url = format!("http://127.0.0.1:{}/cgi-bin/sendsms", ports.sendsms);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();

        let spawn = |program: &Path, args: &[&str], log: &str| {
            let out = log_file(&dir, log);
            let err = out.try_clone().unwrap();
            Command::new(program)
                .args(args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", program.display()))
        };
        let conf_arg = conf.to_str().unwrap();
        let mut bearerbox = spawn(&bin.bearerbox, &[conf_arg], "bearerbox.log")?;
        let failure = |what: &str, dir: &Path| {
            format!(
                "{what} (logs in {})\n{}\n{}\n{}",
                dir.display(),
                tail(dir, "bearerbox.log", 15),
                tail(dir, "smsbox.log", 15),
                tail(dir, "fakesmsc.log", 15)
            )
        };

        // The bearerbox first: smsbox and fakesmsc give up if it is not listening yet.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = bearerbox.try_wait() {
                return Err(failure(&format!("bearerbox exited with {status}"), &dir));
            }
            if let Ok(r) = http.get(&status_url).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(failure("bearerbox did not answer on its admin port", &dir));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let mut smsbox = spawn(&bin.smsbox, &[conf_arg], "smsbox.log")?;

        // fakesmsc in interactive mode (no messages on the command line): every line on its
        // stdin is one MO message. A std pipe keeps the writer usable without tokio's "sync".
        let (stdin_reader, stdin_writer) = std::io::pipe().unwrap();
        let fake_port = ports.fake_smsc.to_string();
        let mut fakesmsc = Command::new(&bin.fakesmsc)
            .args(["-H", "127.0.0.1", "-r", &fake_port, "-i", "0"])
            .current_dir(&dir)
            .stdin(stdin_reader)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.fakesmsc.display()))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        capture(
            fakesmsc.stdout.take().unwrap(),
            log_file(&dir, "fakesmsc.stdout.log"),
            lines.clone(),
        );
        capture(
            fakesmsc.stderr.take().unwrap(),
            log_file(&dir, "fakesmsc.log"),
            lines.clone(),
        );

        // Ready when the bearerbox sees both the smsbox and the fake SMSC client, and the
        // smsbox answers HTTP (403 without credentials is an answer).
        let smsc_online = format!("FAKE:{} (online", ports.fake_smsc);
        loop {
            for (name, child) in [
                ("bearerbox", &mut bearerbox),
                ("smsbox", &mut smsbox),
                ("fakesmsc", &mut fakesmsc),
            ] {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(failure(&format!("{name} exited with {status}"), &dir));
                }
            }
            let status = match http.get(&status_url).send().await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let boxes_up = status.contains(&smsc_online)
                && status
                    .lines()
                    .any(|l| l.contains("smsbox:") && l.contains("(on-line"));
            if boxes_up && http.get(&sendsms_url).send().await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err(failure(
                    &format!("Kannel did not become ready; last status:\n{status}"),
                    &dir,
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        Ok(Kannel {
            sendsms_url,
            username,
            password,
            admin_url,
            admin_password,
            dir,
            fakesmsc_stdin: Mutex::new(stdin_writer),
            fakesmsc,
            smsbox,
            bearerbox,
            lines,
        })
    }

    /// The MT messages the fake SMS centre has received so far, oldest first. A concatenated
    /// message appears once all its parts are in.
    pub async fn received(&self) -> Vec<ReceivedSms> {
        let lines = self.lines.lock().unwrap().clone();
        parse_received(&lines)
    }

    /// Waits until at least `count` MT messages are in; panics (with the logs) after `timeout`.
    pub async fn wait_for_received(&self, count: usize, timeout: Duration) -> Vec<ReceivedSms> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received().await;
            if got.len() >= count {
                return got;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected {count} SMS at the fake SMSC within {timeout:?}, got {got:#?}\n{}\n{}",
                    tail(&self.dir, "fakesmsc.log", 20),
                    tail(&self.dir, "smsbox.log", 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Injects a mobile-originated SMS `from` → `to` (e.g. `"+4791234567"` → `GLOBAL_SENDER`):
    /// Kannel then fetches the `get-url` and texts the answer back to `from`. Returns once the
    /// line is handed to fakesmsc (it forwards it within about a second).
    pub async fn send_from_phone(&self, from: &str, to: &str, text: &str) {
        for (what, number) in [("from", from), ("to", to)] {
            assert!(
                !number.is_empty() && !number.chars().any(char::is_whitespace),
                "send_from_phone: {what} must be one word, got {number:?}"
            );
        }
        assert!(
            !text.contains(['\n', '\r']),
            "send_from_phone: fakesmsc takes one line per message, got {text:?}"
        );
        let line = format!("{from} {to} text {text}\n");
        assert!(
            line.len() <= MAX_MO_LINE,
            "send_from_phone: fakesmsc reads at most {MAX_MO_LINE} bytes per line, this is {}",
            line.len()
        );
        let mut stdin = self.fakesmsc_stdin.lock().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// bearerbox's `status.txt` (uptime, SMS/DLR counters, box and SMSC connections).
    pub async fn status(&self) -> String {
        reqwest::get(format!(
            "{}/status.txt?password={}",
            self.admin_url, self.admin_password
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
    }
}

impl Drop for Kannel {
    fn drop(&mut self) {
        // Children die through kill_on_drop; start them dying now so the ports free up.
        let _ = self.fakesmsc.start_kill();
        let _ = self.smsbox.start_kill();
        let _ = self.bearerbox.start_kill();
        if std::thread::panicking() {
            eprintln!(
                "Kannel configuration and logs kept in {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `%41+b` → `A b` as bytes (fakesmsc's URL encoding writes space as `+`).
fn url_decode(s: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn utf16be(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// Concatenated-SMS header (IEI 0x00 with an 8-bit reference or 0x08 with a 16-bit one):
/// `(reference, total, sequence)`.
fn concat_info(udh: &[u8]) -> Option<(u16, u8, u8)> {
    let mut i = 1; // udh[0] is the header length
    while i + 1 < udh.len() {
        let (iei, len) = (udh[i], udh[i + 1] as usize);
        let data = udh.get(i + 2..i + 2 + len)?;
        match (iei, len) {
            (0x00, 3) => return Some((data[0] as u16, data[1], data[2])),
            (0x08, 4) => return Some((u16::from_be_bytes([data[0], data[1]]), data[2], data[3])),
            _ => i += 2 + len,
        }
    }
    None
}

enum Line<'a> {
    Message {
        from: String,
        to: String,
        kind: &'a [u8],
        rest: &'a [u8],
    },
    Continuation(&'a [u8]),
}

fn split_line(line: &[u8]) -> Line<'_> {
    let mut words = line.splitn(4, |&b| b == b' ');
    let (Some(from), Some(to), Some(kind)) = (words.next(), words.next(), words.next()) else {
        return Line::Continuation(line);
    };
    let rest = words.next().unwrap_or_default();
    let known = matches!(kind, b"text" | b"data" | b"ucs-2" | b"udh");
    if !known || from.is_empty() || to.is_empty() {
        return Line::Continuation(line);
    }
    Line::Message {
        from: String::from_utf8_lossy(from).into_owned(),
        to: String::from_utf8_lossy(to).into_owned(),
        kind,
        rest,
    }
}

/// Turns fakesmsc's "Got message" lines into messages (see the module documentation).
fn parse_received(lines: &[Vec<u8>]) -> Vec<ReceivedSms> {
    struct Partial {
        from: String,
        to: String,
        reference: u16,
        total: u8,
        parts: Vec<(u8, Vec<u8>)>,
    }
    // Messages in arrival order; a concatenated one takes the place of its first part.
    enum Slot {
        Done(ReceivedSms),
        Concat(Partial),
    }
    let mut slots: Vec<Slot> = Vec::new();
    // Whether the last slot is a 7-bit text that a continuation line may extend.
    let mut last_was_text = false;
    for line in lines {
        match split_line(line) {
            Line::Continuation(more) => {
                if let (true, Some(Slot::Done(sms))) = (last_was_text, slots.last_mut()) {
                    sms.text.push('\n');
                    sms.text.push_str(&String::from_utf8_lossy(more));
                }
            }
            Line::Message {
                from,
                to,
                kind,
                rest,
            } => {
                last_was_text = kind == b"text";
                let (text, ucs2) = match kind {
                    b"text" => (String::from_utf8_lossy(rest).into_owned(), false),
                    b"data" => (
                        String::from_utf8_lossy(&url_decode(rest)).into_owned(),
                        false,
                    ),
                    b"ucs-2" => (utf16be(&url_decode(rest)), true),
                    _ => {
                        // udh URLENC data URLENC
                        let mut words = rest.splitn(3, |&b| b == b' ');
                        let udh = url_decode(words.next().unwrap_or_default());
                        let _data_word = words.next();
                        let data = url_decode(words.next().unwrap_or_default());
                        match concat_info(&udh) {
                            Some((reference, total, seq)) => {
                                let existing = slots.iter_mut().find_map(|s| match s {
                                    Slot::Concat(p)
                                        if p.reference == reference
                                            && p.from == from
                                            && p.to == to
                                            && p.total == total
                                            && !p.parts.iter().any(|(n, _)| *n == seq) =>
                                    {
                                        Some(p)
                                    }
                                    _ => None,
                                });
                                match existing {
                                    Some(p) => p.parts.push((seq, data)),
                                    None => slots.push(Slot::Concat(Partial {
                                        from,
                                        to,
                                        reference,
                                        total,
                                        parts: vec![(seq, data)],
                                    })),
                                }
                                continue;
                            }
                            None => decode_part(&data),
                        }
                    }
                };
                slots.push(Slot::Done(ReceivedSms {
                    from,
                    to,
                    text,
                    segments: 1,
                    ucs2,
                }));
            }
        }
    }
    slots
        .into_iter()
        .filter_map(|slot| match slot {
            Slot::Done(sms) => Some(sms),
            Slot::Concat(mut p) => {
                if p.parts.len() < p.total as usize {
                    return None;
                }
                p.parts.sort_by_key(|(n, _)| *n);
                let bytes: Vec<u8> = p.parts.iter().flat_map(|(_, b)| b.clone()).collect();
                let (text, ucs2) = decode_part(&bytes);
                Some(ReceivedSms {
                    from: p.from,
                    to: p.to,
                    text,
                    segments: p.parts.len(),
                    ucs2,
                })
            }
        })
        .collect()
}

/// The bytes of a UDH message: UTF-8 for 7-bit text, UTF-16BE for UCS-2. Kannel's 7-bit text is
/// UTF-8 and never holds NUL, while UCS-2 of Latin text always does (and is rarely valid UTF-8).
fn decode_part(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(text) if !bytes.contains(&0) => (text.to_string(), false),
        _ => (utf16be(bytes), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(raw: &[&str]) -> Vec<Vec<u8>> {
        raw.iter().map(|l| l.as_bytes().to_vec()).collect()
    }

    #[test]
    fn parses_the_formats_fakesmsc_prints() {
        let got = parse_received(&lines(&[
            "2222 4791234567 text Hei æøå ÆØÅ",
            "2222 4791234567 text Linje en",
            "Linje to",
            "",
            "Linje fire",
            "2222 4791234567 data Uten+type+%C3%A6%C3%B8%C3%A5",
            "2222 4791234567 ucs-2 %00S%00a%00m%00i%00+%00%E1%01%0D%01%11%01K%01a%01g%01~",
            "Legekontor 4791234567 udh %05%00%03%0C%02%02 data to",
            "2222 +4791234567 text Takk!",
            "Legekontor 4791234567 udh %05%00%03%0C%02%01 data En+og+",
            "2222 4791234567 udh %05%00%03%0D%02%01 data %00L%00a",
            "2222 4791234567 udh %05%00%03%0D%02%02 data %00n%00g%00+%00%E1",
            "2222 4791234567 udh %05%00%03%0E%02%01 data halv",
        ]));
        let texts: Vec<(&str, usize, bool)> = got
            .iter()
            .map(|m| (m.text.as_str(), m.segments, m.ucs2))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("Hei æøå ÆØÅ", 1, false),
                ("Linje en\nLinje to\n\nLinje fire", 1, false),
                ("Uten type æøå", 1, false),
                ("Sami áčđŋšŧž", 1, true),
                ("En og to", 2, false),
                ("Takk!", 1, false),
                ("Lang á", 2, true),
            ]
        );
        assert_eq!(got[0].from, "2222");
        assert_eq!(got[5].to, "+4791234567");
        assert_eq!(got[4].from, "Legekontor");
    }
}
