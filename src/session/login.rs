//! From a StartupMessage to the first ReadyForQuery, one step per function:
//! check the user → authenticate → get a server → apply the client's parameters →
//! report parameters, key and ReadyForQuery → hand over to the session loop.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

use super::live::Live;
use super::params::{self, ParamSet};
use super::{Lease, Session, Shared};
use crate::client::auth;
use crate::client::cancel::ClientInfo;
use crate::client::peer::Peer;
use crate::client::startup::{BoxStream, Startup};
use crate::config::{AuthMethod, PoolMode};
use crate::pool::{PoolError, PoolKey, ServerObject};
use crate::server::ServerError;
use crate::wire::build::{self, Severity};

/// Why a login did not become a session (the client has already been told).
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("client I/O during login: {0}")]
    Io(#[from] std::io::Error),
    #[error("login refused: {0}")]
    Refused(String),
}

/// What a client logged in to.
pub enum Login {
    /// A database upstream: a session.
    Session(Box<Session>),
    /// The admin console's virtual database (`admin.database`).
    Admin(Box<crate::admin::console::Console>),
}

/// Authenticate the client, prepare its first server connection and greet it.
pub async fn login(live: &Arc<Live>, startup: Startup, peer: Peer) -> Result<Login, LoginError> {
    let (generation, shared) = live.current();
    let Startup { mut stream, mut rbuf, params: startup_params, tls } = startup;
    let find = |n: &str| startup_params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let Some(user) = find("user") else {
        return refuse(&mut stream, "28000", "no PostgreSQL user name specified in startup packet").await;
    };
    let database = find("database").filter(|d| !d.is_empty()).unwrap_or_else(|| user.clone());
    if find("replication").is_some_and(|r| r != "false" && r != "0" && r != "off") {
        return refuse(&mut stream, "0A000", "pgcached does not proxy replication connections").await;
    }
    let method = shared.config.auth.method;
    if method == AuthMethod::Trust && !peer.is_local() {
        return refuse(
            &mut stream,
            "28000",
            "pgcached: trust authentication is accepted only from loopback or the Unix socket; set auth.method",
        )
        .await;
    }
    if let Err(e) = auth::authenticate(&mut stream, &mut rbuf, method, &user, shared.lookup.as_ref()).await {
        warn!(%peer, %user, %database, error = %e, "client authentication failed");
        return refuse(&mut stream, e.sqlstate(), &e.client_message()).await;
    }

    let application_name = find("application_name").unwrap_or_default();
    if database == shared.config.admin.database {
        return admin_login(live.clone(), stream, rbuf, user, peer, tls, application_name).await;
    }
    let policy = shared.policies.for_session(&user, &database);
    if let Some(p) = &policy {
        // Under a guarded policy, settings that change how SQL is lexed cannot be chosen at
        // startup either.
        if let Err(refusal) = p.check_startup_params(&startup_params) {
            return refuse(&mut stream, refusal.sqlstate, &refusal.message).await;
        }
    }
    let key = PoolKey { database: database.clone(), user: user.clone() };
    let mode = shared.config.pool.mode;
    let (welcome, server) = match greet(&shared, &key, &startup_params, mode).await {
        Ok(greeting) => greeting,
        Err(e) => {
            warn!(%peer, pool = %key, error = %e, "no server connection for a new client");
            if let PoolError::Connect(ServerError::Postgres { code, .. }) = &e
                && (code.starts_with("28") || code.starts_with("3D"))
            {
                // No such database or role, or a wrong password: its pool must not linger.
                shared.pools.forget_unused(&key);
            }
            return fail_login(&mut stream, &e).await;
        }
    };

    shared.listeners.ensure(&database); // NOTIFY invalidation for this database (no-op unless notify mode)
    shared.replication.ensure(&database); // its replication stream (no-op unless replication mode)
    let mut out = BytesMut::with_capacity(512);
    build::authentication_ok(&mut out);
    for notice in &welcome.notices {
        out.extend_from_slice(notice);
    }
    for (name, value) in &welcome.reported {
        build::parameter_status(&mut out, name, value);
    }
    // Session mode: the client's backend is the server's, and its PID is that server's (so
    // `pg_terminate_backend(pid)` and NOTIFY sender PIDs mean what they do directly). The
    // secret stays pgcached's: a cancel must come through the proxy.
    let cancel = match &server {
        Some(obj) if mode == PoolMode::Session => shared.cancels.register_with_pid(obj.backend_key.0),
        _ => shared.cancels.register(),
    };
    build::backend_key_data(&mut out, cancel.pid, cancel.secret);
    build::ready_for_query(&mut out, b'I');
    stream.write_all(&out).await?;
    info!(%peer, %user, %database, tls, "client connected");
    let id = next_session_id();
    cancel.slot.set_info(ClientInfo {
        id,
        user: user.clone(),
        database: database.clone(),
        addr: peer,
        application_name,
        tls,
        connected_at: std::time::SystemTime::now(),
    });

    let mut wanted = welcome.wanted.clone();
    if policy.as_ref().is_some_and(|p| p.read_only()) {
        // Read-only on the server too: a write the analysis cannot see (inside a function) is
        // refused by Postgres. Part of what the client starts with, so RESET keeps it.
        wanted.set("default_transaction_read_only", "on");
    }
    let server = match server {
        Some(mut obj) => {
            if let Some(sql) = params::sync_statement(&wanted, &mut obj.dirty) {
                obj.run_hidden(&sql).await.map_err(|e| LoginError::Refused(e.to_string()))?;
            }
            let io = obj.io.take().ok_or_else(|| LoginError::Refused("server connection without streams".into()))?;
            Some(Lease { obj, io })
        }
        None => None,
    };
    let (client_rx, client_tx) = tokio::io::split(stream);
    let reporter = shared.queries.as_ref().map(|q| q.session(&shared.traffic, &database, &user));
    let repeats = shared.queries.as_ref().and_then(|q| q.repeat_detector());
    let session = Session {
        shared,
        live: live.clone(),
        generation,
        key,
        pool: None,
        mode,
        cancel,
        client_rx,
        client_tx,
        client_rbuf: rbuf,
        to_client: BytesMut::with_capacity(16 * 1024),
        server,
        to_server: BytesMut::with_capacity(4 * 1024),
        tx: Default::default(),
        segment: Default::default(),
        copy_in: false,
        fatal_due: false,
        said_terminate: false,
        pins: Default::default(),
        private: Default::default(),
        placeholders: startup_placeholders(&wanted),
        lifecycle: Default::default(),
        queue: Default::default(),
        statements: Default::default(),
        policy,
        table_schemas: Default::default(),
        write_facts: None,
        batch: Vec::new(),
        unnamed_query: None,
        unnamed_types: Vec::new(),
        local_unnamed: None,
        unnamed_parse: None,
        id,
        portals: Vec::new(),
        renamed: Default::default(),
        syncs_sent: 0,
        syncs_done: 0,
        parked: None,
        reset_unsynced: false,
        startup: wanted.clone(),
        wanted,
        digest_memo: std::cell::Cell::new(None),
        catalog: std::cell::OnceCell::new(),
        read_only_ahead: false,
        isolation_memo: std::cell::RefCell::default(),
        lexing_memo: std::cell::Cell::new(None),
        key_memo: std::cell::RefCell::default(),
        last_activity: Instant::now(),
        drain_deadline: None,
        batch_deadline: None,
        client_unflushed: false,
        server_unflushed: false,
        client_held: false,
        running: false,
        timeout_cancel: None,
        held_begin: None,
        limited: Default::default(),
        tally: super::stats::Tally::new(reporter, repeats),
        passing: None,
        client_stalled: None,
        client_took: false,
    };
    if let Some(lease) = &session.server {
        let k = crate::client::cancel::ServerKey {
            addr: lease.obj.addr,
            pid: lease.obj.backend_key.0,
            secret: lease.obj.backend_key.1,
        };
        session.cancel.slot.set(Some(k)).await;
    }
    Ok(Login::Session(Box::new(session)))
}

