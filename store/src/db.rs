//! Connecting to SQLite or PostgreSQL, running migrations and opening transactions.
//!
//! `on_tx!(tx, |c| body)` expands `body` once per backend with `c` bound to that backend's
//! connection, so a query is written once and type-checked against both drivers.

use crate::error::Result;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqliteLockingMode, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

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
    /// A simulation's throwaway database: one connection, not pooled (see [`Store::scratch`]).
    Scratch(Arc<Mutex<ScratchConnection>>),
}

/// The one connection of a scratch database, and how the transaction before ended, when that
/// is still to be sent (see [`ScratchTx`]).
#[derive(Debug)]
struct ScratchConnection {
    conn: SqliteConnection,
    pending_end: Option<TxEnd>,
    /// The directory of the database file, removed with it when the store is dropped.
    _dir: tempfile::TempDir,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxEnd {
    Commit,
    Rollback,
}

/// How long a transaction on the scratch database waits for the one before it, like the pool's
/// acquire timeout: two transactions held at once by one task fail instead of hanging.
const SCRATCH_WAIT: Duration = Duration::from_secs(30);

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
    Sqlite(SqliteTx),
    Postgres(Transaction<'static, Postgres>),
}

/// A SQLite transaction: sqlx's on a pooled connection, or our own on a scratch database.
#[derive(Debug)]
pub(crate) enum SqliteTx {
    Pooled(Transaction<'static, Sqlite>),
    Scratch(ScratchTx),
}

/// A transaction on the scratch database's connection, begun and committed with plain
/// statements. Why not sqlx's `Transaction`: on a pool, every transaction also costs a
/// hand-shaken BEGIN and COMMIT and a ping when the connection goes back to the pool, each a
/// round trip to the connection's worker thread; the simulation runs millions of transactions
/// on a connection nothing else can use, so those round trips were a large share of its time.
///
/// For the same reason its end goes with the next BEGIN, in one round trip: a commit (or the
/// rollback of a dropped transaction) is sent as `COMMIT; BEGIN IMMEDIATE`. Nothing but the
/// next transaction on this connection can see the database, and it runs after the COMMIT, so
/// the difference cannot be seen; only a failing COMMIT would be reported one step late, by
/// the next begin. The scratch database is thrown away, so durability never mattered.
#[derive(Debug)]
pub(crate) struct ScratchTx {
    conn: OwnedMutexGuard<ScratchConnection>,
    finished: bool,
}

impl Drop for ScratchTx {
    fn drop(&mut self) {
        if !self.finished {
            // Rolled back before the next transaction on this connection begins.
            self.conn.pending_end = Some(TxEnd::Rollback);
        }
    }
}

impl Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match self {
            SqliteTx::Pooled(t) => t,
            SqliteTx::Scratch(t) => &t.conn.conn,
        }
    }
}

