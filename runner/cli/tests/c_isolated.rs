//! `dmaconf run --impl c:PATH.so` runs the plug-in in a child (`dmaconf serve --impl c:...`, the
//! plug-in host) over the wire: a plug-in that segfaults, aborts or hangs in one call costs the
//! vectors that reach that call (`crash` with the signal, `timeout`), every other vector still
//! passes, and a plug-in that cannot be loaded is a `harness_error` naming the file.
//!
//! The fixtures (`ffi/wire/fixtures/faulty.c`) serve the reference through the C ABI and
//! misbehave at the third `dma_iova_link` of a device; which vectors reach it is counted from the
//! steps of the in-process run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `libdmaconf_reference_c.so`, built beside this test (a dev-dependency's cdylib).
fn reference_so() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let so = exe.parent().unwrap().join("libdmaconf_reference_c.so");
    assert!(so.is_file(), "{} is missing", so.display());
    so
}

/// Compiles the fixture with `-DFAULT_<fault>`, warnings as errors, into a shared object.
fn fixture(fault: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wire-fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let so = dir.join(format!("faulty-{}.so", fault.to_lowercase()));
    let compiler = cc::Build::new()
        .opt_level(0)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .target(env!("TARGET_TRIPLE"))
        .host(env!("TARGET_TRIPLE"))
        .get_compiler();
    let mut cmd = compiler.to_command();
    cmd.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg("-I")
        .arg(root().join("ffi/c/include"))
        .arg(format!("-DFAULT_{fault}"))
        .arg(root().join("ffi/wire/fixtures/faulty.c"))
        .arg("-ldl");
    let out = cmd.output().expect("run the C compiler");
    assert!(
        out.status.success(),
        "compiling {cmd:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

fn dmaconf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmaconf"))
        .args(["--root", &root().display().to_string()])
        .args(args)
        .env("DMACONF_FAULTY_INNER", reference_so())
        .output()
        .unwrap()
}

/// `dmaconf run --format json --profile linux ARGS`: the report's vectors.
fn report(args: &[&str]) -> (Output, Vec<Value>) {
    let mut all = vec!["run", "--format", "json", "--profile", "linux"];
    all.extend_from_slice(args);
    let out = dmaconf(&all);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let vectors = json["vectors"].as_array().unwrap().clone();
    (out, vectors)
}

fn class(v: &Value) -> &str {
    v["results"]["linux"]["class"].as_str().unwrap()
}

/// The step of the third `dma_iova_link` in the first run that has one.
fn third_link(v: &Value) -> Option<u64> {
    v["trace"]["runs"].as_array()?.iter().find_map(|run| {
        run["steps"]
            .as_array()?
            .iter()
            .filter(|s| s["action"] == "dma_iova_link")
            .nth(2)
            .and_then(|s| s["index"].as_u64())
    })
}

/// Runs the fault fixture on the vectors `filter` selects and checks every vector's class.
fn faulty_run(fault: &str, class_hit: &str, says: &str, extra: &[&str]) {
    let so = fixture(fault);
    let imp = format!("c:{}", so.display());
    let (_, baseline) = report(extra);
    let mut args = vec!["--impl", imp.as_str()];
    args.extend_from_slice(extra);
    let (out, got) = report(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a crash or timeout makes the run red"
    );
    assert_eq!(baseline.len(), got.len());
    let mut hit = 0;
    for (want, got) in baseline.iter().zip(&got) {
        assert_eq!(want["id"], got["id"]);
        match third_link(want) {
            None => assert_eq!(class(got), class(want), "{} was not hit", got["id"]),
            Some(step) => {
                hit += 1;
                let reason = got["results"]["linux"]["reason"].as_str().unwrap_or("");
                assert_eq!(class(got), class_hit, "{}: {reason}", got["id"]);
                assert!(reason.contains(says), "{}: {reason}", got["id"]);
                // Counted from 1, with the step's line after the action.
                let at = format!("step {} (dma_iova_link, line ", step + 1);
                assert!(reason.contains(&at), "{}: {reason}", got["id"]);
            }
        }
    }
    assert!(hit > 0, "no selected vector reaches a third link");
}

#[test]
fn a_segfaulting_plugin_crashes_only_the_vectors_it_faults_in() {
    faulty_run("SEGV", "crash", "killed by SIGSEGV", &[]);
}

#[test]
fn an_aborting_plugin_crashes_only_the_vectors_it_faults_in() {
    faulty_run("ABORT", "crash", "killed by SIGABRT", &[]);
}

#[test]
fn a_hanging_plugin_times_out_only_the_vectors_it_hangs_in() {
    // Each hang costs the whole limit: a few vectors that reach a third link, a few that do not.
    faulty_run(
        "LOOP",
        "timeout",
        "within 1.5s",
        &[
            "--timeout",
            "1500ms",
            "--filter",
            "link-*",
            "--filter",
            "wl-blk-*",
        ],
    );
}

/// Runs the whole suite on `plugin`, isolated, and checks that the report's vectors (traces
/// included) are the in-process reference's. Returns the run's standard error.
fn same_as_in_process(plugin: &Path) -> String {
    let imp = format!("c:{}", plugin.display());
    let (_, direct) = report(&[]);
    let (out, isolated) = report(&["--impl", &imp]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(direct, isolated);
    stderr
}

#[test]
fn a_plugin_printing_to_stdout_does_not_disturb_the_wire() {
    let stderr = same_as_in_process(&fixture("PRINT"));
    // The plug-in's line went to the log.
    assert!(stderr.contains("faulty-print: a plug-in writing"));
}

#[test]
fn the_reference_through_the_isolated_c_door_matches_in_process() {
    same_as_in_process(&reference_so());
}

#[test]
fn a_plugin_that_cannot_load_is_a_harness_error_naming_the_file() {
    let missing = root().join("no-such-plugin.so");
    let imp = format!("c:{}", missing.display());
    let (out, got) = report(&["--impl", &imp, "--filter", "link-*"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!got.is_empty());
    for v in &got {
        let reason = v["results"]["linux"]["reason"].as_str().unwrap_or("");
        assert_eq!(class(v), "harness_error", "{reason}");
        assert!(
            reason.contains("no-such-plugin.so: cannot load"),
            "{reason}"
        );
    }
}

#[test]
fn in_process_applies_to_c_only() {
    let out = dmaconf(&["run", "--in-process", "--impl", "reference"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--in-process applies to"));
}
