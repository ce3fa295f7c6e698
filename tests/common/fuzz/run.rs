//! Running a scenario twice in lock step — directly against Postgres and through pgcached, each on
//! its own copy of the same database — and comparing what every client receives, step by step;
//! then the notifications each client got and the data each database ended with.
//!
//! What legitimately differs is left out of a transcript: BackendKeyData, and the sender's PID in a
//! NotificationResponse. Notifications are compared per client over the whole run, not per step:
//! Postgres delivers one when the listening session next goes idle, which may fall in either of
//! two steps. Everything else — rows, tags, errors by SQLSTATE and message, notices,
//! ParameterStatus, ReadyForQuery status — must be identical.

use std::time::Duration;

use pgcached::config::PoolMode;
use tokio_postgres::SimpleQueryMessage;

use super::generate::{ClientView, Generator, may_pin};
use super::scenario::{Action, Fm, Scenario, Step};
use super::vocab::{FINAL_STATE, ROLE, SCHEMA};
use crate::common::raw::{Msg, RawClient, RecvError, cancel};
use crate::common::{PgCluster, Proxy, connect};

/// How long one step may wait for an answer before the side is said to hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// One private Postgres with the fuzz schema in a template database; every run gets two fresh
/// copies of it.
pub struct World {
    pub pg: PgCluster,
    admin: tokio_postgres::Client,
    made: usize,
}

/// Pool mode, clients, pool size.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    pub mode: PoolMode,
    pub clients: usize,
    pub pool_size: usize,
}

impl Setup {
    /// Transaction pooling, three clients over two server connections, cache on.
    pub fn transaction() -> Setup {
        Setup { mode: PoolMode::Transaction, clients: 3, pool_size: 2 }
    }

    /// Session pooling: a server connection per client.
    pub fn session() -> Setup {
        Setup { mode: PoolMode::Session, clients: 3, pool_size: 3 }
    }
}

/// Where the two sides first disagreed.
#[derive(Debug)]
pub struct Divergence {
    /// Index of the step (or `steps.len()` for the final comparison).
    pub step: usize,
    pub what: String,
    pub direct: Vec<String>,
    pub proxied: Vec<String>,
}

impl Divergence {
    /// The first pair of messages that differ: what makes two divergences "the same bug" when
    /// shrinking.
    pub fn signature(&self) -> (String, String) {
        let len = self.direct.len().max(self.proxied.len());
        for i in 0..len {
            let d = self.direct.get(i).cloned().unwrap_or_default();
            let p = self.proxied.get(i).cloned().unwrap_or_default();
            if d != p {
                return (d, p);
            }
        }
        (self.what.clone(), String::new())
    }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "divergence at step {} ({}):", self.step, self.what)?;
        let len = self.direct.len().max(self.proxied.len());
        for i in 0..len {
            let d = self.direct.get(i).map(String::as_str).unwrap_or("-");
            let p = self.proxied.get(i).map(String::as_str).unwrap_or("-");
            let mark = if d == p { "  " } else { "!!" };
            writeln!(f, "{mark} direct:  {d}\n{mark} pgcached: {p}")?;
        }
        Ok(())
    }
}

/// Totals of a run, for the long-run figures.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub scenarios: usize,
    pub steps: usize,
    pub messages: usize,
}

impl World {
    pub async fn start() -> World {
        let pg = PgCluster::start();
        pg.psql_db("postgres", &format!("{ROLE}\nCREATE DATABASE fz_tpl;"));
        pg.psql_db("fz_tpl", SCHEMA);
        let admin = connect(&pg.url("postgres", "postgres")).await;
        World { pg, admin, made: 0 }
    }

    async fn fresh_db(&mut self) -> String {
        self.made += 1;
        let name = format!("fz_{}", self.made);
        self.admin.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE fz_tpl")).await.unwrap();
        name
    }

    async fn drop_db(&self, name: &str) {
        let _ = self.admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }

