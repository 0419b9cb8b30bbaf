//! The PostgreSQL test helper (tests/common/postgres.rs) against a real server: the project's
//! Python reaches it with psycopg, and dropping the helper stops the server.

mod common;

use std::net::TcpStream;

use common::postgres::PgServer;

/// Creates a table, inserts rows and reads them back through psycopg, printing JSON.
const ROUND_TRIP: &str = r#"
import json, sys
import psycopg
conn = psycopg.connect(sys.argv[1])
with conn.transaction(), conn.cursor() as cur:
    cur.execute("CREATE TABLE runs (id serial PRIMARY KEY, name text NOT NULL, loss real)")
    cur.executemany("INSERT INTO runs (name, loss) VALUES (%s, %s)",
                    [("opl-seed0", 1.5), ("siplv1-seed0", 0.25)])
with conn.cursor() as cur:
    cur.execute("SELECT name, loss FROM runs ORDER BY id")
    rows = cur.fetchall()
    cur.execute("SELECT current_database(), current_user")
    db, user = cur.fetchone()
conn.close()
print(json.dumps({"rows": rows, "database": db, "user": user}))
"#;

#[test]
fn psycopg_round_trips_rows_and_drop_stops_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(pg) = PgServer::start(dir.path()) else { return };
    assert_eq!(pg.url, format!("postgresql://sipl@127.0.0.1:{}/sipl", pg.port));

    let out = common::python().args(["-c", ROUND_TRIP, &pg.url]).output().expect("spawn python");
    let (ok, stdout, stderr) = common::text(out);
    assert!(ok, "psycopg round trip failed:\n{stdout}\n{stderr}\nserver log:\n{}", pg.log());
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json report");
    assert_eq!(
        report,
        serde_json::json!({
            "rows": [["opl-seed0", 1.5], ["siplv1-seed0", 0.25]],
            "database": "sipl",
            "user": "sipl",
        })
    );

    let port = pg.port;
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok(), "server not listening");
    drop(pg);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still accepts connections after the server was dropped"
    );
}

/// Opens and closes a connection to `pg` from the venv's Python.
fn assert_connects(pg: &PgServer) {
    let out = common::python()
        .args(["-c", "import sys, psycopg; psycopg.connect(sys.argv[1]).close()", &pg.url])
        .output()
        .expect("spawn python");
    let (ok, stdout, stderr) = common::text(out);
    assert!(ok, "connect failed:\n{stdout}\n{stderr}\nserver log:\n{}", pg.log());
}

#[test]
fn a_long_directory_gets_a_short_socket_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = dir.path().join("a-directory-name-long-enough".repeat(4));
    let Some(pg) = PgServer::start(&long) else { return };
    assert!(long.join("pgdata/PG_VERSION").exists(), "the data is in the caller's directory");
    assert_connects(&pg);
}

/// As root the server runs as another user, which cannot enter a private directory: its data
/// then goes to a scratch directory under /tmp.
#[test]
fn a_private_directory_still_hosts_a_server() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let Some(pg) = PgServer::start(&dir.path().join("pg")) else { return };
    assert_connects(&pg);
}

#[test]
fn a_panicking_test_still_stops_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut port = None;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let pg = PgServer::start(dir.path());
        port = pg.as_ref().map(|pg| pg.port);
        panic!("a failing test");
    }));
    assert!(outcome.is_err());
    if let Some(port) = port {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts connections after the test panicked"
        );
    }
}
