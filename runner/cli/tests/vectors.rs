//! One test per vector and profile (`semantic::ID`, `linux::ID`), nextest-compatible, plus the
//! snapshot net: each vector's full trace is an insta snapshot (`tests/snapshots/ID.snap`),
//! asserted in its linux trial. A snapshot records what the reference did; it is a regression
//! net, never the oracle (the expectations in the vector are).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dmaconf_engine::report::run_one;
use dmaconf_engine::{load_suite, Profile};
use libtest_mimic::{Arguments, Failed, Trial};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

fn main() {
    let args = Arguments::from_args();
    let suite = Arc::new(load_suite(&root().join("vectors")));
    let implementation = Arc::new(dmaconf::reference());
    let mut trials = Vec::new();

    if !suite.errors.is_empty() {
        let errors: Vec<String> = suite.errors.iter().map(|e| e.to_string()).collect();
        trials.push(Trial::test("suite::load", move || {
            Err(Failed::from(errors.join("\n")))
        }));
    }

    for (index, loaded) in suite.vectors.iter().enumerate() {
        for profile in Profile::ALL {
            let suite = Arc::clone(&suite);
            let implementation = Arc::clone(&implementation);
            let name = format!("{}::{}", profile.name(), loaded.id);
            trials.push(
                Trial::test(name, move || {
                    let loaded = &suite.vectors[index];
                    let report = run_one(loaded, &suite, implementation.as_ref(), &[profile]);
                    let verdict = &report.results[&profile];
                    if profile == Profile::Linux {
                        if let Some(trace) = &report.trace {
                            let mut settings = insta::Settings::clone_current();
                            settings.set_snapshot_path(snapshot_dir());
                            settings.set_prepend_module_to_snapshot(false);
                            settings.set_input_file(&loaded.file);
                            settings.set_omit_expression(true);
                            settings
                                .bind(|| insta::assert_yaml_snapshot!(loaded.id.as_str(), trace));
                        }
                    }
                    if verdict.class.is_ok() {
                        Ok(())
                    } else {
                        Err(Failed::from(
                            serde_json::to_string_pretty(verdict).unwrap_or_default(),
                        ))
                    }
                })
                .with_kind(profile.name()),
            );
        }
    }

    // Every committed snapshot belongs to a vector (an orphan means a renamed or deleted id).
    let ids: Vec<String> = suite.vectors.iter().map(|l| l.id.clone()).collect();
    trials.push(Trial::test("snapshots::no-orphans", move || {
        let mut orphans = Vec::new();
        for entry in std::fs::read_dir(snapshot_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(id) = name.strip_suffix(".snap") {
                if !ids.iter().any(|i| i == id) {
                    orphans.push(name);
                }
            }
        }
        if orphans.is_empty() {
            Ok(())
        } else {
            Err(Failed::from(format!(
                "snapshots with no vector: {}",
                orphans.join(", ")
            )))
        }
    }));

    libtest_mimic::run(&args, trials).exit();
}
