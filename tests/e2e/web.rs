//! The staff pages' login: an operator (CLI, password on stdin) or an admin (API) gives a staff
//! member a username and password; the person logs in with a browser, sees the start page for
//! their role and logs out. Forms without the session's CSRF token are refused, five wrong
//! passwords lock the login without telling whether the username exists, a session ends at
//! logout (its cookie is worthless afterwards) and when a new password is set, and the API never
//! shows the hash. The pages are in bokmål with a label for every field.

use crate::support::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

const PASSWORD: &str = "riktig hest batteri stift";

/// A browser without JavaScript: keeps cookies by hand (the workspace's reqwest has no cookie
/// store) and does not follow redirects, so each step's answer can be checked.
pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

/// One page: status, headers, body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Set-Cookie` header for this cookie, if the answer sets it.
    pub(crate) fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value of the form's hidden `csrf` field.
    pub(crate) fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no csrf field on the page: {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    #[track_caller]
    pub(crate) fn assert_redirect(&self, to: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.body);
        assert_eq!(self.location(), to);
    }
}

impl Browser {
    pub(crate) fn new(app: &App) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, r: reqwest::Response) -> Answer {
        let status = r.status();
        let headers = r.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, v) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), v.to_owned());
            }
        }
        let body = r.text().await.unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Answer {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(r).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(r).await
    }

    /// Opens the login form and submits it.
    pub(crate) async fn log_in(&mut self, username: &str, password: &str) -> Answer {
        let form = self.get("/staff/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = form.csrf();
        self.post(
            "/staff/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }
}

/// Whether the page links to `href` (minijinja's HTML escaping writes `/` as `&#x2f;`).
pub(crate) fn has_link(html: &str, href: &str) -> bool {
    html.contains(&format!("href=\"{href}\""))
        || html.contains(&format!("href=\"{}\"", href.replace('/', "&#x2f;")))
}

/// The page is in bokmål; every visible input, select and textarea has a `<label for=…>`;
/// every table a caption and header cells with a scope; every POST form the CSRF field.
#[track_caller]
pub(crate) fn assert_accessible(html: &str) {
    assert!(html.contains("<html lang=\"nb\">"), "{html}");
    assert!(html.contains("name=\"viewport\""), "{html}");
    for input in html.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap()];
        if tag.contains("type=\"hidden\"") {
            continue;
        }
        let id = tag
            .split("id=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("an input without an id: <input{tag}>"));
        assert!(
            html.contains(&format!("<label for=\"{id}\"")),
            "no label for #{id}: {html}"
        );
    }
    for tag in ["<select", "<textarea"] {
        for rest in html.split(tag).skip(1) {
            let open = &rest[..rest.find('>').unwrap()];
            let id = open
                .split("id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_else(|| panic!("{tag} without an id: {open}"));
            assert!(
                html.contains(&format!("<label for=\"{id}\"")),
                "no label for #{id}"
            );
        }
    }
    assert_eq!(
        html.matches("<table").count(),
        html.matches("<caption>").count(),
        "a table without a caption: {html}"
    );
    assert_eq!(
        html.matches("<th>").count(),
        0,
        "a header cell without a scope"
    );
    for form in html.split("<form").skip(1) {
        if form.starts_with(" method=\"post\"") {
            let body = &form[..form.find("</form>").unwrap()];
            assert!(
                body.contains("<input type=\"hidden\" name=\"csrf\" value=\""),
                "a form without its CSRF field: {body}"
            );
        }
    }
}

pub(crate) async fn add_staff(app: &App, key: &str, name: &str, role: &str) -> String {
    let (status, body) = app
        .post(key, "/staff", json!({"name": name, "role": role}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// A patient of `clinic` reached through `contact_point`, with an appointment in `days`.
pub(crate) async fn booked(
    app: &App,
    clinic: &str,
    name: &str,
    contact_point: Value,
    days: i64,
) -> (String, String) {
    let pid = app.patient(clinic, name).await;
    let (status, body) = app
        .post(
            clinic,
            &format!("/patients/{pid}/contact-points"),
            contact_point,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, booked) = app
        .post(
            clinic,
            "/appointments",
            json!({"patient_id": pid, "starts_at": in_minutes(days * 24 * 60), "place": "Storgata 36"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    (pid, booked["notice_ids"][0].as_str().unwrap().to_owned())
}

/// The id of the first task `key` sees, once the engine has made it.
pub(crate) async fn first_task(app: &App, key: &str) -> String {
    eventually("the task", || async {
        let (_, list) = app.get(key, "/tasks").await;
        list["items"][0]["id"].as_str().map(str::to_owned)
    })
    .await
}

/// The password [`staff_with_login`] gives.
pub(crate) const STAFF_PASSWORD: &str = "et langt og godt passord";

/// A staff member who can log in with `username` and [`STAFF_PASSWORD`].
pub(crate) async fn staff_with_login(
    app: &App,
    admin: &str,
    name: &str,
    role: &str,
    username: &str,
) -> String {
    let id = add_staff(app, admin, name, role).await;
    let (status, body) = put_login(
        app,
        admin,
        &id,
        json!({"username": username, "password": STAFF_PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

pub(crate) async fn put_login(
    app: &App,
    key: &str,
    staff_id: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = app
        .http
        .put(app.url(&format!("/staff/{staff_id}/login")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    answer(r).await
}

/// `admin staff password`, with `stdin` as the password's line.
async fn cli_password(app: &App, staff_id: &str, username: &str, stdin: &str) -> CliOutput {
    let mut child = app
        .command(&[
            "admin",
            "staff",
            "password",
            "--staff",
            staff_id,
            "--username",
            username,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    CliOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn staff_log_in_and_out(app: App) {
    let (_, key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let kari = add_staff(&app, &key, "Kari Nordmann", "coordinator").await;

    // The operator gives Kari a login; the password comes on stdin and must be long enough.
    let short = cli_password(&app, &kari, "kari.nordmann", "kort\n").await;
    assert_ne!(short.code, 0);
    assert!(short.stderr.contains("password"), "{}", short.stderr);
    let unknown = cli_password(
        &app,
        "0190a1b2-0000-7000-8000-000000000000",
        "kari",
        &format!("{PASSWORD}\n"),
    )
    .await;
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("--staff"), "{}", unknown.stderr);
    let out = cli_password(&app, &kari, "Kari.Nordmann", &format!("{PASSWORD}\n")).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["username"], "kari.nordmann");
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));

    let mut browser = Browser::new(&app);
    browser.get("/staff").await.assert_redirect("/staff/login");

    let form = browser.get("/staff/login").await;
    assert_eq!(form.status, StatusCode::OK);
    assert_accessible(&form.body);
    assert!(
        form.body.contains("<label for=\"username\""),
        "{}",
        form.body
    );
    assert!(
        form.body.contains("<label for=\"password\""),
        "{}",
        form.body
    );
    assert_eq!(form.headers["cache-control"], "no-store");
    assert!(
        form.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    // A login form posted without its cookie (from another site, say) is refused.
    let mut stranger = Browser::new(&app);
    let forged = stranger
        .post(
            "/staff/login",
            &[
                ("csrf", &form.csrf()),
                ("username", "kari.nordmann"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.set_cookie("kv_session").is_none());

    let csrf = form.csrf();
    let login = browser
        .post(
            "/staff/login",
            &[
                ("csrf", &csrf),
                ("username", " KARI.nordmann"),
                ("password", PASSWORD),
            ],
        )
        .await;
    login.assert_redirect("/staff");
    let cookie = login.set_cookie("kv_session").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/staff"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "http: no Secure flag: {cookie}");
    let token = browser.cookies["kv_session"].clone();

    let start = browser.get("/staff").await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    assert_accessible(&start.body);
    assert!(
        start
            .body
            .contains("Innlogget som Kari Nordmann (koordinator)"),
        "{}",
        start.body
    );
    for link in ["/staff/oppgaver", "/staff/pasienter"] {
        assert!(has_link(&start.body, link), "{link}");
    }
    for link in ["/staff/utskrift", "/staff/admin"] {
        assert!(!has_link(&start.body, link), "{link}");
    }
    assert!(start.body.contains("action=\"/staff/logout\""));
    let session_csrf = start.csrf();
    // Logged in, the login page sends you on.
    browser.get("/staff/login").await.assert_redirect("/staff");

    // A POST without the session's CSRF token, or with another, is refused and changes nothing.
    let refused = browser.post("/staff/logout", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_accessible(&refused.body);
    let wrong = "0".repeat(64);
    let refused = browser.post("/staff/logout", &[("csrf", &wrong)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/staff").await.status, StatusCode::OK);

    // Logging out ends the session and deletes the cookie.
    let out = browser
        .post("/staff/logout", &[("csrf", &session_csrf)])
        .await;
    out.assert_redirect("/staff/login");
    assert!(out.set_cookie("kv_session").unwrap().contains("Max-Age=0"));
    assert!(!browser.cookies.contains_key("kv_session"));
    browser.get("/staff").await.assert_redirect("/staff/login");

    // The old cookie is worthless: a copy kept by someone else gets nowhere.
    browser.cookies.insert("kv_session".into(), token);
    browser.get("/staff").await.assert_redirect("/staff/login");
    browser
        .post("/staff/logout", &[("csrf", &session_csrf)])
        .await
        .assert_redirect("/staff/login");

    // A refused login shows the form again, escaped, with the same words whatever the reason.
    let mut other = Browser::new(&app);
    let unknown = other.log_in("<script>alert(1)</script>", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!unknown.body.contains("<script>"), "{}", unknown.body);
    assert!(unknown.body.contains("role=\"alert\""));
    assert_accessible(&unknown.body);
    let wrong = other.log_in("kari.nordmann", "feil passord her").await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.set_cookie("kv_session").is_none());
    let message = |page: &Answer| {
        let start = page.body.find("role=\"alert\"").unwrap();
        page.body[start..start + page.body[start..].find("</div>").unwrap()].to_owned()
    };
    assert_eq!(message(&unknown), message(&wrong));
}

async fn admin_gives_a_login_through_the_api(app: App) {
    let (org, admin) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let (_, other_admin) = app.add_org("DPS Sør", "clinic").await;
    let clinic = app.add_key(&org, "clinic").await;
    let ola = add_staff(&app, &admin, "Ola Utskrift", "print").await;
    let per = add_staff(&app, &admin, "Per Koordinator", "coordinator").await;

    // Each field at fault is named, in a problem document.
    let (status, body) = put_login(
        &app,
        &admin,
        &ola,
        json!({"username": "ola", "password": "for kort"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_fields(&body), ["password"]);
    let (status, body) = put_login(
        &app,
        &admin,
        &ola,
        json!({"username": "o", "password": "for kort"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_fields(&body), ["username", "password"]);
    let (status, body) = put_login(&app, &admin, &ola, json!({"username": "ola"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_fields(&body), ["password"]);
    // Only an admin, and only for their own organisation's staff.
    let good = json!({"username": "ola.utskrift", "password": PASSWORD});
    let (status, _) = put_login(&app, &clinic, &ola, good.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = put_login(&app, &other_admin, &ola, good.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = put_login(&app, &admin, &ola, good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["staff_id"], ola.as_str());
    assert_eq!(body["username"], "ola.utskrift");
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["staff_id", "updated_at", "username"], "{body}");
    // The hash is never shown: not here, not in the staff list.
    let (_, list) = app.get(&admin, "/staff").await;
    for text in [body.to_string(), list.to_string()] {
        assert!(
            !text.contains("argon2") && !text.contains(PASSWORD),
            "{text}"
        );
    }
    // A username is one person's.
    let (status, body) = put_login(&app, &admin, &per, good.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_fields(&body), ["username"]);

    let mut browser = Browser::new(&app);
    browser
        .log_in("ola.utskrift", PASSWORD)
        .await
        .assert_redirect("/staff");
    let start = browser.get("/staff").await;
    assert!(
        start.body.contains("Innlogget som Ola Utskrift (utskrift)"),
        "{}",
        start.body
    );
    assert!(has_link(&start.body, "/staff/utskrift"));
    assert!(!has_link(&start.body, "/staff/pasienter"));

    // A new password ends the open sessions; the old password no longer works.
    let new_password = "et helt nytt passord";
    let (status, body) = put_login(
        &app,
        &admin,
        &ola,
        json!({"username": "ola.utskrift", "password": new_password}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    browser.get("/staff").await.assert_redirect("/staff/login");
    let old = browser.log_in("ola.utskrift", PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNPROCESSABLE_ENTITY);
    browser
        .log_in("ola.utskrift", new_password)
        .await
        .assert_redirect("/staff");
}

async fn five_wrong_passwords_lock_the_login(app: App) {
    let (_, admin) = app
        .add_org("Lavterskeltilbudet", "low_threshold_service")
        .await;
    let kim = add_staff(&app, &admin, "Kim Relé", "relay").await;
    let (status, body) = put_login(
        &app,
        &admin,
        &kim,
        json!({"username": "kim", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut browser = Browser::new(&app);
    for attempt in 1..=5 {
        let wrong = browser
            .log_in("kim", &format!("feil passord {attempt}"))
            .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{attempt}");
        assert!(wrong.set_cookie("kv_session").is_none());
    }
    // The sixth attempt, with the right password, is refused and says why it may be.
    let locked = browser.log_in("kim", PASSWORD).await;
    assert_eq!(
        locked.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        locked.body
    );
    assert!(locked.set_cookie("kv_session").is_none());
    assert!(
        locked.body.contains("sperret i 15 minutter"),
        "{}",
        locked.body
    );
    assert_accessible(&locked.body);
    // The same answer as for a username nobody has: the page does not tell them apart.
    let nobody = browser.log_in("ingen.slik", PASSWORD).await;
    assert_eq!(nobody.status, locked.status);
    assert!(nobody.body.contains("sperret i 15 minutter"));
    browser.get("/staff").await.assert_redirect("/staff/login");

    // An admin who sets a new password lifts the lock.
    let (status, _) = put_login(
        &app,
        &admin,
        &kim,
        json!({"username": "kim", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    browser
        .log_in("kim", PASSWORD)
        .await
        .assert_redirect("/staff");
    let start = browser.get("/staff").await;
    assert!(
        start
            .body
            .contains("Innlogget som Kim Relé (lavterskeltilbud)"),
        "{}",
        start.body
    );
}

/// A day centre worker opens Oppgaver, sees the relay request (who, what to say, by when, not
/// the treatment) and tells the patient: one click, the notice is acknowledged in her name.
async fn a_day_centre_passes_a_message_on_in_the_browser(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (centre_id, centre) = app.add_org("Dagsenteret", "low_threshold_service").await;
    let dagny = staff_with_login(&app, &centre, "Dagny Hansen", "relay", "dagny").await;
    let (pid, notice_id) = booked(&app, &clinic, "Per Olsen", json!({"kind": "relay", "organisation_id": centre_id, "provenance": "verified_in_person", "note": "kommer på tirsdager"}), 6).await;
    let task_id = first_task(&app, &centre).await;

    let mut browser = Browser::new(&app);
    let answer = browser.log_in("dagny", STAFF_PASSWORD).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let page = browser.get("/staff/oppgaver").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible(&page.body);
    for shown in [
        "Per Olsen",
        "født 1979",
        "kommer på tirsdager",
        "Si til pasienten",
        "Beskjeden er gitt",
        "Ikke sett",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(
        !page.body.contains("Storgata 36, "),
        "a day centre does not see the appointment line"
    );
    let csrf = page.csrf();
    // Without the session's token the click is refused.
    let refused = browser
        .post(
            &format!("/staff/oppgaver/{task_id}/avslutt"),
            &[("outcome", "told_in_person")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let done = browser
        .post(
            &format!("/staff/oppgaver/{task_id}/avslutt"),
            &[("csrf", &csrf), ("outcome", "told_in_person")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let (_, notice) = app.get(&clinic, &format!("/notices/{notice_id}")).await;
    assert_eq!(notice["status"], "acknowledged", "{notice}");
    assert_eq!(notice["ack"]["actor"], format!("staff:{dagny}"));
    let after = browser.get("/staff/oppgaver").await;
    assert!(
        after.body.contains("Ingen oppgaver her nå"),
        "{}",
        after.body
    );
    // A second click on the old page says what happened instead of failing silently.
    let again = browser
        .post(
            &format!("/staff/oppgaver/{task_id}/avslutt"),
            &[("csrf", &csrf), ("outcome", "not_seen")],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body.contains("Til startsiden"));
    // The reads are in the patient's audit log, in her name.
    let (_, log) = app.get(&clinic, &format!("/patients/{pid}/audit")).await;
    assert!(log.to_string().contains(&format!("staff:{dagny}")), "{log}");
}

/// An outreach nurse on her phone: takes the task from the team's board, records where she
/// looked, and closes it as met and informed.
async fn an_outreach_nurse_works_the_board(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (team_id, team) = app.add_org("FACT Øst", "outreach_team").await;
    staff_with_login(&app, &team, "Nina Berg", "outreach", "nina").await;
    let (_, notice_id) = booked(
        &app,
        &clinic,
        "Ola Nordmann",
        json!({"kind": "outreach", "organisation_id": team_id, "provenance": "verified_in_person"}),
        6,
    )
    .await;
    let task_id = first_task(&app, &team).await;
    let mut browser = Browser::new(&app);
    browser.log_in("nina", STAFF_PASSWORD).await;
    let board = browser.get("/staff/oppgaver?vis=ledige").await;
    assert_eq!(board.status, StatusCode::OK, "{}", board.body);
    assert_accessible(&board.body);
    assert!(
        board.body.contains("Ta oppgaven") && board.body.contains("Storgata 36"),
        "{}",
        board.body
    );
    let csrf = board.csrf();
    let taken = browser
        .post(&format!("/staff/oppgaver/{task_id}/ta"), &[("csrf", &csrf)])
        .await;
    assert_eq!(taken.status, StatusCode::SEE_OTHER, "{}", taken.body);
    let mine = browser.get("/staff/oppgaver?vis=mine").await;
    assert!(
        mine.body.contains("Registrer forsøk") && mine.body.contains("Avslutt oppgaven"),
        "{}",
        mine.body
    );
    assert!(
        mine.body.contains("Pasienten har flyttet") && mine.body.contains("name=\"street\""),
        "moving has its own form, with the new whereabouts: {}",
        mine.body
    );
    let tried = browser
        .post(
            &format!("/staff/oppgaver/{task_id}/forsok"),
            &[
                ("csrf", &csrf),
                ("place", "Jernbanetorget"),
                ("result", "ikke der"),
            ],
        )
        .await;
    assert_eq!(tried.status, StatusCode::SEE_OTHER, "{}", tried.body);
    let empty = browser
        .post(
            &format!("/staff/oppgaver/{task_id}/forsok"),
            &[("csrf", &csrf), ("place", ""), ("result", "")],
        )
        .await;
    assert_eq!(empty.status, StatusCode::CONFLICT, "{}", empty.body);
    // "Moved" without where to: said, and nothing closed.
    let nowhere = browser
        .post(
            &format!("/staff/oppgaver/{task_id}/avslutt"),
            &[("csrf", &csrf), ("outcome", "moved"), ("street", " ")],
        )
        .await;
    assert_eq!(nowhere.status, StatusCode::CONFLICT, "{}", nowhere.body);
    assert!(
        nowhere
            .body
            .contains("Skriv det nye telefonnummeret eller den nye adressen"),
        "{}",
        nowhere.body
    );
    let closed = browser
        .post(
            &format!("/staff/oppgaver/{task_id}/avslutt"),
            &[
                ("csrf", &csrf),
                ("outcome", "met_and_informed"),
                ("note", "møtte ham på stasjonen"),
            ],
        )
        .await;
    assert_eq!(closed.status, StatusCode::SEE_OTHER, "{}", closed.body);
    let (_, notice) = app.get(&clinic, &format!("/notices/{notice_id}")).await;
    assert_eq!(notice["status"], "acknowledged", "{notice}");
    assert_eq!(notice["ack"]["method"], "outreach_met");
    let (_, task) = app.get(&team, &format!("/tasks/{task_id}")).await;
    let history: Vec<&str> = task["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["claimed", "attempt", "closed"], "{task}");
}

/// The print room in the browser: make a batch, download it, mark it printed and posted, and
/// record a letter that came back by its reference.
async fn the_print_room_prints_posts_and_records_a_return(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    staff_with_login(&app, &clinic, "Per Utskrift", "print", "per").await;
    let (pid, _) = booked(&app, &clinic, "Kari Nordmann", json!({"kind": "postal", "lines": ["Kari Nordmann", "c/o Kirkens Bymisjon", "Storgata 1"], "postal_code": "0155", "place": "Oslo", "provenance": "verified_in_person"}), 30).await;
    let mut browser = Browser::new(&app);
    browser.log_in("per", STAFF_PASSWORD).await;
    let page = browser.get("/staff/utskrift").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible(&page.body);
    let csrf = page.csrf();
    let made = browser
        .post("/staff/utskrift/skriv-ut-na", &[("csrf", &csrf)])
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let (_, batches) = app.get(&clinic, "/print-batches").await;
    let batch = batches["items"][0]["id"].as_str().unwrap().to_owned();
    let page = browser.get("/staff/utskrift").await;
    assert!(
        page.body.contains("1 brev") && page.body.contains("klar til utskrift"),
        "{}",
        page.body
    );
    let pdf = browser
        .get(&format!("/staff/utskrift/{batch}/brev.pdf"))
        .await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.headers["content-type"], "application/pdf");
    for step in ["skrevet-ut", "postlagt"] {
        let done = browser
            .post(
                &format!("/staff/utskrift/{batch}/{step}"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{step}: {}", done.body);
    }
    let page = browser.get("/staff/utskrift").await;
    assert!(page.body.contains("postlagt"), "{}", page.body);
    let (_, manifest) = app.get(&clinic, &format!("/print-batches/{batch}")).await;
    let reference = manifest["letters"][0]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let unknown = browser
        .post(
            "/staff/utskrift/retur",
            &[
                ("csrf", &csrf),
                ("reference", "BR-NOPE"),
                ("reason", "ukjent"),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::CONFLICT, "{}", unknown.body);
    assert!(unknown.body.contains("BR-NOPE"), "{}", unknown.body);
    let back = browser
        .post(
            "/staff/utskrift/retur",
            &[
                ("csrf", &csrf),
                ("reference", &reference.to_lowercase()),
                ("reason", "ukjent adressat"),
            ],
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert!(
        back.body.contains("Returbrevet er registrert"),
        "{}",
        back.body
    );
    let (_, points) = app
        .get(&clinic, &format!("/patients/{pid}/contact-points"))
        .await;
    assert_eq!(points["items"][0]["status"], "failed", "{points}");
    // A day centre's worker is not let in.
    let (_, centre) = app.add_org("Dagsenteret", "low_threshold_service").await;
    let dagny = add_staff(&app, &centre, "Dagny", "relay").await;
    put_login(
        &app,
        &centre,
        &dagny,
        json!({"username": "dagny", "password": STAFF_PASSWORD}),
    )
    .await;
    let mut other = Browser::new(&app);
    other.log_in("dagny", STAFF_PASSWORD).await;
    let refused = other.get("/staff/utskrift").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
}

/// A coordinator reads the reach report: how many notices reached the patient in time, by
/// which channel, and who cannot be reached at all (named, and the read audited).
async fn a_coordinator_reads_the_reach_report(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let kari = staff_with_login(&app, &clinic, "Kari Koordinator", "coordinator", "kari").await;
    let reachable = app.patient(&clinic, "Per Olsen").await;
    let (status, body) = app
        .post(
            &clinic,
            &format!("/patients/{reachable}/contact-points"),
            json!({"kind": "sms", "phone": "+4791234567", "provenance": "stated_by_patient"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, booked) = app
        .post(
            &clinic,
            "/appointments",
            json!({"patient_id": reachable, "starts_at": in_minutes(6 * 24 * 60), "place": "Storgata 36"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let unreachable = app.patient(&clinic, "Ola Uten Kontakt").await;
    let mut browser = Browser::new(&app);
    browser.log_in("kari", STAFF_PASSWORD).await;
    let start = browser.get("/staff").await;
    assert!(has_link(&start.body, "/staff/rapport"), "{}", start.body);
    let page = browser.get("/staff/rapport").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible(&page.body);
    for shown in [
        "Andel bekreftet før timen",
        "Endte uten at noen tok over",
        "Ola Uten Kontakt, født 1979",
        "1 pasienter har ingen kontaktpunkt",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(
        !page.body.contains("Per Olsen"),
        "only the unreachable are named"
    );
    let (_, log) = app
        .get(&clinic, &format!("/patients/{unreachable}/audit"))
        .await;
    assert!(log.to_string().contains(&format!("staff:{kari}")), "{log}");
    let bad = browser.get("/staff/rapport?fra=31.03.2026").await;
    assert_eq!(bad.status, StatusCode::CONFLICT, "{}", bad.body);
    assert!(
        bad.body.contains("2026-03-31"),
        "says how to write it: {}",
        bad.body
    );
}

crate::scenarios!(
    a_coordinator_reads_the_reach_report,
    the_print_room_prints_posts_and_records_a_return,
    an_outreach_nurse_works_the_board,
    a_day_centre_passes_a_message_on_in_the_browser,
    staff_log_in_and_out,
    admin_gives_a_login_through_the_api,
    five_wrong_passwords_lock_the_login,
);
