//! Each user group's main job, done in headless Chromium by typing and clicking (see
//! [`crate::chromium`]): every page on the way passes axe-core and is photographed at desktop
//! and phone width. The API is used only to set the scene (what a clinic's system would have
//! sent) and to check the result.

use crate::chromium::{PHONE, chrome};
use crate::support::*;
use crate::web::{STAFF_PASSWORD, booked, first_task, staff_with_login};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn notice_status(app: &App, key: &str, notice: &str) -> Value {
    let (_, n) = app.get(key, &format!("/notices/{notice}")).await;
    n
}

async fn relay_worker(app: App) {
    let Some(mut b) = chrome(&app, "relay").await else {
        return;
    };
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (centre_id, centre) = app.add_org("Dagsenteret", "low_threshold_service").await;
    staff_with_login(&app, &centre, "Dagny Hansen", "relay", "dagny").await;
    let (_, notice) = booked(
        &app,
        &clinic,
        "Per Olsen",
        json!({"kind": "relay", "organisation_id": centre_id, "provenance": "verified_in_person", "note": "kommer på tirsdager"}),
        6,
    )
    .await;
    first_task(&app, &centre).await;

    b.log_in("dagny", STAFF_PASSWORD).await;
    b.look("start").await;
    b.click("Oppgaver").await;
    b.sees("Per Olsen, født 1979").await;
    b.sees("kommer på tirsdager").await;
    b.sees("Si til pasienten").await;
    b.look("oppgaver").await;
    b.width(PHONE).await;
    b.click_in("Per Olsen", "Beskjeden er gitt").await;
    b.sees("Ingen oppgaver her nå").await;
    assert_eq!(
        notice_status(&app, &clinic, &notice).await["status"],
        "acknowledged"
    );
    b.close().await;
}

