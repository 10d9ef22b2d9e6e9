//! People's work over HTTP: a drop-in worker sees only their relay requests (and only what they
//! need: who, what to say, by when), records "not seen"; the outreach nurse's task appears,
//! is claimed, handed to a colleague who accepts, worked and closed with `met_and_informed`,
//! which acknowledges the notice. Shared keys cannot act for a person; every read is audited.
//! Staff are e-mailed about new work through a real SMTP server (aiosmtpd), with no patient
//! data, and a refusing server is retried. Lists narrow by filter; a task is given back with a
//! reason; offers are declined or withdrawn; a notice changes hands; `wrong_contact` and
//! `admitted` reach the patient's coordinator.

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
        // The shipped staff e-mail text: a count in the subject, what kind of work in the body.
        let subject = mail["subject"].as_str().unwrap();
        assert!(subject.contains("1 ny sak i kontaktvei"), "{subject}");
        let body = mail["body"].as_str().unwrap();
        assert!(body.contains("1 ny oppgave til teamet"), "{body}");
        assert!(body.contains("Hei Nina Sykepleier"), "{body}");
        assert!(body.contains(&format!("{}/staff", app.base)), "a link to the staff pages: {body}");
        for secret in ["Ola", "Hemmeligsen", "Storgata"] {
            assert!(!mail["data"].as_str().unwrap().contains(secret), "no patient data in mail: {mail}");
        }
        // The first try was refused (451) and retried; the admin sees it sent after 2 attempts
        // (marked sent just after the server took it).
        let sent = eventually("the e-mail marked sent", || async {
            let (_, sent) = app.get(&team, "/emails?status=sent").await;
            sent["items"].as_array().and_then(|a| a.first().cloned())
        })
        .await;
        assert_eq!(sent["attempts"], 2, "{sent}");
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