    /// Sessions of `db` still inside a transaction (or a vanished client's backend not yet gone).
    async fn open_transactions(&self, db: &str) -> i64 {
        let row = self
            .admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'",
                &[&db],
            )
            .await
            .unwrap();
        row.get(0)
    }

    async fn backend_alive(&self, pid: i32) -> bool {
        let row = self.admin.query_one("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", &[&pid]).await.unwrap();
        row.get::<_, i64>(0) > 0
    }

    /// Run a generated scenario of `steps` steps from `seed`; the scenario (up to the divergence,
    /// if any) comes back with the outcome.
    pub async fn run_seed(
        &mut self,
        setup: Setup,
        seed: u64,
        steps: usize,
        totals: &mut Totals,
    ) -> (Scenario, Option<Divergence>) {
        let mut generator = Generator::new(seed, setup.pool_size);
        let mut scenario = Scenario { clients: setup.clients, steps: Vec::new() };
        let mut run = Run::start(self, setup).await;
        let mut divergence = None;
        for i in 0..steps {
            let step = generator.next_step(&run.direct.views);
            scenario.steps.push(step.clone());
            if let Err(d) = run.step(self, i, &step, totals).await {
                divergence = Some(d);
                break;
            }
        }
        if divergence.is_none() {
            divergence = run.finish(self, steps).await.err();
        }
        run.stop(self).await;
        totals.scenarios += 1;
        (scenario, divergence)
    }

    /// Run a fixed scenario (a regression, or a shrinking candidate).
    pub async fn run_scenario(&mut self, setup: Setup, scenario: &Scenario) -> Option<Divergence> {
        let mut totals = Totals::default();
        let mut run = Run::start(self, setup).await;
        let mut divergence = None;
        for (i, step) in scenario.steps.iter().enumerate() {
            if let Err(d) = run.step(self, i, step, &mut totals).await {
                divergence = Some(d);
                break;
            }
        }
        if divergence.is_none() {
            divergence = run.finish(self, scenario.steps.len()).await.err();
        }
        run.stop(self).await;
        divergence
    }
}

/// One client connection per scenario client, on one side.
struct Side {
    port: u16,
    db: String,
    clients: Vec<Option<RawClient>>,
    views: Vec<ClientView>,
    /// Notifications each client received: `channel:payload`.
    notes: Vec<Vec<String>>,
}

impl Side {
    fn new(port: u16, db: String, clients: usize) -> Side {
        Side {
            port,
            db,
            clients: (0..clients).map(|_| None).collect(),
            views: vec![ClientView::fresh(); clients],
            notes: vec![Vec::new(); clients],
        }
    }

    async fn client(&mut self, i: usize) -> &mut RawClient {
        if self.clients[i].is_none() {
            let c = RawClient::connect_with(self.port, &[("user", "fz"), ("database", &self.db)]).await;
            self.clients[i] = Some(c);
            self.views[i] = ClientView::fresh();
        }
        self.clients[i].as_mut().unwrap()
    }

    /// Perform `step` and return what its client received.
    async fn perform(&mut self, step: &Step) -> Vec<String> {
        let i = step.client;
        let port = self.port;
        let mut transcript = Vec::new();
        let (fms, terminate) = match &step.action {
            Action::Vanish => {
                if let Some(c) = self.clients[i].take() {
                    drop(c);
                }
                self.views[i] = ClientView::fresh();
                return transcript;
            }
            Action::Send(fms) | Action::Cancel(fms) => (fms, false),
            Action::Terminate(fms) => (fms, true),
        };
        let c = self.client(i).await;
        for fm in fms {
            encode(c, fm);
        }
        if terminate {
            c.terminate();
        }
        c.flush().await;
        let mut owed = fms.iter().filter(|fm| fm.ends_exchange()).count();
        let key = c.key;
        let cancels = matches!(step.action, Action::Cancel(_));
        let mut last_status = None;
        let mut waited = Duration::ZERO;
        let slice = if cancels { Duration::from_millis(250) } else { ANSWER_WITHIN };
        let mut notes = Vec::new();
        let mut closed = false;
        while owed > 0 || terminate {
            match c.recv_within(slice).await {
                Ok(m) => {
                    if let Some(note) = keep(&m, &mut transcript) {
                        notes.push(note);
                    }
                    if m.tag == 'Z' {
                        owed = owed.saturating_sub(1);
                        last_status = m.body.first().copied();
                    }
                }
                Err(RecvError::Closed) => {
                    if !terminate {
                        transcript.push("<connection closed>".into());
                    }
                    closed = true;
                    break;
                }
                Err(RecvError::Timeout) => {
                    waited += slice;
                    if cancels && waited < ANSWER_WITHIN * 2 {
                        if let Some(key) = key {
                            cancel(port, key).await;
                        }
                        continue;
                    }
                    transcript.push(format!("<no answer within {waited:?}>"));
                    closed = true;
                    break;
                }
            }
        }
        self.notes[i].extend(notes);
        if closed {
            self.clients[i] = None;
            self.views[i] = ClientView::fresh();
        } else {
            if let Some(status) = last_status {
                self.views[i].status = status;
            }
            self.views[i].pinned |= may_pin(fms);
        }
        transcript
    }

    /// Every connected client asks once more and collects the notifications still on their way.
    async fn drain(&mut self) {
        for i in 0..self.clients.len() {
            if let Some(c) = self.clients[i].as_mut() {
                c.query("SELECT 1").flush().await;
                let mut scratch = Vec::new();
                while let Ok(m) = c.recv_within(ANSWER_WITHIN).await {
                    if let Some(note) = keep(&m, &mut scratch) {
                        self.notes[i].push(note);
                    }
                    if m.tag == 'Z' {
                        break;
                    }
                }
            }
        }
    }
}

