// pgjdbc through pgcached's transaction pool, compared with the same run direct.
//
//   java -cp build:/usr/share/java/postgresql.jar PgJdbcCheck DIRECT_JDBC_URL PGCACHED_JDBC_URL \
//       [PGCACHED_CATALOGS_JDBC_URL]
//
// prepareThreshold=1 (in the URLs): every PreparedStatement becomes a named server statement
// (S_1, S_2, ...) on its first execution, and pgjdbc reuses it in later transactions, which under
// transaction pooling run on server connections that never saw the Parse. Prints one line per
// check and a final "N passed, M failed"; exit status 1 on any failure.

import java.math.BigDecimal;
import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

public class PgJdbcCheck {
    static final int THREADS = 20;
    static final int ROUNDS = 10;

    interface Check {
        List<String> run(String url) throws Exception;
    }

    static String rows(ResultSet rs) throws SQLException {
        StringBuilder sb = new StringBuilder();
        ResultSetMetaData md = rs.getMetaData();
        sb.append('[');
        for (int i = 1; i <= md.getColumnCount(); i++) {
            sb.append(md.getColumnLabel(i)).append(':').append(md.getColumnTypeName(i)).append(' ');
        }
        sb.append(']');
        while (rs.next()) {
            sb.append(" (");
            for (int i = 1; i <= md.getColumnCount(); i++) {
                Object o = rs.getObject(i);
                if (o instanceof byte[]) o = Arrays.toString((byte[]) o);
                if (o instanceof java.sql.Array) o = Arrays.deepToString((Object[]) ((java.sql.Array) o).getArray());
                sb.append(o).append(i < md.getColumnCount() ? ", " : "");
            }
            sb.append(')');
        }
        rs.close();
        return sb.toString();
    }

    static String err(SQLException e) {
        return "error " + e.getSQLState() + ": " + e.getMessage();
    }

    static Connection connect(String url) throws SQLException {
        return DriverManager.getConnection(url);
    }

    static List<String> worker(String url, int id) throws Exception {
        List<String> out = new ArrayList<>();
        try (Connection c = connect(url)) {
            c.setAutoCommit(false);
            PreparedStatement sel = c.prepareStatement(
                "SELECT ?::int4 + g AS i, ?::text || g AS t, ?::numeric * g AS num, ?::timestamp AS ts,"
                    + " ?::bytea AS b, ?::bool AS yes, ?::float8 AS f, NULL::text AS n FROM generate_series(1, 3) g");
            PreparedStatement ins = c.prepareStatement("INSERT INTO jdbc_items VALUES (?, ?, ?, ?)");
            PreparedStatement upd = c.prepareStatement("UPDATE jdbc_items SET qty = qty + ? WHERE worker = ? AND n = ?");
            PreparedStatement cnt = c.prepareStatement("SELECT count(*), sum(qty) FROM jdbc_items WHERE worker = ?");
            PreparedStatement div = c.prepareStatement("SELECT 10 / ?");
            for (int r = 0; r < ROUNDS; r++) {
                sel.setInt(1, id * 100 + r);
                sel.setString(2, "w" + id + "-");
                sel.setBigDecimal(3, new BigDecimal("1.25"));
                sel.setTimestamp(4, Timestamp.valueOf("2024-02-29 12:00:00.123456"));
                sel.setBytes(5, new byte[] {(byte) id, (byte) r, 0, (byte) 255});
                sel.setBoolean(6, r % 2 == 0);
                sel.setDouble(7, r / 2.0);
                out.add(rows(sel.executeQuery()));
                // batch insert: one Parse, many Bind/Execute, one Sync
                for (int i = 0; i < 5; i++) {
                    ins.setInt(1, id);
                    ins.setInt(2, r * 10 + i);
                    ins.setString(3, "item " + id + "/" + r + "/" + i);
                    ins.setInt(4, i);
                    ins.addBatch();
                }
                out.add(Arrays.toString(ins.executeBatch()));
                upd.setInt(1, 100);
                upd.setInt(2, id);
                upd.setInt(3, r * 10);
                out.add("updated " + upd.executeUpdate());
                c.commit();
                // a batch that fails in the middle (duplicate key): the whole transaction rolls back
                for (int i = 3; i < 7; i++) {
                    ins.setInt(1, id);
                    ins.setInt(2, r * 10 + 100 + (i == 5 ? -100 : i));
                    ins.setString(3, "dup?");
                    ins.setInt(4, 0);
                    ins.addBatch();
                }
                try {
                    ins.executeBatch();
                    out.add("batch: no error?");
                } catch (BatchUpdateException e) {
                    out.add("batch " + Arrays.toString(e.getUpdateCounts()) + " " + e.getSQLState());
                }
                c.rollback();
                // a savepoint rolled back after an error, then commit
                Savepoint sp = c.setSavepoint();
                try {
                    div.setInt(1, 0);
                    div.executeQuery().close();
                } catch (SQLException e) {
                    out.add(err(e));
                    c.rollback(sp);
                }
                div.setInt(1, 5);
                out.add(rows(div.executeQuery()));
                c.commit();
                cnt.setInt(1, id);
                out.add(rows(cnt.executeQuery()));
                c.commit();
            }
            // autocommit: each execution is its own transaction
            c.setAutoCommit(true);
            for (int r = 0; r < ROUNDS; r++) {
                cnt.setInt(1, id);
                out.add(rows(cnt.executeQuery()));
                try {
                    div.setInt(1, 0);
                    div.executeQuery().close();
                } catch (SQLException e) {
                    out.add(err(e));
                }
            }
        }
        return out;
    }

