//! Shared test harness: a private PostgreSQL per test (`pg`), helpers to connect.
//!
//! Every integration test binary does `mod common;` and uses what it needs, so unused
//! items in one binary are expected.
#![allow(dead_code, unused_imports)]

pub mod binary;
pub mod console;
pub mod faulty;
pub mod fuzz;
pub mod http;
pub mod pg;
pub mod proxy;
pub mod raw;
pub mod values;

pub use pg::{PgCluster, PgOptions};
pub use proxy::Proxy;

use std::net::TcpListener;

/// A transaction block that holds a server connection until it ends. A plain `BEGIN` alone
/// does not: pgcached answers it itself until a statement needs a server (`session::held`).
pub const BEGIN_ON_SERVER: &str = "BEGIN; SELECT pg_backend_pid()";

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to :0, read it, release it).
/// Callers that bind it later must tolerate a (rare) race with another process.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

/// Connect with tokio-postgres (no TLS) and spawn the connection task. Panics on failure.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    try_connect(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// Like [`connect`], but returns the error (for tests that expect a refusal).
pub async fn try_connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        // Errors here surface as errors on the client's next call; nothing to do.
        let _ = conn.await;
    });
    Ok(client)
}

/// Run the built `pgcached` binary with `args`, without the PGCACHED_* environment overrides.
pub fn pgcached(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pgcached"))
        .args(args)
        .env_remove("PGCACHED_CONFIG")
        .env_remove("PGCACHED_LISTEN")
        .env_remove("PGCACHED_UPSTREAM")
        .output()
        .expect("run pgcached")
}

/// The text of the first column of the first row a simple query returns (`None`: no row, or NULL).
pub async fn simple_one(c: &tokio_postgres::Client, sql: &str) -> Option<String> {
    c.simple_query(sql).await.unwrap().into_iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
        _ => None,
    })?
}
