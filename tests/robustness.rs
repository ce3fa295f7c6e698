//! Bad input gets a clear error and loses nothing: malformed and oversized frames, garbage
//! startup packets, clients that never finish startup — and the proxy keeps serving others.

mod common;

use std::time::Duration;

use common::{PgCluster, Proxy, connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Log in with a raw socket (trust auth) and read up to the first ReadyForQuery.
async fn raw_login(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(&startup_packet()).await.unwrap();
    let got = read_until(&mut s, b'Z').await;
    assert!(!got.is_empty());
    s
}

/// A StartupMessage (protocol 3.0) for user postgres, database app.
fn startup_packet() -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    body.extend_from_slice(b"user\0postgres\0database\0app\0\0");
    let mut pkt = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    pkt.extend(body);
    pkt
}

/// Read messages until one with tag `until` (inclusive); returns the tags seen.
async fn read_until(s: &mut TcpStream, until: u8) -> Vec<(u8, Vec<u8>)> {
    let mut msgs = Vec::new();
    loop {
        let mut head = [0u8; 5];
        if tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut head)).await.expect("timely").is_err() {
            return msgs;
        }
        let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        let mut body = vec![0; len - 4];
        s.read_exact(&mut body).await.unwrap();
        msgs.push((head[0], body));
        if head[0] == until {
            return msgs;
        }
    }
}

fn sqlstate(body: &[u8]) -> String {
    let pos = body.windows(1).position(|w| w[0] == b'C').unwrap();
    let end = body[pos..].iter().position(|&b| b == 0).unwrap();
    String::from_utf8_lossy(&body[pos + 1..pos + end]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_message_length_is_refused_with_08p01_and_others_are_unaffected() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&pg).await;
    let other = connect(&proxy.url("postgres", "app")).await;
    let mut s = raw_login(proxy.port).await;
    s.write_all(&[b'Q', 0x7f, 0xff, 0xff, 0xff]).await.unwrap();
    let msgs = read_until(&mut s, b'E').await;
    let (tag, body) = msgs.last().unwrap();
    assert_eq!(*tag, b'E');
    assert_eq!(sqlstate(body), "08P01");
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "connection closed after the error");
    assert_eq!(other.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_sql_gets_the_servers_syntax_error() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&pg).await;
    let c = connect(&proxy.url("postgres", "app")).await;
    let err = c.simple_query("SELEC * FROM ((( ';").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42601");
    c.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_bytes_survive_in_a_latin1_session() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&pg).await;
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
    let mut body = 196_608u32.to_be_bytes().to_vec();
    body.extend_from_slice(b"user\0postgres\0database\0app\0client_encoding\0LATIN1\0\0");
    let mut pkt = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    pkt.extend(body);
    s.write_all(&pkt).await.unwrap();
    let greeting = read_until(&mut s, b'Z').await;
    assert!(greeting.iter().any(|(t, b)| *t == b'S' && b.starts_with(b"client_encoding\0LATIN1\0")));
    // 'é' in LATIN1 is the single byte 0xE9: not valid UTF-8.
    let sql = b"SELECT '\xe9t\xe9' AS v, length('\xe9t\xe9')\0";
    let mut q = vec![b'Q'];
    q.extend_from_slice(&((sql.len() + 4) as u32).to_be_bytes());
    q.extend_from_slice(sql);
    s.write_all(&q).await.unwrap();
    let msgs = read_until(&mut s, b'Z').await;
    let row = msgs.iter().find(|(t, _)| *t == b'D').expect("a row");
    assert!(row.1.windows(3).any(|w| w == b"\xe9t\xe9"), "LATIN1 bytes came back untouched: {:?}", row.1);
    assert!(row.1.ends_with(b"3"), "the server saw 3 characters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_startup_is_dropped_after_the_login_timeout() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.timeouts.login = Duration::from_millis(300)).await;
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
    s.write_all(&[0, 0, 0]).await.unwrap(); // a partial length, then silence
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await.expect("closed in time");
    assert_eq!(n.unwrap_or(0), 0);
}

/// A Query whose body holds more than one C string: Postgres refuses it (08P01, "invalid message
/// format") and runs none of it. Through pgcached — pure pass-through (no cache, no policy) and
/// with the cache on — the client gets the same answers, and a SET after the first NUL changes
/// nothing the proxy then believes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_with_bytes_after_its_nul_gets_the_servers_answer() {
    let pg = PgCluster::start();
    let pass_through = Proxy::start_with(&pg, |c| c.cache.enabled = false).await;
    let cached = Proxy::start_with(&pg, |c| c.cache.enabled = true).await;
    let mut transcripts = Vec::new();
    for port in [pg.port(), pass_through.port, cached.port] {
        let mut s = raw_login(port).await;
        let mut seen = Vec::new();
        for body in
            [&b"SELECT 1\0SET TimeZone = 'Asia/Tokyo'\0"[..], b"SET TimeZone = 'Asia/Tokyo'\0x\0", b"SHOW TimeZone\0"]
        {
            let mut msg = vec![b'Q'];
            msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
            msg.extend_from_slice(body);
            s.write_all(&msg).await.unwrap();
            for (tag, body) in read_until(&mut s, b'Z').await {
                seen.push(match tag {
                    b'E' => format!("E {}", sqlstate(&body)),
                    b'D' => format!("D {}", String::from_utf8_lossy(&body[6..])),
                    t => (t as char).to_string(),
                });
            }
        }
        transcripts.push(seen);
    }
    assert_eq!(transcripts[0], transcripts[1], "direct (left) vs pass-through (right)");
    assert_eq!(transcripts[0], transcripts[2], "direct (left) vs cache on (right)");
    assert_eq!(transcripts[0][..2], ["E 08P01", "Z"], "{:?}", transcripts[0]);
    assert!(!transcripts[0].iter().any(|m| m.contains("Tokyo")), "no SET ran: {:?}", transcripts[0]);
}

/// Over `limits.max_clients`, a client that asks for TLS first (libpq's and asyncpg's default)
/// gets the SSLRequest answered and then 53300, as from Postgres — not an error in place of the
/// one-byte answer, which clients report without a SQLSTATE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_clients_is_said_after_the_ssl_answer() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.limits.max_clients = 1).await;
    let _holder = connect(&proxy.url("postgres", "app")).await;

    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
    s.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).await.unwrap(); // SSLRequest
    let mut answer = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut answer)).await.expect("timely").unwrap();
    assert_eq!(answer[0], b'N', "the proxy has no TLS configured");
    s.write_all(&startup_packet()).await.unwrap();
    let msgs = read_until(&mut s, b'E').await;
    let (_, error) = msgs.last().unwrap();
    assert_eq!(sqlstate(error), "53300");
}

/// A CancelRequest is no client: with `limits.max_clients` taken by the very client whose query
/// is to be cancelled, the cancel still goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_goes_through_when_max_clients_is_reached() {
    let pg = PgCluster::start();
    let proxy = Proxy::start_with(&pg, |c| c.limits.max_clients = 1).await;
    let client = connect(&proxy.url("postgres", "app")).await;
    let token = client.cancel_token();
    let started = std::time::Instant::now();
    let sleeping = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(20)").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), sleeping).await.expect("cancelled").unwrap().unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
