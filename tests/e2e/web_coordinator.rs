//! The coordinator's page: a patient who did not attend shows up under "Pasienter som ikke
//! møtte" with a link to the patient, marking it seen removes it, a colleague's hand-over is
//! taken in with one click (the patient's coordinator changes), an offer of your own waits
//! under "venter på svar" until withdrawn, a bad offer is answered on the page with what to
//! change, and a clinic secretary is refused the page. Every patient shown is an audited read.

use crate::support::*;
use crate::web::{Browser, assert_accessible, has_link, staff_with_login};
use reqwest::StatusCode;
use serde_json::json;

async fn a_coordinator_works_the_page(app: App) {
    let (org, admin) = app.add_org("Poliklinikk Rus Nord", "clinic").await;
    let kari = staff_with_login(&app, &admin, "Kari Nordmann", "coordinator", "kari").await;
    let ola = staff_with_login(&app, &admin, "Ola Berg", "coordinator", "ola").await;
    staff_with_login(&app, &admin, "Siri Dahl", "clinic", "siri").await;

    // Kari's patient does not come to an appointment that has just started.
    let (status, p) = app
        .post(
            &admin,
            "/patients",
            json!({"name": "Per Olsen", "birth_year": 1979, "coordinator_id": kari}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let per = p["id"].as_str().unwrap().to_owned();
    let soon = (app.now() + chrono::TimeDelta::seconds(2)).to_rfc3339();
    let (status, booked) = app
        .post(
            &admin,
            "/appointments",
            json!({"patient_id": per, "starts_at": soon, "place": "Storgata 36"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let aid = booked["id"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, missed) = app
        .post(
            &admin,
            &format!("/appointments/{aid}/attendance"),
            json!({"status": "no_show"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{missed}");

    // Ola's patient, which Ola offers to Kari on his page.
    let (status, p) = app
        .post(
            &admin,
            "/patients",
            json!({"name": "Liv Hansen", "birth_year": 1990, "coordinator_id": ola}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let liv = p["id"].as_str().unwrap().to_owned();
    let mut ola_browser = Browser::new(&app);
    ola_browser
        .log_in("ola", crate::web::STAFF_PASSWORD)
        .await
        .assert_redirect("/staff");
    let page = ola_browser.get("/staff/koordinator").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible(&page.body);
    assert!(page.body.contains("Liv Hansen, født 1990"), "{}", page.body);
    let csrf = page.csrf();
    // Nobody chosen: said on the page, with the form as it was.
    let refused = ola_browser
        .post(
            "/staff/overleveringer",
            &[
                ("csrf", &csrf),
                ("patient", &liv),
                ("to", ""),
                ("note", "Flytter til Kari sin sone"),
            ],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("Velg hvem du vil overlevere til."),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("value=\"Flytter til Kari sin sone\""),
        "{}",
        refused.body
    );
    assert_accessible(&refused.body);
    let offered = ola_browser
        .post(
            "/staff/overleveringer",
            &[
                ("csrf", &csrf),
                ("patient", &liv),
                ("to", &format!("staff:{kari}")),
                ("note", "Flytter til Kari sin sone"),
            ],
        )
        .await;
    assert_eq!(offered.status, StatusCode::OK, "{}", offered.body);
    assert!(
        offered.body.contains("Overleveringen er sendt"),
        "{}",
        offered.body
    );
    let waiting = ola_browser.get("/staff/koordinator").await;
    assert!(waiting.body.contains("venter på svar"), "{}", waiting.body);
    assert!(
        waiting
            .body
            .contains("Kari Nordmann (Poliklinikk Rus Nord)"),
        "{}",
        waiting.body
    );

    // Kari sees the no-show and the offer.
    let mut browser = Browser::new(&app);
    browser
        .log_in("kari", crate::web::STAFF_PASSWORD)
        .await
        .assert_redirect("/staff");
    let start = browser.get("/staff").await;
    assert!(
        has_link(&start.body, "/staff/koordinator"),
        "{}",
        start.body
    );
    let page = browser.get("/staff/koordinator").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible(&page.body);
    for shown in [
        "Pasienter som ikke møtte",
        "Møtte ikke til timen",
        "Per Olsen, født 1979",
        "Overleveringer til deg",
        "Ola Berg (Poliklinikk Rus Nord) vil gi deg koordinatoransvaret",
        "Flytter til Kari sin sone",
        "Pasientene dine",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(
        has_link(&page.body, &format!("/staff/pasienter/{per}")),
        "{}",
        page.body
    );

    // "Sett" removes the no-show from the page (the failed chain of the same notice stays).
    let after_no_show = &page.body[page.body.find("Møtte ikke til timen").unwrap()..];
    let marker = "action=\"/staff/koordinator/varsler/";
    let notification: String = after_no_show[after_no_show.find(marker).unwrap() + marker.len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect();
    let csrf = page.csrf();
    browser
        .post(
            &format!("/staff/koordinator/varsler/{notification}/lest"),
            &[("csrf", &csrf)],
        )
        .await
        .assert_redirect("/staff/koordinator");

    // Accepting the offer makes Kari Liv's coordinator.
    let page = browser.get("/staff/koordinator").await;
    assert!(!page.body.contains("Møtte ikke til timen"), "{}", page.body);
    assert!(
        page.body.contains("Ingen kanal nådde fram"),
        "{}",
        page.body
    );
    let handover = form_id(&page.body, "godta");
    browser
        .post(
            &format!("/staff/overleveringer/{handover}/godta"),
            &[("csrf", &csrf)],
        )
        .await
        .assert_redirect("/staff/koordinator");
    let (_, patient) = app.get(&admin, &format!("/patients/{liv}")).await;
    assert_eq!(patient["coordinator_id"], kari.as_str(), "{patient}");
    let page = browser.get("/staff/koordinator").await;
    assert!(
        !page.body.contains("Overleveringer til deg"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Liv Hansen, født 1990"),
        "now Kari's: {}",
        page.body
    );

    // Kari offers Per to the whole of her own organisation, then withdraws it.
    let csrf = page.csrf();
    let offered = browser
        .post(
            "/staff/overleveringer",
            &[
                ("csrf", &csrf),
                ("patient", &per),
                ("to", &format!("org:{org}")),
                ("note", ""),
            ],
        )
        .await;
    assert_eq!(offered.status, StatusCode::OK, "{}", offered.body);
    let page = browser.get("/staff/koordinator").await;
    assert!(
        page.body.contains("hvem som helst i Poliklinikk Rus Nord"),
        "{}",
        page.body
    );
    let withdraw = form_id(&page.body, "trekk");
    browser
        .post(
            &format!("/staff/overleveringer/{withdraw}/trekk"),
            &[("csrf", &csrf)],
        )
        .await
        .assert_redirect("/staff/koordinator");
    let page = browser.get("/staff/koordinator").await;
    assert!(!page.body.contains("venter på svar"), "{}", page.body);

    // Each patient named on the page was an audited read by Kari.
    let (_, log) = app.get(&admin, &format!("/patients/{per}/audit")).await;
    assert!(log.to_string().contains(&format!("staff:{kari}")), "{log}");

    // A clinic secretary is refused the page.
    let mut siri = Browser::new(&app);
    siri.log_in("siri", crate::web::STAFF_PASSWORD).await;
    let refused = siri.get("/staff/koordinator").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("Koordinatorsiden er for koordinatorer"),
        "{}",
        refused.body
    );
}

/// The hand-over id in the first form posting to `/staff/overleveringer/{id}/{action}`
/// (minijinja writes `/` in attributes as `&#x2f;`).
fn form_id(html: &str, action: &str) -> String {
    let end = html
        .find(&format!("/{action}\""))
        .or_else(|| html.find(&format!("&#x2f;{action}\"")))
        .unwrap_or_else(|| panic!("no {action} form: {html}"));
    html[..end].rsplit(['/', ';']).next().unwrap().to_owned()
}

crate::scenarios!(a_coordinator_works_the_page);
