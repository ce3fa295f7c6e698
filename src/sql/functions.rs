//! Built-in knowledge about functions: volatility of well-known Postgres functions, functions
//! that execute SQL text or write, and the default list of functions a guarded policy denies.
//!
//! Names are compared lowercased and without schema (`pg_catalog.now` is `now`). A function not
//! listed here is [`Volatility::Unknown`]: the caller looks it up in `pg_proc` (the built-in list
//! cannot know user functions) and must treat it as volatile until it knows better.

use serde::Serialize;

/// How a function's result may change, as `pg_proc.provolatile` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Volatility {
    /// Same result for the same arguments, forever (`lower`, `abs`, `count`…).
    Immutable,
    /// Same result within one statement (`now`, `current_user`…): cacheable only when the
    /// cache key determines it ([`keyed`]).
    Stable,
    /// May change at every call or have side effects (`random`, `nextval`…).
    Volatile,
    /// Not in the built-in list: look it up in `pg_proc`.
    Unknown,
}

const VOLATILE: &[&str] = &[
    "random",
    "random_normal",
    "setseed",
    "nextval",
    "setval",
    "currval",
    "lastval",
    "clock_timestamp",
    "timeofday",
    "statement_timestamp",
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "txid_current",
    "txid_current_if_assigned",
    "pg_current_xact_id",
    "pg_current_xact_id_if_assigned",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "set_config",
    "pg_advisory_lock",
    "pg_advisory_xact_lock",
    "pg_try_advisory_lock",
    "pg_try_advisory_xact_lock",
    "pg_advisory_unlock",
    "pg_advisory_unlock_all",
    "pg_notify",
    "lo_import",
    "lo_export",
    "lo_create",
    "lo_unlink",
    "lo_creat",
    "lo_put",
    "lo_from_bytea",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_switch_wal",
    "pg_create_restore_point",
    "dblink",
    "dblink_exec",
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "table_to_xml",
    "pg_stat_reset",
    "pg_logical_emit_message",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "pg_file_write",
    "inet_client_addr",
    "pg_backend_pid",
];

/// Stable functions whose answer a cache key does not determine (see [`KEYED`] for the others).
const STABLE: &[&str] = &[
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtime",
    "localtimestamp",
    "transaction_timestamp",
    "session_user",
    "current_query",
    "pg_my_temp_schema",
    "age",
    "pg_postmaster_start_time",
    "pg_conf_load_time",
    "pg_table_size",
    "pg_relation_size",
    "pg_total_relation_size",
    "pg_database_size",
    "txid_current_snapshot",
    "pg_current_snapshot",
    "inet_server_addr",
    "inet_server_port",
    "pg_is_in_recovery",
    "pg_last_wal_replay_lsn",
    "pg_current_wal_lsn",
];

/// The other stable functions: those whose answer depends on nothing outside a cache key
/// (database, effective role, the session's settings, the statement and its parameters) but the catalog — which
/// changes only by DDL, and DDL through pgcached flushes every cached answer: catalog look-ups
/// (`pg_get_*`, `format_type`, `*_is_visible`, privileges), the role and settings (`current_user`,
/// `current_setting`, `current_schema`) and formatting under the session's settings (`to_char`,
/// `date_part`). Not here, and never cached: the clock (`now`, `age(x)` against today), the
/// login user (`session_user`: not the key's role), the server's state (sizes, WAL positions,
/// snapshots, addresses, statistics).
const KEYED: &[&str] = &[
    "current_user",
    "user",
    "current_role",
    "current_schema",
    "current_schemas",
    "current_database",
    "current_catalog",
    "current_setting",
    "has_table_privilege",
    "has_column_privilege",
    "has_schema_privilege",
    "has_database_privilege",
    "has_function_privilege",
    "has_sequence_privilege",
    "has_type_privilege",
    "has_any_column_privilege",
    "has_language_privilege",
    "has_tablespace_privilege",
    "has_foreign_data_wrapper_privilege",
    "has_server_privilege",
    "has_parameter_privilege",
    "pg_has_role",
    "to_char",
    "to_timestamp",
    "to_date",
    "date_part",
    "extract",
    "version",
    "obj_description",
    "col_description",
    "shobj_description",
    "pg_get_viewdef",
    "pg_get_functiondef",
    "pg_get_expr",
    "pg_get_indexdef",
    "pg_get_constraintdef",
    "pg_get_triggerdef",
    "pg_get_ruledef",
    "pg_get_function_arguments",
    "pg_get_function_identity_arguments",
    "pg_get_function_result",
    "pg_get_userbyid",
    "pg_get_serial_sequence",
    "pg_get_partkeydef",
    "pg_get_partition_constraintdef",
    "pg_get_statisticsobjdef",
    "pg_table_is_visible",
    "pg_type_is_visible",
    "pg_function_is_visible",
    "pg_operator_is_visible",
    "pg_collation_is_visible",
    "pg_statistics_obj_is_visible",
    "to_regclass",
    "to_regtype",
    "to_regproc",
    "to_regprocedure",
    "to_regnamespace",
    "to_regrole",
    "format_type",
    "pg_typeof",
    "pg_relation_is_updatable",
    "pg_column_is_updatable",
    "pg_index_column_has_property",
    "pg_tablespace_location",
];