async fn outreach_nurse(app: App) {
    let Some(mut b) = chrome(&app, "outreach").await else {
        return;
    };
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (team_id, team) = app.add_org("FACT Øst", "outreach_team").await;
    staff_with_login(&app, &team, "Nina Berg", "outreach", "nina").await;
    let (pid, notice) = booked(
        &app,
        &clinic,
        "Ola Nordmann",
        json!({"kind": "outreach", "organisation_id": team_id, "provenance": "verified_in_person"}),
        6,
    )
    .await;
    first_task(&app, &team).await;

    // On a phone, as on the street.
    b.width(PHONE).await;
    b.log_in("nina", STAFF_PASSWORD).await;
    b.goto("/staff/oppgaver?vis=ledige").await;
    b.sees("Ola Nordmann").await;
    b.look("tavle-ledige").await;
    b.click_in("Ola Nordmann", "Ta oppgaven").await;
    assert_eq!(b.path().await, "/staff/oppgaver");
    b.sees("Registrer forsøk").await;
    b.fill("Hvor lette du?", "Jernbanetorget").await;
    b.fill("Hva skjedde?", "ikke der, spurte i kiosken").await;
    b.click("Registrer forsøk").await;
    b.sees("Forsøk så langt:").await;
    b.sees("Jernbanetorget: ikke der, spurte i kiosken").await;
    b.sees("Hvor: oppsøkende team: FACT Øst").await;
    b.look("tavle-mine").await;
    // He has moved into a hostel: the nurse writes the new address she confirmed with him.
    b.open("Pasienten har flyttet").await;
    b.fill("c/o (valgfritt, f.eks. et hospits)", "Hospitset Ly")
        .await;
    b.fill("Gateadresse", "Tøyengata 2").await;
    b.fill("Postnummer", "0190").await;
    b.fill("Poststed", "Oslo").await;
    b.click("Registrer flytting og avslutt").await;
    b.sees("Ingen oppgaver her nå").await;
    let (_, points) = app
        .get(&clinic, &format!("/patients/{pid}/contact-points"))
        .await;
    let added = points["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "postal")
        .unwrap_or_else(|| panic!("the new address: {points}"));
    assert_eq!(added["provenance"], "verified_in_person", "{added}");
    assert_eq!(
        added["lines"],
        json!(["Ola Nordmann", "c/o Hospitset Ly", "Tøyengata 2"]),
        "{added}"
    );
    let n = notice_status(&app, &clinic, &notice).await;
    assert_ne!(n["status"], "acknowledged", "moving is not an ack: {n}");
    b.close().await;
}

async fn print_clerk(app: App) {
    let Some(mut b) = chrome(&app, "print").await else {
        return;
    };
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    staff_with_login(&app, &clinic, "Per Utskrift", "print", "per").await;
    let (pid, _) = booked(
        &app,
        &clinic,
        "Kari Nordmann",
        json!({"kind": "postal", "lines": ["Kari Nordmann", "c/o Kirkens Bymisjon", "Storgata 1"], "postal_code": "0155", "place": "Oslo", "provenance": "verified_in_person"}),
        30,
    )
    .await;

    b.log_in("per", STAFF_PASSWORD).await;
    b.click("Utskrift").await;
    b.look("utskrift-tom").await;
    b.click("Lag bunke nå").await;
    b.sees("1 brev").await;
    b.look("utskrift-bunke").await;
    b.click("Skrevet ut").await;
    b.click("Postlagt i dag").await;
    b.sees("postlagt").await;
    let (_, batches) = app.get(&clinic, "/print-batches").await;
    let batch = batches["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, manifest) = app.get(&clinic, &format!("/print-batches/{batch}")).await;
    let reference = manifest["letters"][0]["reference"].as_str().unwrap();
    b.fill(
        "Referanse (står under adressen; skriv eller skann den)",
        reference,
    )
    .await;
    b.fill("Hvorfor kom det i retur?", "ukjent adressat").await;
    b.click("Registrer returbrev").await;
    b.sees("Returbrevet er registrert").await;
    b.look("utskrift-retur").await;
    let (_, points) = app
        .get(&clinic, &format!("/patients/{pid}/contact-points"))
        .await;
    assert_eq!(points["items"][0]["status"], "failed", "{points}");
    b.close().await;
}

async fn coordinator(app: App) {
    let Some(mut b) = chrome(&app, "coordinator").await else {
        return;
    };
    let (_, admin) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let kari = staff_with_login(&app, &admin, "Kari Nordmann", "coordinator", "kari").await;
    let ola = staff_with_login(&app, &admin, "Ola Berg", "coordinator", "ola").await;
    let (status, p) = app
        .post(
            &admin,
            "/patients",
            json!({"name": "Liv Hansen", "birth_year": 1990, "coordinator_id": ola}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let liv = p["id"].as_str().unwrap().to_owned();

    // Ola offers Liv to Kari.
    b.log_in("ola", STAFF_PASSWORD).await;
    b.click("Koordinator").await;
    b.look("koordinator-ola").await;
    b.choose("Til", "Kari Nordmann").await;
    b.fill("Hva trenger den andre å vite?", "Flytter til Kari sin sone")
        .await;
    b.click("Tilby overlevering").await;
    b.sees("Overleveringen er sendt").await;
    b.goto("/staff").await;
    b.click("Logg ut").await;

    // Kari takes her on, on a phone.
    b.width(PHONE).await;
    b.log_in("kari", STAFF_PASSWORD).await;
    b.click("Koordinator").await;
    b.sees("Ola Berg (Poliklinikk Rus Nord) vil gi deg koordinatoransvaret")
        .await;
    b.look("koordinator-kari").await;
    b.click_in("Liv Hansen", "Ta imot").await;
    b.sees("Pasientene dine").await;
    b.sees("Liv Hansen, født 1990").await;
    let (_, patient) = app.get(&admin, &format!("/patients/{liv}")).await;
    assert_eq!(patient["coordinator_id"], kari.as_str(), "{patient}");
    b.close().await;
}

async fn admin(app: App) {
    let Some(mut b) = chrome(&app, "admin").await else {
        return;
    };
    let (org, key) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    staff_with_login(&app, &key, "Anne Admin", "admin", "anne").await;

    b.log_in("anne", STAFF_PASSWORD).await;
    b.click("Administrasjon").await;
    b.look("admin").await;

    // A new colleague, and a login for her.
    b.click("Ansatte og innlogging").await;
    b.fill("Navn", "Siri Sekretær").await;
    b.choose("Rolle", "poliklinikk").await;
    b.click("Legg til").await;
    b.sees("Siri Sekretær").await;
    b.open("Siri Sekretær").await;
    b.fill("Brukernavn for Siri Sekretær", "siri").await;
    b.fill("Passord for Siri Sekretær", STAFF_PASSWORD).await;
    b.click_in("Siri Sekretær", "Lagre innloggingen").await;
    b.look("ansatte").await;

    // The contact rules: a wrong number is named by its field; a good one is saved.
    b.goto("/staff/admin/regler").await;
    b.fill("SMS: timer", "tolv").await;
    b.click("Lagre kontaktreglene").await;
    b.sees("SMS: timer").await;
    b.look("regler-feil").await;
    b.fill("SMS: timer", "12").await;
    b.fill(
        "Ord som ikke skal stå i SMS, beskjeder og brevtitler",
        "avrusning",
    )
    .await;
    b.click("Lagre kontaktreglene").await;
    b.sees("Kontaktreglene er lagret.").await;
    let (_, policy) = app.get(&key, &format!("/organisations/{org}/policy")).await;
    assert_eq!(policy["sms_ack_hours"], 12, "{policy}");

    // A template: a revealing word is refused with its line, a good text saved, then undone.
    b.goto("/staff/admin/maler").await;
    b.look("maler").await;
    b.click("Ny time – SMS").await;
    b.fill(
        "Tekst",
        "Hei!\nTime på avrusning {{ when }}. Svar {{ code }}.",
    )
    .await;
    b.click("Forhåndsvis").await;
    b.sees("Linje 2").await;
    b.look("mal-feil").await;
    b.fill(
        "Tekst",
        "Hei! Du har time {{ when }}{% if place %}, {{ place }}{% endif %}. Svar {{ code }}.",
    )
    .await;
    b.click("Forhåndsvis").await;
    b.sees("Forhåndsvisning (ikke lagret)").await;
    b.click("Lagre som ny versjon").await;
    b.look("mal-lagret").await;
    b.click("Bruk standardteksten").await;
    b.close().await;

    // Siri can log in with what the admin gave her.
    let Some(siri) = chrome(&app, "admin-siri").await else {
        return;
    };
    siri.log_in("siri", STAFF_PASSWORD).await;
    siri.sees("Siri Sekretær").await;
    siri.close().await;
}

macro_rules! in_chromium {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn chromium() {
                    $crate::support::run($crate::support::Backend::Sqlite, super::$name).await;
                }
            }
        )+
    };
}

in_chromium!(
    relay_worker,
    outreach_nurse,
    print_clerk,
    coordinator,
    admin
);
