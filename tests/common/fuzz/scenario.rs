//! What a fuzz scenario is: numbered clients, each step one client's pipeline (or cancel, or
//! disconnect), in the order they run. Plain data, printable as the Rust that rebuilds it, so a
//! divergence becomes a regression test by pasting (tests/session_regressions.rs, tests/statement_regressions.rs).

use std::fmt::Write as _;

/// One frontend message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fm {
    Query(String),
    Parse(String, String),
    /// Portal, statement, text parameters (None = NULL).
    Bind(String, String, Vec<Option<String>>),
    /// `b'S'` or `b'P'`, name.
    Describe(u8, String),
    /// Portal, max rows (0 = all).
    Execute(String, i32),
    Close(u8, String),
    Sync,
    Flush,
    CopyData(String),
    CopyDone,
    CopyFail(String),
}

impl Fm {
    /// Messages after which the server sends a ReadyForQuery (when the session survives).
    pub fn ends_exchange(&self) -> bool {
        matches!(self, Fm::Query(_) | Fm::Sync)
    }
}

/// What a step does with its client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send these messages in one write; read until every ReadyForQuery they owe has come.
    Send(Vec<Fm>),
    /// Send these messages (ending in a long query), then cancel it out of band until it ends.
    Cancel(Vec<Fm>),
    /// Send these messages and Terminate in one write; read until the server closes.
    Terminate(Vec<Fm>),
    /// Close the socket without a word (mid-transaction, typically).
    Vanish,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub client: usize,
    pub action: Action,
}

/// A whole run: `clients` connections, steps in order. A client that terminated or vanished
/// is connected again before its next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub clients: usize,
    pub steps: Vec<Step>,
}

fn lit(s: &str) -> String {
    format!("{s:?}")
}

fn kind(k: u8) -> String {
    format!("b'{}'", k as char)
}

impl Fm {
    /// This message as the constructor call that rebuilds it (`use fuzz::build::*`).
    pub fn to_rust(&self) -> String {
        match self {
            Fm::Query(sql) => format!("q({})", lit(sql)),
            Fm::Parse(name, sql) => format!("parse({}, {})", lit(name), lit(sql)),
            Fm::Bind(portal, stmt, params) => {
                let params: Vec<String> = params
                    .iter()
                    .map(|p| match p {
                        Some(v) => format!("Some({})", lit(v)),
                        None => "None".to_string(),
                    })
                    .collect();
                format!("bind({}, {}, &[{}])", lit(portal), lit(stmt), params.join(", "))
            }
            Fm::Describe(k, name) => format!("describe({}, {})", kind(*k), lit(name)),
            Fm::Execute(portal, max) => format!("execute({}, {max})", lit(portal)),
            Fm::Close(k, name) => format!("close({}, {})", kind(*k), lit(name)),
            Fm::Sync => "sync()".to_string(),
            Fm::Flush => "flush()".to_string(),
            Fm::CopyData(d) => format!("copy_data({})", lit(d)),
            Fm::CopyDone => "copy_done()".to_string(),
            Fm::CopyFail(w) => format!("copy_fail({})", lit(w)),
        }
    }
}

impl Scenario {
    /// The scenario as Rust source (a `Scenario` expression using `fuzz::build::*`).
    pub fn to_rust(&self) -> String {
        let mut out = format!("Scenario {{\n    clients: {},\n    steps: vec![\n", self.clients);
        for step in &self.steps {
            let msgs = |fms: &[Fm]| fms.iter().map(Fm::to_rust).collect::<Vec<_>>().join(", ");
            let action = match &step.action {
                Action::Send(fms) => format!("send(vec![{}])", msgs(fms)),
                Action::Cancel(fms) => format!("cancel(vec![{}])", msgs(fms)),
                Action::Terminate(fms) => format!("terminate(vec![{}])", msgs(fms)),
                Action::Vanish => "vanish()".to_string(),
            };
            let _ = writeln!(out, "        step({}, {action}),", step.client);
        }
        out.push_str("    ],\n}");
        out
    }
}

/// Short constructors, for scenarios written by hand (regression tests) and printed ones.
pub mod build {
    pub use super::{Action, Fm, Scenario, Step};

    pub fn q(sql: &str) -> Fm {
        Fm::Query(sql.into())
    }
    pub fn parse(name: &str, sql: &str) -> Fm {
        Fm::Parse(name.into(), sql.into())
    }
    pub fn bind(portal: &str, stmt: &str, params: &[Option<&str>]) -> Fm {
        Fm::Bind(portal.into(), stmt.into(), params.iter().map(|p| p.map(str::to_string)).collect())
    }
    pub fn describe(kind: u8, name: &str) -> Fm {
        Fm::Describe(kind, name.into())
    }
    pub fn execute(portal: &str, max_rows: i32) -> Fm {
        Fm::Execute(portal.into(), max_rows)
    }
    pub fn close(kind: u8, name: &str) -> Fm {
        Fm::Close(kind, name.into())
    }
    pub fn sync() -> Fm {
        Fm::Sync
    }
    pub fn flush() -> Fm {
        Fm::Flush
    }
    pub fn copy_data(data: &str) -> Fm {
        Fm::CopyData(data.into())
    }
    pub fn copy_done() -> Fm {
        Fm::CopyDone
    }
    pub fn copy_fail(why: &str) -> Fm {
        Fm::CopyFail(why.into())
    }
    /// Parse (unnamed), Bind (unnamed), Execute: one statement the way most drivers send it.
    pub fn ext(sql: &str, params: &[Option<&str>]) -> Vec<Fm> {
        vec![parse("", sql), bind("", "", params), execute("", 0)]
    }

    pub fn send(fms: Vec<Fm>) -> Action {
        Action::Send(fms)
    }
    pub fn cancel(fms: Vec<Fm>) -> Action {
        Action::Cancel(fms)
    }
    pub fn terminate(fms: Vec<Fm>) -> Action {
        Action::Terminate(fms)
    }
    pub fn vanish() -> Action {
        Action::Vanish
    }
    pub fn step(client: usize, action: Action) -> Step {
        Step { client, action }
    }
}