const IMMUTABLE: &[&str] = &[
    "lower",
    "upper",
    "abs",
    "length",
    "char_length",
    "octet_length",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "substring",
    "substr",
    "trim",
    "btrim",
    "ltrim",
    "rtrim",
    "replace",
    "concat",
    "concat_ws",
    "round",
    "floor",
    "ceil",
    "ceiling",
    "trunc",
    "sqrt",
    "power",
    "mod",
    "md5",
    "sha256",
    "encode",
    "decode",
    "split_part",
    "position",
    "strpos",
    "left",
    "right",
    "lpad",
    "rpad",
    "reverse",
    "regexp_replace",
    "regexp_matches",
    "regexp_split_to_array",
    "array_length",
    "array_agg",
    "unnest",
    "generate_series",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "bool_and",
    "bool_or",
    "every",
    "string_agg",
    "json_agg",
    "jsonb_agg",
    "json_build_object",
    "jsonb_build_object",
    "json_object_agg",
    "jsonb_object_agg",
    "row_to_json",
    "to_json",
    "to_jsonb",
    "jsonb_set",
    "cast",
    "date_trunc",
    "make_date",
    "make_interval",
    "row_number",
    "rank",
    "dense_rank",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "ntile",
    "percent_rank",
    "cume_dist",
    "stddev",
    "variance",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "exists",
    "array_to_string",
    "string_to_array",
    "initcap",
    "format",
    "quote_ident",
    "quote_literal",
    "chr",
    "ascii",
    "to_hex",
    "sign",
    "exp",
    "ln",
    "log",
    "pi",
    "array_position",
    "cardinality",
    "jsonb_array_elements",
    "json_array_elements",
    "jsonb_each",
    "json_each",
    "jsonb_typeof",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
];

/// Aggregate functions: a top-level call makes the query aggregated.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "bool_and",
    "bool_or",
    "every",
    "string_agg",
    "array_agg",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "bit_and",
    "bit_or",
    "xmlagg",
    "corr",
    "covar_pop",
    "covar_samp",
    "regr_count",
    "range_agg",
];

/// Functions that run SQL given as text, or write, so a statement calling them may write and
/// cannot have its tables checked.
const EXECUTES_SQL: &[&str] = &[
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "dblink",
    "dblink_exec",
    "dblink_send_query",
    "dblink_open",
    "dblink_fetch",
    "xpath_table",
];

/// Functions that write (sequences, large objects, settings): the statement may write.
const WRITES: &[&str] = &[
    "nextval",
    "setval",
    "lo_import",
    "lo_export",
    "lo_create",
    "lo_creat",
    "lo_unlink",
    "lo_put",
    "lo_from_bytea",
    "pg_notify",
    "pg_logical_emit_message",
    "pg_file_write",
    "txid_current",
    "pg_current_xact_id",
];

/// Functions every guarded policy denies unless it lists its own `deny_functions`; a trailing `*`
/// is a prefix match.
pub const DEFAULT_DENIED: &[&str] = &[
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_ls_logdir",
    "pg_ls_waldir",
    "pg_ls_tmpdir",
    "pg_ls_archive_statusdir",
    "pg_stat_file",
    "lo_import",
    "lo_export",
    "dblink*",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_switch_wal",
    "pg_promote",
    "pg_create_restore_point",
    "pg_file_write",
    "pg_file_unlink",
    "pg_file_rename",
    "query_to_xml*",
    "cursor_to_xml",
    "table_to_xml*",
    "pg_logical_emit_message",
    "pg_replication_origin*",
    "pg_drop_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot",
    "pg_stat_reset*",
];

