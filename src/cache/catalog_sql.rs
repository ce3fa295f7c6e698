//! The catalog queries behind [`super::catalog::Catalog`], each with what it answers.

/// `deps(oid)`: `$1` (in schema `$2`, or any) and every relation a read of it depends on — for a
/// view the relations its rewrite rule references (recursively), for a partitioned or inherited
/// table its children (a read of the parent reads them) and its parents (a write through the
/// parent changes the child). A macro, to be the head of several queries.
macro_rules! deps_cte {
    () => {
        "
WITH RECURSIVE deps(oid) AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relname = $1 AND ($2::text IS NULL OR n.nspname = $2)
  UNION
    SELECT nxt.oid FROM deps, LATERAL (
        -- a view: the relations its rewrite rule references
        SELECT d.refobjid AS oid
          FROM pg_rewrite r
          JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                          AND d.refclassid = 'pg_class'::regclass
         WHERE r.ev_class = deps.oid AND d.refobjid <> deps.oid
           AND (SELECT relkind FROM pg_class WHERE oid = deps.oid) = 'v'
        -- partitions / inheritance children (a read of the parent reads them)
        UNION ALL SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = deps.oid
        -- and parents (a write through the parent changes the child)
        UNION ALL SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = deps.oid
    ) nxt
)
"
    };
}

/// All relations `relation` depends on, itself included, as `"schema"."name"`.
pub(super) const DEPENDENCIES_SQL: &str = concat!(
    deps_cte!(),
    "SELECT DISTINCT format('%I.%I', n.nspname, c.relname)
  FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
);

/// `guards(policy, rel, expr, tree)`, after [`deps_cte`]: what filters the rows of each relation
/// a read depends on — its row-level security policies (`policy`), its body (views) — deparsed
/// (`expr`) and as the stored expression tree (`tree`).
macro_rules! guards_cte {
    () => {
        ",
guards(policy, rel, expr, tree) AS (
    SELECT true, c.oid,
           coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''),
           coalesce(p.polqual::text, '') || ' ' || coalesce(p.polwithcheck::text, '')
      FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_policy p ON p.polrelid = c.oid
     WHERE c.relrowsecurity
  UNION ALL
    SELECT false, c.oid, pg_get_viewdef(c.oid), r.ev_action::text
      FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_rewrite r ON r.ev_class = c.oid
     WHERE c.relkind = 'v'
)
"
    };
}

/// For each relation a read of `relation` depends on (as [`DEPENDENCIES_SQL`]), why its rows
/// may differ between two sessions with the same role and settings; no row when none.
/// - a table with row-level security whose policies call a function that is not immutable
///   (`current_setting()`, `now()`, a user function), use `SESSION_USER` or the clock, or read
///   another relation: the key holds the role and the settings, not what those depend on;
/// - a view whose body does the same (a `security_barrier` view filtering by a setting, or
///   `WHERE at > now()`).
///
/// `pg_depend` does not record uses of built-in (pinned) functions, so the stored expression
/// trees are read: every `:funcid` and every operator's (`:opno`) implementing function must be
/// immutable, and a policy may name no `:relid` but its own table's. The SQL keywords that are
/// not functions (`SESSION_USER`, `CURRENT_DATE`, …) are found in the deparsed text, where
/// keywords are upper case and identifiers are not.
pub(super) const PRIVACY_SQL: &str = concat!(
    deps_cte!(),
    guards_cte!(),
    "SELECT DISTINCT format('%I.%I', n.nspname, c.relname),
       CASE WHEN g.policy THEN 'a row-level security policy of ' ELSE 'the view ' END
       || format('%I.%I', n.nspname, c.relname) || ' depends on more than the role'
  FROM guards g JOIN pg_class c ON c.oid = g.rel JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE g.expr ~ '\\m(SESSION_USER|CURRENT_DATE|CURRENT_TIME|CURRENT_TIMESTAMP|LOCALTIME|LOCALTIMESTAMP)\\M'
    OR EXISTS (SELECT 1 FROM regexp_matches(g.tree, ':funcid (\\d+)', 'g') m
                 JOIN pg_proc pr ON pr.oid = m[1]::oid WHERE pr.provolatile <> 'i')
    OR EXISTS (SELECT 1 FROM regexp_matches(g.tree, ':opno (\\d+)', 'g') m
                 JOIN pg_operator o ON o.oid = m[1]::oid JOIN pg_proc pr ON pr.oid = o.oprcode
                WHERE pr.provolatile <> 'i')
    OR (g.policy AND EXISTS (SELECT 1 FROM regexp_matches(g.tree, ':relid (\\d+)', 'g') m
                              WHERE m[1]::oid <> g.rel))
 ORDER BY 1"
);

