//! Random steps from a seed: which client acts, and what it sends — simple queries (one statement
//! or an implicit-transaction batch), extended-protocol pipelines of one to three segments with
//! named and unnamed statements and portals, Describe, partial Execute, Close, Flush and COPY
//! data, cancels, Terminate after pipelined messages, and clients that vanish.
//!
//! The generator sees what the run saw (each client's last ReadyForQuery status) so that it never
//! asks more clients to hold a server connection at once than the pool has: a lock-step run in
//! which a client waits for a connection nobody will give back would only measure the timeout.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::scenario::{Action, Fm, Step};
use super::vocab::{COPY_DATA, IMPLICIT_WRITES, Kind, SLOW, STATEMENTS, Stmt};

/// What the generator knows of a client between steps.
#[derive(Clone, Debug)]
pub struct ClientView {
    /// Status byte of its last ReadyForQuery (`I`, `T`, `E`).
    pub status: u8,
    /// It sent something that may pin its server connection since it connected.
    pub pinned: bool,
}

impl ClientView {
    pub fn fresh() -> ClientView {
        ClientView { status: b'I', pinned: false }
    }

    /// Holds a server connection between steps (in a transaction, or pinned).
    pub fn holds_server(&self) -> bool {
        self.status != b'I' || self.pinned
    }
}

pub struct Generator {
    rng: StdRng,
    pool_size: usize,
}

impl Generator {
    pub fn new(seed: u64, pool_size: usize) -> Generator {
        Generator { rng: StdRng::seed_from_u64(seed), pool_size }
    }

    /// The next step, given the clients as the run left them.
    pub fn next_step(&mut self, clients: &[ClientView]) -> Step {
        let holders: Vec<usize> = (0..clients.len()).filter(|&i| clients[i].holds_server()).collect();
        let mut client = self.rng.random_range(0..clients.len());
        if !clients[client].holds_server() && holders.len() >= self.pool_size {
            // Every server connection is taken: one of their holders acts, or lets go.
            client = holders[self.rng.random_range(0..holders.len())];
            if self.rng.random_bool(0.3) {
                let action = if self.rng.random_bool(0.5) { Action::Vanish } else { self.terminate() };
                return Step { client, action };
            }
        }
        let action = match self.rng.random_range(0..100) {
            0..=57 => Action::Send(self.extended()),
            58..=89 => Action::Send(self.simple()),
            90..=93 => Action::Cancel(if self.rng.random_bool(0.5) {
                vec![Fm::Query(SLOW.into())]
            } else {
                vec![Fm::Parse(String::new(), SLOW.into()), bind("", "", &[]), execute("", 0), Fm::Sync]
            }),
            94..=96 => self.terminate(),
            _ => Action::Vanish,
        };
        Step { client, action }
    }

    fn terminate(&mut self) -> Action {
        let before = match self.rng.random_range(0..3) {
            0 => Vec::new(),
            1 => self.simple(),
            _ => self.extended(),
        };
        Action::Terminate(before)
    }

    fn stmt(&mut self) -> Stmt {
        let kind = match self.rng.random_range(0..100) {
            0..=29 => Kind::Read,
            30..=49 => Kind::Write,
            50..=67 => Kind::Tx,
            68..=79 => Kind::Set,
            80..=83 => Kind::Error,
            84..=88 => Kind::Pin,
            89..=93 => Kind::Session,
            94..=97 => Kind::CopyIn,
            _ => Kind::CopyOut,
        };
        let implicit = std::env::var("FUZZ_IMPLICIT_WRITES").map_or(true, |v| v != "0");
        let of_kind: Vec<&Stmt> =
            STATEMENTS.iter().filter(|s| s.kind == kind && (implicit || !IMPLICIT_WRITES.contains(&s.sql))).collect();
        *of_kind[self.rng.random_range(0..of_kind.len())]
    }

    fn params(&mut self, stmt: &Stmt) -> Vec<Option<String>> {
        if stmt.params.is_empty() {
            return Vec::new();
        }
        let set = stmt.params[self.rng.random_range(0..stmt.params.len())];
        set.iter().map(|v| Some(v.to_string())).collect()
    }

    fn copy_tail(&mut self, out: &mut Vec<Fm>) {
        out.push(Fm::CopyData(COPY_DATA[self.rng.random_range(0..COPY_DATA.len())].into()));
        if self.rng.random_bool(0.85) {
            out.push(Fm::CopyDone);
        } else {
            out.push(Fm::CopyFail("fuzz says no".into()));
        }
    }

