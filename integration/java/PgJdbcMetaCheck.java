// pgjdbc DatabaseMetaData and Spring-style read-only transactions through pgcached (GitHub issue
// 17, item 5). Run from PgJdbcCheck.main (same counters, same PASS/FAIL lines):
//
//   metadata():  a schema made for the test (tables with PKs, FKs, indexes, a view, a materialized
//                view, functions, a procedure, a sequence, an enum, a composite type, a domain,
//                grants) read through every DatabaseMetaData call, direct and through pgcached,
//                compared cell by cell (column labels and every row). Autocommit on and off (off:
//                pgjdbc sends BEGIN with the first call). Each pass through pgcached runs twice on a
//                connection (pgjdbc's named statements reused in later transactions) and on two
//                connections; with the optional catalog-caching pgcached (cache.catalogs: true) the
//                later runs are answered from its cache. Then DDL through pgcached and again.
//   readOnlyParity(), readOnlyCache(): Spring's @Transactional(readOnly = true) as its
//                DataSourceTransactionManager drives pgjdbc: setReadOnly(true) + setAutoCommit(false)
//                (pgjdbc's readOnlyMode=transaction sends BEGIN READ ONLY), a PreparedStatement PK
//                lookup, commit, reset. Direct vs pgcached; then (only when the proxy is not
//                Postgres itself) that such blocks are
//                answered from the cache: a change made directly in Postgres is not seen (a hit,
//                default TTL 60 s) until a write through pgcached invalidates it, while REPEATABLE
//                READ / SERIALIZABLE blocks read from Postgres (READ ONLY blocks share answers
//                among themselves, read-write ones with autocommit reads).

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

public class PgJdbcMetaCheck {
    static final String SCHEMA = "jdbc_meta";

