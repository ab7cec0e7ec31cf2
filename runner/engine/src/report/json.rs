//! JSON output: the whole report as one document (`--format json`), the same vectors streamed
//! as JSON lines while the run goes (`--json-lines`), and the JSON Schemas both follow
//! (committed as `spec/report.schema.json` and `spec/report-line.schema.json`; the results
//! snapshot's as `spec/results.schema.json`).

use std::collections::BTreeMap;
use std::io::Write;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{Report, VectorReport};
use crate::compare::{Profile, ResultClass};

/// The trace as the report shows it: one run per preset. Its inner shape is the engine's
/// trace (`spec/INTERPRETING.md` § "Traces"); the schema fixes the envelope only, so a door
/// that records more is still valid.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct TraceSchema {
    runs: Vec<RunSchema>,
}

/// One preset's run: its steps (action, args, ret, state, events, data, fault, hazards), what
/// was left at the end, and how it stopped.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct RunSchema {
    preset: String,
    buffers: BTreeMap<String, String>,
    steps: Vec<serde_json::Map<String, Value>>,
    end: serde_json::Map<String, Value>,
    stop: serde_json::Map<String, Value>,
}

/// The last line of a JSON-lines stream: written only when the run finished, so a stream
/// without it was cut short.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct End {
    pub implementation: String,
    pub summary: BTreeMap<Profile, BTreeMap<ResultClass, usize>>,
    pub errors: Vec<String>,
    /// The run's exit status would be 0.
    pub ok: bool,
}

/// One line of a JSON-lines stream: a finished vector, or the end of the run.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum Line {
    Vector(Box<VectorReport>),
    End(End),
}

/// Writes one JSON object per finished vector, each line flushed as soon as it is written, so
/// a run killed half-way leaves every result it computed (deqp-runner's crash recovery).
pub struct LineWriter<W: Write> {
    out: W,
    with_trace: bool,
}

impl<W: Write> LineWriter<W> {
    pub fn new(out: W, with_trace: bool) -> Self {
        LineWriter { out, with_trace }
    }

    fn line<T: Serialize>(&mut self, value: &T) -> std::io::Result<()> {
        let mut text = serde_json::to_string(value).map_err(std::io::Error::other)?;
        text.push('\n');
        // One write per line: a line is either all there or not at all.
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    pub fn vector(&mut self, v: &VectorReport) -> std::io::Result<()> {
        if self.with_trace || v.trace.is_none() {
            self.line(v)
        } else {
            let mut shown = v.clone();
            shown.trace = None;
            self.line(&shown)
        }
    }

    pub fn end(&mut self, report: &Report) -> std::io::Result<()> {
        self.line(&End {
            implementation: report.implementation.clone(),
            summary: report.summary.clone(),
            errors: report.errors.clone(),
            ok: report.ok(),
        })
    }
}

/// What a JSON-lines file holds.
#[derive(Debug)]
pub struct Lines {
    /// Every complete vector line.
    pub vectors: Vec<Value>,
    /// The end line, if the run finished.
    pub end: Option<Value>,
}

/// Reads a JSON-lines stream; a line that is not one complete JSON object (a torn write) is an
/// error naming the line.
pub fn read_lines(text: &str) -> Result<Lines, String> {
    let mut out = Lines {
        vectors: Vec::new(),
        end: None,
    };
    if !text.is_empty() && !text.ends_with('\n') {
        let n = text.lines().count();
        return Err(format!("line {n}: incomplete (no newline at the end)"));
    }
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if out.end.is_some() {
            return Err(format!("line {}: after the end line", i + 1));
        }
        match &v {
            Value::Object(m) if m.contains_key("id") && m.contains_key("results") => {
                out.vectors.push(v)
            }
            Value::Object(m) if m.contains_key("summary") && m.contains_key("ok") => {
                out.end = Some(v)
            }
            _ => return Err(format!("line {}: neither a vector nor the end", i + 1)),
        }
    }
    Ok(out)
}

fn pretty(schema: schemars::Schema) -> String {
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

/// An output schema: fields left out when empty are not required.
fn output_schema<T: JsonSchema>() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// The JSON Schema of `--format json` (committed as `spec/report.schema.json`).
pub fn report_schema() -> String {
    pretty(output_schema::<Report>())
}

/// The JSON Schema of one `--json-lines` line (committed as `spec/report-line.schema.json`).
pub fn line_schema() -> String {
    pretty(output_schema::<Line>())
}

/// The JSON Schema of a results snapshot (`--results`; committed as `spec/results.schema.json`).
pub fn results_schema() -> String {
    pretty(schemars::schema_for!(super::results::Snapshot))
}

/// The committed schemas, as (file name under `spec/`, current text).
pub fn schemas() -> [(&'static str, String); 3] {
    [
        ("report.schema.json", report_schema()),
        ("report-line.schema.json", line_schema()),
        ("results.schema.json", results_schema()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_and_foreign_lines_are_errors() {
        let good = "{\"id\":\"a\",\"results\":{}}\n{\"summary\":{},\"ok\":true}\n";
        let l = read_lines(good).unwrap();
        assert_eq!((l.vectors.len(), l.end.is_some()), (1, true));
        let torn = &good[..good.len() - 8];
        assert!(read_lines(torn)
            .unwrap_err()
            .starts_with("line 2: incomplete"));
        assert!(read_lines("{\"id\":\"a\",\"res\n")
            .unwrap_err()
            .starts_with("line 1: "));
        assert!(read_lines("[1]\n").is_err());
        let cut = "{\"id\":\"a\",\"results\":{}}\n";
        assert!(read_lines(cut).unwrap().end.is_none());
    }
}
