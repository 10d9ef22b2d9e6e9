//! The admin's staff pages: an administrator does the whole admin job in the browser — adds a
//! staff member and gives them a login (and they can log in), changes the organisation's details
//! and contact policy, and writes, previews, saves and reverts a message text — and the API sees
//! each change. A mistake in a form comes back as 422 with a bokmål message next to the field,
//! what was typed kept, and nothing stored. Other roles are refused.

use crate::support::*;
use crate::web::{
    Answer, Browser, STAFF_PASSWORD, add_staff, assert_accessible, has_link, staff_with_login,
};
use reqwest::StatusCode;
use serde_json::json;

/// With `KONTAKTVEI_SAVE_PAGES` set, pages are kept as `/tmp/admin-<name>.html` to look at.
fn keep(name: &str, page: &Answer) {
    if std::env::var_os("KONTAKTVEI_SAVE_PAGES").is_some() {
        std::fs::write(format!("/tmp/admin-{name}.html"), &page.body).unwrap();
    }
}

/// The staff member's id from the redirect after adding them.
fn added_id(answer: &Answer) -> String {
    answer.assert_redirect_prefix("/staff/admin/ansatte?ny=");
    answer
        .location()
        .trim_start_matches("/staff/admin/ansatte?ny=")
        .split('#')
        .next()
        .unwrap()
        .to_owned()
}

trait RedirectPrefix {
    fn assert_redirect_prefix(&self, prefix: &str);
}

impl RedirectPrefix for Answer {
    #[track_caller]
    fn assert_redirect_prefix(&self, prefix: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.body);
        assert!(
            self.location().starts_with(prefix),
            "{} is not under {prefix}",
            self.location()
        );
    }
}

/// The policy form as the page shows it with the defaults, with `changes` made.
fn policy_form<'a>(csrf: &'a str, changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("csrf", csrf),
        ("step1", "sms"),
        ("step2", "letter"),
        ("step3", "relay"),
        ("step4", "outreach"),
        ("step5", ""),
        ("sms_ack_hours", "24"),
        ("letter_ack_working_days", "2"),
        ("relay_ack_hours", "72"),
        ("outreach_claim_hours", "24"),
        ("quiet_from", "21:00"),
        ("quiet_until", "08:00"),
        ("print_cutoff", "14:00"),
        ("revealing_words", ""),
        ("max_sms_segments", "4"),
        ("letter_sender_line", "Avsender: helse- og omsorgstjenesten"),
        ("letter_contact_text", ""),
        ("print_batch_max_letters", "1000"),
        ("print_retention_days", "30"),
    ];
    for (field, value) in changes {
        match form.iter_mut().find(|(f, _)| f == field) {
            Some(entry) => entry.1 = value,
            None => form.push((field, value)),
        }
    }
    form
}

