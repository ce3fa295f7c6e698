//! Installing (and removing) the invalidation triggers.
//!
//! One trigger function, `pgcached.notify_invalidate()`, and on each chosen table one
//! statement-level `AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE` trigger named
//! `pgcached_invalidate` that calls it. Statement-level, so a bulk write costs one
//! notification, and PostgreSQL folds identical notifications of one transaction into one.
//! NOTIFY is delivered at commit and never for a rolled-back transaction, which is exactly
//! when an invalidation is due. The payload is `format('%I.%I', schema, table)`: quoted
//! where needed, so the listener parses it like any other table name.
//!
//! Installing is idempotent (function replaced, trigger dropped and re-created).

use tokio_postgres::Client;

use super::{CHANNEL, InvalidateError};

/// The trigger name on every table.
pub const TRIGGER_NAME: &str = "pgcached_invalidate";
/// The event trigger that reports DDL (see [`DDL_PAYLOAD`]).
pub const DDL_TRIGGER_NAME: &str = "pgcached_ddl";
/// The payload of a DDL notification: no table's (those are always `schema.name`).
pub const DDL_PAYLOAD: &str = "ddl";

/// The event trigger reporting DDL (views redefined, triggers added, columns retyped, grants…)
/// made around the proxy, so that its listeners refresh what they learned from the catalog.
/// Only a superuser may create event triggers.
fn ddl_trigger_sql() -> String {
    format!(
        "CREATE OR REPLACE FUNCTION pgcached.notify_ddl() RETURNS event_trigger
         LANGUAGE plpgsql AS $pgcached$
         BEGIN
             PERFORM pg_notify('{CHANNEL}', '{DDL_PAYLOAD}');
         END
         $pgcached$;
         DROP EVENT TRIGGER IF EXISTS {DDL_TRIGGER_NAME};
         CREATE EVENT TRIGGER {DDL_TRIGGER_NAME} ON ddl_command_end EXECUTE FUNCTION pgcached.notify_ddl();"
    )
}

fn function_sql() -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS pgcached;
         GRANT USAGE ON SCHEMA pgcached TO PUBLIC;
         CREATE OR REPLACE FUNCTION pgcached.notify_invalidate() RETURNS trigger
         LANGUAGE plpgsql AS $pgcached$
         BEGIN
             PERFORM pg_notify('{CHANNEL}', format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME));
             RETURN NULL;
         END
         $pgcached$;"
    )
}

/// What [`install_triggers`] did: the tables (as `"schema"."name"`) that now have the trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledTriggers {
    pub tables: Vec<String>,
    /// Whether the DDL event trigger is in place (installing needs a superuser).
    pub ddl: bool,
}

/// Install the trigger function and a trigger on each of `tables` (names as the connection's
/// `search_path` resolves them; views are refused) and on every table and partitioned table
/// of each of `schemas`. Needs the right to create a schema and triggers on those tables
/// (the tables' owner or a superuser). Runs in one transaction: all or nothing.
pub async fn install_triggers(
    client: &mut Client,
    tables: &[&str],
    schemas: &[&str],
) -> Result<InstalledTriggers, InvalidateError> {
    let tx = client.transaction().await?;
    tx.batch_execute(&function_sql()).await?;
    let targets = resolve(&tx, tables, schemas).await?;
    for t in &targets {
        tx.batch_execute(&format!(
            "DROP TRIGGER IF EXISTS {TRIGGER_NAME} ON {t};
             CREATE TRIGGER {TRIGGER_NAME}
                 AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {t}
                 FOR EACH STATEMENT EXECUTE FUNCTION pgcached.notify_invalidate();"
        ))
        .await?;
    }
    let superuser: bool = tx.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[]).await?.get(0);
    if superuser {
        tx.batch_execute(&ddl_trigger_sql()).await?;
    }
    tx.commit().await?;
    Ok(InstalledTriggers { tables: targets, ddl: superuser })
}

/// Remove the trigger from the given tables / schemas (the function stays: other tables or
/// databases may still use it). Returns the tables it was removed from.
pub async fn uninstall_triggers(
    client: &mut Client,
    tables: &[&str],
    schemas: &[&str],
) -> Result<InstalledTriggers, InvalidateError> {
    let tx = client.transaction().await?;
    let targets = resolve(&tx, tables, schemas).await?;
    for t in &targets {
        tx.batch_execute(&format!("DROP TRIGGER IF EXISTS {TRIGGER_NAME} ON {t};")).await?;
    }
    tx.commit().await?;
    Ok(InstalledTriggers { tables: targets, ddl: false })
}

/// The `"schema"."name"` of each target, quoted by the server (safe to splice into DDL).
async fn resolve(
    tx: &tokio_postgres::Transaction<'_>,
    tables: &[&str],
    schemas: &[&str],
) -> Result<Vec<String>, InvalidateError> {
    let mut out = Vec::new();
    for t in tables {
        let row = tx
            .query_opt(
                "SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = to_regclass($1)",
                &[t],
            )
            .await?
            .ok_or_else(|| InvalidateError::NoSuchTable(t.to_string()))?;
        let kind: String = row.get(1);
        if kind != "r" && kind != "p" {
            return Err(InvalidateError::NotATable(t.to_string()));
        }
        out.push(row.get(0));
    }
    let schemas: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
    if !schemas.is_empty() {
        let rows = tx
            .query(
                "SELECT format('%I.%I', n.nspname, c.relname)
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p')
                  ORDER BY 1",
                &[&schemas],
            )
            .await?;
        out.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_notifies_the_listener_channel_with_a_quoted_name() {
        let sql = function_sql();
        assert!(sql.contains("pg_notify('pgcached_invalidate', format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME))"));
        assert!(sql.contains("RETURN NULL"));
    }
}
