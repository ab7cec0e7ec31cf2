//! `--json-lines`: a run killed half-way leaves only complete lines, one per finished vector;
//! the JSON report and every line validate against the committed schemas in `spec/`.

mod common;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{broken_free, dmaconf, repo, suite, text};
use dmaconf_engine::report::json::read_lines;
use serde_json::Value;

fn validator(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("spec").join(name)).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}");
}

#[test]
fn report_and_lines_follow_the_committed_schemas() {
    let root = suite(&["free/free.yaml", "link/link.yaml"], |f, t| {
        if f.starts_with("free") {
            broken_free(f, t)
        } else {
            t
        }
    });
    let r = root.path();
    let o = dmaconf(r, &["run", "--format", "json", "--json-lines", "l.jsonl"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let report = validator("report.schema.json");
    assert_valid(&report, &doc, "the JSON report");
    let line = validator("report-line.schema.json");
    let lines = read_lines(&std::fs::read_to_string(r.join("l.jsonl")).unwrap()).unwrap();
    assert_eq!(
        lines.vectors.len(),
        doc["vectors"].as_array().unwrap().len()
    );
    for v in &lines.vectors {
        assert!(v["trace"]["runs"].is_array(), "lines carry the trace");
        assert_valid(&line, v, "a vector line");
    }
    let end = lines.end.expect("the run finished");
    assert_valid(&line, &end, "the end line");
    assert_eq!(end["ok"], Value::Bool(false));

    // The schemas are not vacuous: a class outside the closed list is rejected.
    let mut bad = lines.vectors[0].clone();
    bad["results"]["linux"]["class"] = Value::String("great".into());
    assert!(!line.is_valid(&bad));
    let mut bad = doc.clone();
    bad["vectors"][0].as_object_mut().unwrap().remove("results");
    assert!(!report.is_valid(&bad));
}

#[test]
fn a_killed_run_keeps_every_finished_vector() {
    // Many copies of two vectors, so the run is still going when it is killed.
    const COPIES: usize = 3000;
    let root = suite(&["free/free.yaml"], |_, t| {
        let (header, body) = t.split_once("\n---\n").unwrap();
        let mut out = header.to_string();
        for i in 0..COPIES {
            out.push_str("\n---\n");
            out.push_str(
                &body
                    .replace("\nid: free-", &format!("\nid: free{i}-"))
                    .replacen("id: free-", &format!("id: free{i}-"), 1),
            );
        }
        out.push('\n');
        out
    });
    let r = root.path();
    let out = r.join("l.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmaconf"))
        .arg("--root")
        .arg(r)
        .args(["run", "--json-lines"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let n = std::fs::read(&out)
            .map(|b| b.iter().filter(|c| **c == b'\n').count())
            .unwrap_or(0);
        if n >= 20 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no lines after 2 minutes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let lines = read_lines(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(lines.end.is_none(), "killed before the end");
    let n = lines.vectors.len();
    assert!((20..2 * COPIES).contains(&n), "{n} lines");
    for (i, v) in lines.vectors.iter().enumerate() {
        let id = v["id"].as_str().unwrap();
        let want = if i % 2 == 0 {
            "no-effects-state-kept"
        } else {
            "whole-reservation-reused"
        };
        assert_eq!(id, format!("free{}-{want}", i / 2), "line {}", i + 1);
        assert_eq!(v["results"]["linux"]["class"], "pass");
        assert_eq!(v["results"]["semantic"]["class"], "pass");
    }
}