async fn an_admin_does_the_admin_job_in_the_browser(app: App) {
    let (org, key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    staff_with_login(&app, &key, "Ada Admin", "admin", "ada").await;
    let mut browser = Browser::new(&app);
    browser
        .log_in("ada", STAFF_PASSWORD)
        .await
        .assert_redirect("/staff");
    let start = browser.get("/staff").await;
    assert!(has_link(&start.body, "/staff/admin"), "{}", start.body);

    let index = browser.get("/staff/admin").await;
    assert_eq!(index.status, StatusCode::OK, "{}", index.body);
    assert_accessible(&index.body);
    for href in [
        "/staff/admin/organisasjoner",
        "/staff/admin/ansatte",
        "/staff/admin/regler",
        "/staff/admin/maler",
    ] {
        assert!(has_link(&index.body, href), "{href}: {}", index.body);
    }
    keep("index", &index);

    // --- Staff: a form with mistakes is shown again as typed, and nothing is stored.
    let page = browser.get("/staff/admin/ansatte").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible(&page.body);
    let csrf = page.csrf();
    let (_, before) = app.get(&key, "/staff").await;
    let staff_count = before["items"].as_array().unwrap().len();
    let bad = browser
        .post(
            "/staff/admin/ansatte",
            &[
                ("csrf", &csrf),
                ("name", "  "),
                ("role", "outreach"),
                ("email", "ola(at)example.no"),
                ("email_digest", "daily"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_accessible(&bad.body);
    assert!(
        bad.body.contains("Skriv navnet til personen"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("aria-describedby=\"name-error\""));
    assert!(bad.body.contains("id=\"email-error\""));
    assert!(
        bad.body.contains("value=\"ola(at)example.no\""),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("<option value=\"outreach\" selected>"));
    let (_, after) = app.get(&key, "/staff").await;
    assert_eq!(after["items"].as_array().unwrap().len(), staff_count);
    // Without the session's CSRF token the form is refused.
    let forged = browser
        .post(
            "/staff/admin/ansatte",
            &[("name", "Mallory"), ("role", "admin")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let added = browser
        .post(
            "/staff/admin/ansatte",
            &[
                ("csrf", &csrf),
                ("name", "Ola Oppsøker"),
                ("role", "outreach"),
                ("team_lead", "ja"),
                ("email", "ola@example.no"),
                ("email_digest", "daily"),
            ],
        )
        .await;
    let ola = added_id(&added);
    let (_, people) = app.get(&key, "/staff").await;
    let person = people["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == ola.as_str())
        .expect("the new staff member in the API's list")
        .clone();
    assert_eq!(person["name"], "Ola Oppsøker");
    assert_eq!(person["role"], "outreach");
    assert_eq!(person["team_lead"], true);
    assert_eq!(person["email"], "ola@example.no");
    assert_eq!(person["email_digest"], "daily");
    let page = browser.get(added.location()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Ola Oppsøker er lagt til"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("id=\"innlogging-{ola}\" open")));
    keep("staff", &page);

    // A login: a short password and a taken username are refused on their fields.
    let login_path = format!("/staff/admin/ansatte/{ola}/innlogging");
    let short = browser
        .post(
            &login_path,
            &[("csrf", &csrf), ("username", "Ola.O"), ("password", "kort")],
        )
        .await;
    assert_eq!(
        short.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        short.body
    );
    assert_accessible(&short.body);
    assert!(short.body.contains("minst 12 tegn"), "{}", short.body);
    assert!(short.body.contains(&format!("id=\"password-error-{ola}\"")));
    assert!(short.body.contains("value=\"Ola.O\""));
    assert!(!short.body.contains("value=\"kort\""));
    keep("staff-error", &short);
    let taken = browser
        .post(
            &login_path,
            &[
                ("csrf", &csrf),
                ("username", "ada"),
                ("password", "et annet langt passord"),
            ],
        )
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        taken.body.contains("Noen andre logger allerede inn"),
        "{}",
        taken.body
    );
    let given = browser
        .post(
            &login_path,
            &[
                ("csrf", &csrf),
                ("username", "Ola.O"),
                ("password", "ola sitt lange passord"),
            ],
        )
        .await;
    given.assert_redirect(&format!("/staff/admin/ansatte?innlogging={ola}"));
    let page = browser.get(given.location()).await;
    assert!(
        page.body
            .contains("Innloggingen til Ola Oppsøker er lagret")
    );
    assert!(!page.body.contains("argon2") && !page.body.contains("ola sitt lange passord"));
    let mut ola_browser = Browser::new(&app);
    ola_browser
        .log_in("ola.o", "ola sitt lange passord")
        .await
        .assert_redirect("/staff");

    // --- The organisation's own details.
    let page = browser.get("/staff/admin/organisasjoner").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible(&page.body);
    assert!(page.body.contains("Poliklinikk Rus Nord"));
    keep("organisations", &page);
    let org_form = |email: &'static str, monday: &'static str| {
        vec![
            ("name", "Poliklinikk Nord"),
            ("time_zone", "Europe/Oslo"),
            ("staff_email", email),
            ("sms_sender", "Timebok"),
            ("hours_mon", monday),
            ("hours_tue", ""),
            ("hours_wed", ""),
            ("hours_thu", ""),
            ("hours_fri", "08:00-15:00"),
            ("hours_sat", ""),
            ("hours_sun", ""),
        ]
    };
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend(org_form("post(at)example.no", "15:30–08:00"));
    let bad = browser.post("/staff/admin/organisasjoner", &form).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_accessible(&bad.body);
    assert!(
        bad.body.contains("id=\"staff_email-error\""),
        "{}",
        bad.body
    );
    assert!(
        bad.body.contains("Åpningstiden må være før stengetiden"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("aria-describedby=\"hours_mon-error\""));
    assert!(bad.body.contains("value=\"15:30–08:00\""));
    keep("organisations-error", &bad);
    let (_, unchanged) = app.get(&key, &format!("/organisations/{org}")).await;
    assert_eq!(unchanged["name"], "Poliklinikk Rus Nord");
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend(org_form("post@example.no", "08:00–11:00, 12:00–15:30"));
    browser
        .post("/staff/admin/organisasjoner", &form)
        .await
        .assert_redirect("/staff/admin/organisasjoner?lagret=1");
    let (_, changed) = app.get(&key, &format!("/organisations/{org}")).await;
    assert_eq!(changed["name"], "Poliklinikk Nord");
    assert_eq!(changed["staff_email"], "post@example.no");
    assert_eq!(changed["sms_sender"], "Timebok");
    assert_eq!(
        changed["opening_hours"]["mon"],
        json!([{"opens": "08:00", "closes": "11:00"}, {"opens": "12:00", "closes": "15:30"}])
    );
    assert_eq!(changed["opening_hours"]["fri"][0]["closes"], "15:00");

    // --- The policy: a bad value names its field and stores nothing; a good one is saved.
    let page = browser.get("/staff/admin/regler").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible(&page.body);
    assert!(page.body.contains("<option value=\"sms\" selected>"));
    keep("policy", &page);
    let policy_path = format!("/organisations/{org}/policy");
    let (_, stored) = app.get(&key, &policy_path).await;
    let bad = browser
        .post(
            "/staff/admin/regler",
            &policy_form(
                &csrf,
                &[
                    ("sms_ack_hours", "0"),
                    ("quiet_from", "kveld"),
                    ("revealing_words", "Rus Nord"),
                ],
            ),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_accessible(&bad.body);
    assert!(
        bad.body.contains("id=\"sms_ack_hours-error\""),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("mellom 1 og 720"), "{}", bad.body);
    assert!(bad.body.contains("sms_ack_hours-hint sms_ack_hours-error"));
    assert!(bad.body.contains("id=\"quiet_from-error\""));
    assert!(bad.body.contains("value=\"kveld\""));
    assert!(bad.body.contains("Rus Nord</textarea>"));
    keep("policy-error", &bad);
    let twice = browser
        .post(
            "/staff/admin/regler",
            &policy_form(&csrf, &[("step2", "sms")]),
        )
        .await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        twice.body.contains("«SMS» er valgt mer enn én gang"),
        "{}",
        twice.body
    );
    assert!(twice.body.contains("aria-describedby=\"chain-error\""));
    let (_, same) = app.get(&key, &policy_path).await;
    assert_eq!(same, stored, "a refused form stores nothing");
    browser
        .post(
            "/staff/admin/regler",
            &policy_form(
                &csrf,
                &[
                    ("step3", "outreach"),
                    ("step4", ""),
                    ("sms_ack_hours", "12"),
                    ("quiet_from", "22.00"),
                    ("revealing_words", "Rus Nord\n\n  Nordklinikken  "),
                ],
            ),
        )
        .await
        .assert_redirect("/staff/admin/regler?lagret=1");
    let (_, policy) = app.get(&key, &policy_path).await;
    assert_eq!(policy["chain"], json!(["sms", "letter", "outreach"]));
    assert_eq!(policy["sms_ack_hours"], 12);
    assert_eq!(policy["quiet_from"], "22:00");
    assert_eq!(
        policy["revealing_words"],
        json!(["Rus Nord", "Nordklinikken"])
    );
    let page = browser.get("/staff/admin/regler?lagret=1").await;
    assert!(page.body.contains("Kontaktreglene er lagret"));
    assert!(page.body.contains("value=\"12\""));

    // --- Templates: the list, a preview of an edit, a refused word, save, revert.
    let list = browser.get("/staff/admin/maler").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_accessible(&list.body);
    assert!(has_link(&list.body, "/staff/admin/maler/booking.sms/nb"));
    assert!(has_link(&list.body, "/staff/admin/maler/staff_email/se"));
    keep("templates", &list);
    let path = "/staff/admin/maler/booking.sms/nb";
    let page = browser.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible(&page.body);
    assert!(page.body.contains("Slik blir teksten nå"), "{}", page.body);
    assert!(page.body.contains("GSM-7"));
    let revealing =
        "Hei!\nDu har time hos Rus Nord {{ when }}.\nSvar {{ code }} eller åpne {{ link }}";
    let refused = browser
        .post(
            path,
            &[
                ("csrf", &csrf),
                ("action", "forhandsvis"),
                ("source", revealing),
            ],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_accessible(&refused.body);
    assert!(
        refused.body.contains("Linje 2: «Rus Nord» kan avsløre"),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("aria-describedby=\"source-hint source-error\"")
    );
    assert!(
        refused
            .body
            .contains("Du har time hos Rus Nord {{ when }}.")
    );
    keep("template-error", &refused);
    let unknown = browser
        .post(
            path,
            &[
                ("csrf", &csrf),
                ("action", "lagre"),
                ("source", "Hei {{ patient_name }}! Svar {{ code }}"),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown.body.contains("Linje 1: «patient_name» finnes ikke"),
        "{}",
        unknown.body
    );
    let good = "Hei! Du har time {{ when }}{% if place %}, {{ place }}{% endif %}.\nSvar {{ code }} på denne meldingen, eller åpne {{ link }}";
    let preview = browser
        .post(
            path,
            &[("csrf", &csrf), ("action", "forhandsvis"), ("source", good)],
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(preview.body.contains("Forhåndsvisning (ikke lagret)"));
    assert!(
        preview.body.contains("Hei! Du har time"),
        "{}",
        preview.body
    );
    assert!(
        preview.body.contains("1 SMS-del, GSM-7"),
        "{}",
        preview.body
    );
    keep("template-preview", &preview);
    let sami = browser
        .post(
            path,
            &[
                ("csrf", &csrf),
                ("action", "forhandsvis"),
                (
                    "source",
                    "Don leat oažžun áiggi {{ when }}. Vástit {{ code }} dahje {{ link }}",
                ),
            ],
        )
        .await;
    assert_eq!(sami.status, StatusCode::OK, "{}", sami.body);
    assert!(sami.body.contains("UCS-2"), "{}", sami.body);
    let (_, detail) = app.get(&key, "/templates/booking.sms/nb").await;
    assert_eq!(detail["version"], "default", "a preview stores nothing");
    assert_eq!(detail["versions"], json!([]));

    browser
        .post(
            path,
            &[("csrf", &csrf), ("action", "lagre"), ("source", good)],
        )
        .await
        .assert_redirect(&format!("{path}?lagret=1"));
    let (_, list) = app.get(&key, "/templates").await;
    let entry = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "booking.sms" && t["lang"] == "nb")
        .unwrap()
        .clone();
    assert_eq!(entry["version"], "1");
    let (_, detail) = app.get(&key, "/templates/booking.sms/nb").await;
    assert_eq!(detail["source"], good);
    let page = browser.get(&format!("{path}?lagret=1")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_accessible(&page.body);
    assert!(page.body.contains("egen versjon 1"), "{}", page.body);
    assert!(
        page.body.contains("Ada Admin"),
        "the history names who saved"
    );
    keep("template", &page);

    browser
        .post(path, &[("csrf", &csrf), ("action", "tilbakestill")])
        .await
        .assert_redirect(&format!("{path}?tilbakestilt=1"));
    let (_, detail) = app.get(&key, "/templates/booking.sms/nb").await;
    assert_eq!(detail["version"], "default");
    assert_eq!(detail["versions"].as_array().unwrap().len(), 2);
    let page = browser.get(&format!("{path}?tilbakestilt=1")).await;
    assert!(page.body.contains("bruker standardteksten igjen"));

    let missing = browser.get("/staff/admin/maler/booking.fax/nb").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

crate::scenarios!(an_admin_does_the_admin_job_in_the_browser);

async fn other_roles_are_refused_the_admin_pages(app: App) {
    let (org, key) = app.add_org("Poliklinikk", "clinic").await;
    staff_with_login(&app, &key, "Kari Klinikk", "clinic", "kari").await;
    let victim = add_staff(&app, &key, "Per Print", "print").await;
    let mut browser = Browser::new(&app);
    browser
        .log_in("kari", STAFF_PASSWORD)
        .await
        .assert_redirect("/staff");
    let start = browser.get("/staff").await;
    assert!(!has_link(&start.body, "/staff/admin"));
    let csrf = start.csrf();
    for path in [
        "/staff/admin",
        "/staff/admin/organisasjoner",
        "/staff/admin/ansatte",
        "/staff/admin/regler",
        "/staff/admin/maler",
        "/staff/admin/maler/booking.sms/nb",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::CONFLICT, "{path}: {}", page.body);
        assert!(
            page.body.contains("bare for administratorer"),
            "{path}: {}",
            page.body
        );
        assert_accessible(&page.body);
    }
    let policy_path = format!("/organisations/{org}/policy");
    let (_, stored) = app.get(&key, &policy_path).await;
    let refused = browser
        .post(
            "/staff/admin/regler",
            &policy_form(&csrf, &[("sms_ack_hours", "1")]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let (_, same) = app.get(&key, &policy_path).await;
    assert_eq!(same, stored);
    let refused = browser
        .post(
            &format!("/staff/admin/ansatte/{victim}/innlogging"),
            &[
                ("csrf", &csrf),
                ("username", "per"),
                ("password", "et langt nok passord"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let mut per = Browser::new(&app);
    let login = per.log_in("per", "et langt nok passord").await;
    assert_eq!(login.status, StatusCode::UNPROCESSABLE_ENTITY);

    // An admin of another organisation cannot give this one's staff a login.
    let (_, other_key) = app.add_org("Annen klinikk", "clinic").await;
    staff_with_login(&app, &other_key, "Otto Admin", "admin", "otto").await;
    let mut otto = Browser::new(&app);
    otto.log_in("otto", STAFF_PASSWORD)
        .await
        .assert_redirect("/staff");
    let page = otto.get("/staff/admin/ansatte").await;
    assert!(!page.body.contains("Per Print"));
    let refused = otto
        .post(
            &format!("/staff/admin/ansatte/{victim}/innlogging"),
            &[
                ("csrf", &page.csrf()),
                ("username", "per"),
                ("password", "et langt nok passord"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
}

crate::scenarios!(other_roles_are_refused_the_admin_pages);
