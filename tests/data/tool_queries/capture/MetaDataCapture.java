// Calls pgjdbc's DatabaseMetaData / ResultSetMetaData / type-cache paths against the capture
// database so that the statements pgjdbc sends show up in the server's statement log.
//   javac -d build MetaDataCapture.java
//   java -cp build:/usr/share/java/postgresql.jar MetaDataCapture 'jdbc:postgresql://127.0.0.1:PORT/corpus?user=postgres&ApplicationName=capture-pgjdbc'
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.sql.*;
import java.util.Arrays;
import java.util.Comparator;

public class MetaDataCapture {
    static int rows;

    static void drain(ResultSet rs) throws SQLException {
        if (rs == null) return;
        try (rs) {
            ResultSetMetaData md = rs.getMetaData();
            while (rs.next()) {
                rows++;
                for (int i = 1; i <= md.getColumnCount(); i++) rs.getObject(i);
            }
        }
    }

    interface Call { Object run() throws Exception; }

    static void call(String what, Call c) {
        try {
            Object r = c.run();
            if (r instanceof ResultSet) drain((ResultSet) r);
            System.out.println("ok   " + what);
        } catch (Throwable e) {
            System.out.println("fail " + what + ": " + e);
        }
    }

    public static void main(String[] args) throws Exception {
        try (Connection conn = DriverManager.getConnection(args[0])) {
            DatabaseMetaData md = conn.getMetaData();

            // Every zero-argument DatabaseMetaData method (some of them query the catalog:
            // getMaxNameLength, getSQLKeywords, getUserName, getCatalogs, getSchemas, getTypeInfo, ...).
            Method[] ms = DatabaseMetaData.class.getMethods();
            Arrays.sort(ms, Comparator.comparing(Method::getName));
            for (Method m : ms) {
                if (m.getParameterCount() != 0 || Modifier.isStatic(m.getModifiers())) continue;
                if (m.getName().equals("getConnection")) continue;
                call("DatabaseMetaData." + m.getName() + "()", () -> m.invoke(md));
            }

            String s = "shop";
            call("getSchemas(null, 'sh%')", () -> md.getSchemas(null, "sh%"));
            call("getTables(all)", () -> md.getTables(null, null, "%", null));
            call("getTables(shop, TABLE/VIEW)", () -> md.getTables(null, s, "%", new String[] {"TABLE", "VIEW"}));
            call("getTables(shop, every type)", () -> md.getTables(null, s, "%", new String[] {
                    "TABLE", "PARTITIONED TABLE", "VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE", "INDEX",
                    "PARTITIONED INDEX", "SEQUENCE", "TYPE", "SYSTEM TABLE", "SYSTEM VIEW", "SYSTEM INDEX",
                    "SYSTEM TOAST TABLE", "SYSTEM TOAST INDEX", "TEMPORARY TABLE", "TEMPORARY VIEW",
                    "TEMPORARY INDEX", "TEMPORARY SEQUENCE"}));
            call("getColumns(all in shop)", () -> md.getColumns(null, s, "%", "%"));
            call("getColumns(orders)", () -> md.getColumns(null, s, "orders", null));
            call("getPrimaryKeys", () -> md.getPrimaryKeys(null, s, "order_lines"));
            call("getPrimaryKeys(all)", () -> md.getPrimaryKeys(null, null, null));
            call("getImportedKeys", () -> md.getImportedKeys(null, s, "orders"));
            call("getExportedKeys", () -> md.getExportedKeys(null, s, "customers"));
            call("getCrossReference", () -> md.getCrossReference(null, s, "customers", null, s, "orders"));
            call("getIndexInfo", () -> md.getIndexInfo(null, s, "orders", false, true));
            call("getIndexInfo(unique)", () -> md.getIndexInfo(null, s, "orders", true, false));
            call("getProcedures", () -> md.getProcedures(null, s, "%"));
            call("getProcedureColumns", () -> md.getProcedureColumns(null, s, "%", "%"));
            call("getFunctions", () -> md.getFunctions(null, s, "%"));
            call("getFunctionColumns", () -> md.getFunctionColumns(null, s, "%", "%"));
            call("getUDTs", () -> md.getUDTs(null, s, "%", null));
            call("getUDTs(DISTINCT)", () -> md.getUDTs(null, s, "%", new int[] {Types.DISTINCT, Types.STRUCT}));
            call("getTablePrivileges", () -> md.getTablePrivileges(null, s, "%"));
            call("getColumnPrivileges", () -> md.getColumnPrivileges(null, s, "customers", "%"));
            call("getBestRowIdentifier", () -> md.getBestRowIdentifier(null, s, "orders", DatabaseMetaData.bestRowSession, true));
            call("getVersionColumns", () -> md.getVersionColumns(null, s, "orders"));
            call("getSuperTables", () -> md.getSuperTables(null, s, "%"));
            call("getSuperTypes", () -> md.getSuperTypes(null, s, "%"));
            call("getAttributes", () -> md.getAttributes(null, s, "%", "%"));
            call("getPseudoColumns", () -> md.getPseudoColumns(null, s, "%", "%"));

            // Connection-level calls that BI tools/IDEs make right after connecting.
            call("getSchema", conn::getSchema);
            call("getCatalog", conn::getCatalog);
            call("getTransactionIsolation", conn::getTransactionIsolation);
            call("setReadOnly(true)", () -> { conn.setReadOnly(true); return null; });
            call("isReadOnly", conn::isReadOnly);
            call("setReadOnly(false)", () -> { conn.setReadOnly(false); return null; });
            call("isValid", () -> conn.isValid(5));
            call("setTransactionIsolation", () -> { conn.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ); return null; });
            call("setTransactionIsolation back", () -> { conn.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED); return null; });