    static final String[] SETUP = {
        "DROP SCHEMA IF EXISTS jdbc_meta CASCADE",
        "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jdbc_meta_reader')"
            + " THEN CREATE ROLE jdbc_meta_reader; END IF; END$$",
        "CREATE SCHEMA jdbc_meta",
        "COMMENT ON SCHEMA jdbc_meta IS 'pgjdbc metadata check'",
        "CREATE TYPE jdbc_meta.mood AS ENUM ('sad', 'ok', 'happy')",
        "CREATE DOMAIN jdbc_meta.posint AS int CHECK (VALUE > 0)",
        "CREATE TYPE jdbc_meta.address AS (street text, zip varchar(10), geo point)",
        "CREATE SEQUENCE jdbc_meta.order_seq START 1000 INCREMENT 5",
        "CREATE TABLE jdbc_meta.customers (id serial PRIMARY KEY, email varchar(200) NOT NULL UNIQUE,"
            + " name text COLLATE \"C\", mood jdbc_meta.mood DEFAULT 'ok', addr jdbc_meta.address,"
            + " created timestamptz DEFAULT now(), balance numeric(12, 2) NOT NULL DEFAULT 0)",
        "COMMENT ON TABLE jdbc_meta.customers IS 'people who buy'",
        "COMMENT ON COLUMN jdbc_meta.customers.email IS 'login, unique'",
        "CREATE TABLE jdbc_meta.orders (id bigint PRIMARY KEY DEFAULT nextval('jdbc_meta.order_seq'),"
            + " customer_id int NOT NULL REFERENCES jdbc_meta.customers (id) ON DELETE CASCADE,"
            + " qty jdbc_meta.posint, total numeric(12, 2), tags text[], note varchar(50), placed date,"
            + " raw bytea, ratio float8, flags bit(4), span interval)",
        "CREATE INDEX orders_customer_idx ON jdbc_meta.orders (customer_id)",
        "CREATE INDEX orders_note_idx ON jdbc_meta.orders (lower(note)) WHERE qty > 1",
        "CREATE INDEX orders_placed_idx ON jdbc_meta.orders USING brin (placed)",
        "CREATE TABLE jdbc_meta.order_lines (order_id bigint, line int, product text NOT NULL,"
            + " price numeric, PRIMARY KEY (order_id, line),"
            + " CONSTRAINT lines_order_fk FOREIGN KEY (order_id) REFERENCES jdbc_meta.orders (id)"
            + " ON UPDATE CASCADE ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED)",
        "CREATE UNIQUE INDEX order_lines_product_idx ON jdbc_meta.order_lines (order_id, product DESC NULLS LAST)",
        "CREATE TABLE jdbc_meta.ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            + " doubled int GENERATED ALWAYS AS (id * 2) STORED, parent int REFERENCES jdbc_meta.ident (id))",
        "CREATE TABLE jdbc_meta.no_pk (a int, b text UNIQUE)",
        "CREATE VIEW jdbc_meta.big_orders AS SELECT o.id, c.email, o.total FROM jdbc_meta.orders o"
            + " JOIN jdbc_meta.customers c ON c.id = o.customer_id WHERE o.total > 100",
        "COMMENT ON VIEW jdbc_meta.big_orders IS 'orders over 100'",
        "CREATE MATERIALIZED VIEW jdbc_meta.order_counts AS SELECT customer_id, count(*) AS n"
            + " FROM jdbc_meta.orders GROUP BY 1",
        "CREATE FUNCTION jdbc_meta.order_total(p_order bigint, OUT total numeric, OUT lines int)"
            + " LANGUAGE sql STABLE AS $$SELECT sum(price), count(*)::int FROM jdbc_meta.order_lines"
            + " WHERE order_id = p_order$$",
        "CREATE FUNCTION jdbc_meta.customer_orders(p_customer int) RETURNS TABLE (id bigint, total numeric)"
            + " LANGUAGE sql AS $$SELECT id, total FROM jdbc_meta.orders WHERE customer_id = p_customer$$",
        "CREATE FUNCTION jdbc_meta.add(a int, b int DEFAULT 1) RETURNS int IMMUTABLE LANGUAGE sql"
            + " AS 'SELECT a + b'",
        "COMMENT ON FUNCTION jdbc_meta.add(int, int) IS 'adds'",
        "CREATE FUNCTION jdbc_meta.moods(VARIADIC m jdbc_meta.mood[]) RETURNS SETOF jdbc_meta.mood"
            + " LANGUAGE sql AS 'SELECT unnest(m)'",
        "CREATE PROCEDURE jdbc_meta.bump(p_id bigint, INOUT p_qty int) LANGUAGE plpgsql AS"
            + " $$BEGIN UPDATE jdbc_meta.orders SET qty = qty + 1 WHERE id = p_id RETURNING qty INTO p_qty; END$$",
        "GRANT SELECT ON jdbc_meta.customers TO PUBLIC",
        "GRANT SELECT, INSERT ON jdbc_meta.orders TO jdbc_meta_reader WITH GRANT OPTION",
        "GRANT UPDATE (note, qty) ON jdbc_meta.orders TO jdbc_meta_reader",
        "INSERT INTO jdbc_meta.customers (email, name, mood) VALUES ('a@x', 'Ann', 'happy'), ('b@x', 'Bob', 'sad')",
        "INSERT INTO jdbc_meta.orders (customer_id, qty, total, note) VALUES (1, 2, 150, 'big'), (2, 1, 5, 'small')",
    };

    // DDL run through one pgcached after the first passes (n: 1, 2, ... one set per pgcached, as
    // each is compared only after DDL through itself: a write through another instance is one it
    // cannot see, bounded by the TTL only). Its next metadata answers must show it.
    static String[] ddl(int n) {
        String[] privileges = {"DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"};
        return new String[] {
            "ALTER TABLE jdbc_meta.orders ADD COLUMN shipped" + n + " boolean NOT NULL DEFAULT false",
            "COMMENT ON COLUMN jdbc_meta.orders.shipped" + n + " IS 'sent out " + n + "'",
            "COMMENT ON TABLE jdbc_meta.customers IS 'people who buy, " + n + "'",
            "CREATE INDEX orders_shipped" + n + "_idx ON jdbc_meta.orders (shipped" + n + ", placed DESC)",
            "ALTER TABLE jdbc_meta.order_lines ADD COLUMN ref" + n + " int REFERENCES jdbc_meta.customers (id)",
            "ALTER TABLE jdbc_meta.order_lines DROP CONSTRAINT IF EXISTS lines_order_fk",
            "ALTER TYPE jdbc_meta.mood ADD VALUE 'ecstatic" + n + "'",
            "CREATE SEQUENCE jdbc_meta.line_seq" + n,
            "CREATE FUNCTION jdbc_meta.f" + n + "(x int, VARIADIC ys int[]) RETURNS int LANGUAGE sql AS 'SELECT x'",
            "DROP FUNCTION IF EXISTS jdbc_meta.add(int, int)",
            "GRANT " + privileges[(n - 1) % privileges.length] + " ON jdbc_meta.customers TO jdbc_meta_reader",
        };
    }

    /** One metadata answer: its column labels and rows, every cell as a string. */
    static final class Table {
        final String name;
        final List<String> labels = new ArrayList<>();
        final List<List<String>> rows = new ArrayList<>();

        Table(String name) {
            this.name = name;
        }
    }

    interface Meta {
        ResultSet call(DatabaseMetaData md) throws SQLException;
    }

    interface Scalar {
        Object get(Connection c) throws SQLException;
    }

    static String cell(Object o) throws SQLException {
        if (o instanceof byte[]) return Arrays.toString((byte[]) o);
        if (o instanceof java.sql.Array) return Arrays.deepToString((Object[]) ((java.sql.Array) o).getArray());
        if (o instanceof int[]) return Arrays.toString((int[]) o);
        if (o instanceof Object[]) return Arrays.deepToString((Object[]) o);
        return o == null ? "NULL" : o.getClass().getSimpleName() + ":" + o;
    }

    static Table table(String name, ResultSet rs) throws SQLException {
        Table t = new Table(name);
        try (rs) {
            ResultSetMetaData md = rs.getMetaData();
            for (int i = 1; i <= md.getColumnCount(); i++) {
                t.labels.add(md.getColumnLabel(i) + ":" + md.getColumnTypeName(i));
            }
            while (rs.next()) {
                List<String> row = new ArrayList<>();
                for (int i = 1; i <= md.getColumnCount(); i++) row.add(cell(rs.getObject(i)));
                t.rows.add(row);
            }
        }
        return t;
    }

    static Table error(String name, SQLException e) {
        Table t = new Table(name);
        t.labels.add("error");
        t.rows.add(List.of(e.getClass().getSimpleName() + " " + e.getSQLState() + ": " + e.getMessage()));
        return t;
    }

    static void meta(List<Table> out, Connection c, String name, Meta m) {
        try {
            out.add(table(name, m.call(c.getMetaData())));
        } catch (SQLException e) {
            out.add(error(name, e));
        }
    }

    static void scalar(List<Table> out, Connection c, String name, Scalar s) {
        try {
            Table t = new Table(name);
            t.labels.add("value");
            t.rows.add(List.of(cell(s.get(c))));
            out.add(t);
        } catch (SQLException e) {
            out.add(error(name, e));
        }
    }

    // What pgjdbc's ResultSetMetaData says of a query's columns (it reads pg_attribute and
    // pg_class by the table OIDs of the RowDescription).
    static Table describe(Connection c, String name, String sql) {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            Table t = new Table(name);
            t.labels.addAll(List.of("label", "name", "base", "table", "schema", "type", "typeName", "class",
                "precision", "scale", "nullable", "autoIncrement", "signed", "caseSensitive", "displaySize"));
            ResultSetMetaData md = rs.getMetaData();
            org.postgresql.PGResultSetMetaData pg = md.unwrap(org.postgresql.PGResultSetMetaData.class);
            for (int i = 1; i <= md.getColumnCount(); i++) {
                t.rows.add(List.of(md.getColumnLabel(i), md.getColumnName(i), pg.getBaseColumnName(i),
                    md.getTableName(i) + "/" + pg.getBaseTableName(i), pg.getBaseSchemaName(i),
                    String.valueOf(md.getColumnType(i)), md.getColumnTypeName(i), md.getColumnClassName(i),
                    String.valueOf(md.getPrecision(i)), String.valueOf(md.getScale(i)),
                    String.valueOf(md.isNullable(i)), String.valueOf(md.isAutoIncrement(i)),
                    String.valueOf(md.isSigned(i)), String.valueOf(md.isCaseSensitive(i)),
                    String.valueOf(md.getColumnDisplaySize(i))));
            }
            return t;
        } catch (SQLException e) {
            return error(name, e);
        }
    }

    /** Every DatabaseMetaData call worth asking, on the test schema (and a few global ones). */
    static List<Table> suite(Connection c) {
        String s = SCHEMA;
        List<Table> out = new ArrayList<>();
        meta(out, c, "getTables(jdbc_meta, all types)", md -> md.getTables(null, s, "%", null));
        meta(out, c, "getTables(all schemas, TABLE+VIEW)", md -> md.getTables(null, null, "%", new String[] {"TABLE", "VIEW"}));
        meta(out, c, "getTables(SEQUENCE)", md -> md.getTables(null, null, "%", new String[] {"SEQUENCE"}));
        meta(out, c, "getTables(MATERIALIZED VIEW, TYPE)", md -> md.getTables(null, s, "%", new String[] {"MATERIALIZED VIEW", "TYPE"}));
        meta(out, c, "getTables(SYSTEM TABLE pg_c%)", md -> md.getTables(null, "pg_catalog", "pg_c%", new String[] {"SYSTEM TABLE"}));
        meta(out, c, "getColumns(jdbc_meta.%)", md -> md.getColumns(null, s, "%", "%"));
        meta(out, c, "getColumns(pg_catalog.pg_class)", md -> md.getColumns(null, "pg_catalog", "pg_class", "rel%"));
        meta(out, c, "getPrimaryKeys(orders)", md -> md.getPrimaryKeys(null, s, "orders"));
        meta(out, c, "getPrimaryKeys(order_lines)", md -> md.getPrimaryKeys(null, s, "order_lines"));
        meta(out, c, "getPrimaryKeys(no_pk)", md -> md.getPrimaryKeys(null, s, "no_pk"));
        meta(out, c, "getImportedKeys(order_lines)", md -> md.getImportedKeys(null, s, "order_lines"));
        meta(out, c, "getImportedKeys(ident)", md -> md.getImportedKeys(null, s, "ident"));
        meta(out, c, "getExportedKeys(customers)", md -> md.getExportedKeys(null, s, "customers"));
        meta(out, c, "getExportedKeys(orders)", md -> md.getExportedKeys(null, s, "orders"));
        meta(out, c, "getCrossReference(orders, order_lines)", md -> md.getCrossReference(null, s, "orders", null, s, "order_lines"));
        meta(out, c, "getIndexInfo(orders)", md -> md.getIndexInfo(null, s, "orders", false, false));
        meta(out, c, "getIndexInfo(order_lines, unique)", md -> md.getIndexInfo(null, s, "order_lines", true, true));
        meta(out, c, "getIndexInfo(no_pk)", md -> md.getIndexInfo(null, s, "no_pk", false, true));
        meta(out, c, "getSchemas()", DatabaseMetaData::getSchemas);
        meta(out, c, "getSchemas(null, jdbc%)", md -> md.getSchemas(null, "jdbc%"));
        meta(out, c, "getCatalogs()", DatabaseMetaData::getCatalogs);
        meta(out, c, "getTableTypes()", DatabaseMetaData::getTableTypes);
        meta(out, c, "getTypeInfo()", DatabaseMetaData::getTypeInfo);
        meta(out, c, "getProcedures(jdbc_meta)", md -> md.getProcedures(null, s, "%"));
        meta(out, c, "getProcedureColumns(jdbc_meta)", md -> md.getProcedureColumns(null, s, "%", "%"));
        meta(out, c, "getFunctions(jdbc_meta)", md -> md.getFunctions(null, s, "%"));
        meta(out, c, "getFunctions(pg_catalog.lower)", md -> md.getFunctions(null, "pg_catalog", "lower"));
        meta(out, c, "getFunctionColumns(jdbc_meta)", md -> md.getFunctionColumns(null, s, "%", "%"));
        meta(out, c, "getUDTs(jdbc_meta)", md -> md.getUDTs(null, s, "%", null));
        meta(out, c, "getUDTs(STRUCT, DISTINCT)", md -> md.getUDTs(null, s, "%", new int[] {Types.STRUCT, Types.DISTINCT}));
        meta(out, c, "getAttributes(jdbc_meta)", md -> md.getAttributes(null, s, "%", "%"));
        meta(out, c, "getSuperTypes", md -> md.getSuperTypes(null, s, "%"));
        meta(out, c, "getSuperTables", md -> md.getSuperTables(null, s, "%"));
        meta(out, c, "getTablePrivileges(jdbc_meta)", md -> md.getTablePrivileges(null, s, "%"));
        meta(out, c, "getColumnPrivileges(orders)", md -> md.getColumnPrivileges(null, s, "orders", "%"));
        meta(out, c, "getVersionColumns(orders)", md -> md.getVersionColumns(null, s, "orders"));
        meta(out, c, "getBestRowIdentifier(orders)", md -> md.getBestRowIdentifier(null, s, "orders", DatabaseMetaData.bestRowSession, true));
        meta(out, c, "getBestRowIdentifier(no_pk)", md -> md.getBestRowIdentifier(null, s, "no_pk", DatabaseMetaData.bestRowTemporary, false));
        meta(out, c, "getPseudoColumns", md -> md.getPseudoColumns(null, s, "%", "%"));
        meta(out, c, "getClientInfoProperties", DatabaseMetaData::getClientInfoProperties);
        scalar(out, c, "getDatabaseProductVersion", x -> x.getMetaData().getDatabaseProductVersion());
        scalar(out, c, "getUserName", x -> x.getMetaData().getUserName());
        scalar(out, c, "getSQLKeywords", x -> x.getMetaData().getSQLKeywords());
        scalar(out, c, "getMaxNameLength", x -> x.getMetaData().getMaxColumnNameLength());
        scalar(out, c, "getNumericFunctions", x -> x.getMetaData().getNumericFunctions());
        scalar(out, c, "getSchema", Connection::getSchema);
        scalar(out, c, "getCatalog", Connection::getCatalog);
        scalar(out, c, "getTransactionIsolation", Connection::getTransactionIsolation);
        scalar(out, c, "isReadOnly", Connection::isReadOnly);
        out.add(describe(c, "ResultSetMetaData(orders join customers)",
            "SELECT o.*, c.email, c.mood, c.addr, o.total * 2 AS twice FROM jdbc_meta.orders o"
                + " JOIN jdbc_meta.customers c ON c.id = o.customer_id WHERE false"));
        out.add(describe(c, "ResultSetMetaData(ident, view)",
            "SELECT i.*, b.* FROM jdbc_meta.ident i, jdbc_meta.big_orders b WHERE false"));
        return out;
    }

    /** Differences between two suites, cell by cell; empty when equal. */
    static List<String> diff(List<Table> want, List<Table> got) {
        List<String> d = new ArrayList<>();
        if (want.size() != got.size()) d.add(want.size() + " calls direct, " + got.size() + " through pgcached");
        for (int t = 0; t < Math.min(want.size(), got.size()) && d.size() < 12; t++) {
            Table w = want.get(t), g = got.get(t);
            if (!w.labels.equals(g.labels)) {
                d.add(w.name + ": columns differ\n        direct:   " + w.labels + "\n        pgcached: " + g.labels);
                continue;
            }
            if (w.rows.size() != g.rows.size()) {
                d.add(w.name + ": " + w.rows.size() + " rows direct, " + g.rows.size() + " through pgcached");
            }
            for (int r = 0; r < Math.min(w.rows.size(), g.rows.size()) && d.size() < 12; r++) {
                List<String> wr = w.rows.get(r), gr = g.rows.get(r);
                for (int i = 0; i < wr.size(); i++) {
                    if (!wr.get(i).equals(gr.get(i))) {
                        d.add(w.name + " row " + r + " column " + w.labels.get(i) + "\n        direct:   "
                            + wr.get(i) + "\n        pgcached: " + gr.get(i) + "\n        row direct: " + wr);
                    }
                }
            }
        }
        return d;
    }

    static int cells(List<Table> ts) {
        int n = 0;
        for (Table t : ts) n += t.rows.size() * t.labels.size();
        return n;
    }

    /** One pass: a connection, the suite twice (a commit after each when autocommit is off). */
    static List<List<Table>> pass(String url, boolean autoCommit) throws SQLException {
        List<List<Table>> runs = new ArrayList<>();
        try (Connection c = DriverManager.getConnection(url)) {
            c.setAutoCommit(autoCommit);
            for (int i = 0; i < 2; i++) {
                runs.add(suite(c));
                if (!autoCommit) c.commit();
            }
        }
        return runs;
    }

    static void report(String name, List<String> diffs, String detail) {
        if (diffs.isEmpty()) {
            PgJdbcCheck.passed++;
            System.out.println("PASS  " + name + " (" + detail + ")");
        } else {
            PgJdbcCheck.failed++;
            System.out.println("FAIL  " + name);
            for (String d : diffs) System.out.println("      " + d);
        }
    }

    static void execAll(String url, String[] sql) throws SQLException {
        try (Connection c = DriverManager.getConnection(url); Statement st = c.createStatement()) {
            for (String q : sql) st.execute(q);
        }
    }

    // Direct once (the reference; its second run on the connection must agree with the first),
    // then each pgcached target: two connections, two runs each.
    static void compareMetadata(String stage, String direct, List<String[]> targets) throws SQLException {
        for (boolean autoCommit : new boolean[] {true, false}) {
            List<List<Table>> ref = pass(direct, autoCommit);
            List<Table> want = ref.get(0);
            String mode = autoCommit ? "autocommit" : "autocommit off";
            List<String> self = diff(want, ref.get(1));
            if (!self.isEmpty()) {
                report("pgjdbc metadata " + stage + " " + mode + ": direct is not stable run to run", self, "");
                continue;
            }
            for (String[] t : targets) {
                List<String> diffs = new ArrayList<>();
                for (int p = 1; p <= 2; p++) {
                    List<List<Table>> runs = pass(t[1], autoCommit);
                    for (int r = 0; r < runs.size(); r++) {
                        for (String d : diff(want, runs.get(r))) diffs.add("[connection " + p + ", run " + (r + 1) + "] " + d);
                    }
                }
                report("pgjdbc metadata" + (stage.isEmpty() ? "" : " " + stage) + ", " + mode + ", via " + t[0] + " (2 connections x 2 runs)",
                    diffs, want.size() + " calls, " + cells(want) + " cells each");
            }
        }
    }

    static void metadata(String direct, String proxy, String catalogProxy) {
        try {
            execAll(direct, SETUP);
            List<String[]> targets = new ArrayList<>();
            targets.add(new String[] {"pgcached", proxy});
            if (catalogProxy != null) targets.add(new String[] {"pgcached cache.catalogs=true", catalogProxy});
            compareMetadata("", direct, targets);
            // DDL through each pgcached, then its metadata again: its cached answers (the
            // catalog-caching one's metadata, any one's cached reads of the altered tables, with
            // their row descriptions) must be gone.
            for (int i = 0; i < targets.size(); i++) {
                execAll(targets.get(i)[1], ddl(i + 1));
                compareMetadata("after DDL through it", direct, targets.subList(i, i + 1));
            }
        } catch (Exception e) {
            PgJdbcCheck.failed++;
            System.out.println("FAIL  pgjdbc metadata: " + e);
            e.printStackTrace(System.out);
        }
    }

    // ------------------------------------------------------------ Spring-style read-only transactions

    interface Tx<T> {
        T run(Connection c) throws SQLException;
    }

    /** Spring's ISOLATION_DEFAULT: the connection's level is left alone. */
    static final int DEFAULT = -1;

    /**
     * What Spring's DataSourceTransactionManager (DataSourceUtils.prepareConnectionForTransaction,
     * resetConnectionAfterTransaction) does for @Transactional(readOnly = ro, isolation = iso) on
     * a pooled connection: read-only and (unless DEFAULT) the isolation level set, autocommit off,
     * the work, commit (rollback on error), then autocommit, read-only and level restored.
     */
    static <T> T springTx(Connection c, boolean ro, int iso, Tx<T> work) throws SQLException {
        if (ro) c.setReadOnly(true);
        int prevIso = iso == DEFAULT ? DEFAULT : c.getTransactionIsolation();
        if (iso != DEFAULT && iso != prevIso) c.setTransactionIsolation(iso);
        c.setAutoCommit(false);
        try {
            T v = work.run(c);
            c.commit();
            return v;
        } catch (SQLException e) {
            c.rollback();
            throw e;
        } finally {
            c.setAutoCommit(true);
            if (iso != DEFAULT && iso != prevIso) c.setTransactionIsolation(prevIso);
            if (ro) c.setReadOnly(false);
        }
    }

    static String lookup(PreparedStatement ps, int id) throws SQLException {
        ps.setInt(1, id);
        try (ResultSet rs = ps.executeQuery()) {
            return rs.next() ? rs.getInt(1) + "=" + rs.getString(2) : "no row";
        }
    }

    static String one(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getString(1);
        }
    }

    static String tryTx(Connection c, boolean ro, int iso, Tx<String> work) {
        try {
            return springTx(c, ro, iso, work);
        } catch (SQLException e) {
            return PgJdbcCheck.err(e);
        }
    }

    /** The same sequence direct and through pgcached: every answer must agree. */
    static List<String> readOnlyParity(String url) throws Exception {
        final int rc = DEFAULT, rr = Connection.TRANSACTION_REPEATABLE_READ;
        List<String> out = new ArrayList<>();
        try (Connection c = DriverManager.getConnection(url)) {
            try (Statement s = c.createStatement()) {
                s.execute("DROP TABLE IF EXISTS jdbc_ro");
                s.execute("CREATE TABLE jdbc_ro (id int PRIMARY KEY, v text, n int)");
                s.execute("INSERT INTO jdbc_ro SELECT g, 'v' || g, g * 10 FROM generate_series(1, 5) g");
            }
            PreparedStatement sel = c.prepareStatement("SELECT id, v FROM jdbc_ro WHERE id = ?");
            PreparedStatement upd = c.prepareStatement("UPDATE jdbc_ro SET v = v || '!' WHERE id = ?");
            String state = "SELECT current_setting('transaction_read_only') || ' ' || current_setting('transaction_isolation')";
            for (int r = 0; r < 6; r++) {
                final int id = r % 3 + 1;
                out.add("ro " + tryTx(c, true, rc, x -> lookup(sel, 1) + " " + lookup(sel, id)));
                out.add("ro state " + tryTx(c, true, rc, x -> lookup(sel, id) + " " + one(x, state)));
            }
            // A write in a read-only block: refused by Postgres (25006), also after hits.
            upd.setInt(1, 1);
            out.add("ro write " + tryTx(c, true, rc, x -> "updated " + upd.executeUpdate()));
            out.add("ro hit then write " + tryTx(c, true, rc, x -> {
                String v = lookup(sel, 1);
                upd.setInt(1, 1);
                return v + " updated " + upd.executeUpdate();
            }));
            out.add("ro after refused write " + tryTx(c, true, rc, x -> lookup(sel, 1)));
            // A read-write block writes; the next read-only block sees it.
            for (int r = 0; r < 3; r++) {
                out.add("rw " + tryTx(c, false, rc, x -> {
                    upd.setInt(1, 2);
                    return "updated " + upd.executeUpdate() + " " + lookup(sel, 2);
                }));
                out.add("ro " + tryTx(c, true, rc, x -> lookup(sel, 2) + " " + one(x, state)));
            }
            // REPEATABLE READ (pgjdbc: SET SESSION CHARACTERISTICS ...), read-only and not.
            out.add("rr ro " + tryTx(c, true, rr, x -> lookup(sel, 3) + " " + one(x, state)));
            out.add("rr rw " + tryTx(c, false, rr, x -> lookup(sel, 3) + " " + one(x, state)));
            out.add("serializable ro " + tryTx(c, true, Connection.TRANSACTION_SERIALIZABLE, x -> lookup(sel, 3) + " " + one(x, state)));
            out.add("back to rc " + tryTx(c, true, rc, x -> lookup(sel, 3) + " " + one(x, state)));
            // A read-only block rolled back, and an error (division by zero) inside one.
            c.setReadOnly(true);
            c.setAutoCommit(false);
            out.add("ro rollback " + lookup(sel, 4));
            c.rollback();
            try {
                out.add(one(c, "SELECT 1 / 0"));
            } catch (SQLException e) {
                out.add("ro error " + PgJdbcCheck.err(e));
            }
            try {
                out.add(lookup(sel, 4));
            } catch (SQLException e) {
                out.add("ro after error " + PgJdbcCheck.err(e));
            }
            try {
                c.commit(); // COMMIT of a failed block: Postgres answers ROLLBACK
                out.add("commit of failed block: no error");
            } catch (SQLException e) {
                out.add("commit of failed block " + PgJdbcCheck.err(e));
            }
            out.add("ro after commit of failed block " + lookup(sel, 4));
            c.commit();
            // readOnlyMode=transaction: autocommit statements of a read-only connection may write.
            c.setAutoCommit(true);
            upd.setInt(1, 5);
            out.add("ro autocommit write: updated " + upd.executeUpdate() + " " + lookup(sel, 5));
            c.setReadOnly(false);
            try (Statement s = c.createStatement()) {
                s.execute("DROP TABLE jdbc_ro");
            }
        }
        return out;
    }

    static int cacheChecks = 0;
    static final List<String> cacheFailures = new ArrayList<>();

    static void expect(String what, String got, String... allowed) {
        cacheChecks++;
        if (!Arrays.asList(allowed).contains(got)) {
            cacheFailures.add(what + ": got '" + got + "', want " + (allowed.length == 1 ? "'" + allowed[0] + "'" : Arrays.toString(allowed)));
        }
    }

    /** Read-only READ COMMITTED blocks are answered from the cache; REPEATABLE READ ones are not. */
    static void readOnlyCache(String direct, String proxy) {
        final int rc = DEFAULT;
        String name = "pgjdbc Spring-style read-only transactions answered from the cache,"
            + " REPEATABLE READ/SERIALIZABLE not, a write through pgcached invalidates";
        try (Connection d = DriverManager.getConnection(direct); Connection p = DriverManager.getConnection(proxy);
             Connection w = DriverManager.getConnection(proxy); Statement ds = d.createStatement();
             Statement ws = w.createStatement()) {
            // Through pgcached: its DDL drops whatever it has cached of an older jdbc_ro_cache.
            ws.execute("DROP TABLE IF EXISTS jdbc_ro_cache");
            ws.execute("CREATE TABLE jdbc_ro_cache (id int PRIMARY KEY, v text)");
            ws.execute("INSERT INTO jdbc_ro_cache VALUES (1, 'v1'), (2, 'w1')");
            PreparedStatement sel = p.prepareStatement("SELECT id, v FROM jdbc_ro_cache WHERE id = ?");
            for (int i = 0; i < 3; i++) {
                expect("read-only block #" + i, springTx(p, true, rc, x -> lookup(sel, 1)), "1=v1");
            }
            // READ ONLY blocks' answers are keyed apart (their transaction_read_only is on): a
            // read-write READ COMMITTED block shares autocommit reads' answers instead.
            expect("read-write READ COMMITTED block", springTx(p, false, rc, x -> lookup(sel, 1)), "1=v1");
            expect("autocommit read", lookup(sel, 1), "1=v1");
            // Behind pgcached's back: Postgres has v2, pgcached still answers v1 (a hit).
            ds.execute("UPDATE jdbc_ro_cache SET v = 'v2' WHERE id = 1");
            for (int i = 0; i < 3; i++) {
                expect("read-only block after a direct change #" + i + " (a hit)", springTx(p, true, rc, x -> lookup(sel, 1)), "1=v1");
            }
            expect("read-write READ COMMITTED block after a direct change (a hit)", springTx(p, false, rc, x -> lookup(sel, 1)), "1=v1");
            expect("autocommit read after a direct change (a hit)", lookup(sel, 1), "1=v1");
            // REPEATABLE READ and SERIALIZABLE blocks read from Postgres (pgjdbc sets the level
            // with SET SESSION CHARACTERISTICS, followed as default_transaction_isolation).
            try (Connection q = DriverManager.getConnection(proxy);
                 PreparedStatement qsel = q.prepareStatement("SELECT id, v FROM jdbc_ro_cache WHERE id = ?")) {
                expect("another connection's read-only block (a hit)", springTx(q, true, rc, x -> lookup(qsel, 1)), "1=v1");
                expect("REPEATABLE READ read-only block", springTx(q, true, Connection.TRANSACTION_REPEATABLE_READ, x -> lookup(qsel, 1)), "1=v2");
                expect("REPEATABLE READ read-write block", springTx(q, false, Connection.TRANSACTION_REPEATABLE_READ, x -> lookup(qsel, 1)), "1=v2");
                expect("SERIALIZABLE read-only block", springTx(q, true, Connection.TRANSACTION_SERIALIZABLE, x -> lookup(qsel, 1)), "1=v2");
            }
            expect("read-only block after the REPEATABLE READ ones elsewhere (a hit)", springTx(p, true, rc, x -> lookup(sel, 1)), "1=v1");
            // A write through pgcached (another client, a read-write block) invalidates at commit.
            try (PreparedStatement upd = w.prepareStatement("UPDATE jdbc_ro_cache SET v = ? WHERE id = ?")) {
                expect("write through pgcached", springTx(w, false, rc, x -> {
                    upd.setString(1, "v3");
                    upd.setInt(2, 1);
                    return "updated " + upd.executeUpdate();
                }), "updated 1");
            }
            expect("read-only block after the write through pgcached", springTx(p, true, rc, x -> lookup(sel, 1)), "1=v3");
            // ... and that answer is cached again.
            ds.execute("UPDATE jdbc_ro_cache SET v = 'v4' WHERE id = 1");
            expect("read-only block after another direct change (a hit)", springTx(p, true, rc, x -> lookup(sel, 1)), "1=v3");
            // The same on the writer's own connection: its own write is visible right after commit.
            try (PreparedStatement wsel = w.prepareStatement("SELECT id, v FROM jdbc_ro_cache WHERE id = ?");
                 PreparedStatement upd = w.prepareStatement("UPDATE jdbc_ro_cache SET v = v || '+' WHERE id = ?")) {
                // (Not compared: this statement's first run on w, a Parse in the batch, is keyed
                // apart from p's named executions of the same text, so it may miss.)
                springTx(w, true, rc, x -> lookup(wsel, 1));
                springTx(w, false, rc, x -> {
                    upd.setInt(1, 1);
                    return upd.executeUpdate();
                });
                expect("writer's read-only block after its write", springTx(w, true, rc, x -> lookup(wsel, 1)), "1=v4+");
            }
            ws.execute("DROP TABLE jdbc_ro_cache");
            report(name, cacheFailures, cacheChecks + " expectations");
        } catch (Exception e) {
            PgJdbcCheck.failed++;
            System.out.println("FAIL  " + name + ": " + e);
            e.printStackTrace(System.out);
        }
    }

    static void run(String direct, String proxy, String catalogProxy) {
        metadata(direct, proxy, catalogProxy);
        PgJdbcCheck.check("pgjdbc Spring-style read-only transactions (BEGIN READ ONLY), direct vs pgcached",
            PgJdbcMetaCheck::readOnlyParity, direct, proxy);
        if (direct.equals(proxy)) {
            System.out.println("SKIP  pgjdbc read-only transactions from the cache (the proxy is Postgres itself)");
        } else {
            readOnlyCache(direct, proxy);
        }
    }
}