fn encode(c: &mut RawClient, fm: &Fm) {
    match fm {
        Fm::Query(sql) => c.query(sql),
        Fm::Parse(name, sql) => c.parse(name, sql),
        Fm::Bind(portal, stmt, params) => {
            let params: Vec<Option<&str>> = params.iter().map(|p| p.as_deref()).collect();
            c.bind(portal, stmt, &params, 0)
        }
        Fm::Describe(kind, name) => c.describe(*kind, name),
        Fm::Execute(portal, max) => c.execute(portal, *max),
        Fm::Close(kind, name) => c.close(*kind, name),
        Fm::Sync => c.sync(),
        Fm::Flush => c.flush_msg(),
        Fm::CopyData(data) => c.copy_data(data.as_bytes()),
        Fm::CopyDone => c.copy_done(),
        Fm::CopyFail(why) => c.copy_fail(why),
    };
}

/// Add `m` to the transcript in comparable form; a notification is returned instead.
fn keep(m: &Msg, transcript: &mut Vec<String>) -> Option<String> {
    match m.tag {
        'K' => None,
        'A' => {
            // Sender PID (4 bytes), channel, payload.
            let rest = &m.body[4.min(m.body.len())..];
            Some(String::from_utf8_lossy(rest).replace('\0', "|"))
        }
        'S' => {
            transcript.push(format!("S:{}", String::from_utf8_lossy(&m.body).replace('\0', "|")));
            None
        }
        _ => {
            transcript.push(readable(m));
            None
        }
    }
}

/// A message in words: errors by SQLSTATE and message, rows by column, the rest by name.
fn readable(m: &Msg) -> String {
    let cstrs = |b: &[u8]| String::from_utf8_lossy(b).trim_end_matches('\0').replace('\0', "|");
    let int16 = |b: &[u8], at: usize| i16::from_be_bytes([b[at], b[at + 1]]);
    let int32 = |b: &[u8], at: usize| i32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    match m.tag {
        'E' | 'N' => {
            let summary = m.summary();
            // The one accepted difference in an error's words (see README, known differences):
            // which message type a protocol violation during COPY FROM STDIN names.
            match summary.split_once("unexpected message type 0x") {
                Some((head, tail)) if tail.ends_with(" during COPY from stdin") => {
                    format!("{head}unexpected message type 0x.. during COPY from stdin")
                }
                _ => summary,
            }
        }
        'D' => {
            let mut cols = Vec::new();
            let mut at = 2;
            for _ in 0..int16(&m.body, 0) {
                let len = int32(&m.body, at);
                at += 4;
                if len < 0 {
                    cols.push("NULL".to_string());
                } else {
                    cols.push(String::from_utf8_lossy(&m.body[at..at + len as usize]).into_owned());
                    at += len as usize;
                }
            }
            format!("DataRow {}", cols.join(" | "))
        }
        'T' => {
            let mut cols = Vec::new();
            let mut at = 2;
            for _ in 0..int16(&m.body, 0) {
                let nul = at + m.body[at..].iter().position(|&b| b == 0).unwrap();
                let name = String::from_utf8_lossy(&m.body[at..nul]).into_owned();
                let oid = int32(&m.body, nul + 7);
                cols.push(format!("{name}:{oid}"));
                at = nul + 19;
            }
            format!("RowDescription {}", cols.join(", "))
        }
        'C' => format!("CommandComplete {}", cstrs(&m.body)),
        'Z' => format!("ReadyForQuery {}", m.body.first().map(|&b| b as char).unwrap_or('?')),
        '1' => "ParseComplete".into(),
        '2' => "BindComplete".into(),
        '3' => "CloseComplete".into(),
        'n' => "NoData".into(),
        's' => "PortalSuspended".into(),
        'I' => "EmptyQueryResponse".into(),
        't' => format!("ParameterDescription {:?}", &m.body),
        'G' | 'H' => format!("Copy{}Response {:?}", if m.tag == 'G' { "In" } else { "Out" }, &m.body),
        'd' => format!("CopyData {:?}", String::from_utf8_lossy(&m.body)),
        'c' => "CopyDone".into(),
        _ => m.summary(),
    }
}

