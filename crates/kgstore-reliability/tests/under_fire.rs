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

/// On the JSON-files backend, when it lets several processes write (they take
/// turns per transaction); a build where a second writer is refused says so loudly.
#[test]
fn three_consumer_processes_one_killed_settle_every_event_once_on_json() {
    let dir = tempfile::tempdir_in(base_dir()).unwrap();
    let url = format!("json://{}/kg", dir.path().display());
    let first = kgstore::open(&url).unwrap();
    let second = kgstore::open(&format!("{url}?lock_timeout_ms=0"));
    drop(first);
    if let Err(e) = second {
        assert_eq!(e.kind(), kgstore::ErrorKind::Locked, "{e}");
        println!(
            "SKIPPED: consumer processes on json://: this jsonfs takes one writing process at \
             a time ({e}); the thread version of this scenario runs in the shared suite"
        );
        return;
    }
    drop(second);
    run("json://{dir}/kg?lock_timeout_ms=30000");
}