    /// One Query: a single statement (COPY with its data), or a batch of two or three.
    pub fn simple(&mut self) -> Vec<Fm> {
        let first = self.stmt();
        let mut out = Vec::new();
        if first.kind == Kind::CopyIn {
            out.push(Fm::Query(first.sql.into()));
            self.copy_tail(&mut out);
            return out;
        }
        let mut sqls = vec![self.inline(&first)];
        if self.rng.random_bool(0.25) {
            for _ in 0..self.rng.random_range(1..=2) {
                let next = self.stmt();
                if next.kind != Kind::CopyIn {
                    sqls.push(self.inline(&next));
                }
            }
        }
        out.push(Fm::Query(sqls.join("; ")));
        out
    }

    /// The statement with its parameters written in as literals.
    fn inline(&mut self, stmt: &Stmt) -> String {
        let mut sql = stmt.sql.to_string();
        for (i, v) in self.params(stmt).iter().enumerate().rev() {
            let v = v.as_deref().unwrap_or("NULL");
            sql = sql.replace(&format!("${}", i + 1), &format!("'{v}'"));
        }
        sql
    }

    /// One to three segments, each one to three statements and a Sync.
    pub fn extended(&mut self) -> Vec<Fm> {
        let mut out = Vec::new();
        for _ in 0..self.rng.random_range(1..=3) {
            for _ in 0..self.rng.random_range(1..=3) {
                self.unit(&mut out);
                if self.rng.random_bool(0.1) {
                    out.push(Fm::Flush);
                }
            }
            out.push(Fm::Sync);
        }
        out
    }

    /// One statement the extended way, with the variations drivers and hand-written pipelines use.
    fn unit(&mut self, out: &mut Vec<Fm>) {
        let stmt = self.stmt();
        let name = ["", "", "", "s1", "s2"][self.rng.random_range(0..5)];
        let portal = ["", "", "p1"][self.rng.random_range(0..3)];
        let params = self.params(&stmt);
        if !name.is_empty() && self.rng.random_bool(0.2) {
            // Reuse a name this client may (or may not) have prepared before.
            out.push(Fm::Bind(portal.into(), name.into(), params));
            out.push(Fm::Execute(portal.into(), 0));
            return;
        }
        if self.rng.random_bool(0.05) {
            out.push(Fm::Close(b'S', name.into()));
        }
        out.push(Fm::Parse(name.into(), stmt.sql.into()));
        if self.rng.random_bool(0.2) {
            out.push(Fm::Describe(b'S', name.into()));
        }
        out.push(Fm::Bind(portal.into(), name.into(), params));
        if self.rng.random_bool(0.25) {
            out.push(Fm::Describe(b'P', portal.into()));
        }
        if !portal.is_empty() && self.rng.random_bool(0.5) {
            out.push(Fm::Execute(portal.into(), 2));
            out.push(Fm::Execute(portal.into(), 0));
        } else {
            out.push(Fm::Execute(portal.into(), 0));
        }
        if stmt.kind == Kind::CopyIn {
            self.copy_tail(out);
        }
        if !name.is_empty() && self.rng.random_bool(0.15) {
            out.push(Fm::Close(b'S', name.into()));
        }
        if !portal.is_empty() && self.rng.random_bool(0.3) {
            out.push(Fm::Close(b'P', portal.into()));
        }
    }
}

fn bind(portal: &str, stmt: &str, params: &[Option<String>]) -> Fm {
    Fm::Bind(portal.into(), stmt.into(), params.to_vec())
}

fn execute(portal: &str, max: i32) -> Fm {
    Fm::Execute(portal.into(), max)
}

/// Whether sending `fms` may pin the client's server connection (conservatively: anything that
/// touches session-scoped objects, or sets a setting where pgcached cannot see its value: a
/// function's `set_config`, or a `set_config($1, …)` bound without its parameters — pgcached
/// pins when the Bind is sent, even if an earlier error then skips it; seed 85072).
pub fn may_pin(fms: &[Fm]) -> bool {
    let pins = |sql: &str| {
        STATEMENTS.iter().filter(|s| matches!(s.kind, Kind::Pin | Kind::Session)).any(|s| sql.contains(s.sql))
            || sql.contains("advisory")
            || sql.contains("set_tenant(")
            || sql.contains("set_config($")
    };
    fms.iter().any(|fm| match fm {
        Fm::Query(sql) | Fm::Parse(_, sql) => pins(sql),
        _ => false,
    })
}
