//! People's work over HTTP: a drop-in worker sees only their relay requests (and only what they
//! need: who, what to say, by when), records "not seen"; the outreach nurse's task appears,
//! is claimed, handed to a colleague who accepts, worked and closed with `met_and_informed`,
//! which acknowledges the notice. Shared keys cannot act for a person; every read is audited.
//! Staff are e-mailed about new work through a real SMTP server (aiosmtpd), with no patient
//! data, and a refusing server is retried.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// A staff member with a personal key: (staff id, key).
async fn person(
    app: &App,
    admin: &str,
    name: &str,
    role: &str,
    email: Option<&str>,
) -> (String, String) {
    let (status, s) = app
        .post(
            admin,
            "/staff",
            json!({"name": name, "role": role, "email": email}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    let id = s["id"].as_str().unwrap().to_owned();
    let (status, k) = app
        .post(admin, &format!("/staff/{id}/keys"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    assert_eq!(k["staff_id"], id.as_str());
    (id, k["api_key"].as_str().unwrap().to_owned())
}

async fn tasks(app: &App, key: &str, query: &str) -> Vec<Value> {
    let (status, list) = app.get(key, &format!("/tasks{query}")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"].as_array().unwrap().clone()
}

async fn relay_then_outreach(app: App) {
    {
        let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
        let (centre_id, centre) = app.add_org("Dagsenteret", "low_threshold_service").await;
        let (team_id, team) = app.add_org("FACT Øst", "outreach_team").await;
        let (_, worker) = person(&app, &centre, "Dagny Drop-in", "relay", None).await;
        let (nurse_id, nurse) = person(&app, &team, "Nina Sykepleier", "outreach", None).await;
        let (colleague_id, colleague) = person(&app, &team, "Kåre Kollega", "outreach", None).await;

        let pid = app.patient(&clinic, "Ola Nordmann").await;
        for cp in [
            json!({"kind": "relay", "organisation_id": centre_id, "provenance": "verified_in_person", "note": "usually in on Tuesdays"}),
            json!({"kind": "outreach", "organisation_id": team_id, "provenance": "verified_in_person"}),
        ] {
            let (status, body) = app
                .post(&clinic, &format!("/patients/{pid}/contact-points"), cp)
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let (status, booked) = app
            .post(&clinic, "/appointments", json!({"patient_id": pid, "starts_at": in_minutes(10 * 24 * 60), "duration_minutes": 30, "place": "Storgata 36"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{booked}");
        let notice_id = booked["notice_ids"][0].as_str().unwrap().to_owned();

        // The drop-in centre's relay request: who, what to say, by when — no treatment.
        let relay = eventually("the relay request", || async {
            tasks(&app, &worker, "").await.into_iter().next()
        })
        .await;
        assert_eq!(relay["kind"], "relay");
        assert_eq!(relay["patient"]["name"], "Ola Nordmann");
        assert_eq!(relay["patient"]["birth_year"], 1979);
        assert_eq!(relay["patient"]["description"], "usually in on Tuesdays");
        assert!(relay["message"].as_str().unwrap().len() > 20, "{relay}");
        for hidden in ["appointment", "notice_id", "whereabouts"] {
            assert!(
                relay.get(hidden).is_none(),
                "a relay request does not show {hidden}: {relay}"
            );
        }
        let relay_id = relay["id"].as_str().unwrap().to_owned();
        // The outreach team does not see it; the centre's shared admin key cannot act for a person.
        assert!(tasks(&app, &nurse, "").await.is_empty());
        let (status, _) = app.get(&nurse, &format!("/tasks/{relay_id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = app
            .post(
                &centre,
                &format!("/tasks/{relay_id}/close"),
                json!({"outcome": "not_seen"}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("personal key"),
            "{body}"
        );
        // A wrong outcome names the field and the allowed words.
        let (status, body) = app
            .post(
                &worker,
                &format!("/tasks/{relay_id}/close"),
                json!({"outcome": "met_and_informed"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_fields(&body), vec!["outcome"]);
        assert!(body.to_string().contains("told_in_person"), "{body}");
        let (status, body) = app
            .post(
                &worker,
                &format!("/tasks/{relay_id}/close"),
                json!({"outcome": "nonsense"}),
            )
            .await;
        assert_eq!(
            (status, error_fields(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, vec!["outcome".to_owned()])
        );
        // The patient did not come in.
        let (status, closed) = app
            .post(
                &worker,
                &format!("/tasks/{relay_id}/close"),
                json!({"outcome": "not_seen", "note": "not in this week"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{closed}");
        assert_eq!(closed["status"], "closed");
        assert_eq!(closed["outcome"], "not_seen");

        // The outreach team's task: with the appointment and where to look.
        let task = eventually("the outreach task", || async {
            tasks(&app, &nurse, "?team").await.into_iter().next()
        })
        .await;
        let task_id = task["id"].as_str().unwrap().to_owned();
        assert_eq!(task["kind"], "outreach");
        assert_eq!(task["status"], "open");
        assert!(task["appointment"]["place"].as_str().is_some(), "{task}");
        assert!(
            task["whereabouts"].to_string().contains("Dagsenteret"),
            "{task}"
        );
        assert!(task["claim_by"].as_str().is_some());
        let (status, body) = app.get(&nurse, "/tasks?scope=org").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = app.get(&nurse, "/tasks?mine&team").await;
        assert_eq!(
            (status, error_fields(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, vec!["scope".to_owned()])
        );

        // One holder at a time.
        let (status, claimed) = app
            .post(&nurse, &format!("/tasks/{task_id}/claim"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{claimed}");
        assert_eq!(claimed["holder"]["id"], nurse_id.as_str());
        let (status, body) = app
            .post(&colleague, &format!("/tasks/{task_id}/claim"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(tasks(&app, &nurse, "?mine").await.len(), 1);
        assert!(tasks(&app, &colleague, "?mine").await.is_empty());
        let (status, body) = app
            .post(
                &nurse,
                &format!("/tasks/{task_id}/attempts"),
                json!({"place": "Skippergata", "result": "not there"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = app
            .post(
                &nurse,
                &format!("/tasks/{task_id}/attempts"),
                json!({"place": "", "result": "x", "at": in_minutes(24 * 60 * 2)}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_fields(&body), vec!["place", "at"]);

        // Handed to a colleague: offered, and the nurse keeps it until it is accepted.
        let (status, offer) = app
            .post(&nurse, "/handovers", json!({"subject_kind": "task", "subject_id": task_id, "to_staff_id": colleague_id, "note": "I am away tomorrow"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{offer}");
        let offer_id = offer["id"].as_str().unwrap();
        let (_, incoming) = app.get(&colleague, "/handovers").await;
        assert_eq!(incoming["items"][0]["id"], offer_id);
        assert_eq!(
            tasks(&app, &nurse, "?mine").await.len(),
            1,
            "kept until accepted"
        );
        let (status, body) = app
            .post(&nurse, &format!("/handovers/{offer_id}/accept"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let r = app
            .http
            .post(app.url(&format!("/handovers/{offer_id}/accept")))
            .bearer_auth(&colleague)
            .send()
            .await
            .unwrap();
        let (status, accepted) = answer(r).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "accepting needs no body: {accepted}"
        );
        assert_eq!(accepted["status"], "accepted");
        assert!(tasks(&app, &nurse, "?mine").await.is_empty());

        // The colleague finds the patient: the notice is acknowledged by that person.
        let (status, body) = app
            .post(
                &nurse,
                &format!("/tasks/{task_id}/close"),
                json!({"outcome": "met_and_informed"}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "only the holder closes it: {body}"
        );
        let (status, closed) = app
            .post(
                &colleague,
                &format!("/tasks/{task_id}/close"),
                json!({"outcome": "met_and_informed", "note": "met him at the station"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{closed}");
        assert_eq!(closed["closed_by"]["id"], colleague_id.as_str());
        let history: Vec<&str> = closed["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            history,
            ["claimed", "attempt", "claimed", "closed"],
            "{closed}"
        );
        let (_, notice) = app.get(&clinic, &format!("/notices/{notice_id}")).await;
        assert_eq!(notice["status"], "acknowledged", "{notice}");
        assert!(notice.to_string().contains("outreach_met"), "{notice}");

        // Notifications: each was told of the new work.
        let (_, told) = app.get(&nurse, "/notifications").await;
        assert!(told.to_string().contains("new_task"), "{told}");
        let (_, told) = app.get(&worker, "/notifications").await;
        assert!(told.to_string().contains("new_task"), "{told}");
        // Every read of the tasks is in the patient's audit log, by whom.
        let (_, log) = app.get(&clinic, &format!("/patients/{pid}/audit")).await;
        let actions = log.to_string();
        for action in [
            "task.read",
            "task.claim",
            "task.attempt",
            "task.close",
            "handover.offer",
            "handover.accepted",
        ] {
            assert!(actions.contains(action), "{action} audited: {log}");
        }
    }
}

/// `/usr/bin/python3` with Debian's python3-aiosmtpd. In CI it must be there.
fn smtp_available() -> bool {
    let ok = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but /usr/bin/python3 cannot import aiosmtpd (apt-get install python3-aiosmtpd)"
        );
        eprintln!(
            "skipping: /usr/bin/python3 with aiosmtpd is not installed (apt-get install python3-aiosmtpd)"
        );
    }
    ok
}

/// A real SMTP server on loopback that writes what it receives into `dir`.
async fn smtp_server(dir: &Path, args: &[&str]) -> (tokio::process::Child, u16) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("channels/tests/smtp_server.py");
    let mut child = tokio::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg("0")
        .arg(dir)
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the SMTP server starts")
        .unwrap()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (child, port)
}

fn received(dir: &Path) -> Vec<Value> {
    let mut mails: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap(),
            )
        })
        .collect();
    mails.sort_by(|a, b| a.0.cmp(&b.0));
    mails.into_iter().map(|(_, v)| v).collect()
}

/// A new outreach task e-mails the team through a real SMTP server that refuses the first try:
/// the mail is retried and arrives, with counts and a link, never the patient's name.
async fn staff_are_emailed_about_new_work(backend: Backend) {
    if !smtp_available() {
        return;
    }
    // A minute of retry backoff passes in a second.
    run_at_speed(backend, 60.0, |mut app: App| async move {
        let inbox = app.db.dir().join("inbox");
        std::fs::create_dir_all(&inbox).unwrap();
        let (_smtp, port) = smtp_server(&inbox, &["--refuse-first", "1"]).await;
        let file = app.db.dir().join("kontaktvei.toml");
        std::fs::write(&file, format!("[email]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_tls = \"none\"\nfrom = \"kontaktvei <noreply@kontaktvei.test>\"\n")).unwrap();
        app.config = Some(file);
        app.restart().await;

        let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
        let (team_id, team) = app.add_org("FACT Øst", "outreach_team").await;
        let (_, _nurse) = person(&app, &team, "Nina Sykepleier", "outreach", Some("nina@fact.test")).await;
        let pid = app.patient(&clinic, "Ola Hemmeligsen").await;
        let (status, body) = app
            .post(&clinic, &format!("/patients/{pid}/contact-points"), json!({"kind": "outreach", "organisation_id": team_id, "provenance": "verified_in_person"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = app
            .post(&clinic, "/appointments", json!({"patient_id": pid, "starts_at": in_minutes(10 * 24 * 60), "duration_minutes": 30, "place": "Storgata 36"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let mail = eventually("the e-mail to the nurse", || async { received(&inbox).into_iter().next() }).await;
        assert_eq!(mail["rcpt_tos"], json!(["nina@fact.test"]));
        let subject = mail["subject"].as_str().unwrap();
        assert!(subject.contains("1 ny oppgave til teamet"), "{subject}");
        let body = mail["body"].as_str().unwrap();
        assert!(body.contains("Hei Nina Sykepleier"), "{body}");
        assert!(body.contains(&format!("{}/staff", app.base)), "a link to the staff pages: {body}");
        for secret in ["Ola", "Hemmeligsen", "Storgata"] {
            assert!(!mail["data"].as_str().unwrap().contains(secret), "no patient data in mail: {mail}");
        }
        // The first try was refused (451) and retried; the admin sees it sent after 2 attempts.
        let (_, sent) = app.get(&team, "/emails?status=sent").await;
        assert_eq!(sent["items"][0]["attempts"], 2, "{sent}");
        assert_eq!(received(&inbox).len(), 1, "sent once");
    })
    .await;
}

/// A server that rejects the address for good: no endless retries, and admins see why.
async fn a_refused_email_is_marked_failed_for_admins(mut app: App) {
    if !smtp_available() {
        return;
    }
    {
        let inbox = app.db.dir().join("inbox");
        std::fs::create_dir_all(&inbox).unwrap();
        let (_smtp, port) = smtp_server(&inbox, &["--reject-all"]).await;
        let file = app.db.dir().join("kontaktvei.toml");
        std::fs::write(&file, format!("[email]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_tls = \"none\"\n")).unwrap();
        app.config = Some(file);
        app.restart().await;
        let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
        let (team_id, team) = app.add_org("FACT Øst", "outreach_team").await;
        person(
            &app,
            &team,
            "Nina Sykepleier",
            "outreach",
            Some("nina@fact.test"),
        )
        .await;
        let pid = app.patient(&clinic, "Ola Nordmann").await;
        app.post(&clinic, &format!("/patients/{pid}/contact-points"), json!({"kind": "outreach", "organisation_id": team_id, "provenance": "verified_in_person"})).await;
        app.post(&clinic, "/appointments", json!({"patient_id": pid, "starts_at": in_minutes(10 * 24 * 60), "duration_minutes": 30, "place": "Storgata 36"})).await;
        let failed = eventually("the failed mail", || async {
            let (_, list) = app.get(&team, "/emails?status=failed").await;
            list["items"].as_array().and_then(|a| a.first().cloned())
        })
        .await;
        assert_eq!(
            failed["attempts"], 1,
            "a permanent refusal is not retried: {failed}"
        );
        assert!(
            failed["last_error"].as_str().unwrap().contains("550"),
            "{failed}"
        );
        assert!(received(&inbox).is_empty());
        let (status, _) = app.get(&team, "/emails?status=bogus").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

/// A service that reaches the patient by phone: the request shows the line to call, and
/// "told by phone" acknowledges the notice.
async fn a_relay_by_phone(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (centre_id, centre) = app.add_org("Natthjemmet", "low_threshold_service").await;
    let (_, worker) = person(&app, &centre, "Per Nattevakt", "relay", None).await;
    let pid = app.patient(&clinic, "Ola Nordmann").await;
    let (status, body) = app
        .post(&clinic, &format!("/patients/{pid}/contact-points"), json!({"kind": "relay", "organisation_id": centre_id, "phone": "22 33 44 55", "provenance": "verified_in_person"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, booked) = app
        .post(&clinic, "/appointments", json!({"patient_id": pid, "starts_at": in_minutes(5 * 24 * 60), "place": "Storgata 36"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let notice_id = booked["notice_ids"][0].as_str().unwrap().to_owned();
    let relay = eventually("the relay request", || async {
        tasks(&app, &worker, "").await.into_iter().next()
    })
    .await;
    assert_eq!(relay["channel"], "phone");
    assert_eq!(relay["phone"], "+4722334455");
    let id = relay["id"].as_str().unwrap();
    let (status, closed) = app
        .post(
            &worker,
            &format!("/tasks/{id}/close"),
            json!({"outcome": "told_by_phone", "note": "called at 19:30"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    let (_, notice) = app.get(&clinic, &format!("/notices/{notice_id}")).await;
    assert_eq!(notice["status"], "acknowledged", "{notice}");
    assert_eq!(notice["ack"]["method"], "relay_attested");
}

crate::scenarios!(
    relay_then_outreach,
    a_refused_email_is_marked_failed_for_admins,
    a_relay_by_phone
);

mod staff_are_emailed_about_new_work {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::staff_are_emailed_about_new_work(crate::support::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::staff_are_emailed_about_new_work(crate::support::Backend::Postgres).await;
    }
}
