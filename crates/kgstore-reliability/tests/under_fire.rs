//! Consumer groups under fire, with separate consumer processes, one of them
//! killed with SIGKILL: see `kgstore_reliability::fire`. `KGSTORE_FIRE_EVENTS` changes
//! the number of events (10,000 by default).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kgstore_reliability::crash::base_dir;
use kgstore_reliability::fire;

fn run(template: &str) {
    let dir = tempfile::Builder::new()
        .prefix("kgstore-fire-")
        .tempdir_in(base_dir())
        .unwrap();
    let url = template.replace("{dir}", &dir.path().display().to_string());
    match fire::run(&url, env!("CARGO_BIN_EXE_kgstore-fire-child")) {
        Ok(report) => eprintln!("{url}: {report}"),
        Err(failure) => panic!("{url}: {failure}"),
    }
}

#[test]
fn three_consumer_processes_one_killed_settle_every_event_once_on_sqlite() {
    run("sqlite://{dir}/kg.db?lock_timeout_ms=30000");
}

/// On the JSON-files backend: several processes share a store, writers taking turns
/// one transaction at a time through its lock file, each applying the others'
/// commits (event-store files included) from the commit log.
#[test]
fn three_consumer_processes_one_killed_settle_every_event_once_on_json() {
    run("json://{dir}/kg?lock_timeout_ms=30000");
}
