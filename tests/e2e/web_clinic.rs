//! The clinic's pages (`/staff/pasienter…`): a secretary finds and registers a patient, adds
//! contact points with where they came from, books, moves and cancels appointments, records a
//! no-show, and reads each notice step by step — in bokmål, without JavaScript, with every read
//! audited as `staff:{id}`. A form with mistakes comes back (422) with what was typed and a
//! message by the field; another organisation's patient is "not found"; a role that may not,
//! or a low-threshold service, is refused. The last scenario does the same job by clicking in
//! headless Chromium (axe-core and screenshots at desktop and phone width).

use crate::chromium::{PHONE, chrome};
use crate::support::*;
use crate::web::{Answer, Browser, STAFF_PASSWORD, assert_accessible, has_link, staff_with_login};
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

/// An instant as the forms take it: Oslo date `dd.mm.åååå` and time `tt:mm`.
fn oslo_form(t: DateTime<Utc>) -> (String, String) {
    let local = t.with_timezone(&chrono_tz::Europe::Oslo);
    (
        local.format("%d.%m.%Y").to_string(),
        local.format("%H:%M").to_string(),
    )
}

/// `days` from the server's now, at 10:30 Oslo time.
fn at_half_past_ten(app: &App, days: i64) -> (String, String) {
    let (date, _) = oslo_form(app.now() + TimeDelta::days(days));
    (date, "10:30".into())
}

#[track_caller]
fn assert_has(page: &Answer, what: &str) {
    assert!(
        page.body.contains(what),
        "{what:?} not on the page: {}",
        page.body
    );
}

/// Where a redirect to the patient page points, without its `#section`.
fn patient_path(answer: &Answer) -> String {
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    answer.location().split('#').next().unwrap().to_owned()
}

/// The id in `id="<prefix>…"` of the first card after `after` (an appointment, a contact point).
fn id_after(body: &str, after: &str, prefix: &str) -> String {
    let from = body
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} not on the page: {body}"));
    // The card's heading comes before its text: look back for the nearest id.
    let head = &body[..from];
    let start = head
        .rfind(&format!("id=\"{prefix}"))
        .unwrap_or_else(|| panic!("no {prefix} card before {after:?}"))
        + 4
        + prefix.len();
    body[start..start + 36].to_owned()
}

