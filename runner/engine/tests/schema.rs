//! Every document of the suite validates against the committed JSON Schema
//! (`spec/vector.schema.json`), which other implementations read instead of the Rust types; and
//! the schema rejects what the types reject. Moved out of `dmaconf lint` so that the binary does
//! not build a JSON Schema validator (issue 15): this is a property of the schema generator.

use std::path::{Path, PathBuf};

use dmaconf_engine::{load, yaml};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("spec/vector.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).expect("the committed schema is a valid JSON Schema")
}

/// Errors of one file's documents, each as `file:line: at PATH: what`.
fn violations(v: &jsonschema::Validator, file: &Path, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for doc in yaml::documents(text) {
        match yaml::to_json(file, &doc) {
            Ok(value) => out.extend(v.iter_errors(&value).map(|e| {
                format!(
                    "{}:{}: at `{}`: {e}",
                    file.display(),
                    doc.first_line,
                    e.instance_path()
                )
            })),
            Err(e) => out.push(e.to_string()),
        }
    }
    out
}

#[test]
fn every_document_of_the_suite_validates_against_the_committed_schema() {
    let v = validator();
    let (files, walk_errors) = load::vector_files(&repo().join("vectors"));
    assert!(walk_errors.is_empty(), "{walk_errors:?}");
    assert!(files.len() > 10, "the suite has vector files");
    let mut all = Vec::new();
    for f in &files {
        all.extend(violations(&v, f, &std::fs::read_to_string(f).unwrap()));
    }
    assert!(all.is_empty(), "{all:#?}");
}

#[test]
fn the_schema_rejects_an_unknown_key_and_a_wrong_type() {
    let v = validator();
    let good = "format: 1\narea: t\n---\nid: a\nrules: [X-01]\nwhy: w\nsteps:\n  - dma_use_iova: {state: s0}\n";
    assert!(violations(&v, Path::new("good.yaml"), good).is_empty());
    let typo = good.replace("why: w", "why: w\nwhy_not: w");
    assert!(!violations(&v, Path::new("typo.yaml"), &typo).is_empty());
    let wrong = good.replace("rules: [X-01]", "rules: X-01");
    let found = violations(&v, Path::new("wrong.yaml"), &wrong);
    assert!(
        found.iter().any(|e| e.starts_with("wrong.yaml:4:")),
        "{found:?}"
    );
}