            // ResultSetMetaData on a result with enum / domain / array / jsonb columns: pgjdbc looks up
            // types (TypeInfoCache) and column nullability / base names / serial-ness in the catalog.
            call("ResultSetMetaData", () -> {
                try (Statement st = conn.createStatement();
                     ResultSet rs = st.executeQuery("/* capture */ SELECT o.*, c.email, c.name FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id")) {
                    ResultSetMetaData r = rs.getMetaData();
                    for (int i = 1; i <= r.getColumnCount(); i++) {
                        r.getColumnTypeName(i); r.getColumnClassName(i); r.isNullable(i); r.isAutoIncrement(i);
                        r.getTableName(i); r.getSchemaName(i); r.getColumnDisplaySize(i); r.getPrecision(i);
                        r.isCaseSensitive(i); r.isSigned(i);
                        if (r instanceof org.postgresql.PGResultSetMetaData) {
                            ((org.postgresql.PGResultSetMetaData) r).getBaseColumnName(i);
                            ((org.postgresql.PGResultSetMetaData) r).getBaseTableName(i);
                            ((org.postgresql.PGResultSetMetaData) r).getBaseSchemaName(i);
                        }
                    }
                    while (rs.next()) { rs.getObject("status"); rs.getObject("tags"); rs.getArray("tags"); }
                }
                return null;
            });
            call("createArrayOf(enum)", () -> conn.createArrayOf("shop.order_status", new Object[] {"new"}));
            call("createArrayOf(text)", () -> conn.createArrayOf("text", new Object[] {"a"}));
            call("ParameterMetaData", () -> {
                try (PreparedStatement ps = conn.prepareStatement("/* capture */ SELECT * FROM shop.orders WHERE status = ?::shop.order_status AND total > ?")) {
                    ParameterMetaData pm = ps.getParameterMetaData();
                    for (int i = 1; i <= pm.getParameterCount(); i++) { pm.getParameterTypeName(i); pm.getParameterClassName(i); }
                }
                return null;
            });
        }
        System.out.println("rows read: " + rows);
    }
}