    static List<String> concurrent(String url) throws Exception {
        try (Connection c = connect(url); Statement s = c.createStatement()) {
            s.execute("DROP TABLE IF EXISTS jdbc_items");
            s.execute("CREATE TABLE jdbc_items (worker int, n int, name text, qty int, PRIMARY KEY (worker, n))");
        }
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        List<Future<List<String>>> futures = new ArrayList<>();
        for (int id = 0; id < THREADS; id++) {
            final int w = id;
            futures.add(pool.submit((Callable<List<String>>) () -> worker(url, w)));
        }
        List<String> out = new ArrayList<>();
        for (Future<List<String>> f : futures) out.addAll(f.get(300, TimeUnit.SECONDS));
        pool.shutdown();
        return out;
    }

    static List<String> edgeCases(String url) throws Exception {
        List<String> out = new ArrayList<>();
        try (Connection c = connect(url); Connection d = connect(url)) {
            // Two connections prepare the same text: on the server they share one statement.
            PreparedStatement pc = c.prepareStatement("SELECT ?::int * 3");
            PreparedStatement pd = d.prepareStatement("SELECT ?::int * 3");
            for (int i = 0; i < 5; i++) {
                pc.setInt(1, i);
                out.add(rows(pc.executeQuery()));
                pd.setInt(1, i + 10);
                out.add(rows(pd.executeQuery()));
            }
            // Closing c's statement (Close 'S' on S_n) leaves d's working.
            pc.close();
            pd.setInt(1, 7);
            out.add(rows(pd.executeQuery()));
            // DEALLOCATE ALL from the client: pgjdbc notices the statement is gone and re-prepares.
            try (Statement s = d.createStatement()) {
                s.execute("DEALLOCATE ALL");
            }
            pd.setInt(1, 8);
            try {
                out.add(rows(pd.executeQuery()));
            } catch (SQLException e) {
                out.add(err(e));
            }
            pd.setInt(1, 9);
            out.add(rows(pd.executeQuery()));
        }
        return out;
    }

    // A schema change that alters a prepared statement's result type. Direct, the next execution
    // fails with "cached plan must not change result type" and pgjdbc re-describes and retries.
    // Through pgcached the next transaction may run on a server connection that never had the
    // statement: pgcached must still refuse it (it knows the result type the client prepared),
    // or pgjdbc decodes the new int8 column with its cached int4 description (wrong value).
    static List<String> schemaChange(String url) throws Exception {
        List<String> out = new ArrayList<>();
        try (Connection c = connect(url)) {
            try (Statement s = c.createStatement()) {
                s.execute("DROP TABLE IF EXISTS jdbc_schema");
                s.execute("CREATE TABLE jdbc_schema (id int, v int)");
                s.execute("INSERT INTO jdbc_schema VALUES (1, 10)");
            }
            PreparedStatement ps = c.prepareStatement("SELECT * FROM jdbc_schema WHERE id = ?");
            ps.setInt(1, 1);
            out.add(rows(ps.executeQuery()));
            out.add(rows(ps.executeQuery()));
            try (Statement s = c.createStatement()) {
                s.execute("ALTER TABLE jdbc_schema ALTER COLUMN v TYPE bigint");
            }
            try {
                out.add(rows(ps.executeQuery()));
            } catch (SQLException e) {
                out.add(err(e));
            }
            try (Statement s = c.createStatement()) {
                s.execute("DROP TABLE jdbc_schema");
            }
        }
        return out;
    }

    static int passed = 0, failed = 0, xfailed = 0;

    static void check(String name, Check check, String direct, String proxy) {
        check(name, check, direct, proxy, false);
    }

    // knownBug: a difference is printed as XFAIL and not counted as a failure.
    static void check(String name, Check check, String direct, String proxy, boolean knownBug) {
        try {
            List<String> want = check.run(direct);
            List<String> got = check.run(proxy);
            if (want.equals(got)) {
                passed++;
                System.out.println("PASS  " + name + " (" + got.size() + " results)");
            } else {
                if (knownBug) xfailed++; else failed++;
                System.out.println((knownBug ? "XFAIL " : "FAIL  ") + name);
                for (int i = 0; i < Math.max(want.size(), got.size()); i++) {
                    String w = i < want.size() ? want.get(i) : "<none>";
                    String g = i < got.size() ? got.get(i) : "<none>";
                    if (!w.equals(g)) {
                        System.out.println("      first difference at #" + i + "\n      direct:   " + w + "\n      pgcached: " + g);
                        break;
                    }
                }
            }
        } catch (Exception e) {
            failed++;
            System.out.println("FAIL  " + name + ": " + e);
            e.printStackTrace(System.out);
        }
    }

    public static void main(String[] args) throws Exception {
        String direct = args[0], proxy = args[1];
        check("pgjdbc: " + THREADS + " threads, PreparedStatement reuse, batches, savepoints", PgJdbcCheck::concurrent, direct, proxy);
        check("pgjdbc: shared statement text, Close, DEALLOCATE ALL", PgJdbcCheck::edgeCases, direct, proxy);
        check("pgjdbc: result type changed by ALTER TABLE under a prepared statement",
            PgJdbcCheck::schemaChange, direct, proxy);
        // DatabaseMetaData parity and Spring-style read-only transactions (PgJdbcMetaCheck.java);
        // args[2], when given, is a pgcached with cache.catalogs: true.
        PgJdbcMetaCheck.run(direct, proxy, args.length > 2 ? args[2] : null);
        System.out.println(passed + " passed, " + failed + " failed" + (xfailed > 0 ? " (" + xfailed + " known bugs reproduced: XFAIL)" : ""));
        System.exit(failed == 0 ? 0 : 1);
    }
}
