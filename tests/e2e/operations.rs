//! What the operator sees: health, readiness, metrics, the OpenAPI document, migrations on an
//! empty and an existing database, configuration errors, the admin commands, shutdown.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

async fn health_metrics_and_openapi(app: App) {
    let get = |path: &str| app.http.get(format!("{}{path}", app.base)).send();
    let r = get("/healthz").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = get("/readyz").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
    assert!(r_has_request_id(&get("/healthz").await.unwrap()));

    // One API call, then it shows in the metrics by route template (no ids).
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let pid = app.patient(&key, "Kari").await;
    app.get(&key, &format!("/patients/{pid}")).await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("kontaktvei_http_requests_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/api/v1/patients/{id}\""),
        "{metrics}"
    );
    assert!(!metrics.contains(&pid), "no ids in metric labels");
    assert!(
        metrics.contains("kontaktvei_stuck_steps"),
        "the auditor's count is exported"
    );

    let doc: serde_json::Value = get("/api/v1/openapi.json")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/patients",
        "/patients/{id}/contact-points",
        "/appointments",
        "/appointments/{id}/attendance",
        "/notices/{id}",
        "/organisations",
    ] {
        assert!(doc["paths"][path].is_object(), "OpenAPI lists {path}");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());

    // An unknown route is a problem document too.
    let r = app
        .http
        .get(app.url("/nothing-here"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let (status, body) = answer(r).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

fn r_has_request_id(r: &reqwest::Response) -> bool {
    r.headers().get("x-request-id").is_some()
}

async fn migrations_on_empty_and_existing_database(mut app: App) {
    // The server already migrated this database; doing it again twice is harmless.
    for _ in 0..2 {
        let out = app.cli(&["migrate"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let pid = app.patient(&key, "Kari Nordmann").await;

    // Restart on the existing database: the data and the key are still there.
    app.restart().await;
    let (status, p) = app.get(&key, &format!("/patients/{pid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p["name"], "Kari Nordmann");

    // SIGTERM stops it cleanly.
    assert_eq!(app.terminate().await, Some(0));
}

async fn migrate_creates_an_empty_database(app: App) {
    // A second, never-used database next to the test's own.
    let fresh = app.db.dir().join("fresh.db");
    let url = format!("sqlite://{}", fresh.display());
    let mut cmd = app.command(&["migrate"]);
    cmd.env("KONTAKTVEI_DATABASE_URL", &url);
    let out = cli_output(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(fresh.exists());
}

async fn configuration_errors_exit_2_naming_the_key(app: App) {
    let mut cmd = app.command(&["serve"]);
    cmd.env("KONTAKTVEI_LISTEN", "not-an-address");
    let out = cli_output(cmd).await;
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "one line: {}",
        out.stderr
    );
    assert!(out.stderr.contains("KONTAKTVEI_LISTEN"), "{}", out.stderr);

    let file = app.db.dir().join("bad.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\ndatbase_url = \"sqlite://x.db\"\n",
    )
    .unwrap();
    let out = app
        .cli(&["serve", "--config", file.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("datbase_url"), "{}", out.stderr);

    let mut cmd = app.command(&["migrate"]);
    cmd.env(
        "KONTAKTVEI_DATABASE_URL",
        "mysql://root:hunter2@localhost/db",
    );
    let out = cli_output(cmd).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("KONTAKTVEI_DATABASE_URL"));
    assert!(!out.stderr.contains("hunter2"), "never print the password");
}

async fn admin_commands(app: App) {
    let out = app
        .cli(&[
            "admin",
            "add-org",
            "--name",
            "Poliklinikk Rus Nord",
            "--kind",
            "clinic",
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim().lines().count(),
        1,
        "one JSON object on stdout"
    );
    let created = out.json();
    let org = created["organisation_id"].as_str().unwrap();
    assert!(created["api_key"].as_str().unwrap().starts_with("kv_"));

    // A clinic key for the same organisation works, with the clinic role.
    let out = app
        .cli(&[
            "admin", "key", "create", "--org", org, "--role", "clinic", "--label", "EPJ",
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let key = out.json();
    assert_eq!(key["organisation_id"], org);
    assert_eq!(key["role"], "clinic");
    let clinic_key = key["api_key"].as_str().unwrap();
    let (status, _) = app
        .post(
            clinic_key,
            "/patients",
            json!({"name": "Kari", "birth_year": 1979}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Mistakes: one line, non-zero exit.
    let out = app
        .cli(&[
            "admin",
            "key",
            "create",
            "--org",
            "01a21512-58c8-7f1e-b763-18be1c458184",
            "--role",
            "clinic",
        ])
        .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--org"), "{}", out.stderr);
    let out = app
        .cli(&["admin", "key", "create", "--org", org, "--role", "janitor"])
        .await;
    assert_eq!(out.code, 2);
    let out = app
        .cli(&[
            "admin",
            "add-org",
            "--name",
            "X",
            "--kind",
            "clinic",
            "--time-zone",
            "Mars/Olympus",
        ])
        .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("time_zone"), "{}", out.stderr);
    let out = app
        .cli(&["admin", "add-org", "--name", "  ", "--kind", "clinic"])
        .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("name"), "{}", out.stderr);

    // A sample letter, so a newcomer can look at one without data.
    let pdf = app.db.dir().join("sample.pdf");
    let out = app
        .cli(&["letter", "render", "--sample", "-o", pdf.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    let out = app
        .cli(&["letter", "render", "-o", pdf.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 1, "nothing to render without --sample");

    let out = app.cli(&["--version"]).await;
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("kontaktvei "));
}

async fn organisation_settings(app: App) {
    let (org, admin) = app.add_org("Dagsenteret", "low_threshold_service").await;
    let hours = json!({"mon": [{"opens": "09:00", "closes": "15:00"}], "tue": [{"opens": "09:00", "closes": "11:30"}, {"opens": "12:00", "closes": "15:00"}]});
    let (status, body) = app
        .patch(
            &admin,
            &format!("/organisations/{org}"),
            json!({"opening_hours": hours, "staff_email": "post@dagsenteret.no"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, got) = app.get(&admin, &format!("/organisations/{org}")).await;
    assert_eq!(got["opening_hours"], hours);
    assert_eq!(got["staff_email"], "post@dagsenteret.no");
    let (status, body) = app
        .patch(&admin, &format!("/organisations/{org}"), json!({"opening_hours": {"wed": [{"opens": "15:00", "closes": "09:00"}]}, "time_zone": "Oslo"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut fields = error_fields(&body);
    fields.sort();
    assert_eq!(fields, vec!["opening_hours.wed[0]", "time_zone"]);
    let (_, got) = app.get(&admin, &format!("/organisations/{org}")).await;
    assert_eq!(
        got["opening_hours"], hours,
        "a refused change changes nothing"
    );
    // The SMS sender: a number patients can answer, or up to 11 letters and digits.
    let path = format!("/organisations/{org}");
    let (status, body) = app
        .patch(&admin, &path, json!({"sms_sender": "Dagsenteret1"}))
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "12 characters: {body}"
    );
    assert_eq!(error_fields(&body), vec!["sms_sender"]);
    let (status, body) = app
        .patch(&admin, &path, json!({"sms_sender": "2270"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sms_sender"], "2270");
}

/// Nobody, not even someone with database access through the application's role, can rewrite
/// the audit log: the schema refuses UPDATE and DELETE on it.
async fn audit_log_is_append_only(app: App) {
    use sqlx::Connection;
    let (_, key) = app.add_org("Poliklinikk", "clinic").await;
    let pid = app.patient(&key, "Kari").await;
    app.get(&key, &format!("/patients/{pid}")).await;
    let update = "UPDATE audit_events SET actor = 'someone else'";
    let delete = "DELETE FROM audit_events";
    let count = "SELECT COUNT(*) FROM audit_events";
    let (update_err, delete_err, rows): (bool, bool, i64) = if app.db.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
        (
            sqlx::query(update).execute(&mut c).await.is_err(),
            sqlx::query(delete).execute(&mut c).await.is_err(),
            sqlx::query_scalar(count).fetch_one(&mut c).await.unwrap(),
        )
    } else {
        let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        (
            sqlx::query(update).execute(&mut c).await.is_err(),
            sqlx::query(delete).execute(&mut c).await.is_err(),
            sqlx::query_scalar(count).fetch_one(&mut c).await.unwrap(),
        )
    };
    assert!(update_err, "UPDATE on audit_events must fail");
    assert!(delete_err, "DELETE on audit_events must fail");
    assert!(
        rows >= 3,
        "organisation.create, patient.create, patient.read are logged: {rows}"
    );
}

crate::scenarios!(
    audit_log_is_append_only,
    health_metrics_and_openapi,
    migrations_on_empty_and_existing_database,
    migrate_creates_an_empty_database,
    configuration_errors_exit_2_naming_the_key,
    admin_commands,
    organisation_settings
);