/// Whether two transcripts are the same, but for the one accepted difference in where an
/// error comes (README, "Known differences": a named statement's plan belongs to the server
/// connection, so an error the planner raises — `current_setting('app.tenant', true)::int` of
/// an empty setting in a row-level security policy, 22P02 — may come at the Bind on one side
/// and right after its BindComplete on the other; fuzzer seed 7178 and many since). The same
/// error, one message earlier or later; nothing else may differ.
pub fn same_but_for_planning(direct: &[String], proxied: &[String]) -> bool {
    let planner_error = |m: &String| m.starts_with("E:22P02:invalid input syntax for type integer");
    let (mut d, mut p) = (0, 0);
    loop {
        match (direct.get(d), proxied.get(p)) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) if a == "BindComplete" && planner_error(b) && direct.get(d + 1) == Some(b) => d += 1,
            (Some(a), Some(b)) if b == "BindComplete" && planner_error(a) && proxied.get(p + 1) == Some(a) => p += 1,
            _ => return false,
        }
        d += 1;
        p += 1;
    }
}

/// Both sides of one run.
struct Run {
    proxy: Proxy,
    direct: Side,
    proxied: Side,
}

impl Run {
    async fn start(world: &mut World, setup: Setup) -> Run {
        let direct_db = world.fresh_db().await;
        let proxied_db = world.fresh_db().await;
        let proxy = Proxy::start_with(&world.pg, |c| {
            c.pool.mode = setup.mode;
            c.pool.max_size = setup.pool_size;
            c.pool.acquire_timeout = Duration::from_secs(2);
            c.cache.enabled = true;
            c.cache.default_ttl = Duration::from_secs(300);
            c.safety.enabled = false;
            c.limit.enabled = false;
        })
        .await;
        Run {
            direct: Side::new(world.pg.port(), direct_db, setup.clients),
            proxied: Side::new(proxy.port, proxied_db, setup.clients),
            proxy,
        }
    }

    async fn step(&mut self, world: &World, index: usize, step: &Step, totals: &mut Totals) -> Result<(), Divergence> {
        let pid = self.direct.clients[step.client].as_ref().and_then(|c| c.key).map(|k| k.0);
        let direct = self.direct.perform(step).await;
        let proxied = self.proxied.perform(step).await;
        totals.steps += 1;
        if let Action::Send(fms) | Action::Cancel(fms) | Action::Terminate(fms) = &step.action {
            totals.messages += fms.len();
        }
        match step.action {
            Action::Terminate(_) | Action::Vanish => self.settle(world, pid).await,
            Action::Cancel(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Action::Send(_) => {}
        }
        if !same_but_for_planning(&direct, &proxied) {
            return Err(Divergence { step: index, what: format!("client {}", step.client), direct, proxied });
        }
        Ok(())
    }

    /// After a client left: wait until both servers have finished with it (its transaction rolled
    /// back, its backend or pooled connection cleaned), so the next step sees the same state.
    async fn settle(&self, world: &World, direct_pid: Option<i32>) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..100 {
            let gone = match direct_pid {
                Some(pid) => !world.backend_alive(pid).await,
                None => true,
            };
            let open = |side: &Side| side.views.iter().filter(|v| v.status != b'I').count() as i64;
            if gone
                && world.open_transactions(&self.direct.db).await <= open(&self.direct)
                && world.open_transactions(&self.proxied.db).await <= open(&self.proxied)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Notifications per client, then the data both databases ended with.
    async fn finish(&mut self, world: &World, steps: usize) -> Result<(), Divergence> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.direct.drain().await;
        self.proxied.drain().await;
        if self.direct.notes != self.proxied.notes {
            let flat = |notes: &Vec<Vec<String>>| {
                notes.iter().enumerate().map(|(i, n)| format!("client {i}: {}", n.join(", "))).collect()
            };
            return Err(Divergence {
                step: steps,
                what: "notifications".into(),
                direct: flat(&self.direct.notes),
                proxied: flat(&self.proxied.notes),
            });
        }
        let direct = final_state(world, &self.direct.db).await;
        let proxied = final_state(world, &self.proxied.db).await;
        if direct != proxied {
            return Err(Divergence { step: steps, what: "final data".into(), direct, proxied });
        }
        Ok(())
    }

    async fn stop(self, world: &World) {
        drop(self.direct.clients);
        drop(self.proxied.clients);
        self.proxy.shutdown().await;
        world.drop_db(&self.direct.db).await;
        world.drop_db(&self.proxied.db).await;
    }
}

async fn final_state(world: &World, db: &str) -> Vec<String> {
    let c = connect(&world.pg.url("postgres", db)).await;
    let mut out = Vec::new();
    for sql in FINAL_STATE {
        for m in c.simple_query(sql).await.unwrap() {
            if let SimpleQueryMessage::Row(r) = m {
                let cols: Vec<&str> = (0..r.len()).map(|i| r.get(i).unwrap_or("NULL")).collect();
                out.push(format!("{sql}: {}", cols.join(" | ")));
            }
        }
    }
    out
}