/// After [`guards_cte`]: the volatile functions (`schema.name`) the guards call, directly or
/// as an operator's implementation. A macro, to end two queries.
macro_rules! volatile_calls {
    () => {
        ",
calls(oid) AS (
    SELECT m[1]::oid FROM guards g, regexp_matches(g.tree, ':funcid (\\d+)', 'g') m
  UNION
    SELECT o.oprcode FROM guards g, regexp_matches(g.tree, ':opno (\\d+)', 'g') m
      JOIN pg_operator o ON o.oid = m[1]::oid
)
SELECT DISTINCT n.nspname || '.' || p.proname
  FROM calls JOIN pg_proc p ON p.oid = calls.oid JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.provolatile = 'v'"
    };
}

/// The volatile functions (`schema.name`) called in the body of any view or the policy of any
/// row-level-security table of the database: when none may write, no read of it can, and the
/// per-relation look-up ([`READ_VOLATILE_CALLS_SQL`]) is never needed.
pub(super) const ANY_VOLATILE_CALLS_SQL: &str = concat!(
    "WITH RECURSIVE deps(oid) AS (SELECT oid FROM pg_class WHERE relkind = 'v' OR relrowsecurity)",
    guards_cte!(),
    volatile_calls!()
);

/// The volatile functions (`schema.name`) Postgres may call on behalf of a read of `$1` (in
/// schema `$2`, or any): in the body of a view it depends on or a row-level security policy of
/// a table it reads, found as [`PRIVACY_SQL`] finds calls. Such a function may write (see
/// `Catalog::read_may_write`).
pub(super) const READ_VOLATILE_CALLS_SQL: &str = concat!(deps_cte!(), guards_cte!(), volatile_calls!());

/// Whether a function of `f` (columns `builtin`, `proname`, `readable`, `body`) may change
/// session settings — or leave other session state the proxy cannot follow — when called: a
/// built-in only if it is `set_config`; SQL and PL/pgSQL when their body mentions `set_config`,
/// has a statement starting with `SET` or `RESET` (not `UPDATE … SET`), runs dynamic SQL
/// (`EXECUTE`), or makes a temporary object (`TEMP`, `TEMPORARY`, `pg_temp`), `LISTEN`s, takes
/// a session advisory lock or `PREPARE`s; an extension's C function (pgcrypto's `digest`,
/// PostGIS's `st_distance`: calling one pinned every client, which exhausted the pool) only if
/// it is one of the few known to keep state (`set_limit` sets `pg_trgm.similarity_threshold`,
/// dblink's named connections and cursors); any other language (C, Python…) is opaque. A
/// function's own `SET` clause is restored when it returns and is not its body.
macro_rules! leaves_state {
    () => {
        "CASE
         WHEN builtin THEN proname = 'set_config'
         WHEN readable THEN body ~* '(set_config|(^|;|\\mbegin|\\mthen|\\melse|\\mloop)\\s*(set|reset)\\M|\\mexecute\\M)'
              OR body ~* '(\\mtemp(orary)?\\M|pg_temp|\\mlisten\\M|pg_(try_)?advisory_lock|\\mprepare\\M)'
         WHEN extension AND language = 'c' THEN proname IN ('set_limit', 'dblink_connect', 'dblink_connect_u', 'dblink_open')
         ELSE true END"
    };
}

