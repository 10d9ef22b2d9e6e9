//! Connecting to SQLite or PostgreSQL, running migrations and opening transactions.
//!
//! `on_tx!(tx, |c| body)` expands `body` once per backend with `c` bound to that backend's
//! connection, so a query is written once and type-checked against both drivers.

use crate::error::Result;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Which backend a database URL selects, or `None` for a scheme we do not support.
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split(':').next()?;
        match scheme {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle to the database; cheap to clone (the pools are reference counted).
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

/// One database transaction. Dropping it without [`Tx::commit`] rolls everything back, so a
/// request that fails half-way leaves nothing half-written.
#[derive(Debug)]
pub struct Tx {
    pub(crate) inner: TxInner,
}

#[derive(Debug)]
pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match &mut $tx.inner {
            $crate::db::TxInner::Sqlite(t) => {
                let $c: &mut sqlx::SqliteConnection = &mut *t;
                $body
            }
            $crate::db::TxInner::Postgres(t) => {
                let $c: &mut sqlx::PgConnection = &mut *t;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

/// Prepared statements kept per connection. sqlx keeps 100 by default, but the store has more
/// than 100 distinct statements; the engine's round cycles through most of them, and a
/// least-recently-used cache smaller than such a cycle misses on every statement, so each was
/// prepared again every time (a fifth of a millisecond for the leasing UPDATE).
const STATEMENT_CACHE: usize = 1000;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Opens a pool for the URL's backend. SQLite gets WAL, `synchronous=NORMAL`, foreign keys
    /// and a 5 s busy timeout; the file is created if missing.
    pub async fn connect(options: &StoreOptions) -> Result<Store> {
        let pool = match Backend::of_url(&options.url) {
            Some(Backend::Sqlite) => {
                let connect = SqliteConnectOptions::from_str(&options.url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
                    .statement_cache_capacity(STATEMENT_CACHE);
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(options.max_connections.max(1))
                        // A ping before each use is for connections that can break in the
                        // network; a SQLite connection cannot, and the ping is a round trip
                        // to the connection's worker thread on every transaction.
                        .test_before_acquire(false)
                        .acquire_timeout(Duration::from_secs(10))
                        .connect_with(connect)
                        .await?,
                )
            }
            Some(Backend::Postgres) => {
                let connect = PgConnectOptions::from_str(&options.url)?
                    .statement_cache_capacity(STATEMENT_CACHE);
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(options.max_connections.max(1))
                        .acquire_timeout(Duration::from_secs(10))
                        .connect_with(connect)
                        .await?,
                )
            }
            None => {
                return Err(sqlx::Error::Configuration(
                    "database URL must start with sqlite: or postgres:".into(),
                )
                .into());
            }
        };
        Ok(Store { pool })
    }

    /// A throwaway in-memory SQLite database for a simulation: the same schema and queries, but
    /// nothing touches the disk. It has exactly one connection, kept open for as long as the
    /// store lives (the data lives in that connection), so no transaction ever waits for
    /// another or finds its page cache made stale by another connection's writes.
    pub async fn scratch() -> Result<Store> {
        let connect = SqliteConnectOptions::from_str("sqlite::memory:")?
            .foreign_keys(true)
            .statement_cache_capacity(STATEMENT_CACHE)
            .pragma("cache_size", "-262144")
            .pragma("temp_store", "memory");
        let store = Store {
            pool: Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(connect)
                    .await?,
            ),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies pending migrations; running it again is harmless.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await?,
            Pool::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
        }
        Ok(())
    }

    /// Starts a transaction. On SQLite it is `BEGIN IMMEDIATE`: a deferred transaction that reads
    /// and then writes fails with "database is locked" when another writer got there first.
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => TxInner::Postgres(p.begin().await?),
        };
        Ok(Tx { inner })
    }

    /// Starts a read-only unit of work: a plain deferred transaction that does not take SQLite's
    /// write lock (use [`Store::begin`] for anything that may write, audit rows included).
    pub async fn begin_read(&self) -> Result<Tx> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => TxInner::Sqlite(p.begin().await?),
            Pool::Postgres(p) => TxInner::Postgres(p.begin().await?),
        };
        Ok(Tx { inner })
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
            Pool::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
        }
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}
