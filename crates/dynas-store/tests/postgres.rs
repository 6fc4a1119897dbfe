//! The PostgreSQL back end on a real throwaway server (`initdb` + `pg_ctl` from
//! `/usr/lib/postgresql/*/bin`, or the server of `DYNAS_TEST_POSTGRES_URL`): store semantics,
//! errors, and NSGA-II over the NAS-Bench-201 table through the store with 1, 2 and 4 workers,
//! killed workers, a killed coordinator and a server restart mid-search.

mod common;

use std::time::Duration;

use dynas_store::scratch::ScratchPostgres;
use dynas_store::{PostgresStore, SCHEMA_VERSION, Store, StoreError, open_store};

/// The server, or `None` (with the reason printed) where PostgreSQL is not available.
fn server() -> Option<ScratchPostgres> {
    match ScratchPostgres::start() {
        Ok(s) => Some(s),
        Err(why) => {
            eprintln!("PostgreSQL tests skipped: {why}");
            None
        }
    }
}

#[test]
fn postgres_store_semantics() {
    let Some(pg) = server() else { return };
    let url = pg.fresh_database("semantics").unwrap();
    let store = open_store(&url).unwrap();
    common::semantics(store.as_ref());
}

#[test]
fn postgres_errors_are_clear() {
    // Nothing listening: unreachable, at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://someone:secret@127.0.0.1:{port}/db");
    match open_store(&url) {
        Err(e @ StoreError::Unreachable { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&port.to_string()) && !text.contains("secret"),
                "{text}"
            );
        }
        Err(other) => panic!("expected Unreachable, got {other}"),
        Ok(_) => panic!("connected to nothing"),
    }
    let Some(pg) = server() else { return };
    if pg.dir().is_some() {
        // Wrong password (SQLSTATE 28P01).
        match open_store(&pg.url_with_password("wrong")) {
            Err(StoreError::BadCredentials { url, .. }) => assert!(!url.contains("wrong")),
            Err(other) => panic!("expected BadCredentials, got {other}"),
            Ok(_) => panic!("wrong password accepted"),
        }
    }
    // No such database.
    let base = pg.url().rsplit_once('/').unwrap().0.to_string();
    match open_store(&format!("{base}/no_such_db")) {
        Err(StoreError::MissingDatabase { .. }) => {}
        Err(other) => panic!("expected MissingDatabase, got {other}"),
        Ok(_) => panic!("opened a missing database"),
    }
    // A store of another schema version.
    let url = pg.fresh_database("version").unwrap();
    let store = open_store(&url).unwrap();
    assert!(matches!(
        store.study("x"),
        Err(StoreError::MissingStudy { .. })
    ));
    drop(store);
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            &[],
        )
        .unwrap();
    match PostgresStore::open(&url) {
        Err(StoreError::SchemaVersion {
            found, expected, ..
        }) => assert_eq!((found.as_str(), expected), ("99", SCHEMA_VERSION)),
        other => panic!("expected SchemaVersion, got {other:?}"),
    }
}

#[test]
fn postgres_search_matches_in_process_through_failures_and_a_server_restart() {
    let Some(pg) = server() else { return };
    let (budget, seed) = (200, 7);
    let reference = common::in_process(budget, seed);
    let restart = || {
        if pg.dir().is_some() {
            pg.stop().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            pg.start_again().unwrap();
        }
    };
    for workers in [1, 2, 4] {
        let url = pg.fresh_database(&format!("search{workers}")).unwrap();
        // A connection opened while the server restarts waits for it (opening itself makes
        // one attempt: an unreachable server is reported at once).
        let open = || -> Box<dyn Store> {
            let start = std::time::Instant::now();
            loop {
                match open_store(&url) {
                    Err(StoreError::Unreachable { .. }) if start.elapsed().as_secs() < 30 => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    other => break other.unwrap(),
                }
            }
        };
        let disruption = common::Disruption {
            kill_coordinator_after: 70,
            zombies: if workers == 1 { 1 } else { 2 },
            at_done: Some((120, &restart)),
        };
        let got = common::through_store(&open, "nb201", workers, budget, seed, &disruption);
        assert_eq!(got.0, reference.0, "front with {workers} workers");
        assert_eq!(got.1, reference.1, "archive with {workers} workers");
    }
}
