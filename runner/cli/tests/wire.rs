//! The whole suite through the wire (the reference served by `dmaconf serve` in a child) gives
//! the same report, traces included, as the reference in process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dmaconf_engine::report::{run_suite, Filter};
use dmaconf_engine::{load_suite, Profile};
use dmaconf_wire::Wire;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn serve_command() -> Vec<String> {
    [
        env!("CARGO_BIN_EXE_dmaconf"),
        "serve",
        "--impl",
        "reference",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn suite_through_the_wire_has_the_in_process_traces() {
    let suite = load_suite(&root().join("vectors"));
    let all = Filter::default();
    let in_process = run_suite(&suite, &dmaconf::reference(), &Profile::ALL, &all, |_| {}).unwrap();
    let wire = Wire::start(&serve_command(), Duration::from_secs(60)).unwrap();
    assert_eq!(wire.hello().name, "reference");
    let through = run_suite(&suite, &wire.implementation(), &Profile::ALL, &all, |_| {}).unwrap();

    assert_eq!(in_process.vectors.len(), through.vectors.len());
    for (a, b) in in_process.vectors.iter().zip(&through.vectors) {
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap(),
            "{} differs through the wire",
            a.id
        );
    }
    assert_eq!(
        serde_json::to_value(&in_process.summary).unwrap(),
        serde_json::to_value(&through.summary).unwrap()
    );
    let stats = wire.stats();
    assert_eq!(
        stats.children, 1,
        "no vector should have needed a new child"
    );
    assert!(stats.sent as usize > in_process.vectors.len());
}

#[test]
fn cli_runs_a_wire_command() {
    let bin = env!("CARGO_BIN_EXE_dmaconf");
    let run = |imp: &str| {
        Command::new(bin)
            .args(["--root", &root().display().to_string()])
            .args([
                "run", "--format", "json", "--impl", imp, "--filter", "link-*",
            ])
            .output()
            .unwrap()
    };
    let direct = run("reference");
    let wired = run(&format!("wire:{bin} serve --impl reference"));
    assert!(
        direct.status.success(),
        "{}",
        String::from_utf8_lossy(&direct.stderr)
    );
    assert!(
        wired.status.success(),
        "{}",
        String::from_utf8_lossy(&wired.stderr)
    );
    assert_eq!(direct.stdout, wired.stdout);
}

#[test]
fn cli_names_a_command_that_cannot_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_dmaconf"))
        .args(["--root", &root().display().to_string()])
        .args(["run", "--impl", "wire:/nonexistent/dmaconf-server"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot start `/nonexistent/dmaconf-server`"),
        "{err}"
    );
}