/// A client of the admin console: one of `admin.users` (else 42501, as Postgres refuses a
/// database one may not connect to), greeted with what psql needs to know of a server.
async fn admin_login(
    live: Arc<Live>,
    mut stream: BoxStream,
    rbuf: BytesMut,
    user: String,
    peer: Peer,
    tls: bool,
    application_name: String,
) -> Result<Login, LoginError> {
    let shared = live.shared();
    if !shared.config.admin.users.contains(&user) {
        warn!(%peer, %user, "admin console refused: not in admin.users");
        let message = format!("pgcached: user \"{user}\" may not use the admin console (admin.users)");
        return refuse(&mut stream, "42501", &message).await;
    }
    let cancel = shared.cancels.register();
    let mut out = BytesMut::with_capacity(256);
    build::authentication_ok(&mut out);
    for (name, value) in [
        ("server_version", concat!(env!("CARGO_PKG_VERSION"), " (pgcached admin console)")),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("application_name", application_name.as_str()),
    ] {
        build::parameter_status(&mut out, name, value);
    }
    build::backend_key_data(&mut out, cancel.pid, cancel.secret);
    build::ready_for_query(&mut out, b'I');
    stream.write_all(&out).await?;
    info!(%peer, %user, "admin console client connected");
    cancel.slot.set_info(ClientInfo {
        id: next_session_id(),
        user: user.clone(),
        database: shared.config.admin.database.clone(),
        addr: peer,
        application_name,
        tls,
        connected_at: std::time::SystemTime::now(),
    });
    Ok(Login::Admin(Box::new(crate::admin::console::Console { live, stream, rbuf, user, cancel })))
}

