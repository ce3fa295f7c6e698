//! A cache fill records exactly the exchange it was armed for: not a reply to an earlier
//! request still in flight, and nothing at all when its own request never reached a server.
//! (Both were found by reading the session code of the time, where the fill was an `Option` on
//! the session; now it belongs to the queue entry it records.)

mod common;

use std::time::Duration;

use common::raw::{Msg, RawClient};
use common::{PgCluster, Proxy, connect};

const SETUP: &str = "CREATE TABLE kv (k int PRIMARY KEY, v text);
                     INSERT INTO kv VALUES (1, 'one'), (2, 'two');";

/// Parse? Bind Describe(portal) Execute Sync of `sql` (named statement `stmt` if not empty).
fn batch(raw: &mut RawClient, sql: &str) {
    raw.parse("", sql).bind("", "", &[], 0).describe(b'P', "").execute("", 0).sync();
}

/// The RowDescription's column names and the rows of an answer.
fn answer(msgs: &[Msg]) -> Vec<String> {
    msgs.iter()
        .filter(|m| matches!(m.tag, 'T' | 'D' | 'E'))
        .map(|m| match m.tag {
            'E' => format!("E:{}", m.code().unwrap_or_default()),
            _ => format!("{}:{}", m.tag, String::from_utf8_lossy(&m.body).replace('\0', "|")),
        })
        .collect()
}

/// A Describe of a statement still unanswered when a cacheable batch is gathered behind it:
/// its RowDescription belongs to the Describe, not to the batch's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_does_not_record_an_earlier_describe_in_flight() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start(&pg).await;
    let mut direct = RawClient::connect(pg.port(), "postgres", "app").await;
    batch(&mut direct, "SELECT v FROM kv WHERE k = 1");
    direct.flush().await;
    let expected = answer(&direct.until_ready().await);

    let mut raw = RawClient::connect(proxy.port, "postgres", "app").await;
    raw.parse("s1", "SELECT 1 AS not_this_column").describe(b'S', "s1").sync();
    batch(&mut raw, "SELECT v FROM kv WHERE k = 1");
    raw.flush().await;
    raw.until_ready().await;
    assert_eq!(answer(&raw.until_ready().await), expected, "the miss itself");
    for _ in 0..2 {
        batch(&mut raw, "SELECT v FROM kv WHERE k = 1");
        raw.flush().await;
        assert_eq!(answer(&raw.until_ready().await), expected, "a hit: the statement's own description");
    }
}

/// A cacheable extended batch whose checkout fails (53300): its fill must not stay armed and
/// record the client's next exchange under the first statement's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_whose_checkout_failed_records_nothing() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start_with(&pg, |c| {
        c.pool.max_size = 1;
        c.pool.acquire_timeout = Duration::from_millis(300);
    })
    .await;
    // Logged in first: a login with new startup parameters needs a server connection too.
    let mut raw = RawClient::connect(proxy.port, "postgres", "app").await;
    let mut holder = connect(&proxy.url("postgres", "app")).await;
    let tx = holder.transaction().await.unwrap();
    tx.batch_execute("SELECT 1").await.unwrap();

    batch(&mut raw, "SELECT v FROM kv WHERE k = 1");
    raw.flush().await;
    let refused = raw.until_ready().await;
    assert!(refused.iter().any(|m| m.code().as_deref() == Some("53300")), "{refused:?}");
    tx.commit().await.unwrap();

    // The next exchange is not cacheable (a locking read): nothing arms a fill for it.
    batch(&mut raw, "SELECT v FROM kv WHERE k = 2 FOR SHARE");
    raw.flush().await;
    assert!(answer(&raw.until_ready().await).iter().any(|l| l.contains("two")));
    batch(&mut raw, "SELECT v FROM kv WHERE k = 1");
    raw.flush().await;
    let first = answer(&raw.until_ready().await);
    assert!(first.iter().any(|l| l.contains("one")), "k = 1 answers 'one', not the next exchange's rows: {first:?}");
}

/// A client in a block (holding the only server connection) reads what another client is
/// already filling — but that leader waits for a server connection. The block's client must not
/// wait for the leader (each would sit out its timeout, and the leader's checkout fail): it runs
/// the read itself, commits, and the leader gets the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_holding_a_server_never_waits_for_a_leader_that_needs_one() {
    let pg = PgCluster::start();
    pg.psql_db("app", SETUP);
    let proxy = Proxy::start_with(&pg, |c| {
        c.pool.max_size = 1;
        c.pool.acquire_timeout = Duration::from_secs(3);
    })
    .await;
    let mut leader = RawClient::connect(proxy.port, "postgres", "app").await;
    let mut holder = RawClient::connect(proxy.port, "postgres", "app").await;
    holder.query("BEGIN").flush().await;
    holder.until_ready().await;
    holder.query("SELECT 1").flush().await;
    holder.until_ready().await;
    // The leader misses, takes the flight, and waits for the only connection.
    batch(&mut leader, "SELECT v FROM kv WHERE k = 1");
    leader.flush().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Same statement, same key, from the block that holds the connection.
    batch(&mut holder, "SELECT v FROM kv WHERE k = 1");
    holder.flush().await;
    let read = answer(&holder.until_ready().await);
    assert!(read.iter().any(|l| l.contains("one")), "{read:?}");
    holder.query("COMMIT").flush().await;
    holder.until_ready().await;
    let answered = answer(&leader.until_ready().await);
    assert!(answered.iter().any(|l| l.contains("one")), "the leader got the connection: {answered:?}");
}