/// A team lead: hears about, and holds, tasks nobody claimed in time. (staff id, key)
async fn team_lead(app: &App, admin: &str, name: &str) -> (String, String) {
    let (status, s) = app
        .post(
            admin,
            "/staff",
            json!({"name": name, "role": "outreach", "team_lead": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    let id = s["id"].as_str().unwrap().to_owned();
    let (status, k) = app
        .post(admin, &format!("/staff/{id}/keys"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    (id, k["api_key"].as_str().unwrap().to_owned())
}

/// A patient (with this coordinator, if any) whom only `team` can reach, by going out.
async fn outreach_patient(
    app: &App,
    clinic: &str,
    team_id: &str,
    name: &str,
    coordinator: Option<&str>,
) -> String {
    let pid = patient_of(app, clinic, name, coordinator).await;
    let (status, body) = app
        .post(
            clinic,
            &format!("/patients/{pid}/contact-points"),
            json!({"kind": "outreach", "organisation_id": team_id, "provenance": "verified_in_person"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    pid
}

/// A patient with no contact points, with this coordinator (if any).
async fn patient_of(app: &App, clinic: &str, name: &str, coordinator: Option<&str>) -> String {
    let (status, p) = app
        .post(
            clinic,
            "/patients",
            json!({"name": name, "birth_year": 1979, "coordinator_id": coordinator}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    p["id"].as_str().unwrap().to_owned()
}

/// Books an appointment at `starts_at`; returns its notice's id.
async fn book(app: &App, clinic: &str, pid: &str, starts_at: &str) -> String {
    let (status, booked) = app
        .post(
            clinic,
            "/appointments",
            json!({"patient_id": pid, "starts_at": starts_at, "place": "Storgata 36"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    booked["notice_ids"][0].as_str().unwrap().to_owned()
}

/// The first task about this patient that `query` lists, once it is there.
async fn task_of(app: &App, key: &str, query: &str, pid: &str) -> Value {
    eventually("the patient's task", || async {
        tasks(app, key, query)
            .await
            .into_iter()
            .find(|t| t["patient"]["id"] == pid)
    })
    .await
}

/// The id of the patient's outreach task once it exists, after `nurse` has claimed it.
async fn claimed_task(app: &App, nurse: &str, pid: &str) -> String {
    let id = task_of(app, nurse, "", pid).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .post(nurse, &format!("/tasks/{id}/claim"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

/// The patients of the tasks `query` lists, sorted.
async fn patients_listed(app: &App, key: &str, query: &str) -> Vec<String> {
    let mut ids: Vec<String> = tasks(app, key, query)
        .await
        .iter()
        .map(|t| t["patient"]["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| (*s).clone()).collect();
    ids.sort();
    ids
}

/// What a person has been told, newest first.
async fn notifications(app: &App, key: &str) -> Vec<Value> {
    let (status, list) = app.get(key, "/notifications").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"].as_array().unwrap().clone()
}

/// The history of a task (`GET /tasks/{id}`) as (kind, note) pairs.
fn history(task: &Value) -> Vec<(String, Option<String>)> {
    task["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|e| {
                    (
                        e["kind"].as_str().unwrap().to_owned(),
                        e["note"].as_str().map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A team's task list narrows as asked: by kind, by status, to what nobody holds, to what is
/// past due, to one patient — and a filter value it does not know is refused, naming the
/// parameter, rather than silently showing everything.
async fn the_task_list_narrows_by_filter(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (team_id, team) = app.add_org("FACT Øst", "outreach_team").await;
    let (_, nurse) = person(&app, &team, "Nina Sykepleier", "outreach", None).await;
    let (lead_id, _) = team_lead(&app, &team, "Lise Leder").await;
    let (kari_id, _) = person(&app, &team, "Kari Koordinator", "coordinator", None).await;
    let later = in_minutes(10 * 24 * 60);

    // Two patients the team will look for in ten days; one the nurse takes.
    let claimed = outreach_patient(&app, &clinic, &team_id, "Anne Tatt", None).await;
    book(&app, &clinic, &claimed, &later).await;
    let open = outreach_patient(&app, &clinic, &team_id, "Berit Åpen", None).await;
    book(&app, &clinic, &open, &later).await;
    let held = claimed_task(&app, &nurse, &claimed).await;
    // One whose appointment is in seconds: nobody claims it in time, so the lead holds it,
    // and it runs past due.
    let soon = (app.now() + chrono::TimeDelta::seconds(3)).to_rfc3339();
    let late = outreach_patient(&app, &clinic, &team_id, "Carl Sein", None).await;
    book(&app, &clinic, &late, &soon).await;
    // One with no way to reach them: their coordinator (in the team) gets a follow-up.
    let followed = patient_of(&app, &clinic, "Dag Oppfølging", Some(&kari_id)).await;
    book(&app, &clinic, &followed, &later).await;
    let lead_task = eventually("the lead holds the late task", || async {
        tasks(&app, &team, "")
            .await
            .into_iter()
            .find(|t| t["patient"]["id"] == late.as_str() && t["holder"]["id"] == lead_id.as_str())
    })
    .await;
    assert_eq!(lead_task["status"], "claimed", "{lead_task}");
    task_of(&app, &team, "", &followed).await;

    let everyone = sorted(&[&claimed, &open, &late, &followed]);
    assert_eq!(patients_listed(&app, &team, "").await, everyone);
    assert_eq!(
        patients_listed(&app, &team, "?kind=outreach").await,
        sorted(&[&claimed, &open, &late])
    );
    let follow_ups = tasks(&app, &team, "?kind=coordinator_follow_up").await;
    assert_eq!(follow_ups.len(), 1, "{follow_ups:?}");
    assert_eq!(follow_ups[0]["patient"]["id"], followed.as_str());
    assert_eq!(follow_ups[0]["holder"]["id"], kari_id.as_str());
    assert_eq!(
        patients_listed(&app, &team, "?unclaimed=true").await,
        sorted(&[&open])
    );
    assert_eq!(
        patients_listed(&app, &team, "?unclaimed=false").await,
        everyone
    );
    assert_eq!(
        patients_listed(&app, &team, "?status=open").await,
        sorted(&[&open])
    );
    assert_eq!(
        patients_listed(&app, &team, "?status=claimed").await,
        sorted(&[&claimed, &late, &followed])
    );
    assert_eq!(
        patients_listed(&app, &team, &format!("?patient_id={claimed}")).await,
        sorted(&[&claimed])
    );
    let overdue = eventually("the late task to be past due", || async {
        let listed = patients_listed(&app, &team, "?overdue=true").await;
        (!listed.is_empty()).then_some(listed)
    })
    .await;
    assert_eq!(overdue, sorted(&[&late]));
    // Filters combine.
    assert!(
        tasks(&app, &team, "?overdue=true&kind=coordinator_follow_up")
            .await
            .is_empty()
    );
    assert_eq!(
        patients_listed(&app, &nurse, "?mine&status=claimed").await,
        sorted(&[&claimed])
    );

    // Closed work is out of the default list and found by status.
    let (status, body) = app
        .post(
            &nurse,
            &format!("/tasks/{held}/close"),
            json!({"outcome": "met_and_informed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        patients_listed(&app, &team, "").await,
        sorted(&[&open, &late, &followed])
    );
    let closed = tasks(&app, &team, "?status=closed").await;
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0]["id"], held.as_str());
    assert_eq!(closed[0]["outcome"], "met_and_informed");
    assert_eq!(
        patients_listed(&app, &team, "?status=open,closed").await,
        sorted(&[&claimed, &open])
    );

    // A value the list does not know names the parameter.
    for (query, field) in [
        ("?kind=home_visit", "kind"),
        ("?status=done", "status"),
        ("?status=open,", "status"),
        ("?unclaimed=yes", "unclaimed"),
        ("?overdue=soon", "overdue"),
        ("?patient_id=ola", "patient_id"),
        ("?limit=0", "limit"),
    ] {
        let (status, body) = app.get(&team, &format!("/tasks{query}")).await;
        assert_eq!(
            (status, error_fields(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_owned()]),
            "{query}: {body}"
        );
    }
    // A nurse works on outreach tasks only, and is told so.
    let (status, body) = app.get(&nurse, "/tasks?kind=coordinator_follow_up").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

/// A nurse who cannot do a task gives it back to the team with a reason: it is open for
/// anyone again, and its history says why. Without a reason nothing changes, and only the
/// person who holds a task can give it back.
async fn a_nurse_gives_a_task_back_with_a_reason(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (team_id, team) = app.add_org("FACT Øst", "outreach_team").await;
    let (nurse_id, nurse) = person(&app, &team, "Nina Sykepleier", "outreach", None).await;
    let (colleague_id, colleague) = person(&app, &team, "Kåre Kollega", "outreach", None).await;
    let pid = outreach_patient(&app, &clinic, &team_id, "Ola Nordmann", None).await;
    book(&app, &clinic, &pid, &in_minutes(10 * 24 * 60)).await;
    let id = claimed_task(&app, &nurse, &pid).await;

    // No reason, or a blank one: refused, naming `reason`; the nurse still holds it.
    for body in [json!({"reason": "   "}), json!({})] {
        let (status, answer) = app
            .post(&nurse, &format!("/tasks/{id}/unclaim"), body.clone())
            .await;
        assert_eq!(
            (status, error_fields(&answer)),
            (StatusCode::UNPROCESSABLE_ENTITY, vec!["reason".to_owned()]),
            "{body}: {answer}"
        );
    }
    let (_, held) = app.get(&nurse, &format!("/tasks/{id}")).await;
    assert_eq!(held["status"], "claimed", "{held}");
    assert_eq!(held["holder"]["id"], nurse_id.as_str(), "{held}");

    // A colleague cannot give back what the nurse holds (409, as documented).
    let (status, body) = app
        .post(
            &colleague,
            &format!("/tasks/{id}/unclaim"),
            json!({"reason": "tidying up"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("another person holds"),
        "{body}"
    );
    let (_, held) = app.get(&nurse, &format!("/tasks/{id}")).await;
    assert_eq!(held["holder"]["id"], nurse_id.as_str(), "{held}");

    // Given back with a reason: open, nobody holds it, and the history says why.
    let (status, given_back) = app
        .post(
            &nurse,
            &format!("/tasks/{id}/unclaim"),
            json!({"reason": "  off sick this week "}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{given_back}");
    assert_eq!(given_back["status"], "open", "{given_back}");
    assert!(given_back.get("holder").is_none(), "{given_back}");
    assert!(given_back.get("claimed_at").is_none(), "{given_back}");
    assert!(
        given_back["claim_by"].as_str().is_some(),
        "chased again if nobody takes it: {given_back}"
    );
    let (_, read) = app.get(&colleague, &format!("/tasks/{id}")).await;
    assert_eq!(read["status"], "open", "{read}");
    assert_eq!(
        history(&read),
        [
            ("claimed".to_owned(), None),
            (
                "unclaimed".to_owned(),
                Some("off sick this week".to_owned())
            ),
        ],
        "{read}"
    );
    assert!(tasks(&app, &nurse, "?mine").await.is_empty());
    assert_eq!(
        tasks(&app, &team, "?unclaimed=true").await[0]["id"],
        id.as_str()
    );
    // Giving back twice is refused: it is no longer the nurse's.
    let (status, body) = app
        .post(
            &nurse,
            &format!("/tasks/{id}/unclaim"),
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("nobody holds this task"),
        "{body}"
    );

    // A colleague takes it from the team.
    let (status, taken) = app
        .post(&colleague, &format!("/tasks/{id}/claim"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    assert_eq!(taken["holder"]["id"], colleague_id.as_str());
    let (_, log) = app.get(&clinic, &format!("/patients/{pid}/audit")).await;
    assert!(log.to_string().contains("task.unclaim"), "{log}");
}

/// An offer of a task is only an offer: a colleague who declines leaves it with the nurse, who
/// is told; an offer withdrawn is gone from the colleague's list and cannot be accepted.
async fn a_declined_or_withdrawn_offer_leaves_the_task_with_the_nurse(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (team_id, team) = app.add_org("FACT Øst", "outreach_team").await;
    let (nurse_id, nurse) = person(&app, &team, "Nina Sykepleier", "outreach", None).await;
    let (colleague_id, colleague) = person(&app, &team, "Kåre Kollega", "outreach", None).await;
    let pid = outreach_patient(&app, &clinic, &team_id, "Ola Nordmann", None).await;
    book(&app, &clinic, &pid, &in_minutes(10 * 24 * 60)).await;
    let id = claimed_task(&app, &nurse, &pid).await;
    let offer = |note: &'static str| {
        let (app, nurse, id, to) = (&app, &nurse, &id, &colleague_id);
        async move {
            let (status, offer) = app
                .post(nurse, "/handovers", json!({"subject_kind": "task", "subject_id": id, "to_staff_id": to, "note": note}))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{offer}");
            assert_eq!(offer["status"], "offered");
            offer["id"].as_str().unwrap().to_owned()
        }
    };
    let holder = || async {
        let (_, task) = app.get(&nurse, &format!("/tasks/{id}")).await;
        (task["status"].clone(), task["holder"]["id"].clone())
    };

    // Declined, with a reason: the nurse keeps the task and hears about it.
    let first = offer("I am away tomorrow").await;
    let (status, declined) = app
        .post(
            &colleague,
            &format!("/handovers/{first}/decline"),
            json!({"note": "my week is full"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{declined}");
    assert_eq!(declined["status"], "declined");
    assert_eq!(declined["decision_note"], "my week is full");
    assert_eq!(declined["decided_by"], colleague_id.as_str());
    assert_eq!(holder().await, (json!("claimed"), json!(nurse_id)));
    let (_, incoming) = app.get(&colleague, "/handovers").await;
    assert_eq!(incoming["items"], json!([]), "{incoming}");
    let told = notifications(&app, &nurse).await;
    assert!(
        told.iter()
            .any(|n| n["kind"] == "handover_declined" && n["handover_id"] == first.as_str()),
        "{told:?}"
    );
    // A decided offer stays decided.
    let (status, body) = app
        .post(&colleague, &format!("/handovers/{first}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Offered again, then withdrawn: only the nurse may withdraw it.
    let second = offer("could you take it after all?").await;
    let (_, outgoing) = app.get(&nurse, "/handovers?direction=outgoing").await;
    assert_eq!(outgoing["items"][0]["id"], second.as_str(), "{outgoing}");
    let (status, body) = app
        .post(
            &colleague,
            &format!("/handovers/{second}/withdraw"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, withdrawn) = app
        .post(&nurse, &format!("/handovers/{second}/withdraw"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    assert_eq!(withdrawn["status"], "withdrawn");
    assert_eq!(withdrawn["decided_by"], nurse_id.as_str());
    let (_, incoming) = app.get(&colleague, "/handovers").await;
    assert_eq!(incoming["items"], json!([]), "{incoming}");
    let (_, outgoing) = app.get(&nurse, "/handovers?direction=outgoing").await;
    assert_eq!(outgoing["items"], json!([]), "{outgoing}");
    let (status, body) = app
        .post(
            &colleague,
            &format!("/handovers/{second}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(holder().await, (json!("claimed"), json!(nurse_id)));
    assert!(tasks(&app, &colleague, "?mine").await.is_empty());

    // Both offers are on the patient's timeline.
    let (_, timeline) = app.get(&clinic, &format!("/patients/{pid}/timeline")).await;
    let events = timeline.to_string();
    for event in [
        "handover.offered",
        "handover.declined",
        "handover.withdrawn",
    ] {
        assert!(events.contains(event), "{event}: {timeline}");
    }
}

/// A coordinator who holds a notice (its follow-up task) hands it to a colleague: once the
/// colleague accepts, the notice is theirs by name, and so is its follow-up task.
async fn a_coordinator_hands_a_notice_to_a_colleague(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (kari_id, kari) = person(&app, &clinic, "Kari Koordinator", "coordinator", None).await;
    let (ola_id, ola) = person(&app, &clinic, "Ola Koordinator", "coordinator", None).await;
    // Nobody can reach the patient but their coordinator: the notice is Kari's at once.
    let pid = patient_of(&app, &clinic, "Per Olsen", Some(&kari_id)).await;
    let notice_id = book(&app, &clinic, &pid, &in_minutes(10 * 24 * 60)).await;
    let follow_up = task_of(&app, &kari, "?mine", &pid).await;
    assert_eq!(follow_up["kind"], "coordinator_follow_up", "{follow_up}");
    assert_eq!(follow_up["notice_id"], notice_id.as_str());

    // Someone who does not hold it cannot offer it.
    let (status, body) = app
        .post(
            &ola,
            "/handovers",
            json!({"subject_kind": "notice", "subject_id": notice_id, "to_staff_id": kari_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, offer) = app
        .post(&kari, "/handovers", json!({"subject_kind": "notice", "subject_id": notice_id, "to_staff_id": ola_id, "note": "on leave from Monday"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{offer}");
    assert_eq!(offer["subject_kind"], "notice");
    assert_eq!(offer["patient_id"], pid.as_str());
    let offer_id = offer["id"].as_str().unwrap();
    let told = notifications(&app, &ola).await;
    assert!(
        told.iter()
            .any(|n| n["kind"] == "handover_offered" && n["handover_id"] == offer_id),
        "{told:?}"
    );
    // Until Ola accepts, nothing has moved.
    let (_, notice) = app.get(&clinic, &format!("/notices/{notice_id}")).await;
    assert!(notice["holder_staff_id"].is_null(), "{notice}");
    assert_eq!(tasks(&app, &kari, "?mine").await.len(), 1);

    let (status, accepted) = app
        .post(&ola, &format!("/handovers/{offer_id}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["status"], "accepted");
    let (_, notice) = app.get(&clinic, &format!("/notices/{notice_id}")).await;
    assert_eq!(notice["holder_staff_id"], ola_id.as_str(), "{notice}");
    let mine = tasks(&app, &ola, "?mine").await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["id"], follow_up["id"]);
    assert_eq!(mine[0]["holder"]["id"], ola_id.as_str());
    assert!(tasks(&app, &kari, "?mine").await.is_empty());
    let told = notifications(&app, &kari).await;
    assert!(
        told.iter()
            .any(|n| n["kind"] == "handover_accepted" && n["handover_id"] == offer_id),
        "{told:?}"
    );
    let (_, timeline) = app.get(&clinic, &format!("/patients/{pid}/timeline")).await;
    assert!(
        timeline.to_string().contains("handover.accepted"),
        "{timeline}"
    );
}

/// The team went to the place it was told and the patient was never there: `wrong_contact`
/// marks that outreach contact point failed, and the notice goes on at once — here to the
/// patient's coordinator, who is told of both.
async fn wrong_contact_fails_the_contact_point_and_escalates(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (team_id, team) = app.add_org("FACT Øst", "outreach_team").await;
    let (kari_id, kari) = person(&app, &clinic, "Kari Koordinator", "coordinator", None).await;
    let (_, nurse) = person(&app, &team, "Nina Sykepleier", "outreach", None).await;
    let pid = outreach_patient(&app, &clinic, &team_id, "Ola Nordmann", Some(&kari_id)).await;
    let notice_id = book(&app, &clinic, &pid, &in_minutes(10 * 24 * 60)).await;
    let id = claimed_task(&app, &nurse, &pid).await;
    assert!(notifications(&app, &kari).await.is_empty());

    let (status, closed) = app
        .post(
            &nurse,
            &format!("/tasks/{id}/close"),
            json!({"outcome": "wrong_contact", "note": "nobody at the shelter knows him"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["outcome"], "wrong_contact");
    assert_eq!(closed["outcome_note"], "nobody at the shelter knows him");

    let (_, points) = app
        .get(&clinic, &format!("/patients/{pid}/contact-points"))
        .await;
    let outreach = points["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "outreach")
        .unwrap_or_else(|| panic!("{points}"));
    assert_eq!(outreach["status"], "failed", "{points}");
    assert_eq!(outreach["failure_reason"], "wrong_contact", "{points}");

    // Not acknowledged: the chain went on, to the coordinator, who holds a follow-up now.
    let follow_up = task_of(&app, &kari, "?mine", &pid).await;
    assert_eq!(follow_up["kind"], "coordinator_follow_up", "{follow_up}");
    assert_eq!(follow_up["notice_id"], notice_id.as_str());
    let (_, notice) = app.get(&clinic, &format!("/notices/{notice_id}")).await;
    assert_ne!(notice["status"], "acknowledged", "{notice}");
    assert!(notice["ack"].is_null(), "{notice}");
    let told = notifications(&app, &kari).await;
    for kind in ["contact_point_failed", "chain_failed"] {
        assert!(
            told.iter()
                .any(|n| n["kind"] == kind && n["patient_id"] == pid.as_str()),
            "{kind}: {told:?}"
        );
    }
}

/// The patient has been admitted to hospital: no machine should go on trying, and the
/// patient's coordinator is asked to decide, about this task. The contact point is not wrong.
async fn admitted_asks_the_coordinator_to_decide(app: App) {
    let (_, clinic) = app.add_org("Poliklinikk", "clinic").await;
    let (team_id, team) = app.add_org("FACT Øst", "outreach_team").await;
    let (kari_id, kari) = person(&app, &clinic, "Kari Koordinator", "coordinator", None).await;
    let (_, nurse) = person(&app, &team, "Nina Sykepleier", "outreach", None).await;
    let pid = outreach_patient(&app, &clinic, &team_id, "Ola Nordmann", Some(&kari_id)).await;
    let notice_id = book(&app, &clinic, &pid, &in_minutes(10 * 24 * 60)).await;
    let id = claimed_task(&app, &nurse, &pid).await;

    let (status, closed) = app
        .post(
            &nurse,
            &format!("/tasks/{id}/close"),
            json!({"outcome": "admitted", "note": "at Ullevål since Friday"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["outcome"], "admitted");
    assert_eq!(
        closed["outcomes"],
        json!([]),
        "nothing more to choose: {closed}"
    );

    let told = notifications(&app, &kari).await;
    let decide: Vec<&Value> = told
        .iter()
        .filter(|n| n["kind"] == "needs_decision")
        .collect();
    assert_eq!(decide.len(), 1, "{told:?}");
    assert_eq!(decide[0]["task_id"], id.as_str());
    assert_eq!(decide[0]["notice_id"], notice_id.as_str());
    assert_eq!(decide[0]["patient_id"], pid.as_str());
    assert!(decide[0]["read_at"].is_null());
    // The nurse is not the one to decide.
    assert!(
        !notifications(&app, &nurse)
            .await
            .iter()
            .any(|n| n["kind"] == "needs_decision")
    );
    // Where the team looks is still right; the notice is not acknowledged.
    let (_, points) = app
        .get(&clinic, &format!("/patients/{pid}/contact-points"))
        .await;
    assert!(
        points["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] != "failed"),
        "{points}"
    );
    let (_, notice) = app.get(&clinic, &format!("/notices/{notice_id}")).await;
    assert_ne!(notice["status"], "acknowledged", "{notice}");
    // Read, it is marked so.
    let nid = decide[0]["id"].as_str().unwrap();
    let r = app
        .http
        .post(app.url(&format!("/notifications/{nid}/read")))
        .bearer_auth(&kari)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, unread) = app.get(&kari, "/notifications?unread=true").await;
    assert!(
        !unread.to_string().contains(nid),
        "read notifications are not unread: {unread}"
    );
}

crate::scenarios!(
    relay_then_outreach,
    a_refused_email_is_marked_failed_for_admins,
    a_relay_by_phone,
    the_task_list_narrows_by_filter,
    a_nurse_gives_a_task_back_with_a_reason,
    a_declined_or_withdrawn_offer_leaves_the_task_with_the_nurse,
    a_coordinator_hands_a_notice_to_a_colleague,
    wrong_contact_fails_the_contact_point_and_escalates,
    admitted_asks_the_coordinator_to_decide
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