/// The functions `f` ranges over: whether built in, name, language, whether readable, whether
/// an extension's, and body.
macro_rules! functions_cte {
    () => {
        "
WITH f AS (
  SELECT n.nspname = 'pg_catalog' AS builtin, p.proname, l.lanname AS language,
         l.lanname IN ('sql', 'plpgsql') AS readable,
         EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e') AS extension,
         coalesce(nullif(p.prosrc, ''), pg_get_function_sqlbody(p.oid), '') AS body
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang"
    };
}

/// Whether any function named `$1` (in schema `$2`, or any) may leave session state when called
/// (see `leaves_state!`); no such function: NULL (the caller assumes it may).
///
/// Then the custom (dotted) settings it may define: the literal names of its `set_config`
/// calls, and whether that list is all of them (not when a `set_config` name is computed, a
/// `SET` statement or dynamic SQL is in the body, or the body cannot be read).
pub(super) const SETS_SETTINGS_SQL: &str = concat!(
    functions_cte!(),
    "
   WHERE p.proname = $1 AND ($2::text IS NULL OR n.nspname = $2))
SELECT bool_or(",
    leaves_state!(),
    "),
       bool_or(CASE
         WHEN builtin THEN proname = 'set_config'
         WHEN readable THEN body ~* '((^|;|\\mbegin|\\mthen|\\melse|\\mloop)\\s*(set|reset)\\M|\\mexecute\\M)'
              OR (SELECT count(*) FROM regexp_matches(body, 'set_config\\s*\\(', 'gi'))
               > (SELECT count(*) FROM regexp_matches(body, 'set_config\\s*\\(\\s*''[^'']*''', 'gi'))
         ELSE true END),
       array(SELECT DISTINCT lower(m[1])
               FROM f f2, regexp_matches(f2.body, 'set_config\\s*\\(\\s*''([^'']*)''', 'gi') m
              WHERE f2.readable AND strpos(m[1], '.') > 0 ORDER BY 1)
  FROM f"
);

/// The names (lower case, without schema) of the user functions that may leave session state
/// when called (see `leaves_state!`): a statement that names one is looked at, also where
/// nothing else is (pure pass-through).
pub(super) const STATE_SETTERS_SQL: &str = concat!(
    functions_cte!(),
    "
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
SELECT DISTINCT lower(proname) FROM f WHERE ",
    leaves_state!()
);

/// Every relation a write to `$1` (in schema `$2`, or any) may change, itself included: through
/// a view or a rule (the relations its rewrite rules reference — a view's base tables, a `DO
/// ALSO` rule's targets), partitions and inheritance relatives both ways, and tables whose
/// foreign keys act on it (`ON DELETE/UPDATE CASCADE | SET NULL | SET DEFAULT`), recursively;
/// with, for each, the user triggers' functions (language and source) — what those write is
/// read from the source ([`crate::sql::body_writes`]).
pub(super) const WRITE_CLOSURE_SQL: &str = "
WITH RECURSIVE w(oid, depth) AS (
    SELECT c.oid, 0 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relname = $1 AND ($2::text IS NULL OR n.nspname = $2)
  UNION
    SELECT nxt.oid, w.depth + 1 FROM w, LATERAL (
        SELECT d.refobjid AS oid
          FROM pg_rewrite r
          JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                          AND d.refclassid = 'pg_class'::regclass
         WHERE r.ev_class = w.oid AND d.refobjid <> w.oid
        UNION ALL SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = w.oid
        UNION ALL SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = w.oid
        UNION ALL SELECT con.conrelid FROM pg_constraint con
         WHERE con.contype = 'f' AND con.confrelid = w.oid
           AND (con.confdeltype IN ('c', 'n', 'd') OR con.confupdtype IN ('c', 'n', 'd'))
    ) nxt
     WHERE w.depth < 64
)
SELECT c.relname::text,
       coalesce((SELECT array_agg(l.lanname::text || ':' || p.prosrc)
                   FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                   JOIN pg_language l ON l.oid = p.prolang
                  WHERE t.tgrelid = c.oid AND NOT t.tgisinternal), '{}'),
       bool_or(w.depth > 0 AND w.oid IN (SELECT oid FROM w WHERE depth = 0) OR w.depth >= 63)
  FROM w JOIN pg_class c ON c.oid = w.oid
 GROUP BY c.oid, c.relname";

/// Whether a table may be tracked by rows (a plain table nothing rewrites on a write's behalf:
/// no user trigger — pgcached's own NOTIFY trigger aside —, rule, inheritance or self-referencing
/// foreign-key action), its pinnable
/// columns as `name:kind` (integer, deterministic text, uuid; not generated) and its primary
/// key's columns. One row per relation of that name: more than one is not tracked by rows.
pub(super) const ROW_COLUMNS_SQL: &str = "
SELECT c.relkind = 'r'
       AND NOT c.relhasrules AND NOT c.relispartition AND NOT c.relhassubclass
       AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
       AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                         JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
                        WHERE t.tgrelid = c.oid AND NOT t.tgisinternal
                          AND NOT (pn.nspname = 'pgcached' AND p.proname = 'notify_invalidate'))
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                        WHERE k.contype = 'f' AND k.conrelid = c.oid AND k.confrelid = c.oid
                          AND (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd'))),
       coalesce((SELECT array_agg(a.attname::text || ':' || CASE WHEN a.atttypid IN (20, 21, 23) THEN 'int'
                                                              WHEN a.atttypid = 2950 THEN 'uuid'
                                                              ELSE 'text' END)
                   FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                    AND (a.atttypid IN (20, 21, 23, 2950)
                         OR a.atttypid IN (25, 1043) AND coalesce(co.collisdeterministic, true))), '{}'),
       coalesce((SELECT array_agg(a.attname::text)
                   FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                  WHERE i.indrelid = c.oid AND i.indisprimary), '{}')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname = $1 AND ($2::text IS NULL OR n.nspname = $2)";

/// The first schema of `$2` (in order) holding a relation named `$1`: where Postgres resolves
/// an unqualified name under that search path.
pub(super) const RESOLVE_SQL: &str = "
SELECT n.nspname
  FROM unnest($2::text[]) WITH ORDINALITY AS s(name, pos)
  JOIN pg_namespace n ON n.nspname = s.name
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = $1
 ORDER BY s.pos
 LIMIT 1";

pub(super) const VOLATILITY_SQL: &str = "
SELECT max(p.provolatile::text)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proname = $1 AND ($2::text IS NULL OR n.nspname = $2)";

/// The most volatile function named `$1` outside `pg_catalog` and `information_schema` (`i` <
/// `s` < `v`), NULL when there is none: a user function that may shadow a built-in of that name
/// (a bare call resolves by search path and argument types).
pub(super) const USER_VOLATILITY_SQL: &str = "
SELECT max(p.provolatile::text)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proname = $1 AND n.nspname NOT IN ('pg_catalog', 'information_schema')";

/// The `default_transaction_isolation` a new session of role `$1` in this database starts
/// with: the most specific `ALTER ROLE … IN DATABASE` / `ALTER ROLE` / `ALTER DATABASE` /
/// `ALTER ROLE ALL` setting, as Postgres applies them at login, else the server's own value —
/// known only if this connection's value comes from the server (not from a setting of the
/// control-plane role or database): NULL then, and the caller treats it as unknown.
pub(super) const DEFAULT_ISOLATION_SQL: &str = "
WITH s AS (
  SELECT s.setdatabase, s.setrole, substr(c, length('default_transaction_isolation=') + 1) AS v
    FROM pg_db_role_setting s, unnest(s.setconfig) AS c
   WHERE c LIKE 'default\\_transaction\\_isolation=%'
     AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
     AND s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = $1)))
SELECT coalesce(
  (SELECT v FROM s ORDER BY (s.setdatabase <> 0 AND s.setrole <> 0) DESC, s.setrole <> 0 DESC,
                            s.setdatabase <> 0 DESC
    LIMIT 1),
  (SELECT setting FROM pg_settings
    WHERE name = 'default_transaction_isolation'
      AND source IN ('default', 'configuration file', 'command line', 'environment variable', 'override')))";