/// Rows larger than a server read (300 KB, 1 MB: passed on in pieces, `session::passing`) are
/// recorded in pieces: the hit that follows is the first answer byte for byte. A write made
/// around the proxy proves it is a hit (the proxy does not see it, so it answers from memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_larger_than_a_read_are_recorded_in_pieces_and_replayed_whole() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "CREATE TABLE big (k int PRIMARY KEY, body text);
         INSERT INTO big SELECT k, (SELECT string_agg(md5(g::text || k::text), '') FROM generate_series(1, n) g)
           FROM (VALUES (1, 10000), (2, 3), (3, 32768), (4, 1)) AS v(k, n);",
    );
    let proxy = Proxy::start(&pg).await;
    let query = "SELECT k, body FROM big ORDER BY k";
    let mut direct = RawClient::connect(pg.port(), "postgres", "app").await;
    direct.query(query).flush().await;
    let expected = answer(&direct.until_ready().await);
    batch(&mut direct, query);
    direct.flush().await;
    let expected_extended = answer(&direct.until_ready().await);
    assert!(expected.iter().any(|row| row.len() > 1 << 20), "a row of over 1 MiB");

    let mut raw = RawClient::connect(proxy.port, "postgres", "app").await;
    raw.query(query).flush().await;
    assert_eq!(answer(&raw.until_ready().await), expected, "the miss");
    batch(&mut raw, query);
    raw.flush().await;
    assert_eq!(answer(&raw.until_ready().await), expected_extended, "the extended miss");

    let around = connect(&pg.url("postgres", "app")).await;
    around.batch_execute("UPDATE big SET body = 'changed'").await.unwrap();
    raw.query(query).flush().await;
    assert_eq!(answer(&raw.until_ready().await), expected, "a hit, whole");
    batch(&mut raw, query);
    raw.flush().await;
    assert_eq!(answer(&raw.until_ready().await), expected_extended, "an extended hit, whole");
}

/// Recordings in progress share `cache.max_filling`: while one fill holds 700 KB of a 1 MiB
/// budget (its statement sleeps after its first row), a second one that needs 700 KB
/// more gives up — its answer still reaches its client whole — and the first is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fills_share_the_fill_budget() {
    use common::http::{get, sample};
    let pg = PgCluster::start();
    // Declared immutable (so the read is cacheable), but it sleeps: called per row, not folded.
    pg.psql_db(
        "app",
        "CREATE FUNCTION slow(n int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(n); RETURN n; END $$",
    );
    let admin = common::free_port();
    let proxy = Proxy::start_with(&pg, |c| {
        c.cache.max_entry_size = bytesize::ByteSize::mib(1);
        c.cache.max_filling = bytesize::ByteSize::mib(1);
        c.admin.http_listen = Some(format!("127.0.0.1:{admin}"));
    })
    .await;
    let mut first = RawClient::connect(proxy.port, "postgres", "app").await;
    first
        .query("SELECT 'first' || repeat('a', 700000) AS v UNION ALL SELECT slow(g)::text FROM generate_series(3, 3) g")
        .flush()
        .await;
    // Its row is out (Postgres holds the last bytes until the statement ends); then it sleeps.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = get(admin, "/metrics").await;
        if sample(&metrics, "pgcached_cache_filling_bytes").is_some_and(|b| b >= 700_000.0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the first row is being recorded: {metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut second = RawClient::connect(proxy.port, "postgres", "app").await;
    second.query("SELECT 'second' || repeat('a', 700000) AS v").flush().await;
    let rows = second.until_ready().await.into_iter().filter(|m| m.tag == 'D').count();
    assert_eq!(rows, 1, "the second client got its whole answer");
    let rows = first.until_ready().await.into_iter().filter(|m| m.tag == 'D').count();
    assert_eq!(rows, 2, "the first client too");

    let (_, metrics) = get(admin, "/metrics").await;
    let rejected = sample(&metrics, "pgcached_cache_fills_rejected_total{reason=\"fill_budget\"}");
    assert_eq!(rejected, Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "pgcached_cache_fills_total"), Some(1.0), "the first was stored");
    assert_eq!(sample(&metrics, "pgcached_cache_filling_bytes"), Some(0.0), "all given back");
}
