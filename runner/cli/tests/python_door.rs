//! `dmaconf run --impl py:pkg.mod:Class`: a Python class in a `dmaconf.serve` child over the
//! wire (ffi/python). Needs `python3` (or `$DMACONF_PYTHON`); the package is pure Python here, no
//! wheel. The classes are ffi/python's example and its tests' faulty ones.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the example and the faulty classes are.
fn python_path() -> String {
    let py = root().join("ffi/python");
    format!(
        "{}:{}",
        py.join("examples").display(),
        py.join("tests").display()
    )
}

/// Runs the CLI on `class` and returns (exit success, JSON report).
fn run(class: &str, filter: &[&str]) -> (bool, Value) {
    let path = python_path();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dmaconf"));
    cmd.args(["--root", &root().display().to_string()])
        .args([
            "run",
            "--format",
            "json",
            "--no-trace",
            "--profile",
            "semantic",
        ])
        .args(["--impl", &format!("py:{class}")])
        .env("PYTHONPATH", path);
    for f in filter {
        cmd.args(["--filter", f]);
    }
    let out = cmd.output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

fn results(report: &Value) -> Vec<(String, String, String)> {
    report["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let r = &v["results"]["semantic"];
            (
                v["id"].as_str().unwrap().to_string(),
                r["class"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn the_example_passes_both_profiles_with_its_expectations_through_the_wire() {
    let examples = root().join("ffi/python/examples");
    let out = Command::new(env!("CARGO_BIN_EXE_dmaconf"))
        .args(["--root", &root().display().to_string()])
        .args(["run", "--impl", "py:simple_dma:SimpleDma", "--expectations"])
        .arg(examples.join("simple_dma.expectations.yaml"))
        .env("PYTHONPATH", python_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("implementation: simple-dma"), "{text}");
    assert!(text.contains("semantic: "), "{text}");
}

#[test]
fn faults_in_python_become_results_with_reasons() {
    let one = |class: &str| {
        let (ok, report) = run(class, &["link-page-by-page"]);
        let r = results(&report);
        assert_eq!(r.len(), 1);
        (ok, r[0].1.clone(), r[0].2.clone())
    };
    let (ok, class, reason) = one("faulty:Raises");
    assert!(!ok);
    assert_eq!(class, "crash");
    assert!(
        reason.contains("ZeroDivisionError") && reason.contains("Traceback"),
        "{reason}"
    );
    let (ok, class, reason) = one("faulty:NotImplemented_");
    assert!(ok);
    assert_eq!(class, "not_supported");
    assert!(reason.contains("links are for later"), "{reason}");
    let (_, class, reason) = one("faulty:WrongType");
    assert_eq!(class, "harness_error");
    assert!(reason.contains("iova_link returned str"), "{reason}");
}

#[test]
fn a_class_that_cannot_serve_is_one_error_before_any_vector() {
    let out = Command::new(env!("CARGO_BIN_EXE_dmaconf"))
        .args(["--root", &root().display().to_string()])
        .args(["run", "--impl", "py:faulty:Incomplete"])
        .env("PYTHONPATH", python_path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no vector ran");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("unknown capabilities teleport").count(),
        1,
        "{err}"
    );
    assert!(err.contains("lacks iova_try_alloc()"), "{err}");
}