async fn a_clinic_secretary_works_a_patient(app: App) {
    let (_, admin) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let (_, other) = app.add_org("DPS Sør", "clinic").await;
    let siri = staff_with_login(&app, &admin, "Siri Sekretær", "clinic", "siri").await;
    staff_with_login(&app, &admin, "Per Utskrift", "print", "per").await;
    let elsewhere = app.patient(&other, "Ukjent Person").await;

    let mut b = Browser::new(&app);
    b.log_in("siri", STAFF_PASSWORD)
        .await
        .assert_redirect("/staff");
    let start = b.get("/staff").await;
    assert!(has_link(&start.body, "/staff/pasienter"), "{}", start.body);

    // Nobody by that name yet.
    let page = b.get("/staff/pasienter?navn=Kari&fodt=").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible(&page.body);
    assert_has(&page, "Fant ingen pasienter");
    assert_has(&page, "<label for=\"ny-birth_date\"");
    let csrf = page.csrf();

    // A birth date that does not exist: the form comes back with the message by the field and
    // what was typed, and nothing is stored.
    let register = |birth_date: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", "Kari Nordmann".to_owned()),
            ("birth_date", birth_date.to_owned()),
            ("birth_year", String::new()),
            ("national_id", String::new()),
            ("language", "nn".to_owned()),
            (
                "contact_notes",
                "Er ofte på dagsenteret tirsdager".to_owned(),
            ),
            ("coordinator_id", String::new()),
        ]
    };
    let form = register("31.02.1979");
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bad = b.post("/staff/pasienter", &pairs).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_accessible(&bad.body);
    assert_has(&bad, "Skriv datoen som 24.12.1979");
    assert_has(&bad, "value=\"31.02.1979\"");
    assert_has(&bad, "value=\"Kari Nordmann\"");
    assert_has(&bad, "Er ofte på dagsenteret tirsdager</textarea>");
    assert_has(&bad, "<option value=\"nn\" selected>");
    assert_has(
        &bad,
        "aria-describedby=\"ny-birth_date-hint ny-birth_date-error\"",
    );
    assert_has(&bad, "id=\"ny-birth_date-error\"");
    assert_has(&bad, "role=\"alert\"");
    let (_, none) = app.get(&admin, "/patients?q=Kari").await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0, "{none}");

    let form = register("24.12.1979");
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let made = b.post("/staff/pasienter", &pairs).await;
    let path = patient_path(&made);
    let pid = path.strip_prefix("/staff/pasienter/").unwrap().to_owned();
    let (_, patient) = app.get(&admin, &format!("/patients/{pid}")).await;
    assert_eq!(patient["birth_date"], "1979-12-24", "{patient}");
    assert_eq!(patient["language"], "nn");

    let found = b.get("/staff/pasienter?navn=kari&fodt=1979").await;
    assert_eq!(found.status, StatusCode::OK);
    assert_accessible(&found.body);
    assert!(has_link(&found.body, &path), "{}", found.body);
    assert_has(&found, "<th scope=\"col\">Navn</th>");
    let wrong_year = b.get("/staff/pasienter?navn=kari&fodt=79").await;
    assert_eq!(wrong_year.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_has(&wrong_year, "value=\"79\"");
    assert_has(&wrong_year, "Skriv fødselsåret med fire sifre");

    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible(&page.body);
    assert_has(&page, "<h1>Kari Nordmann</h1>");
    assert_has(&page, "24.12.1979");
    assert_has(&page, "Ingen kontaktpunkter ennå");

    // A phone with its provenance; a wrong number first.
    let cp_path = format!("{path}/kontaktpunkter");
    let bad = b
        .post(
            &cp_path,
            &[
                ("csrf", &csrf),
                ("kind", "sms"),
                ("provenance", "stated_by_patient"),
                ("phone", "12"),
                ("note", "egen mobil"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_accessible(&bad.body);
    assert_has(&bad, "value=\"12\"");
    assert_has(&bad, "id=\"kp-phone-error\"");
    assert_has(&bad, "value=\"egen mobil\"");
    let added = b
        .post(
            &cp_path,
            &[
                ("csrf", &csrf),
                ("kind", "sms"),
                ("provenance", "stated_by_patient"),
                ("phone", "912 34 567"),
                ("note", "egen mobil"),
            ],
        )
        .await;
    assert_eq!(patient_path(&added), path);
    let added = b
        .post(
            &cp_path,
            &[
                ("csrf", &csrf),
                ("kind", "postal"),
                ("provenance", "verified_in_person"),
                (
                    "lines",
                    "Kari Nordmann\r\nc/o Kirkens Bymisjon\r\nStorgata 1",
                ),
                ("postal_code", "0155"),
                ("place", "Oslo"),
                ("expires", ""),
            ],
        )
        .await;
    assert_eq!(patient_path(&added), path);
    let page = b.get(&path).await;
    assert_accessible(&page.body);
    assert_has(&page, "SMS til mobil: +47 912 34 567");
    assert_has(&page, "Oppgitt av pasienten");
    assert_has(&page, "Bekreftet ansikt til ansikt");
    assert_has(&page, "av Siri Sekretær");
    assert_has(&page, "c&#x2f;o Kirkens Bymisjon, Storgata 1, 0155 OSLO");

    // Retire the address: a reason is needed.
    let postal = id_after(&page.body, "Postadresse (brev): Kari Nordmann", "cp-");
    let retire = format!("{cp_path}/{postal}/trekk-tilbake");
    let bad = b.post(&retire, &[("csrf", &csrf), ("reason", " ")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_has(&bad, &format!("id=\"trekk-{postal}-reason-error\""));
    assert_has(&bad, "<details open>");
    let done = b
        .post(
            &retire,
            &[("csrf", &csrf), ("reason", "har flyttet fra hospitset")],
        )
        .await;
    assert_eq!(patient_path(&done), path);

    // Book: a date that does not exist first, then the real one.
    let book = format!("{path}/timer");
    let (date, time) = at_half_past_ten(&app, 6);
    let bad = b
        .post(
            &book,
            &[
                ("csrf", &csrf),
                ("date", "30.02.2027"),
                ("time", &time),
                ("duration", "45"),
                ("place", "Storgata 36, 2. etasje"),
                ("kind", "in_person"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_accessible(&bad.body);
    assert_has(&bad, "Skriv datoen som 24.12.2026");
    assert_has(&bad, "value=\"30.02.2027\"");
    assert_has(&bad, "value=\"Storgata 36, 2. etasje\"");
    assert_has(&bad, "aria-describedby=\"time-date-hint time-date-error\"");
    let (_, appointments) = app
        .get(&admin, &format!("/patients/{pid}/appointments"))
        .await;
    assert_eq!(appointments["items"].as_array().unwrap().len(), 0);
    let booked = b
        .post(
            &book,
            &[
                ("csrf", &csrf),
                ("date", &date),
                ("time", &time),
                ("duration", "45"),
                ("place", "Storgata 36, 2. etasje"),
                ("kind", "in_person"),
            ],
        )
        .await;
    assert_eq!(patient_path(&booked), path);
    let (_, appointments) = app
        .get(&admin, &format!("/patients/{pid}/appointments"))
        .await;
    let first = &appointments["items"][0];
    assert_eq!(first["duration_minutes"], 45, "{appointments}");
    let aid = first["id"].as_str().unwrap().to_owned();
    let starts: DateTime<Utc> = first["starts_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(oslo_form(starts), (date.clone(), time.clone()), "Oslo time");

    // The notice and its steps: the SMS through the phone, the letter skipped (the address is
    // retired) with why.
    eventually("the SMS is sent", || async {
        let (_, notices) = app.get(&admin, &format!("/patients/{pid}/notices")).await;
        let id = notices["items"][0]["id"].as_str()?.to_owned();
        let (_, n) = app.get(&admin, &format!("/notices/{id}")).await;
        (n["steps"][0]["status"] == "sent").then_some(())
    })
    .await;
    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_accessible(&page.body);
    assert_has(&page, "Innkalling til time");
    assert_has(
        &page,
        "<th scope=\"row\">1. SMS<br><span class=\"via\">SMS: +47 912 34 567</span>",
    );
    assert_has(&page, "SMS: +47 912 34 567");
    assert_has(&page, "<strong>sendt</strong>");
    assert_has(&page, "<th scope=\"row\">2. Brev<br>");
    assert_has(
        &page,
        "hoppet over: pasienten har ikke noe kontaktpunkt for denne kanalen",
    );
    assert_has(
        &page,
        "<caption>Stegene for beskjeden, i rekkefølge</caption>",
    );
    assert_has(&page, "trukket tilbake");

    // "Møtte" is for the day itself: too early is refused, in words.
    let early = b
        .post(
            &format!("/staff/timer/{aid}/oppmote"),
            &[("csrf", &csrf), ("attended", "ja")],
        )
        .await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
    assert_has(&early, "for tidlig");

    // Move it: a time that has passed comes back with the message; then a day later.
    let flytt = format!("/staff/timer/{aid}/flytt");
    let (past_date, past_time) = oslo_form(app.now() - TimeDelta::days(1));
    let bad = b
        .post(
            &flytt,
            &[
                ("csrf", &csrf),
                ("date", &past_date),
                ("time", &past_time),
                ("duration", "45"),
                ("place", "Storgata 36, 2. etasje"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_accessible(&bad.body);
    assert_has(&bad, "Tidspunktet har passert");
    assert_has(&bad, &format!("value=\"{past_date}\""));
    let (new_date, _) = at_half_past_ten(&app, 7);
    let moved = b
        .post(
            &flytt,
            &[
                ("csrf", &csrf),
                ("date", &new_date),
                ("time", "11.15"),
                ("duration", "30"),
                ("place", "Storgata 36, 3. etasje"),
                ("reason", "behandler syk"),
            ],
        )
        .await;
    assert_eq!(patient_path(&moved), path);
    let (_, a) = app.get(&admin, &format!("/appointments/{aid}")).await;
    assert_eq!(a["status"], "rescheduled", "{a}");
    assert_eq!(a["place"], "Storgata 36, 3. etasje");
    let page = b.get(&path).await;
    assert_accessible(&page.body);
    assert_has(&page, "Timen er flyttet");
    assert_has(&page, "behandler syk");
    assert_has(&page, "erstattet av en nyere beskjed");
    let newest = page.body.find("Timen er flyttet").unwrap();
    let older = page.body.find("Innkalling til time").unwrap();
    assert!(newest < older, "newest notice first");

    // Another appointment that starts in a moment; the patient does not come.
    let soon = (app.now() + TimeDelta::seconds(2)).to_rfc3339();
    let (status, second) = app
        .post(
            &admin,
            "/appointments",
            json!({"patient_id": pid, "starts_at": soon, "place": "Storgata 36"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second = second["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let page = b.get(&path).await;
    assert_has(&page, &format!("action=\"/staff/timer/{second}/oppmote\""));
    let missed = b
        .post(
            &format!("/staff/timer/{second}/oppmote"),
            &[("csrf", &csrf), ("attended", "nei")],
        )
        .await;
    assert_eq!(patient_path(&missed), path);
    let (_, a) = app.get(&admin, &format!("/appointments/{second}")).await;
    assert_eq!(a["status"], "no_show", "{a}");

    // Cancel the first.
    let cancelled = b
        .post(
            &format!("/staff/timer/{aid}/avlys"),
            &[("csrf", &csrf), ("reason", "pasienten ringte")],
        )
        .await;
    assert_eq!(patient_path(&cancelled), path);
    let (_, a) = app.get(&admin, &format!("/appointments/{aid}")).await;
    assert_eq!(a["status"], "cancelled", "{a}");
    let again = b
        .post(
            &format!("/staff/timer/{aid}/avlys"),
            &[("csrf", &csrf), ("reason", "")],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_has(&again, "allerede avlyst");

    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_accessible(&page.body);
    for text in [
        "Timen er avlyst",
        "Oppfølging etter uteblitt time",
        "Status: <strong>møtte ikke</strong>",
        "Status: <strong>avlyst</strong>",
        "pasienten ringte",
    ] {
        assert_has(&page, text);
    }
    assert!(
        !page.body.contains(&format!("/staff/timer/{aid}/flytt")),
        "a cancelled appointment cannot be moved"
    );
    std::fs::write("/tmp/clinic-patient.html", &page.body).unwrap();

    // A form without the session's token changes nothing.
    let forged = b
        .post(&format!("/staff/timer/{second}/avlys"), &[("reason", "")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Another organisation's patient, and an id that is none, are not found.
    for other_path in [
        format!("/staff/pasienter/{elsewhere}"),
        "/staff/pasienter/ikke-en-id".to_owned(),
    ] {
        let nothing = b.get(&other_path).await;
        assert_eq!(nothing.status, StatusCode::NOT_FOUND, "{}", nothing.body);
        assert_accessible(&nothing.body);
        assert!(!nothing.body.contains("Ukjent Person"));
    }
    let nothing = b
        .post(
            &format!("/staff/pasienter/{elsewhere}/timer"),
            &[
                ("csrf", &csrf),
                ("date", &date),
                ("time", &time),
                ("place", "Storgata 36"),
            ],
        )
        .await;
    assert_eq!(nothing.status, StatusCode::NOT_FOUND);
    let (_, theirs) = app
        .get(&other, &format!("/patients/{elsewhere}/appointments"))
        .await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);

    // The print room may not open patient pages.
    let mut per = Browser::new(&app);
    per.log_in("per", STAFF_PASSWORD).await;
    let refused = per.get(&path).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_accessible(&refused.body);
    assert_has(&refused, "Rollen din (utskrift) kan ikke");
    assert!(!refused.body.contains("Kari Nordmann"));

    // Every read and change is in the patient's access log, under Siri's name.
    let (status, log) = app.get(&admin, &format!("/patients/{pid}/audit")).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let mine: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == format!("staff:{siri}").as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "patient.create",
        "patient.list",
        "patient.read",
        "contact_point.list",
        "contact_point.add",
        "contact_point.retire",
        "appointment.book",
        "appointment.reschedule",
        "appointment.attendance",
        "appointment.cancel",
        "notice.read",
        "timeline.read",
    ] {
        assert!(mine.contains(&action), "{action} not in {mine:?}");
    }
    let refusals = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .count();
    assert!(
        refusals >= 1,
        "the print room's refused look is logged: {log}"
    );
    let (_, theirs) = app
        .get(&other, &format!("/patients/{elsewhere}/audit"))
        .await;
    assert!(
        theirs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == format!("staff:{siri}").as_str() && e["outcome"] == "denied"),
        "a look at another organisation's patient is logged as refused: {theirs}"
    );
}

/// A coordinator reads the patient and the notices, but only the clinic books; a day centre's
/// staff gets no patient pages at all (it sees the patient in its relay requests).
async fn others_see_what_their_role_allows(app: App) {
    let (centre_id, centre) = app.add_org("Dagsenteret", "low_threshold_service").await;
    let (_, admin) = app.add_org("Poliklinikk", "clinic").await;
    staff_with_login(&app, &admin, "Kari Koordinator", "coordinator", "kari").await;
    let dagny_id = staff_with_login(&app, &centre, "Dagny Hansen", "relay", "dagny").await;
    let pid = app.patient(&admin, "Per Olsen").await;
    let (status, body) = app
        .post(
            &admin,
            &format!("/patients/{pid}/contact-points"),
            json!({"kind": "relay", "organisation_id": centre_id, "provenance": "verified_in_person"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, booked) = app
        .post(
            &admin,
            "/appointments",
            json!({"patient_id": pid, "starts_at": in_minutes(6 * 24 * 60), "place": "Storgata 36"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let aid = booked["id"].as_str().unwrap().to_owned();
    let path = format!("/staff/pasienter/{pid}");

    let mut kari = Browser::new(&app);
    kari.log_in("kari", STAFF_PASSWORD).await;
    let page = kari.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible(&page.body);
    assert_has(&page, "Innkalling til time");
    assert_has(&page, "Lavterskeltilbud som gir beskjed: Dagsenteret");
    assert!(
        !page.body.contains("Book timen"),
        "coordinators do not book"
    );
    assert!(!page.body.contains("/flytt\""));
    let csrf = page.csrf();
    let refused = kari
        .post(
            &format!("/staff/timer/{aid}/avlys"),
            &[("csrf", &csrf), ("reason", "")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_has(&refused, "kan ikke endre timer");
    let (_, a) = app.get(&admin, &format!("/appointments/{aid}")).await;
    assert_eq!(a["status"], "booked");

    // A day centre sees the patient only in its relay requests (Oppgaver): no patient pages,
    // not even the search, and each refusal is in the access log.
    let mut dagny = Browser::new(&app);
    dagny.log_in("dagny", STAFF_PASSWORD).await;
    let start = dagny.get("/staff").await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    assert!(has_link(&start.body, "/staff/oppgaver"), "{}", start.body);
    assert!(!has_link(&start.body, "/staff/pasienter"), "{}", start.body);
    let page = dagny.get(&path).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert_accessible(&page.body);
    assert_has(&page, "Et lavterskeltilbud kan ikke se pasientsider");
    assert_has(&page, "under Oppgaver");
    assert!(
        !page.body.contains("Per Olsen") && !page.body.contains("Storgata 36"),
        "a day centre sees nothing of the patient here: {}",
        page.body
    );
    let search = dagny.get("/staff/pasienter?navn=per").await;
    assert_eq!(search.status, StatusCode::CONFLICT, "{}", search.body);
    assert!(!search.body.contains("Per Olsen"), "{}", search.body);
    assert!(!has_link(&search.body, &path), "{}", search.body);
    let (_, log) = app.get(&admin, &format!("/patients/{pid}/audit")).await;
    assert!(
        log["items"].as_array().unwrap().iter().any(|e| {
            e["action"] == "patient.read"
                && e["actor"] == format!("staff:{dagny_id}").as_str()
                && e["outcome"] == "denied"
        }),
        "the refused page is in the access log: {log:#}"
    );
}

/// The same job in a real browser: every page passes axe-core and fits a phone.
async fn a_clinic_secretary_in_chromium(app: App) {
    let Some(mut c) = chrome(&app, "clinic").await else {
        return;
    };
    let (_, admin) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    staff_with_login(&app, &admin, "Siri Sekretær", "clinic", "siri").await;
    c.log_in("siri", STAFF_PASSWORD).await;
    c.click("Pasienter").await;
    c.fill("Navn", "Kari").await;
    c.click("Søk").await;
    c.sees("Fant ingen pasienter").await;
    c.look("pasienter-sok").await;

    c.fill("Navn (må fylles ut)", "Kari Nordmann").await;
    c.fill("Fødselsdato", "24.13.1979").await;
    c.click("Registrer pasienten").await;
    c.sees("Skriv datoen som 24.12.1979").await;
    c.look("pasienter-feil").await;
    c.fill("Fødselsdato", "24.12.1979").await;
    c.choose("Språk for beskjeder", "Nordsamisk").await;
    c.click("Registrer pasienten").await;
    c.sees("Kari Nordmann").await;
    c.sees("Nordsamisk").await;

    c.choose("Type (må fylles ut)", "SMS til mobil").await;
    c.choose(
        "Hvor kommer opplysningen fra? (må fylles ut)",
        "Oppgitt av pasienten",
    )
    .await;
    c.fill("Telefonnummer", "912 34 567").await;
    c.click("Legg til kontaktpunktet").await;
    c.sees("SMS til mobil: +47 912 34 567").await;

    let (date, time) = at_half_past_ten(&app, 6);
    c.fill("Dato (må fylles ut)", &date).await;
    c.fill("Klokkeslett (må fylles ut)", &time).await;
    c.fill("Sted (må fylles ut)", "Storgata 36, 2. etasje")
        .await;
    c.click("Book timen").await;
    c.sees("Innkalling til time").await;
    c.sees("1. SMS").await;
    c.look("pasient").await;
    c.width(PHONE).await;
    c.open("Flytt timen").await;
    c.fill("Ny dato (må fylles ut)", "i morgen").await;
    c.click("Flytt timen").await;
    c.sees("Skriv datoen som 24.12.2026").await;
    c.look("pasient-feil").await;
    c.close().await;
}

crate::scenarios!(
    a_clinic_secretary_works_a_patient,
    others_see_what_their_role_allows
);

mod a_clinic_secretary_in_chromium {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chromium() {
        crate::support::run(
            crate::support::Backend::Sqlite,
            super::a_clinic_secretary_in_chromium,
        )
        .await;
    }
}
