// Drives `dsql-audit serve` with the PostgreSQL JDBC driver (pgjdbc): prepared statements past the
// driver's server-prepare threshold (named statements, binary transfer), batches, types, DSQL's refusals
// as SQLExceptions with their SQLSTATE, and an OCC conflict at COMMIT. Prints one key=value per line.
// Run: java -cp postgresql.jar DsqlJdbcCheck.java JDBC_URL
import java.math.BigDecimal;
import java.sql.*;
import java.util.UUID;

public class DsqlJdbcCheck {
    static void out(String key, Object value) { System.out.println(key + "=" + value); }

    static String state(SQLException e) { return e.getSQLState() + " " + e.getMessage().split("\n")[0]; }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        try (Connection a = DriverManager.getConnection(url, "admin", "any");
             Connection b = DriverManager.getConnection(url, "admin", "any")) {
            out("server_version", a.getMetaData().getDatabaseProductVersion());
            try (Statement s = a.createStatement()) {
                s.execute("CREATE TABLE jd_accounts (id int PRIMARY KEY, owner uuid, balance numeric(12,2), "
                        + "opened timestamptz, note text, raw bytea)");
            }
            // ten executions: pgjdbc switches to a named server-side statement after prepareThreshold (5)
            try (PreparedStatement ins = a.prepareStatement("INSERT INTO jd_accounts VALUES (?, ?, ?, ?, ?, ?)")) {
                for (int i = 1; i <= 10; i++) {
                    ins.setInt(1, i);
                    ins.setObject(2, new UUID(0, i));
                    ins.setBigDecimal(3, new BigDecimal(i + ".25"));
                    ins.setTimestamp(4, Timestamp.valueOf("2026-01-0" + (i % 9 + 1) + " 10:00:00"));
                    ins.setString(5, "n" + i);
                    ins.setBytes(6, new byte[] {(byte) i, 0, (byte) 255});
                    ins.executeUpdate();
                }
            }
            try (PreparedStatement batch = a.prepareStatement("UPDATE jd_accounts SET note = ? WHERE id = ?")) {
                for (int i = 1; i <= 5; i++) { batch.setString(1, "b" + i); batch.setInt(2, i); batch.addBatch(); }
                int total = 0;
                for (int n : batch.executeBatch()) total += n;
                out("batch_updated", total);
            }
            try (PreparedStatement q = a.prepareStatement(
                    "SELECT count(*), sum(balance), max(owner::text), min(note), max(length(raw)) FROM jd_accounts WHERE id <= ?")) {
                for (int k = 0; k < 7; k++) { q.setInt(1, 10); q.executeQuery().close(); }  // past the threshold
                q.setInt(1, 10);
                try (ResultSet r = q.executeQuery()) {
                    r.next();
                    out("count", r.getInt(1));
                    out("sum", r.getBigDecimal(2));
                    out("max_owner", r.getString(3));
                    out("min_note", r.getString(4));
                    out("max_raw", r.getInt(5));
                }
            }
            try (PreparedStatement q = a.prepareStatement("SELECT opened, raw, owner FROM jd_accounts WHERE id = ?")) {
                q.setInt(1, 3);
                try (ResultSet r = q.executeQuery()) {
                    r.next();
                    out("opened", r.getTimestamp(1));
                    byte[] raw = r.getBytes(2);
                    out("raw", raw[0] + "," + raw[1] + "," + (raw[2] & 0xff));
                    out("owner", r.getObject(3));
                }
            }
            try (Statement s = a.createStatement()) {
                s.execute("CREATE INDEX jd_note ON jd_accounts (note)");
                out("sync_index", "accepted");
            } catch (SQLException e) { out("sync_index", state(e)); }
            try (Statement s = a.createStatement(); ResultSet r = s.executeQuery(
                    "CREATE INDEX ASYNC jd_note ON jd_accounts (note)")) {
                r.next();
                out("async_index_job", r.getString(1).isEmpty() ? "empty" : "job");
            }
            try (Statement s = a.createStatement()) {
                s.execute("TRUNCATE jd_accounts");
                out("truncate", "accepted");
            } catch (SQLException e) { out("truncate", state(e)); }
            a.setAutoCommit(false);
            try {
                a.setSavepoint("sp");
                out("savepoint", "accepted");
            } catch (SQLException e) { out("savepoint", state(e)); }
            a.rollback();
            // optimistic concurrency: both update row 1, the second COMMIT loses
            b.setAutoCommit(false);
            try (PreparedStatement ua = a.prepareStatement("UPDATE jd_accounts SET balance = balance + 1 WHERE id = ?");
                 PreparedStatement ub = b.prepareStatement("UPDATE jd_accounts SET balance = balance + 2 WHERE id = ?")) {
                ua.setInt(1, 1); ua.executeUpdate();
                ub.setInt(1, 1); ub.executeUpdate();
                a.commit();
                out("first_commit", "ok");
                try { b.commit(); out("second_commit", "ok"); }
                catch (SQLException e) { out("second_commit", state(e)); b.rollback(); }
            }
            a.setAutoCommit(true);
            try (Statement s = a.createStatement(); ResultSet r = s.executeQuery("SELECT balance FROM jd_accounts WHERE id = 1")) {
                r.next();
                out("balance_after", r.getBigDecimal(1));
            }
        }
    }
}
