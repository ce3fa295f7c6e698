//! The admin HTTP endpoint seen from a test: a GET, and one sample of the metrics text.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET path` over a fresh HTTP/1.1 connection: (status, body).
pub async fn get(port: u16, path: &str) -> (u16, String) {
    // `Proxy::start_with` returns before `serve` has bound the admin port: retry a little.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("connect admin port {port}: {e}"),
        }
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw)).await.expect("admin answer").unwrap();
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end: {text:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status: {head:?}"));
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "unexpected chunked body: {head}");
    (status, body.to_string())
}

/// The value of the sample line starting with `series` (name plus labels).
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// One sample of the metrics served on admin port `admin` (0 when the series is absent).
pub async fn metric(admin: u16, series: &str) -> f64 {
    let (_, body) = get(admin, "/metrics").await;
    sample(&body, series).unwrap_or(0.0)
}