impl DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            SqliteTx::Pooled(t) => t,
            SqliteTx::Scratch(t) => &mut t.conn.conn,
        }
    }
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

    /// A throwaway SQLite database for a simulation: the same schema and queries, in a file of
    /// a temporary directory that is removed when the store is dropped. It has exactly one
    /// connection and no durability: no journal on disk, no syncs, the file locked for itself.
    ///
    /// Why not an in-memory database: SQLite keeps all of its pages in the page cache, and a
    /// commit after a B-tree rebalance scans that cache's whole hash table (the rebalance
    /// renumbers pages through a temporary number past the end of the file, and the commit
    /// drops every cached page numbered beyond the end). So each write transaction cost more
    /// as the database grew: with 320,000 rows (30,000 pages) a one-row update took 19 µs in
    /// memory against 10 µs in a file with a small page cache, and the scan was 8 % of the run
    /// at 3,000 patients, more at 10,000. Here the page cache stays small (8 MB), reads come
    /// from a memory map of the file, and the operating system keeps the file in its cache.
    pub async fn scratch() -> Result<Store> {
        let dir = tempfile::Builder::new()
            .prefix("kontaktvei-simulation-")
            .tempdir()
            .map_err(|e| {
                sqlx::Error::Configuration(format!("cannot make a scratch database: {e}").into())
            })?;
        let conn = SqliteConnectOptions::new()
            .filename(dir.path().join("scratch.db"))
            .create_if_missing(true)
            .locking_mode(SqliteLockingMode::Exclusive)
            .journal_mode(SqliteJournalMode::Memory)
            .synchronous(SqliteSynchronous::Off)
            .foreign_keys(true)
            .statement_cache_capacity(STATEMENT_CACHE)
            .pragma("mmap_size", "68719476736")
            .pragma("cache_size", "-8192")
            .pragma("temp_store", "memory")
            .connect()
            .await?;
        let store = Store {
            pool: Pool::Scratch(Arc::new(Mutex::new(ScratchConnection {
                conn,
                pending_end: None,
                _dir: dir,
            }))),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The scratch database's connection, once the transaction before has let go of it.
    async fn lock_scratch(
        scratch: &Arc<Mutex<ScratchConnection>>,
    ) -> Result<OwnedMutexGuard<ScratchConnection>> {
        Ok(
            tokio::time::timeout(SCRATCH_WAIT, scratch.clone().lock_owned())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?,
        )
    }

    /// The scratch database's connection outside any transaction: the one before has ended.
    async fn scratch_connection(
        scratch: &Arc<Mutex<ScratchConnection>>,
    ) -> Result<OwnedMutexGuard<ScratchConnection>> {
        let mut conn = Self::lock_scratch(scratch).await?;
        let end = match conn.pending_end.take() {
            Some(TxEnd::Commit) => "COMMIT",
            Some(TxEnd::Rollback) => "ROLLBACK",
            None => return Ok(conn),
        };
        sqlx::query(end).execute(&mut conn.conn).await?;
        Ok(conn)
    }

    /// `write`: `BEGIN IMMEDIATE`, else a deferred `BEGIN`; after the end of the transaction
    /// before, in the same round trip.
    async fn begin_scratch(
        scratch: &Arc<Mutex<ScratchConnection>>,
        write: bool,
    ) -> Result<TxInner> {
        let mut conn = Self::lock_scratch(scratch).await?;
        let statement = match (conn.pending_end.take(), write) {
            (None, true) => "BEGIN IMMEDIATE",
            (None, false) => "BEGIN",
            (Some(TxEnd::Commit), true) => "COMMIT; BEGIN IMMEDIATE",
            (Some(TxEnd::Commit), false) => "COMMIT; BEGIN",
            (Some(TxEnd::Rollback), true) => "ROLLBACK; BEGIN IMMEDIATE",
            (Some(TxEnd::Rollback), false) => "ROLLBACK; BEGIN",
        };
        sqlx::query(statement).execute(&mut conn.conn).await?;
        Ok(TxInner::Sqlite(SqliteTx::Scratch(ScratchTx {
            conn,
            finished: false,
        })))
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) | Pool::Scratch(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies pending migrations; running it again is harmless.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await?,
            Pool::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
            Pool::Scratch(s) => {
                let mut conn = Self::scratch_connection(s).await?;
                SQLITE_MIGRATIONS.run(&mut conn.conn).await?
            }
        }
        Ok(())
    }

    /// Starts a transaction. On SQLite it is `BEGIN IMMEDIATE`: a deferred transaction that reads
    /// and then writes fails with "database is locked" when another writer got there first.
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => {
                TxInner::Sqlite(SqliteTx::Pooled(p.begin_with("BEGIN IMMEDIATE").await?))
            }
            Pool::Postgres(p) => TxInner::Postgres(p.begin().await?),
            Pool::Scratch(s) => Self::begin_scratch(s, true).await?,
        };
        Ok(Tx { inner })
    }

    /// Starts a read-only unit of work: a plain deferred transaction that does not take SQLite's
    /// write lock (use [`Store::begin`] for anything that may write, audit rows included).
    pub async fn begin_read(&self) -> Result<Tx> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => TxInner::Sqlite(SqliteTx::Pooled(p.begin().await?)),
            Pool::Postgres(p) => TxInner::Postgres(p.begin().await?),
            Pool::Scratch(s) => Self::begin_scratch(s, false).await?,
        };
        Ok(Tx { inner })
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
            Pool::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
            Pool::Scratch(s) => match Self::scratch_connection(s).await {
                Ok(mut conn) => sqlx::query("SELECT 1")
                    .execute(&mut conn.conn)
                    .await
                    .is_ok(),
                Err(_) => false,
            },
        }
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
            // Its one connection closes when the last handle to the store is dropped.
            Pool::Scratch(_) => {}
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(SqliteTx::Pooled(t)) => t.commit().await?,
            TxInner::Sqlite(SqliteTx::Scratch(mut t)) => {
                // Sent with the next BEGIN (see `ScratchTx`).
                t.conn.pending_end = Some(TxEnd::Commit);
                t.finished = true;
            }
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn count(store: &Store) -> i64 {
        let mut tx = store.begin_read().await.unwrap();
        let n: i64 = on_tx!(tx, |c| {
            sqlx::query_scalar("SELECT COUNT(*) FROM cron_runs")
                .fetch_one(c)
                .await
                .unwrap()
        });
        tx.commit().await.unwrap();
        n
    }

    async fn insert(tx: &mut Tx, occurrence: &str) {
        on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO cron_runs (job, occurrence, instance, at) VALUES ('test', $1, 'test', $2)",
            )
            .bind(occurrence)
            .bind(chrono::Utc::now())
            .execute(c)
            .await
            .unwrap()
            .rows_affected()
        });
    }

    /// The scratch database's own transactions keep what is committed, undo what is dropped
    /// (before the next transaction sees anything), and its file goes with the store.
    #[tokio::test]
    async fn a_scratch_transaction_commits_or_rolls_back() {
        let store = Store::scratch().await.unwrap();
        let dir = match &store.pool {
            Pool::Scratch(s) => s.lock().await._dir.path().to_owned(),
            _ => panic!("a scratch store has its own connection"),
        };
        assert!(dir.join("scratch.db").exists());

        let mut tx = store.begin().await.unwrap();
        insert(&mut tx, "kept").await;
        tx.commit().await.unwrap();
        assert_eq!(count(&store).await, 1);

        let mut tx = store.begin().await.unwrap();
        insert(&mut tx, "dropped").await;
        drop(tx);
        assert_eq!(
            count(&store).await,
            1,
            "a dropped transaction leaves nothing"
        );

        // A failing statement does not poison the connection for the next transaction.
        let mut tx = store.begin().await.unwrap();
        insert(&mut tx, "twice").await;
        let again = on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO cron_runs (job, occurrence, instance, at) VALUES ('test', 'twice', 'test', $1)",
            )
            .bind(chrono::Utc::now())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        });
        assert!(again.is_err(), "the primary key holds");
        drop(tx);
        assert_eq!(count(&store).await, 1);
        assert!(store.ping().await);

        drop(store);
        assert!(!dir.exists(), "the scratch file is removed with the store");
    }
}
