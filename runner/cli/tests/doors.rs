//! Every CI output works for any door: a door of our own (the reference behind it, but one vector
//! crashing half-way, one timing out, one it cannot run) goes through the same report, results
//! snapshot, diff, JUnit, JSON lines, expectations and HTML as the reference does.

mod common;
use common::junit_check::validate;
use common::repo;

use dmaconf_engine::exec::{Execution, Stop};
use dmaconf_engine::model::Vector;
use dmaconf_engine::preset::Presets;
use dmaconf_engine::report::{self, json::LineWriter, Filter, Report};
use dmaconf_engine::{load_suite, Door, Profile, ResultClass};

struct Flaky {
    inner: dmaconf_engine::Implementation,
}

impl Door for Flaky {
    fn name(&self) -> String {
        "flaky".into()
    }
    fn unmet(&self, v: &Vector) -> Vec<String> {
        if v.id == "destroy-zero-only-frees" {
            vec!["flaky_gap".into()]
        } else {
            self.inner.unmet(v)
        }
    }
    fn execute(&self, v: &Vector, presets: &Presets) -> Execution {
        let mut e = self.inner.execute(v, presets);
        match v.id.as_str() {
            "free-no-effects-state-kept" => {
                e.runs[0].steps.truncate(2);
                e.runs[0].stop = Stop::Crash("SIGSEGV in dma_iova_unlink".into());
            }
            "free-whole-reservation-reused" => {
                e.runs[0].stop = Stop::Timeout("no answer in 5 s".into());
            }
            _ => {}
        }
        e
    }
}

fn run(door: &dyn Door) -> Report {
    let suite = load_suite(&repo().join("vectors"));
    let filter = Filter {
        areas: vec!["free".into(), "destroy".into()],
        ..Filter::default()
    };
    report::run_suite(&suite, door, &Profile::ALL, &filter, |_| {}).unwrap()
}

fn class(r: &Report, id: &str, p: Profile) -> ResultClass {
    r.vectors.iter().find(|v| v.id == id).unwrap().results[&p].class
}

#[test]
fn a_door_of_our_own_gets_every_output() {
    let reference = run(&dmaconf::reference());
    assert!(reference.ok());
    let flaky = Flaky {
        inner: dmaconf::reference(),
    };
    let r = run(&flaky);
    assert!(!r.ok());
    assert_eq!(
        class(&r, "free-no-effects-state-kept", Profile::Linux),
        ResultClass::Crash
    );
    assert_eq!(
        class(&r, "free-whole-reservation-reused", Profile::Semantic),
        ResultClass::Timeout
    );
    assert_eq!(
        class(&r, "destroy-zero-only-frees", Profile::Linux),
        ResultClass::NotSupported
    );

    // JUnit: crash and timeout are errors with their reason, the gap is skipped.
    let xml = report::junit::junit(&r);
    let cases = validate(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(cases.iter().filter(|c| c.3 == "error").count(), 4);
    assert_eq!(cases.iter().filter(|c| c.3 == "skipped").count(), 2);
    assert!(xml.contains("type=\"crash\""));
    assert!(xml.contains("SIGSEGV in dma_iova_unlink"));
    assert!(xml.contains("<skipped message=\"not_supported: requires flaky_gap\"/>"));

    // Results and diff: against the reference's snapshot, every change is a regression.
    let old = report::results::snapshot(&reference, false);
    let new = report::results::snapshot(&r, false);
    let d = report::diff::diff(&old, &new);
    assert_eq!(d.regressions, 6, "{}", d.text());
    assert!(
        d.text()
            .contains("REGRESSION linux::free-no-effects-state-kept: pass -> crash\n"),
        "{}",
        d.text()
    );
    assert_eq!(report::diff::diff(&new, &old).regressions, 0);

    // JSON lines: one line per vector and the end line, all within the committed schema.
    let mut buf = Vec::new();
    let mut w = LineWriter::new(&mut buf, true);
    for v in &r.vectors {
        w.vector(v).unwrap();
    }
    w.end(&r).unwrap();
    let lines = report::json::read_lines(&String::from_utf8(buf).unwrap()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("spec/report-line.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert_eq!(lines.vectors.len(), r.vectors.len());
    for l in lines.vectors.iter().chain(lines.end.iter()) {
        assert!(validator.is_valid(l), "{l}");
    }

    // The baseline for this door lists exactly its red results.
    let e = report::expectations::emit(&r).unwrap();
    assert_eq!(e.matches("- id:").count(), 4, "{e}");
    assert!(
        e.contains("result: crash") && e.contains("result: timeout"),
        "{e}"
    );

    // HTML: the crashed run is said to have stopped, at its last recorded step.
    let page = report::html::page(&r);
    let start = page.find("id=\"v-free-no-effects-state-kept\"").unwrap();
    let section = &page[start..start + page[start..].find("</section>").unwrap()];
    assert!(section.contains("stopped: crash: SIGSEGV in dma_iova_unlink"));
    assert_eq!(section.matches("<rect class=\"failing\"").count(), 1);
    assert!(section.contains("1 dma_iova_link = 0"));
}