/// What a client is told at login (its ParameterStatus list) and the parameters it starts with.
#[derive(Clone, Debug)]
pub struct Welcome {
    pub reported: Vec<(String, String)>,
    pub wanted: ParamSet,
    /// NoticeResponses (whole frames) applying the startup parameters raised, sent before the
    /// ParameterStatus list as Postgres sends them at login (a long `application_name`).
    pub notices: Vec<bytes::Bytes>,
}

/// Welcomes by (pool, startup parameters): a client whose startup parameters were already
/// checked against a server is greeted without taking a server connection in transaction mode
/// (so a busy pool does not block logins), like PgBouncer. Entries expire so that changes on the
/// server (e.g. `ALTER ROLE … SET`) show up within a minute.
pub type WelcomeCache = moka::sync::Cache<(PoolKey, ParamSet), Arc<Welcome>>;

pub fn welcome_cache() -> WelcomeCache {
    moka::sync::Cache::builder().max_capacity(1024).time_to_live(std::time::Duration::from_secs(60)).build()
}

/// The greeting for a new client, and its server connection when it needs one now (session
/// mode, or startup parameters not seen before).
async fn greet(
    shared: &Shared,
    key: &PoolKey,
    startup_params: &[(String, String)],
    mode: PoolMode,
) -> Result<(Arc<Welcome>, Option<ServerObject>), PoolError> {
    let startup = params::from_startup(startup_params);
    let cache_key = (key.clone(), startup.clone());
    if mode == PoolMode::Transaction {
        if let Some(welcome) = shared.welcomes.get(&cache_key) {
            return Ok((welcome, None));
        }
    }
    let mut wanted = startup;
    let mut notices = Vec::new();
    let obj = first_server(shared, key, &mut wanted, &mut notices).await?;
    let mut reported: Vec<(String, String)> = obj.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    reported.sort();
    let welcome = Arc::new(Welcome { reported, wanted, notices });
    if obj.defaults_epoch == shared.pools.defaults_epoch() {
        // (Not one logged in under login defaults that changed since: see `Pools::new_login_defaults`.)
        shared.welcomes.insert(cache_key, welcome.clone());
    }
    // Transaction mode: the server goes back to the pool right away.
    Ok((welcome, (mode == PoolMode::Session).then_some(obj)))
}

/// A server connection with the client's startup parameters applied; `wanted` is updated to
/// the values as the server normalized them (e.g. `utc` → `UTC`), and the notices applying
/// them raised are added to `notices`.
async fn first_server(
    shared: &Shared,
    key: &PoolKey,
    wanted: &mut ParamSet,
    notices: &mut Vec<bytes::Bytes>,
) -> Result<ServerObject, PoolError> {
    // Not one where another client defined a custom setting this one did not (session mode
    // keeps this connection for the client's whole session).
    let attempts = shared.config.pool.max_size + 1;
    let defined = startup_placeholders(wanted);
    let mut obj = shared.pools.handle(key)?.get_without_foreign_placeholders(&defined, attempts).await?;
    if let Some(sql) = params::sync_statement(wanted, &mut obj.dirty) {
        if let Err(e) = obj.run_hidden_noting(&sql, Some(notices)).await {
            if !matches!(e, ServerError::Postgres { .. }) {
                obj.broken = true;
            }
            // The server is in sync again after an error; undo what we thought we set.
            obj.dirty.clear();
            let _ = obj.run_hidden("RESET ALL").await;
            return Err(PoolError::Connect(e));
        }
    }
    let normalized: Vec<(String, String)> = wanted
        .iter()
        .filter_map(|(name, _)| {
            obj.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(k, v)| (k.clone(), v.clone()))
        })
        .collect();
    for (name, value) in normalized {
        wanted.set(&name, &value);
        obj.dirty.set(&name, &value);
    }
    Ok(obj)
}

/// A process-unique session id (never 0: a server connection's unnamed statement owned by
/// nobody says 0).
fn next_session_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Custom settings a client defines at startup (`options=-c app.x=1`).
fn startup_placeholders(wanted: &ParamSet) -> Vec<String> {
    wanted.iter().map(|(name, _)| name.to_ascii_lowercase()).filter(|n| n.contains('.')).collect()
}

async fn refuse<T>(stream: &mut BoxStream, code: &str, message: &str) -> Result<T, LoginError> {
    let mut out = BytesMut::new();
    build::error_response(&mut out, Severity::Fatal, code, message);
    stream.write_all(&out).await?;
    let _ = stream.shutdown().await;
    Err(LoginError::Refused(message.to_string()))
}

/// Tell the client why it has no server: the server's own FATAL when it sent one (e.g.
/// database "x" does not exist), else the pool's error.
async fn fail_login<T>(stream: &mut BoxStream, err: &PoolError) -> Result<T, LoginError> {
    if let PoolError::Connect(ServerError::Postgres { code, message, .. }) = err {
        return refuse(stream, code, message).await;
    }
    refuse(stream, err.sqlstate(), &err.to_string()).await
}
