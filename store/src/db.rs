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
    /// Transactions begun inside the SQLite transaction now open, if one is (see [`ScratchTx`]).
    batched: Option<u32>,
    /// Why the connection can no longer be trusted: a statement that manages the batch failed,
    /// so transactions already reported committed may have been undone with it.
    broken: Option<String>,
    /// The directory of the database file, removed with it when the store is dropped.
    _dir: tempfile::TempDir,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxEnd {
    Commit,
    Rollback,
}

/// How many of the store's transactions share one SQLite transaction on a scratch database.
/// More means fewer page writes (a page every transaction changes, such as the root of the
/// due-steps index, is written once a batch), but the pages a batch changes must fit in the
/// page cache (8 MB), or SQLite writes them out early. Measured at 3,000 patients: 50, 200 and
/// 1,000 within noise of each other, 1 (a commit each) about 10 % slower; at 10,000, 135 s
/// without batches, 121 s with them.
const SCRATCH_BATCH: u32 = 50;

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

/// A transaction on the scratch database's connection: a savepoint inside a SQLite
/// transaction that [`SCRATCH_BATCH`] of them share.
///
/// Why not sqlx's `Transaction`: on a pool, every transaction also costs a hand-shaken BEGIN
/// and COMMIT and a ping when the connection goes back to the pool, each a round trip to the
/// connection's worker thread; the simulation runs millions of transactions on a connection
/// nothing else can use, so those round trips were a large share of its time.
///
/// Why savepoints: a COMMIT writes every page the transaction changed to the file, one
/// `pwrite` each, and most transactions change the same few pages (the roots and hot leaves
/// of the step indexes); at 3,000 patients the commits were a fifth of the run. A savepoint is
/// released in memory. `RELEASE` keeps a transaction's changes and `ROLLBACK TO` undoes them,
/// as COMMIT and ROLLBACK would; nothing but the next transaction on this one connection can
/// see the database, so the difference cannot be seen. Only durability differs — the changes
/// reach the file when the batch commits — and the scratch database is thrown away.
///
/// For the same reason its end goes with the next begin, in one round trip: a commit (or the
/// rollback of a dropped transaction) is sent as `RELEASE tx; SAVEPOINT tx`. Only a failing
/// end is reported one step late, by the next begin, which then fails; so does every begin
/// after it (the connection is `broken`), since the batch may have been lost with it.
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
                batched: None,
                broken: None,
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

    /// The scratch database's connection outside any transaction: the one before has ended and
    /// the batch is committed.
    async fn scratch_connection(
        scratch: &Arc<Mutex<ScratchConnection>>,
    ) -> Result<OwnedMutexGuard<ScratchConnection>> {
        let mut conn = Self::lock_scratch(scratch).await?;
        let mut sql = Self::end_of_scratch_tx(&mut conn)?.to_owned();
        if conn.batched.take().is_some() {
            sql.push_str("COMMIT;");
        }
        Self::run_scratch(&mut conn, sql).await?;
        Ok(conn)
    }

    /// Begins a transaction on the scratch database (see [`ScratchTx`]): ends the one before,
    /// commits the batch when it is full and begins the next, all in one round trip.
    async fn begin_scratch(scratch: &Arc<Mutex<ScratchConnection>>) -> Result<TxInner> {
        let mut conn = Self::lock_scratch(scratch).await?;
        let mut sql = Self::end_of_scratch_tx(&mut conn)?.to_owned();
        let batched = match conn.batched {
            Some(n) if n < SCRATCH_BATCH => n + 1,
            Some(_) => {
                sql.push_str("COMMIT; BEGIN IMMEDIATE;");
                1
            }
            None => {
                sql.push_str("BEGIN IMMEDIATE;");
                1
            }
        };
        conn.batched = Some(batched);
        sql.push_str("SAVEPOINT tx");
        Self::run_scratch(&mut conn, sql).await?;
        Ok(TxInner::Sqlite(SqliteTx::Scratch(ScratchTx {
            conn,
            finished: false,
        })))
    }

    /// What ends the scratch transaction before, if it has not ended yet; an error if the
    /// connection broke earlier.
    fn end_of_scratch_tx(conn: &mut ScratchConnection) -> Result<&'static str> {
        if let Some(why) = &conn.broken {
            return Err(sqlx::Error::Protocol(format!(
                "the simulation's database failed earlier and may have lost work: {why}"
            ))
            .into());
        }
        Ok(match conn.pending_end.take() {
            Some(TxEnd::Commit) => "RELEASE tx;",
            Some(TxEnd::Rollback) => "ROLLBACK TO tx; RELEASE tx;",
            None => "",
        })
    }

    /// Runs the statements that end, commit and begin scratch transactions; if they fail, the
    /// connection is broken for good (see [`ScratchTx`]).
    async fn run_scratch(conn: &mut ScratchConnection, sql: String) -> Result<()> {
        if sql.is_empty() {
            return Ok(());
        }
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn.conn)
            .await
        {
            conn.broken = Some(e.to_string());
            return Err(e.into());
        }
        Ok(())
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
            Pool::Scratch(s) => Self::begin_scratch(s).await?,
        };
        Ok(Tx { inner })
    }

    /// Starts a read-only unit of work: a plain deferred transaction that does not take SQLite's
    /// write lock (use [`Store::begin`] for anything that may write, audit rows included).
    pub async fn begin_read(&self) -> Result<Tx> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => TxInner::Sqlite(SqliteTx::Pooled(p.begin().await?)),
            Pool::Postgres(p) => TxInner::Postgres(p.begin().await?),
            Pool::Scratch(s) => Self::begin_scratch(s).await?,
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
    /// Undoes the transaction now. Dropping it undoes it too, but on a pool only when its
    /// connection is next used, so its row locks outlive it until then.
    pub async fn rollback(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(SqliteTx::Pooled(t)) => t.rollback().await?,
            // Sent with the next begin, as a drop would (see `ScratchTx`).
            TxInner::Sqlite(SqliteTx::Scratch(t)) => drop(t),
            TxInner::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }

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

    /// Transactions share SQLite transactions in batches: across a batch's end, what was
    /// committed stays and what was dropped is undone, each on its own.
    #[tokio::test]
    async fn scratch_transactions_keep_their_own_ends_across_batches() {
        let store = Store::scratch().await.unwrap();
        let total = SCRATCH_BATCH as usize * 2 + 7;
        let dropped = [
            0,
            SCRATCH_BATCH as usize - 1,
            SCRATCH_BATCH as usize,
            total - 1,
        ];
        for i in 0..total {
            let mut tx = store.begin().await.unwrap();
            insert(&mut tx, &format!("run {i}")).await;
            if dropped.contains(&i) {
                drop(tx);
            } else {
                tx.commit().await.unwrap();
            }
        }
        assert_eq!(count(&store).await, (total - dropped.len()) as i64);
        // Outside any transaction (as migrations run), the batch is committed to the file.
        store.migrate().await.unwrap();
        assert_eq!(count(&store).await, (total - dropped.len()) as i64);
    }

    /// If the SQLite transaction under the batch ends behind its back, the work it held may be
    /// gone: the next transaction fails, and so does every one after it, instead of going on
    /// without it.
    #[tokio::test]
    async fn a_scratch_database_that_lost_its_batch_says_so() {
        let store = Store::scratch().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        insert(&mut tx, "lost").await;
        on_tx!(tx, |c| {
            sqlx::query("ROLLBACK").execute(c).await.unwrap();
        });
        tx.commit().await.unwrap();
        assert!(store.begin().await.is_err(), "the batch is gone");
        let again = store.begin().await.unwrap_err().to_string();
        assert!(again.contains("may have lost work"), "{again}");
        assert!(store.begin_read().await.is_err());
    }
}
