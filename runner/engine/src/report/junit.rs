//! JUnit XML (`--junit FILE`) for CI test views, in the common shape CI systems read (Jenkins'
//! junit-10.xsd, GitLab, GitHub test reporters): `testsuites` > one `testsuite` per profile >
//! one `testcase` per vector with `classname` = the profile. A failure carries the mismatches
//! and their diff; `crash`, `timeout` and `harness_error` are `error`s; `not_supported` and
//! `waived` are `skipped` with their reason. Problems outside any vector (bad presets, an
//! expectations entry naming an unknown vector) are errors of a suite named `dmaconf`.

use std::io::Cursor;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::human::details;
use super::{Report, VectorReport};
use crate::compare::{Profile, ResultClass};

/// XML 1.0 cannot carry most control characters, even escaped; show them as U+FFFD.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c < ' ' && !matches!(c, '\t' | '\n' | '\r') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// What a testcase holds besides its name.
enum Outcome {
    Passed,
    Failure {
        kind: String,
        message: String,
        text: String,
    },
    Error {
        kind: String,
        message: String,
        text: String,
    },
    Skipped {
        message: String,
    },
}

fn outcome(v: &VectorReport, p: Profile) -> Outcome {
    let Some(r) = v.results.get(&p) else {
        return Outcome::Skipped {
            message: "not judged under this profile".into(),
        };
    };
    let at = format!("{}:{}\n", v.file.display(), v.line);
    let first = r
        .mismatches
        .first()
        .map(|m| {
            let step = m.step.map(|s| format!("step {s}, ")).unwrap_or_default();
            format!(
                "[{}] {step}{}: expected {}, actual {}",
                m.preset, m.what, m.expected, m.actual
            )
        })
        .or_else(|| r.reason.clone())
        .unwrap_or_else(|| r.class.name().to_string());
    // Expectations-file problems of this profile (their messages name it as `id (profile)`).
    let tag = format!(" ({}) ", p.name());
    let own: Vec<&str> = v
        .errors
        .iter()
        .filter(|e| e.contains(&tag))
        .map(String::as_str)
        .collect();
    let text = [at, details(r), own.join("\n")].concat();
    match r.class {
        _ if !own.is_empty() && r.class.is_ok() => Outcome::Failure {
            kind: "expectations".into(),
            message: own[0].to_string(),
            text,
        },
        ResultClass::Pass | ResultClass::Misuse => Outcome::Passed,
        ResultClass::NotSupported => Outcome::Skipped {
            message: format!("not_supported: {}", r.reason.clone().unwrap_or_default()),
        },
        ResultClass::Waived => Outcome::Skipped {
            message: v
                .waived
                .get(&p)
                .map(|w| {
                    format!(
                        "waived (expected {}): {} [{}]",
                        w.result.name(),
                        w.reason,
                        w.at
                    )
                })
                .unwrap_or_else(|| "waived".into()),
        },
        ResultClass::Fail => Outcome::Failure {
            kind: "fail".into(),
            message: first,
            text,
        },
        ResultClass::Crash | ResultClass::Timeout | ResultClass::HarnessError => Outcome::Error {
            kind: r.class.name().into(),
            message: first,
            text,
        },
    }
}

#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    time: f64,
}

impl Counts {
    fn add(&mut self, o: &Outcome, time: f64) {
        self.tests += 1;
        self.time += time;
        match o {
            Outcome::Passed => {}
            Outcome::Failure { .. } => self.failures += 1,
            Outcome::Error { .. } => self.errors += 1,
            Outcome::Skipped { .. } => self.skipped += 1,
        }
    }
    fn attrs(&self) -> [(&'static str, String); 5] {
        [
            ("tests", self.tests.to_string()),
            ("failures", self.failures.to_string()),
            ("errors", self.errors.to_string()),
            ("skipped", self.skipped.to_string()),
            ("time", format!("{:.6}", self.time)),
        ]
    }
}

type Suite = (String, Vec<(String, String, f64, Outcome)>);

fn suites(report: &Report) -> Vec<Suite> {
    let mut out: Vec<Suite> = report
        .profiles
        .iter()
        .map(|p| {
            let cases = report
                .vectors
                .iter()
                .map(|v| {
                    (
                        v.id.clone(),
                        p.name().to_string(),
                        v.elapsed.as_secs_f64(),
                        outcome(v, *p),
                    )
                })
                .collect();
            (p.name().to_string(), cases)
        })
        .collect();
    if !report.errors.is_empty() {
        let cases = report
            .errors
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let o = Outcome::Error {
                    kind: "suite".into(),
                    message: e.clone(),
                    text: e.clone(),
                };
                (format!("error-{}", i + 1), "dmaconf".to_string(), 0.0, o)
            })
            .collect();
        out.push(("dmaconf".into(), cases));
    }
    out
}

fn write_case(
    w: &mut Writer<Cursor<Vec<u8>>>,
    (name, class, time, o): &(String, String, f64, Outcome),
) -> std::io::Result<()> {
    let el = w.create_element("testcase").with_attributes([
        ("name", clean(name).as_str()),
        ("classname", class.as_str()),
        ("time", format!("{time:.6}").as_str()),
    ]);
    match o {
        Outcome::Passed => {
            el.write_empty()?;
        }
        Outcome::Skipped { message } => {
            el.write_inner_content(|w| {
                w.create_element("skipped")
                    .with_attribute(("message", clean(message).as_str()))
                    .write_empty()
                    .map(|_| ())
            })?;
        }
        Outcome::Failure {
            kind,
            message,
            text,
        }
        | Outcome::Error {
            kind,
            message,
            text,
        } => {
            let tag = if matches!(o, Outcome::Failure { .. }) {
                "failure"
            } else {
                "error"
            };
            el.write_inner_content(|w| {
                w.create_element(tag)
                    .with_attributes([
                        ("message", clean(message).as_str()),
                        ("type", kind.as_str()),
                    ])
                    .write_text_content(BytesText::new(&clean(text)))
                    .map(|_| ())
            })?;
        }
    }
    Ok(())
}

/// The JUnit XML document of a run.
pub fn junit(report: &Report) -> String {
    let suites = suites(report);
    let mut total = Counts::default();
    let counts: Vec<Counts> = suites
        .iter()
        .map(|(_, cases)| {
            let mut c = Counts::default();
            for (_, _, t, o) in cases {
                c.add(o, *t);
                total.add(o, *t);
            }
            c
        })
        .collect();
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2);
    let written: std::io::Result<()> = (|| {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let name = format!("dmaconf {}", report.implementation);
        let mut attrs = vec![("name", clean(&name))];
        attrs.extend(total.attrs());
        w.create_element("testsuites")
            .with_attributes(attrs.iter().map(|(k, v)| (*k, v.as_str())))
            .write_inner_content(|w| {
                for ((name, cases), c) in suites.iter().zip(&counts) {
                    let mut attrs = vec![("name", name.clone())];
                    attrs.extend(c.attrs());
                    w.create_element("testsuite")
                        .with_attributes(attrs.iter().map(|(k, v)| (*k, v.as_str())))
                        .write_inner_content(|w| {
                            for case in cases {
                                write_case(w, case)?;
                            }
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
        Ok(())
    })();
    // Writing into memory cannot fail; an error here would be a quick-xml bug.
    debug_assert!(written.is_ok());
    let mut text = String::from_utf8_lossy(&w.into_inner().into_inner()).into_owned();
    text.push('\n');
    text
}
