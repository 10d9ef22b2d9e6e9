//! A fresh, migrated database for one test or benchmark run: a new SQLite file, or a new
//! PostgreSQL database on the server `KONTAKTVEI_TEST_DATABASE_URL` names. Without that variable
//! the PostgreSQL run is skipped with a printed reason — except under `CI=true`, where it fails,
//! so CI can never pass without having tested PostgreSQL.

#![allow(dead_code)]

use kontaktvei_store::{Store, StoreOptions};
use sqlx::Connection;

pub struct FreshDb {
    pub url: String,
    /// PostgreSQL: the admin URL and the database to drop afterwards.
    postgres: Option<(String, String)>,
    /// SQLite: the directory to remove afterwards.
    dir: Option<std::path::PathBuf>,
}

impl FreshDb {
    /// `backend` is `sqlite` or `postgres` (any case). `None` when PostgreSQL is not configured
    /// outside CI.
    pub async fn new(backend: &str) -> Option<FreshDb> {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        if backend.eq_ignore_ascii_case("sqlite") {
            let dir = std::env::temp_dir().join(format!("kontaktvei-sched-{unique}"));
            std::fs::create_dir_all(&dir).unwrap();
            let url = format!("sqlite://{}", dir.join("t.db").display());
            return Some(FreshDb {
                url,
                postgres: None,
                dir: Some(dir),
            });
        }
        let Ok(admin) = std::env::var("KONTAKTVEI_TEST_DATABASE_URL") else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true but KONTAKTVEI_TEST_DATABASE_URL is not set: the PostgreSQL tests must run in CI"
                );
            }
            eprintln!("skipping the PostgreSQL run: KONTAKTVEI_TEST_DATABASE_URL is not set");
            return None;
        };
        let name = format!("kv_sched_{unique}");
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&format!("/{name}"));
        Some(FreshDb {
            url: url.to_string(),
            postgres: Some((admin, name)),
            dir: None,
        })
    }

    /// A pool on the database, migrated.
    pub async fn store(&self, max_connections: u32) -> Store {
        let store = Store::connect(&StoreOptions {
            url: self.url.clone(),
            max_connections,
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// Removes the database (close its pools first).
    pub async fn remove(self) {
        if let Some((admin, name)) = self.postgres {
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs each named scenario `async fn name(backend: &str)` as two tests, on SQLite and on
/// PostgreSQL. (Not every file that includes this module uses it.)
#[allow(unused_macros)]
macro_rules! both {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name("sqlite").await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name("postgres").await }
        }
    )+};
}
#[allow(unused_imports)]
pub(crate) use both;

/// Books an appointment at `starts_at` for the clinic and plans its notice, as the gateway does.
pub async fn book_and_plan(
    store: &Store,
    engine: &kontaktvei_scheduler::Engine,
    clinic: kontaktvei_store::Id,
    patient_id: kontaktvei_store::Id,
    starts_at: chrono::DateTime<chrono::Utc>,
) -> kontaktvei_store::notices::Notice {
    use kontaktvei_store::appointments::{self, AppointmentKind, NewAppointment};
    let mut tx = store.begin().await.unwrap();
    let new = NewAppointment {
        patient_id,
        starts_at,
        duration_minutes: 30,
        place: "Storgata 36".into(),
        kind: AppointmentKind::InPerson,
    };
    let (_, notice) = appointments::book(&mut tx, clinic, new, "test", engine.now())
        .await
        .unwrap();
    engine.plan(&mut tx, &notice).await.unwrap();
    tx.commit().await.unwrap();
    notice
}