/// Settings `SET` / `set_config()` may not change under a guarded policy: identity and
/// read-only switches (the lexing settings are listed too but judged by value in
/// [`crate::sql::lexing_guard`]).
pub const LOCKED_SETTINGS: &[&str] = &[
    "role",
    "session_authorization",
    "session_replication_role",
    "default_transaction_read_only",
    "transaction_read_only",
    "row_security",
    "client_encoding",
    "standard_conforming_strings",
];

/// The last dotted part of a function name, lowercased.
pub fn base_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// The built-in volatility of `name` (`pg_catalog.`-qualified names use their last part). A
/// name qualified with another schema is a user's function, whatever its name (`app.lower` is
/// not `lower`): [`Volatility::Unknown`].
pub fn volatility(name: &str) -> Volatility {
    if name.rsplit_once('.').is_some_and(|(schema, _)| schema != "pg_catalog") {
        return Volatility::Unknown;
    }
    let n = base_name(name);
    if VOLATILE.contains(&n) {
        Volatility::Volatile
    } else if STABLE.contains(&n) || KEYED.contains(&n) {
        Volatility::Stable
    } else if IMMUTABLE.contains(&n) {
        Volatility::Immutable
    } else {
        Volatility::Unknown
    }
}

/// Whether `name` is an aggregate function.
pub fn is_aggregate(name: &str) -> bool {
    AGGREGATES.contains(&base_name(name))
}

/// Whether `name` executes SQL text it is given (so the statement may do anything).
pub fn executes_sql(name: &str) -> bool {
    let n = base_name(name);
    EXECUTES_SQL.contains(&n) || n.starts_with("dblink")
}

/// Whether the built-in `name` is a stable function whose answer a cache key determines (see
/// [`KEYED`]): a statement calling it may be cached like an immutable one.
pub fn keyed(name: &str) -> bool {
    KEYED.contains(&base_name(name)) && volatility(name) == Volatility::Stable
}

/// Whether calling `name` writes something (a sequence, a large object, a setting).
pub fn writes(name: &str) -> bool {
    WRITES.contains(&base_name(name))
}

/// Whether `name`, though it writes, writes no relation a cached read could depend on
/// (a notification, a WAL message, a transaction id, a server file).
pub fn writes_no_table(name: &str) -> bool {
    matches!(
        base_name(name),
        "pg_notify" | "pg_logical_emit_message" | "txid_current" | "pg_current_xact_id" | "pg_file_write"
    )
}

/// Whether `name` writes the sequence its first argument names (`nextval`, `setval`).
pub fn writes_sequence(name: &str) -> bool {
    matches!(base_name(name), "nextval" | "setval")
}

/// Whether calling `name` takes a session-level advisory lock: held by the server connection
/// until released or the session ends, beyond the transaction (the `_xact_` ones are not).
pub fn takes_session_lock(name: &str) -> bool {
    matches!(
        base_name(name),
        "pg_advisory_lock" | "pg_advisory_lock_shared" | "pg_try_advisory_lock" | "pg_try_advisory_lock_shared"
    )
}

/// Whether `name` matches a pattern from a deny list (`dblink*` is a prefix, else exact; a
/// pattern with a dot must match the qualified name).
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    let (pat, target) = if pattern.contains('.') { (pattern, name) } else { (pattern, base_name(name)) };
    match pat.strip_suffix('*') {
        Some(prefix) => target.starts_with(prefix),
        None => target == pat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_qualified_names_use_their_base() {
        assert_eq!(volatility("pg_catalog.now"), Volatility::Stable);
        assert_eq!(volatility("nextval"), Volatility::Volatile);
        assert_eq!(volatility("lower"), Volatility::Immutable);
        assert_eq!(volatility("my_fn"), Volatility::Unknown);
    }

    #[test]
    fn patterns_match_prefixes_and_qualified_names() {
        assert!(matches_pattern("dblink*", "public.dblink_exec"));
        assert!(matches_pattern("pg_read_file", "pg_catalog.pg_read_file"));
        assert!(!matches_pattern("pg_read_file", "pg_read_files"));
        assert!(matches_pattern("app.f", "app.f"));
        assert!(!matches_pattern("app.f", "other.f"));
    }
}
