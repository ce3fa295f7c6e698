//! `pgcached install-triggers` and `pgcached uninstall-triggers`: connect to the upstream as the
//! user of `upstream.url` and put (or remove) the invalidation triggers on the named tables and
//! on every table of the named schemas, in one transaction.

use super::{InvalidateError, control, install_triggers, uninstall_triggers};
use crate::server::UpstreamTarget;

/// Install or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerAction {
    Install,
    Uninstall,
}

impl TriggerAction {
    /// The subcommand's name.
    pub fn command_name(self) -> &'static str {
        match self {
            TriggerAction::Install => "install-triggers",
            TriggerAction::Uninstall => "uninstall-triggers",
        }
    }
}

/// What to act on.
#[derive(Debug, Clone, Default)]
pub struct TriggerRequest {
    /// `None`: the database of `upstream.url` (see [`control::default_database`]).
    pub database: Option<String>,
    pub schemas: Vec<String>,
    pub tables: Vec<String>,
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerReport {
    pub action: TriggerAction,
    pub database: String,
    pub user: String,
    /// `"schema"."name"`, sorted.
    pub tables: Vec<String>,
    /// Install only: whether the DDL event trigger is in place (`None`: not an install).
    pub ddl: Option<bool>,
}

impl std::fmt::Display for TriggerReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.action {
            TriggerAction::Install => "installed the invalidation trigger on",
            TriggerAction::Uninstall => "removed the invalidation trigger from",
        };
        let n = self.tables.len();
        let s = if n == 1 { "" } else { "s" };
        writeln!(f, "pgcached: {verb} {n} table{s} in database {:?} (as {:?}):", self.database, self.user)?;
        for t in &self.tables {
            writeln!(f, "  {t}")?;
        }
        match self.ddl {
            Some(true) => {
                writeln!(f, "pgcached: DDL made around the proxy is reported too (event trigger pgcached_ddl)")?
            }
            Some(false) => writeln!(
                f,
                "pgcached: not a superuser: DDL made around the proxy (a view redefined, a trigger added) is not \
                 reported; run this as a superuser once to install the event trigger pgcached_ddl"
            )?,
            None => {}
        }
        Ok(())
    }
}

/// Run the command against the upstream.
pub async fn run_trigger_command(
    target: &UpstreamTarget,
    action: TriggerAction,
    request: &TriggerRequest,
) -> Result<TriggerReport, InvalidateError> {
    if request.schemas.is_empty() && request.tables.is_empty() {
        return Err(InvalidateError::NothingNamed);
    }
    let database = request.database.clone().unwrap_or_else(|| control::default_database(target));
    let mut client = control::connect(target, &database).await?;
    let tables: Vec<&str> = request.tables.iter().map(String::as_str).collect();
    let schemas: Vec<&str> = request.schemas.iter().map(String::as_str).collect();
    let (done, ddl) = match action {
        TriggerAction::Install => {
            let done = install_triggers(&mut client, &tables, &schemas).await?;
            let ddl = Some(done.ddl);
            (done, ddl)
        }
        TriggerAction::Uninstall => (uninstall_triggers(&mut client, &tables, &schemas).await?, None),
    };
    if done.tables.is_empty() && action == TriggerAction::Install {
        return Err(InvalidateError::NoTables(request.schemas.join(", ")));
    }
    let user = control::pg_config(target, &database, "").get_user().unwrap_or(control::DEFAULT_USER).to_string();
    Ok(TriggerReport { action, database, user, tables: done.tables, ddl })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_lists_every_table() {
        let r = TriggerReport {
            action: TriggerAction::Install,
            database: "app".into(),
            user: "postgres".into(),
            tables: vec!["public.a".into(), "s.\"B\"".into()],
            ddl: Some(true),
        };
        let text = r.to_string();
        assert!(text.starts_with("pgcached: installed the invalidation trigger on 2 tables in database \"app\""));
        assert!(text.contains("\n  public.a\n  s.\"B\"\n"), "{text}");
    }
}
