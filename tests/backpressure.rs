//! Memory stays bounded by what clients read: a client that pipelines requests and never reads
//! stops being served (the proxy's own answers — cache hits — included), and a single message
//! larger than the read buffer's high-water mark still arrives whole, up to
//! `limits.max_message_size`.

mod common;

use std::time::Duration;

use bytesize::ByteSize;
use common::raw::RawClient;
use common::{PgCluster, Proxy, connect, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `pgcached_cache_hits_total` from the admin endpoint on `port`.
async fn cache_hits(port: u16) -> f64 {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("admin port");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix("pgcached_cache_hits_total ")?.parse().ok())
        .unwrap_or_else(|| panic!("no hits counter in {body}"))
}

/// 400 pipelined cache hits of ~256 KB each (~100 MB) to a client that reads nothing: the
/// proxy stops answering once about a megabyte waits for the client, and answers the rest as
/// it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_gets_no_more_answers_until_it_does() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "CREATE TABLE big (id int PRIMARY KEY, body text); INSERT INTO big VALUES (1, repeat('x', 262144));",
    );
    let admin = free_port();
    let proxy = Proxy::start_with(&pg, |c| c.admin.http_listen = Some(format!("127.0.0.1:{admin}"))).await;
    let query = "SELECT body FROM big WHERE id = 1";
    // The same startup parameters as the client below: the same cache key.
    let mut warm = RawClient::connect(proxy.port, "postgres", "app").await;
    for _ in 0..2 {
        warm.query(query).flush().await;
        warm.until_ready().await;
    }
    let before = cache_hits(admin).await;
    assert!(before >= 1.0, "the answer is cached");

    const N: usize = 400;
    let mut raw = RawClient::connect(proxy.port, "postgres", "app").await;
    for _ in 0..N {
        raw.query(query);
    }
    raw.flush().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let served = cache_hits(admin).await - before;
    // ~1 MiB of answers waiting in the proxy plus what the sockets hold (a few MiB).
    assert!(served < 80.0, "answered {served} of {N} hits to a client that reads nothing");

    let mut ready = 0;
    while ready < N {
        if raw.recv().await.tag == 'Z' {
            ready += 1;
        }
    }
    let total = cache_hits(admin).await - before;
    assert!(total >= N as f64, "every request was answered from the cache in the end: {total} (first {served})");
}

/// A Query of 3 MiB (three times the read high-water mark) is read whole and answered; one over
/// `limits.max_message_size` is refused with 08P01 from its header, and nobody else notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_larger_than_the_read_buffer_completes_up_to_the_limit() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.limits.max_message_size = ByteSize::mib(4)).await;
    let other = connect(&proxy.url("postgres", "app")).await;
    let mut raw = RawClient::connect(proxy.port, "postgres", "app").await;
    let literal = "y".repeat(3 << 20);
    raw.query(&format!("SELECT length('{literal}')"));
    raw.flush().await;
    let answer = raw.until_ready().await;
    let row = answer.iter().find(|m| m.tag == 'D').expect("a row");
    assert!(String::from_utf8_lossy(&row.body).ends_with(&(3 << 20).to_string()), "{row:?}");

    // The header of a 5 MiB Query and the start of its text.
    let len = (5u32 << 20) + 4;
    raw.out.extend_from_slice(b"Q");
    raw.out.extend_from_slice(&len.to_be_bytes());
    raw.out.extend_from_slice(b"SELECT length('zzzz");
    raw.flush().await;
    let error = raw.recv().await;
    assert_eq!((error.tag, error.code().as_deref()), ('E', Some("08P01")), "{error:?}");
    assert_eq!(other.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0), 1);
}
