//! The HTML report (`--html DIR`): one static page, no script, nothing fetched. A matrix of
//! rule x platform preset x profile, each cell coloured by the worst class among the vectors
//! citing the rule on that preset, then one section per vector with its verdicts and, per
//! preset, an SVG timeline drawn from the trace alone (so it works for every door): one row per
//! step, showing the live IOVA reservations, the live translations (PTEs), the bounce slots and
//! the device accesses, with the failing steps marked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use quick_xml::escape::escape;
use serde_json::Value;

use super::diff::rank;
use super::{Report, VectorReport};
use crate::compare::{Profile, ResultClass};

/// The column of vectors that did not run (no preset in their trace).
const NOT_RUN: &str = "(not run)";

const STYLE: &str = r#"
body { font: 13px/1.4 "DejaVu Sans", sans-serif; margin: 1.5em; color: #1d1d1f; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 2em; } h3 { font-size: 14px; }
table.matrix { border-collapse: collapse; font-size: 11px; }
table.matrix th, table.matrix td { border: 1px solid #ccc; padding: 1px 4px; text-align: center; }
table.matrix th.rule { text-align: left; white-space: nowrap; }
table.matrix thead th { position: sticky; top: 0; background: #f4f4f4; }
td.none { background: #fafafa; }
.c-pass { background: #b7e4b7; } .c-misuse { background: #c9dcf5; }
.c-not_supported { background: #e2e2e2; } .c-waived { background: #f6e39a; }
.c-fail { background: #f29a9a; } .c-timeout { background: #f5b971; }
.c-harness_error { background: #d3a9ef; } .c-crash { background: #c65454; color: #fff; }
td.cell a { color: inherit; text-decoration: none; display: block; }
section.vector { border-top: 1px solid #ddd; padding-top: .5em; }
span.class { padding: 0 6px; border-radius: 3px; margin-right: 6px; }
pre { background: #f7f7f7; padding: 6px; overflow-x: auto; font-size: 11px; }
svg { display: block; margin: .5em 0; }
svg text { font: 10px "DejaVu Sans Mono", monospace; }
.legend span { margin-right: 10px; padding: 0 6px; }
"#;

fn esc(s: &str) -> String {
    escape(s).into_owned()
}

fn anchor(id: &str) -> String {
    format!("v-{}", esc(id))
}

fn hx(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => u64::from_str_radix(s.trim_start_matches("0x"), 16).ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Half-open address ranges, kept apart.
#[derive(Clone, Default)]
struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    fn add(&mut self, start: u64, len: u64) {
        self.0.push((start, start.saturating_add(len)));
    }
    fn remove(&mut self, start: u64, len: u64) {
        let end = start.saturating_add(len);
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            if b <= start || a >= end {
                out.push((a, b));
                continue;
            }
            if a < start {
                out.push((a, start));
            }
            if b > end {
                out.push((end, b));
            }
        }
        self.0 = out;
    }
}

/// One step as the timeline draws it.
struct Row {
    label: String,
    reservations: Vec<(u64, u64, String)>,
    ptes: Vec<(u64, u64)>,
    slots: Vec<(u64, u64)>,
    access: Option<(u64, u64, bool)>,
    notes: Vec<String>,
    failing: bool,
}

impl Row {
    /// A row showing what is live now, with no label, access or marks yet.
    fn live(reservations: &BTreeMap<String, (u64, u64)>, ptes: &Ranges, slots: &Ranges) -> Row {
        Row {
            label: String::new(),
            reservations: reservations
                .iter()
                .map(|(s, (b, l))| (*b, b.saturating_add(*l), s.clone()))
                .collect(),
            ptes: ptes.0.clone(),
            slots: slots.0.clone(),
            access: None,
            notes: Vec::new(),
            failing: false,
        }
    }
}

fn rows(run: &Value, failing: &BTreeSet<Option<usize>>) -> Vec<Row> {
    let none = Vec::new();
    // The engine's reservations (base and length as try_alloc took them), in order per state.
    let mut taken: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for r in run["end"]["reservations"].as_array().unwrap_or(&none) {
        if let (Some(s), Some(b), Some(l)) =
            (r["state"].as_str(), hx(r.get("base")), hx(r.get("len")))
        {
            taken.entry(s.to_string()).or_default().push((b, l));
        }
    }
    let mut live: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut ptes, mut slots) = (Ranges::default(), Ranges::default());
    let mut out = Vec::new();
    for (i, step) in run["steps"].as_array().unwrap_or(&none).iter().enumerate() {
        let action = step["action"].as_str().unwrap_or("?");
        let state = step["args"]["state"].as_str().unwrap_or("").to_string();
        match action {
            "dma_iova_try_alloc" if step["ret"] == Value::Bool(true) => {
                let from_trace = taken
                    .get_mut(&state)
                    .filter(|v| !v.is_empty())
                    .map(|v| v.remove(0));
                let from_state = hx(step["state"].get("addr")).zip(hx(step["state"].get("size")));
                if let Some(r) = from_trace.or(from_state) {
                    live.insert(state.clone(), r);
                }
            }
            "dma_iova_free" | "dma_iova_destroy" => {
                live.remove(&state);
            }
            _ => {}
        }
        for e in step["events"].as_array().unwrap_or(&none) {
            let ok = e.get("ret").and_then(Value::as_i64).unwrap_or(0) == 0;
            match e["event"].as_str().unwrap_or("") {
                "iommu.map" if ok => {
                    if let (Some(a), Some(l)) = (hx(e.get("iova")), hx(e.get("len"))) {
                        ptes.add(a, l)
                    }
                }
                "iommu.unmap" => {
                    let len = hx(e.get("unmapped")).or(hx(e.get("len")));
                    if let (Some(a), Some(l)) = (hx(e.get("iova")), len) {
                        ptes.remove(a, l)
                    }
                }
                "swiotlb.alloc" if ok => {
                    if let (Some(a), Some(l)) = (hx(e.get("slot")), hx(e.get("len"))) {
                        slots.add(a, l)
                    }
                }
                "swiotlb.free" => {
                    if let (Some(a), Some(l)) = (hx(e.get("slot")), hx(e.get("len"))) {
                        slots.remove(a, l)
                    }
                }
                _ => {}
            }
        }
        let mut notes: Vec<String> = step["hazards"]
            .as_array()
            .unwrap_or(&none)
            .iter()
            .filter_map(|h| h.as_str().map(String::from))
            .collect();
        let fault = step["fault"]["reason"].as_str().filter(|r| *r != "none");
        notes.extend(fault.map(|f| format!("fault: {f}")));
        if step.get("unobserved").is_some() {
            notes.push("unobserved".into());
        }
        if step.get("error").is_some() {
            notes.push("error".into());
        }
        let access = if action.starts_with("device.") {
            hx(step["args"].get("addr"))
                .zip(hx(step["args"].get("len")))
                .map(|(a, l)| (a, a.saturating_add(l), !notes.is_empty()))
        } else {
            None
        };
        let ret = match &step["ret"] {
            Value::Null => String::new(),
            Value::String(s) => format!(" = {s}"),
            other => format!(" = {other}"),
        };
        let snapshot = Row::live(&live, &ptes, &slots);
        out.push(Row {
            label: format!("{i} {action}{ret}"),
            access,
            notes,
            failing: failing.contains(&Some(i)),
            ..snapshot
        });
    }
    if failing.contains(&None) {
        out.push(Row {
            label: "end".into(),
            notes: vec!["end state".into()],
            failing: true,
            ..Row::live(&live, &ptes, &slots)
        });
    }
    out
}

/// An axis that gives every interval between two interesting addresses the same width, so a
/// 4 KiB mapping next to a 4 GiB gap stays visible; ticks show the real addresses.
struct Axis {
    points: Vec<u64>,
    x: f64,
    width: f64,
}

impl Axis {
    fn new(points: impl IntoIterator<Item = u64>, x: f64, width: f64) -> Option<Axis> {
        let set: BTreeSet<u64> = points.into_iter().collect();
        (!set.is_empty()).then(|| Axis {
            points: set.into_iter().collect(),
            x,
            width,
        })
    }
    fn at(&self, addr: u64) -> f64 {
        let n = self.points.len();
        if n == 1 {
            return self.x + self.width / 2.0;
        }
        let seg = self.width / (n - 1) as f64;
        let k = self
            .points
            .partition_point(|p| *p <= addr)
            .saturating_sub(1)
            .min(n - 2);
        let (a, b) = (self.points[k], self.points[k + 1]);
        let frac = if b > a {
            (addr.saturating_sub(a)) as f64 / (b - a) as f64
        } else {
            0.0
        };
        self.x + seg * (k as f64 + frac.clamp(0.0, 1.0))
    }
    fn ticks(&self, svg: &mut String, y: f64, bottom: f64) {
        let n = self.points.len();
        let every = n.div_ceil(8).max(1);
        for (i, p) in self.points.iter().enumerate() {
            let x = self.at(*p);
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#e4e4e4"><title>{p:#x}</title></line>"##
            );
            if i % every == 0 || i == n - 1 {
                let ty = y - 4.0 - 10.0 * ((i / every) % 2) as f64;
                let _ = write!(
                    svg,
                    r#"<text x="{x:.1}" y="{ty:.1}" text-anchor="middle">{p:#x}</text>"#
                );
            }
        }
    }
}

const ROW: f64 = 16.0;
const LABEL: f64 = 250.0;
const IOVA_W: f64 = 520.0;
const SLOT_W: f64 = 200.0;

fn timeline(run: &Value, failing: &BTreeSet<Option<usize>>) -> String {
    let rows = rows(run, failing);
    let iova_points = rows.iter().flat_map(|r| {
        r.reservations
            .iter()
            .flat_map(|(a, b, _)| [*a, *b])
            .chain(r.ptes.iter().flat_map(|(a, b)| [*a, *b]))
            .chain(r.access.iter().flat_map(|(a, b, _)| [*a, *b]))
            .collect::<Vec<_>>()
    });
    let iova = Axis::new(iova_points, LABEL, IOVA_W);
    let slot_x = LABEL + IOVA_W + 80.0;
    let slots = Axis::new(
        rows.iter().flat_map(|r| {
            r.slots
                .iter()
                .flat_map(|(a, b)| [*a, *b])
                .collect::<Vec<_>>()
        }),
        slot_x,
        SLOT_W,
    );
    let notes_x = slot_x + if slots.is_some() { SLOT_W + 20.0 } else { 0.0 };
    let top = 44.0;
    let height = top + ROW * rows.len() as f64 + 8.0;
    let width = notes_x + 180.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}">"#
    );
    let bottom = height - 4.0;
    let _ = write!(svg, r#"<text x="0" y="12" font-weight="bold">step</text>"#);
    match &iova {
        Some(axis) => {
            let _ = write!(
                svg,
                r#"<text x="{LABEL}" y="12" font-weight="bold">IOVA: reservations (outline), PTEs (blue), device accesses (black / red)</text>"#
            );
            axis.ticks(&mut svg, top - 2.0, bottom);
        }
        None => {
            let _ = write!(
                svg,
                r#"<text x="{LABEL}" y="12" font-weight="bold">no IOVA space used</text>"#
            );
        }
    }
    if let Some(axis) = &slots {
        let _ = write!(
            svg,
            r#"<text x="{slot_x}" y="12" font-weight="bold">bounce slots</text>"#
        );
        axis.ticks(&mut svg, top - 2.0, bottom);
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + ROW * i as f64;
        if r.failing {
            let _ = write!(
                svg,
                r##"<rect class="failing" x="0" y="{y:.1}" width="{width:.0}" height="{ROW}" fill="#fbd0d0"><title>a mismatch at this step</title></rect>"##
            );
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="#b00000" font-weight="bold">✗</text>"##,
                LABEL - 14.0,
                y + 12.0
            );
        }
        let _ = write!(
            svg,
            r#"<text x="0" y="{:.1}">{}</text>"#,
            y + 12.0,
            esc(&r.label)
        );
        if let Some(axis) = &iova {
            for (a, b, s) in &r.reservations {
                let (x1, x2) = (axis.at(*a), axis.at(*b));
                let _ = write!(
                    svg,
                    r##"<rect class="reservation" x="{x1:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#eef3ff" stroke="#6d8bd1"><title>reservation {} [{a:#x}, {b:#x})</title></rect>"##,
                    y + 2.0,
                    (x2 - x1).max(1.0),
                    ROW - 4.0,
                    esc(s)
                );
            }
            for (a, b) in &r.ptes {
                let (x1, x2) = (axis.at(*a), axis.at(*b));
                let _ = write!(
                    svg,
                    r##"<rect class="pte" x="{x1:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#2f6fd6"><title>PTEs [{a:#x}, {b:#x})</title></rect>"##,
                    y + 5.0,
                    (x2 - x1).max(1.5),
                    ROW - 10.0
                );
            }
            if let Some((a, b, bad)) = r.access {
                let (x1, x2) = (axis.at(a), axis.at(b));
                let colour = if bad { "#d00000" } else { "#000000" };
                let _ = write!(
                    svg,
                    r#"<rect class="access" x="{x1:.1}" y="{:.1}" width="{:.1}" height="3" fill="{colour}"><title>device access [{a:#x}, {b:#x})</title></rect>"#,
                    y + ROW - 4.0,
                    (x2 - x1).max(2.0)
                );
            }
        }
        if let Some(axis) = &slots {
            for (a, b) in &r.slots {
                let (x1, x2) = (axis.at(*a), axis.at(*b));
                let _ = write!(
                    svg,
                    r##"<rect class="slot" x="{x1:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#e08a2c"><title>bounce slot [{a:#x}, {b:#x})</title></rect>"##,
                    y + 4.0,
                    (x2 - x1).max(1.5),
                    ROW - 8.0
                );
            }
        }
        if !r.notes.is_empty() {
            let _ = write!(
                svg,
                r##"<text x="{notes_x:.1}" y="{:.1}" fill="#b00000">{}</text>"##,
                y + 12.0,
                esc(&r.notes.join(", "))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn worst<'a>(classes: impl Iterator<Item = &'a ResultClass>) -> Option<ResultClass> {
    classes.copied().max_by_key(|c| rank(*c))
}

fn presets_of(v: &VectorReport) -> Vec<String> {
    if v.presets.is_empty() {
        vec![NOT_RUN.to_string()]
    } else {
        let set: BTreeSet<&String> = v.presets.iter().collect();
        set.into_iter().cloned().collect()
    }
}

/// A matrix cell's key (rule, preset, profile) and its vectors with their class.
type Cells<'a> = BTreeMap<(&'a str, String, Profile), Vec<(&'a str, ResultClass)>>;

fn matrix(report: &Report) -> String {
    // (rule, preset, profile) -> [(vector, class)]
    let mut cells: Cells = BTreeMap::new();
    let mut presets = BTreeSet::new();
    for v in &report.vectors {
        for preset in presets_of(v) {
            presets.insert(preset.clone());
            for rule in &v.rules {
                for (p, r) in &v.results {
                    cells
                        .entry((rule.as_str(), preset.clone(), *p))
                        .or_default()
                        .push((v.id.as_str(), r.class));
                }
            }
        }
    }
    let rules: BTreeSet<&str> = cells.keys().map(|(r, _, _)| *r).collect();
    let mut h = String::from(
        r#"<table class="matrix" id="matrix"><thead><tr><th rowspan="2" class="rule">rule</th>"#,
    );
    for preset in &presets {
        let _ = write!(
            h,
            r#"<th colspan="{}">{}</th>"#,
            report.profiles.len(),
            esc(preset)
        );
    }
    h.push_str("</tr><tr>");
    for _ in &presets {
        for p in &report.profiles {
            let _ = write!(h, "<th>{}</th>", p.name());
        }
    }
    h.push_str("</tr></thead><tbody>");
    for rule in rules {
        let _ = write!(h, r#"<tr><th class="rule">{}</th>"#, esc(rule));
        for preset in &presets {
            for p in &report.profiles {
                match cells.get(&(rule, preset.clone(), *p)) {
                    Some(list) => {
                        let w = worst(list.iter().map(|(_, c)| c)).unwrap_or(ResultClass::Pass);
                        let first = list
                            .iter()
                            .find(|(_, c)| *c == w)
                            .map(|(id, _)| *id)
                            .unwrap_or("");
                        let title: Vec<String> = list
                            .iter()
                            .map(|(id, c)| format!("{id}: {}", c.name()))
                            .collect();
                        let _ = write!(
                            h,
                            r##"<td class="cell c-{}" data-rule="{}" data-preset="{}" data-profile="{}" title="{}"><a href="#{}">{}</a></td>"##,
                            w.name(),
                            esc(rule),
                            esc(preset),
                            p.name(),
                            esc(&title.join("\n")),
                            anchor(first),
                            list.len()
                        );
                    }
                    None => h.push_str(r#"<td class="none"></td>"#),
                }
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    h
}

fn vector_section(v: &VectorReport) -> String {
    let mut h = format!(
        r#"<section class="vector" id="{}"><h3>{}</h3><p>"#,
        anchor(&v.id),
        esc(&v.id)
    );
    for (p, r) in &v.results {
        let _ = write!(
            h,
            r#"<span class="class c-{}">{} {}</span>"#,
            r.class.name(),
            p.name(),
            r.class.name()
        );
    }
    let _ = write!(
        h,
        "{}:{} · rules {}</p>",
        esc(&v.file.display().to_string()),
        v.line,
        esc(&v.rules.join(", "))
    );
    for e in &v.errors {
        let _ = write!(h, "<pre>{}</pre>", esc(e));
    }
    for (p, r) in &v.results {
        if r.class == ResultClass::Waived {
            if let Some(w) = v.waived.get(p) {
                let _ = write!(
                    h,
                    "<p>{} waived: {} ({})</p>",
                    p.name(),
                    esc(&w.reason),
                    esc(&w.at)
                );
            }
        } else if !r.class.is_ok() {
            let _ = write!(
                h,
                "<pre>{}: {}</pre>",
                p.name(),
                esc(&super::human::details(r))
            );
        }
    }
    let Some(trace) = v.trace.as_ref().and_then(|t| serde_json::to_value(t).ok()) else {
        h.push_str("</section>");
        return h;
    };
    for run in trace["runs"].as_array().into_iter().flatten() {
        let preset = run["preset"].as_str().unwrap_or("?");
        // Steps with a mismatch under any profile (None: the end state).
        let mut failing: BTreeSet<Option<usize>> = v
            .results
            .values()
            .filter(|r| !r.class.is_ok() || r.class == ResultClass::Waived)
            .flat_map(|r| &r.mismatches)
            .filter(|m| m.preset == preset)
            .map(|m| m.step)
            .collect();
        // A run that crashed or timed out stopped at its last recorded step.
        let stop = run["stop"]["kind"].as_str().unwrap_or("completed");
        let steps = run["steps"].as_array().map_or(0, Vec::len);
        if stop != "completed" && stop != "not_supported" && steps > 0 {
            failing.insert(Some(steps - 1));
        }
        let stopped = if stop == "completed" {
            String::new()
        } else {
            format!(
                " — stopped: {stop}: {}",
                esc(run["stop"]["detail"].as_str().unwrap_or(""))
            )
        };
        let _ = write!(
            h,
            "<h4>{}{stopped}</h4>{}",
            esc(preset),
            timeline(run, &failing)
        );
    }
    h.push_str("</section>");
    h
}

/// The page.
pub fn page(report: &Report) -> String {
    let mut h = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"><title>dmaconf: {}</title><style>{STYLE}</style></head><body><h1>dmaconf results: {}</h1>"#,
        esc(&report.implementation),
        esc(&report.implementation)
    );
    h.push_str("<p>");
    for (p, counts) in &report.summary {
        let parts: Vec<String> = counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{n} {}", c.name()))
            .collect();
        let _ = write!(h, "<b>{}</b>: {}<br>", p.name(), parts.join(", "));
    }
    h.push_str("</p>");
    for e in &report.errors {
        let _ = write!(h, "<pre>error: {}</pre>", esc(e));
    }
    h.push_str(r#"<p class="legend">"#);
    for c in ResultClass::ALL {
        let _ = write!(h, r#"<span class="c-{}">{}</span>"#, c.name(), c.name());
    }
    h.push_str("</p><h2>Rules × platform × profile</h2><p>Each cell: how many vectors cite the rule on that preset, coloured by the worst class; it links to such a vector.</p>");
    h.push_str(&matrix(report));
    h.push_str("<h2>Vectors</h2>");
    let mut order: Vec<&VectorReport> = report.vectors.iter().collect();
    order.sort_by_key(|v| {
        (
            std::cmp::Reverse(worst(v.results.values().map(|r| &r.class)).map(rank)),
            v.id.clone(),
        )
    });
    for v in order {
        h.push_str(&vector_section(v));
    }
    h.push_str("</body></html>\n");
    h
}

/// Writes `DIR/index.html`.
pub fn write(report: &Report, dir: &Path) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("index.html");
    std::fs::write(&path, page(report))?;
    Ok(path)
}
