//! Judging an execution against a vector's expectations under one profile
//! (`spec/2-outcomes.md` § "Profiles", `spec/INTERPRETING.md` § "Judging").

use std::collections::{BTreeMap, BTreeSet};

use dmaconf_machine::{Event, FieldValue};
use dmaconf_platform::{errno, PgtableBackend};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::door::Observes;
use crate::exec::{hex, pattern_bytes, Execution, Ret, Run, RunSymbols, StepTrace, Stop};
use crate::expr::{self, Symbols};
use crate::invariants;
use crate::model::{Atom, EventExpect, Expected, HazardSet, Step, StepExpect, Vector};

/// The two profiles (`spec/2-outcomes.md`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    Semantic,
    Linux,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Semantic, Profile::Linux];
    pub fn name(self) -> &'static str {
        match self {
            Profile::Semantic => "semantic",
            Profile::Linux => "linux",
        }
    }
}

/// The closed list of result classes (`spec/2-outcomes.md` § "Result classes").
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ResultClass {
    Pass,
    Fail,
    NotSupported,
    Misuse,
    Crash,
    Timeout,
    HarnessError,
    Waived,
}

impl ResultClass {
    pub const ALL: [ResultClass; 8] = [
        ResultClass::Pass,
        ResultClass::Fail,
        ResultClass::NotSupported,
        ResultClass::Misuse,
        ResultClass::Crash,
        ResultClass::Timeout,
        ResultClass::HarnessError,
        ResultClass::Waived,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ResultClass::Pass => "pass",
            ResultClass::Fail => "fail",
            ResultClass::NotSupported => "not_supported",
            ResultClass::Misuse => "misuse",
            ResultClass::Crash => "crash",
            ResultClass::Timeout => "timeout",
            ResultClass::HarnessError => "harness_error",
            ResultClass::Waived => "waived",
        }
    }
    /// Whether a run with this result keeps the exit code at 0.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            ResultClass::Pass
                | ResultClass::NotSupported
                | ResultClass::Misuse
                | ResultClass::Waived
        )
    }
}

/// One difference between expected and observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Mismatch {
    pub preset: String,
    /// The step, counted from 1 as people count them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// The step's own line in the vector file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub what: String,
    pub expected: String,
    pub actual: String,
    /// A line diff (expected -> actual) for lists such as events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// The judgement of one vector under one profile.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Verdict {
    pub class: ResultClass,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
    /// Which value an implementation chose where the spec leaves the choice to it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chosen: Vec<String>,
}

impl Verdict {
    pub fn of(class: ResultClass, reason: impl Into<String>) -> Verdict {
        Verdict {
            class,
            reason: Some(reason.into()),
            mismatches: Vec::new(),
            chosen: Vec::new(),
        }
    }
}

/// Merges the profile's view of a step's expectations: `expect`, then `linux` on top.
fn merged(step: &Step, profile: Profile) -> StepExpect {
    let mut out = step.expect.clone().unwrap_or_default();
    if profile == Profile::Linux {
        if let Some(l) = &step.linux {
            out.ret = l.ret.clone().or(out.ret);
            out.data = l.data.clone().or(out.data);
            out.fault = l.fault.clone().or(out.fault);
            out.hazards = l.hazards.clone().or(out.hazards);
            out.sg = l.sg.clone().or(out.sg);
            out.events = l.events.clone();
            if let Some(ls) = &l.state {
                let mut s = out.state.unwrap_or_default();
                s.addr = ls.addr.clone().or(s.addr);
                s.size = ls.size.clone().or(s.size);
                s.use_swiotlb = ls.use_swiotlb.clone().or(s.use_swiotlb);
                out.state = Some(s);
            }
        }
        // For an API call the linux profile checks the complete event list: none given, none
        // allowed.
        if out.events.is_none() && is_api_call(step) {
            out.events = Some(Vec::new());
        }
    }
    out
}

/// A call into the implementation (its events are judged under the linux profile).
fn is_api_call(step: &Step) -> bool {
    !is_access(step) && step.state_set.is_none()
}

/// A device or CPU data access.
fn is_access(step: &Step) -> bool {
    step.device_read.is_some()
        || step.device_write.is_some()
        || step.cpu_read.is_some()
        || step.cpu_write.is_some()
        || step.cpu_speculate.is_some()
}

/// A judged outcome: a mismatch, a vector bug, or fine.
type Check = Result<Option<Mismatch>, String>;

struct Judge<'a> {
    run: &'a Run,
    mismatches: Vec<Mismatch>,
    chosen: Vec<String>,
    fills: BTreeMap<String, u64>,
    /// The file line of the step being judged.
    line: Option<u64>,
    /// `i` of the repetition being judged.
    repetition: Option<u64>,
}

impl Judge<'_> {
    fn mismatch(
        &self,
        step: Option<usize>,
        what: &str,
        expected: String,
        actual: String,
    ) -> Mismatch {
        Mismatch {
            preset: self.run.preset.clone(),
            step,
            line: step.and(self.line),
            what: match self.repetition {
                Some(i) if step.is_some() => format!("{what} (i = {i})"),
                _ => what.to_string(),
            },
            expected,
            actual,
            diff: None,
        }
    }

    /// Checks `expected` against an observation with `matches` deciding each allowed atom.
    fn graded(
        &mut self,
        step: Option<usize>,
        what: &str,
        expected: &Expected,
        actual: String,
        matches: impl Fn(&Atom) -> Result<bool, String>,
    ) -> Check {
        let (atoms, chooses) = match expected {
            Expected::Undefined => return Ok(None),
            Expected::Exact(a) => (std::slice::from_ref(a), false),
            Expected::OneOf(v) => (v.as_slice(), false),
            Expected::ImplementationDefined(v) => (v.as_slice(), true),
        };
        for a in atoms {
            if matches(a)? {
                if chooses {
                    let at = step.map(|s| format!("step {s} ")).unwrap_or_default();
                    self.chosen.push(format!("{at}{what}: {a}"));
                }
                return Ok(None);
            }
        }
        let shown = match expected {
            Expected::Exact(a) => a.to_string(),
            Expected::OneOf(v) => format!("one of [{}]", join(v)),
            Expected::ImplementationDefined(v) => {
                format!("implementation-defined, one of [{}]", join(v))
            }
            Expected::Undefined => String::new(),
        };
        Ok(Some(self.mismatch(step, what, shown, actual)))
    }
}

fn join(v: &[Atom]) -> String {
    v.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolves a page-table error class (`pgtable:already_mapped`) through the preset's backend
/// (`spec/2-outcomes.md` § "Return values").
fn pgtable_class(class: &str, backend: PgtableBackend) -> Option<i32> {
    use dmaconf_platform::errno::*;
    let arm = backend == PgtableBackend::IoPgtableArm;
    Some(-match class {
        "no_access" => EINVAL,
        "misaligned" if arm => EINVAL,
        "misaligned" => ENXIO,
        "already_mapped" if arm => EEXIST,
        "already_mapped" => EADDRINUSE,
        "out_of_range" => ERANGE,
        _ => return None,
    })
}

fn ret_matches(
    a: &Atom,
    ret: &Ret,
    sym: &dyn Symbols,
    backend: Option<PgtableBackend>,
) -> Result<bool, String> {
    match (a, ret) {
        (Atom::Str(s), Ret::Errno(x)) if s.starts_with("pgtable:") => {
            let class = &s["pgtable:".len()..];
            let backend = backend.ok_or("no page-table backend on this platform")?;
            pgtable_class(class, backend)
                .map(|e| e == *x)
                .ok_or_else(|| format!("unknown page-table class `{s}`"))
        }
        (Atom::Bool(b), Ret::Bool(x)) => Ok(b == x),
        (Atom::Str(s), Ret::Name(n)) => Ok(s == n),
        (a, Ret::Sg(r)) => ret_matches(a, &Ret::Errno(r.ret), sym, backend),
        (Atom::Int(v), Ret::Errno(x)) => Ok(*v == i128::from(*x)),
        (Atom::Str(s), Ret::Errno(x)) if s == "ok" => Ok(*x == 0),
        (Atom::Str(s), Ret::Errno(x)) if s == "error" => Ok(*x < 0),
        (Atom::Str(s), Ret::Errno(x)) => errno::parse(s)
            .map(|e| e == *x)
            .ok_or_else(|| format!("`{s}` is not an errno name, `ok` or `error`")),
        (Atom::Str(s), Ret::Value(v)) if s == "mapping_error" => {
            Ok(*v == hex(dmaconf_platform::DMA_MAPPING_ERROR))
        }
        (Atom::Str(s), Ret::Value(v)) if s == "mapped" => {
            Ok(*v != hex(dmaconf_platform::DMA_MAPPING_ERROR))
        }
        (a @ (Atom::Int(_) | Atom::Str(_)), Ret::Value(v)) => {
            Ok(hex(expr::eval_atom(a, sym)?) == *v)
        }
        (a, r) => Err(format!("`{a}` cannot describe the result {r:?}")),
    }
}

fn sg_text(segs: &[(u64, u64)]) -> String {
    segs.iter()
        .map(|(d, l)| format!("{{dma: {}, len: {}}}", hex(*d), hex(*l)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ret_text(r: &Ret) -> String {
    match r {
        Ret::Bool(b) => b.to_string(),
        Ret::Errno(e) => errno::name(*e),
        Ret::Value(v) | Ret::Name(v) => v.clone(),
        Ret::Sg(r) => format!("{} [{}]", errno::name(r.ret), sg_text(&r.sg)),
    }
}

fn u64_matches(a: &Atom, actual: u64, sym: &dyn Symbols) -> Result<bool, String> {
    Ok(expr::eval_atom(a, sym)? == actual)
}

fn field_matches(a: &Atom, actual: &FieldValue, sym: &dyn Symbols) -> Result<bool, String> {
    match actual {
        FieldValue::U64(x) => u64_matches(a, *x, sym),
        FieldValue::I64(x) => match a {
            Atom::Int(v) => Ok(*v == i128::from(*x)),
            Atom::Str(s) => errno::parse(s)
                .map(|e| i64::from(e) == *x)
                .ok_or_else(|| format!("`{s}` is not an errno name")),
            Atom::Bool(_) => Err("a boolean cannot describe a number".into()),
        },
        FieldValue::Str(s) => Ok(matches!(a, Atom::Str(e) if e == s)),
    }
}

fn field_text(v: &FieldValue) -> String {
    match v {
        FieldValue::U64(x) => hex(*x),
        FieldValue::I64(x) => i32::try_from(*x)
            .map(errno::name)
            .unwrap_or_else(|_| x.to_string()),
        FieldValue::Str(s) => s.clone(),
    }
}

fn event_line(e: &Event) -> String {
    let fields: Vec<String> = e
        .fields()
        .iter()
        .map(|(k, v)| format!("{k}={}", field_text(v)))
        .collect();
    format!("{} {}", e.name(), fields.join(" "))
        .trim_end()
        .to_string()
}

fn expected_event_line(e: &EventExpect, sym: &dyn Symbols) -> String {
    // Show fields in the event's own order, as the actual side does, so the diff lines up.
    let order: &[&str] = crate::model::EVENT_FIELDS
        .iter()
        .find(|(k, _)| *k == e.kind)
        .map(|(_, f)| *f)
        .unwrap_or(&[]);
    let mut keys: Vec<&String> = e.fields.keys().collect();
    keys.sort_by_key(|k| order.iter().position(|o| o == k).unwrap_or(usize::MAX));
    let fields: Vec<String> = keys
        .into_iter()
        .map(|k| (k, &e.fields[k]))
        .map(|(k, v)| {
            let shown = match v {
                Expected::Exact(Atom::Int(i)) if *i < 0 => i32::try_from(*i)
                    .map(errno::name)
                    .unwrap_or_else(|_| i.to_string()),
                Expected::Exact(a) => match expr::eval_atom(a, sym) {
                    Ok(x) => hex(x),
                    Err(_) => a.to_string(),
                },
                other => format!("{other:?}"),
            };
            format!("{k}={shown}")
        })
        .chain(
            (order.contains(&"ret") && !e.fields.contains_key("ret")).then(|| "ret=0".to_string()),
        )
        .collect();
    format!("{} {}", e.kind, fields.join(" "))
        .trim_end()
        .to_string()
}

/// Does one actual event satisfy one expected event? Err = the expectation itself is broken.
fn event_matches(
    exp: &EventExpect,
    act: &Event,
    sym: &dyn Symbols,
    observes: Option<&Observes>,
) -> Result<bool, String> {
    if exp.kind != act.name() {
        return Ok(false);
    }
    let fields = act.fields();
    let failed = fields
        .iter()
        .any(|(k, v)| *k == "ret" && matches!(v, FieldValue::I64(r) if *r != 0));
    for (name, want) in &exp.fields {
        if observes.is_some_and(|o| {
            !o.sees_field(&exp.kind, name) || (failed && o.unseen_when_failed(&exp.kind, name))
        }) {
            continue;
        }
        let Some((_, have)) = fields.iter().find(|(k, _)| k == name) else {
            return Err(format!("event `{}` has no field `{name}`", exp.kind));
        };
        let ok = match want {
            Expected::Undefined => true,
            Expected::Exact(a) => field_matches(a, have, sym)?,
            Expected::OneOf(v) | Expected::ImplementationDefined(v) => {
                let mut any = false;
                for a in v {
                    any |= field_matches(a, have, sym)?;
                }
                any
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    // `ret` defaults to 0: an unlisted failure is still a failure.
    if !exp.fields.contains_key("ret") {
        if let Some((_, FieldValue::I64(r))) = fields.iter().find(|(k, _)| *k == "ret") {
            if *r != 0 {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The pattern a data expectation names, as the vector wrote it.
fn pattern_name(p: &crate::model::PatternSpec, fills: &BTreeMap<String, u64>) -> String {
    let from = match p.at {
        Some(at) if at != 0 => format!(" from its byte {at:#x}"),
        _ => String::new(),
    };
    match (p.seed, p.byte, &p.buf) {
        (Some(seed), _, _) => format!("pattern seed {seed}{from}"),
        (_, Some(b), _) => format!("byte {b:#04x} repeated"),
        (_, _, Some(name)) => match fills.get(name) {
            Some(seed) => format!("buffer `{name}`'s fill (pattern seed {seed}){from}"),
            None => format!("buffer `{name}`'s fill{from}"),
        },
        _ => "the pattern".into(),
    }
}

/// Judges one vector's execution under one profile.
pub fn judge(vector: &Vector, exec: &Execution, profile: Profile) -> Verdict {
    let fills: BTreeMap<String, u64> = vector
        .buffers
        .iter()
        .filter_map(|(n, b)| b.fill.map(|f| (n.clone(), f)))
        .collect();
    let mut mismatches = Vec::new();
    let mut chosen = Vec::new();
    for run in &exec.runs {
        match &run.stop {
            Stop::Harness(e) => {
                return Verdict::of(ResultClass::HarnessError, format!("{}: {e}", run.preset))
            }
            Stop::Crash(e) => {
                return Verdict::of(ResultClass::Crash, format!("{}: {e}", run.preset))
            }
            Stop::NotSupported(e) => {
                return Verdict::of(ResultClass::NotSupported, format!("{}: {e}", run.preset))
            }
            Stop::Timeout(e) => {
                return Verdict::of(ResultClass::Timeout, format!("{}: {e}", run.preset))
            }
            Stop::Completed => {}
        }
        if !run.end.not_modelled.is_empty() {
            return Verdict::of(
                ResultClass::NotSupported,
                format!(
                    "{}: the machine does not model {} yet",
                    run.preset,
                    run.end.not_modelled.join(", ")
                ),
            );
        }
        let mut j = Judge {
            run,
            mismatches: Vec::new(),
            chosen: Vec::new(),
            fills: fills.clone(),
            line: None,
            repetition: None,
        };
        if let Err(e) = judge_run(&mut j, vector, profile) {
            return Verdict::of(
                ResultClass::HarnessError,
                format!(
                    "{}: the vector's expectation cannot be evaluated: {e}",
                    run.preset
                ),
            );
        }
        mismatches.extend(j.mismatches);
        chosen.extend(j.chosen);
    }
    let class = if !mismatches.is_empty() {
        ResultClass::Fail
    } else if vector.misuse.is_some() {
        ResultClass::Misuse
    } else {
        ResultClass::Pass
    };
    Verdict {
        class,
        reason: None,
        mismatches,
        chosen,
    }
}

fn judge_run(j: &mut Judge<'_>, vector: &Vector, profile: Profile) -> Result<(), String> {
    let run = j.run;
    // Each trace is judged against the step it ran (a repeated step has one per repetition).
    for trace in &run.steps {
        let Some(spec) = vector.steps.get(trace.index) else {
            continue;
        };
        let step = &spec.value;
        let exp = merged(step, profile);
        let sym = RunSymbols {
            buffers: &run.buffer_places,
            states: trace.states_after.clone(),
            granule: run.facts.map(|f| f.granule()).unwrap_or(0),
            pool: run.pool,
            index: trace.repetition,
        };
        j.line = Some(spec.line);
        j.repetition = trace.repetition;
        judge_step(j, step, trace, &exp, &sym)
            .map_err(|e| format!("step {} (line {}): {e}", trace.index + 1, spec.line))?;
        if run.end.checked {
            judge_detected(
                j,
                Some(trace.index + 1),
                step.detected.as_deref(),
                &trace.detected,
            );
        }
    }
    // The allocation invariants are promises to callers that keep their obligations; a vector
    // that breaks one on purpose may show them broken (spec/INTERPRETING.md).
    if vector.misuse.is_none() {
        j.mismatches.extend(invariants::check(vector, run));
    }
    judge_end(j, vector)
}

fn judge_step(
    j: &mut Judge<'_>,
    step: &Step,
    t: &StepTrace,
    exp: &StepExpect,
    sym: &RunSymbols<'_>,
) -> Result<(), String> {
    let at = Some(t.index + 1);
    let mut found: Vec<Mismatch> = Vec::new();
    if let Some(want) = &exp.ret {
        let ret = t
            .ret
            .as_ref()
            .ok_or_else(|| format!("`{}` returns nothing to compare with `ret`", t.action))?;
        let backend = j.run.facts.map(|f| f.backend);
        found.extend(j.graded(at, "ret", want, ret_text(ret), |a| {
            ret_matches(a, ret, sym, backend)
        })?);
    }
    if let Some(s) = &exp.state {
        let st = t
            .state
            .as_ref()
            .ok_or_else(|| format!("`{}` has no state to compare", t.action))?;
        let name = t.args.get("state").cloned().unwrap_or_default();
        let (addr, word) = sym.states.get(&name).copied().unwrap_or((0, 0));
        if let Some(w) = &s.addr {
            found.extend(j.graded(at, "state.addr", w, st.addr.clone(), |a| {
                u64_matches(a, addr, sym)
            })?);
        }
        if let Some(w) = &s.size {
            let size = word & !dmaconf_platform::DMA_IOVA_USE_SWIOTLB;
            found.extend(j.graded(at, "state.size", w, st.size.clone(), |a| {
                u64_matches(a, size, sym)
            })?);
        }
        if let Some(w) = &s.use_swiotlb {
            found.extend(j.graded(
                at,
                "state.use_swiotlb",
                w,
                st.use_swiotlb.to_string(),
                |a| match a {
                    Atom::Bool(b) => Ok(*b == st.use_swiotlb),
                    other => Err(format!("`{other}` is not a boolean")),
                },
            )?);
        }
    }
    if let Some(want) = &exp.sg {
        let have: &[(u64, u64)] = match &t.ret {
            Some(Ret::Sg(r)) => &r.sg,
            _ => {
                return Err(format!(
                    "`{}` returns no DMA segments to compare with `sg`",
                    t.action
                ))
            }
        };
        if want.len() != have.len() {
            found.push(j.mismatch(
                at,
                "sg",
                format!("{} DMA segments", want.len()),
                format!("{} DMA segments: {}", have.len(), sg_text(have)),
            ));
        } else {
            for (i, (w, (dma, len))) in want.iter().zip(have).enumerate() {
                found.extend(
                    j.graded(at, &format!("sg.{i}.dma"), &w.dma, hex(*dma), |a| {
                        u64_matches(a, *dma, sym)
                    })?,
                );
                found.extend(
                    j.graded(at, &format!("sg.{i}.len"), &w.len, hex(*len), |a| {
                        u64_matches(a, *len, sym)
                    })?,
                );
            }
        }
    }
    if let Some(all) = &exp.events {
        // A door that sees only some kinds is judged on those (spec/INTERPRETING.md § Doors).
        let observes = j.run.observes.as_ref();
        let events: Vec<&EventExpect> = all
            .iter()
            .filter(|e| observes.is_none_or(|o| o.sees_kind(&e.kind)))
            .collect();
        let ok = events.len() == t.raw_events.len()
            && events
                .iter()
                .zip(&t.raw_events)
                .map(|(e, a)| event_matches(e, a, sym, observes))
                .collect::<Result<Vec<bool>, String>>()?
                .into_iter()
                .all(|b| b);
        if !ok {
            let want: Vec<String> = events.iter().map(|e| expected_event_line(e, sym)).collect();
            let have: Vec<String> = t.raw_events.iter().map(event_line).collect();
            let (w, h) = (want.join("\n") + "\n", have.join("\n") + "\n");
            let diff = similar::TextDiff::from_lines(&w, &h)
                .unified_diff()
                .header("expected", "actual")
                .to_string();
            let plural = |n: usize| if n == 1 { "event" } else { "events" };
            let actual = if want.len() == have.len() {
                let differ = want.iter().zip(&have).filter(|(w, h)| w != h).count();
                format!("the same number, {differ} of them different (diff below)")
            } else {
                format!("{} {}", have.len(), plural(have.len()))
            };
            let mut m = j.mismatch(
                at,
                "events",
                format!("{} {}", want.len(), plural(want.len())),
                actual,
            );
            m.diff = Some(diff);
            found.push(m);
        }
    }
    if is_access(step) && t.unobserved.is_none() {
        if let Some(p) = &exp.data {
            let len = t.args.get("len").and_then(|l| expr::number(l));
            let want = pattern_bytes(p, len, &j.fills)?;
            match &t.data {
                Some(d) if d.bytes == want => {}
                Some(d) => {
                    let first = d.bytes.iter().zip(&want).position(|(a, b)| a != b);
                    found.push(j.mismatch(
                        at,
                        "data",
                        format!("{} bytes of {}", want.len(), pattern_name(p, &j.fills)),
                        match first {
                            Some(i) => format!(
                                "{} bytes, first difference at byte {i:#x}: {:#04x} instead of {:#04x}",
                                d.bytes.len(),
                                d.bytes[i],
                                want[i]
                            ),
                            None => format!("{} bytes", d.bytes.len()),
                        },
                    ))
                }
                None => found.push(j.mismatch(
                    at,
                    "data",
                    format!("{} bytes", want.len()),
                    "no data: the access faulted or moved nothing".into(),
                )),
            }
        }
        if step.device_read.is_some() || step.device_write.is_some() {
            let fault = t
                .fault
                .as_ref()
                .and_then(|f| f.get("reason"))
                .and_then(|r| r.as_str())
                .unwrap_or("none")
                .to_string();
            let want = exp
                .fault
                .clone()
                .unwrap_or(Expected::Exact(Atom::Str("none".into())));
            found.extend(j.graded(at, "fault", &want, fault.clone(), |a| match a {
                Atom::Str(s) => Ok(*s == fault),
                Atom::Bool(b) => Ok(*b == (fault != "none")),
                other => Err(format!("`{other}` is not a fault name")),
            })?);
        }
        let want: Option<BTreeSet<&str>> = match &exp.hazards {
            None => Some(BTreeSet::new()),
            Some(HazardSet::Undefined) => None,
            Some(HazardSet::Exactly(v)) => Some(v.iter().map(String::as_str).collect()),
        };
        let have: BTreeSet<&str> = t.hazards.iter().map(String::as_str).collect();
        if let Some(want) = want.filter(|w| *w != have) {
            found.push(j.mismatch(at, "hazards", format!("{want:?}"), format!("{have:?}")));
        }
    }
    j.mismatches.extend(found);
    Ok(())
}

/// The misuse checker's findings against the codes a step (or the end) states, under every
/// profile: the checker judges the driver, not the implementation (spec/10-misuse-checker.md).
fn judge_detected(j: &mut Judge<'_>, at: Option<usize>, want: Option<&[String]>, have: &[String]) {
    let observes = j.run.observes.as_ref();
    let seen = |c: &&str| observes.is_none_or(|o| o.sees_code(c));
    let want: BTreeSet<&str> = want
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .filter(seen)
        .collect();
    let have: BTreeSet<&str> = have.iter().map(String::as_str).filter(seen).collect();
    if want != have {
        let what = if at.is_some() {
            "detected"
        } else {
            "end.detected"
        };
        let m = j.mismatch(at, what, format!("{want:?}"), format!("{have:?}"));
        j.mismatches.push(m);
    }
}

fn judge_end(j: &mut Judge<'_>, vector: &Vector) -> Result<(), String> {
    let run = j.run;
    let end = vector.end.clone().unwrap_or_default();
    if run.end.checked {
        judge_detected(j, None, end.detected.as_deref(), &run.end.detected);
    }
    let zero = Expected::Exact(Atom::Int(0));
    let sym = RunSymbols {
        buffers: &run.buffer_places,
        states: BTreeMap::new(),
        granule: 0,
        pool: run.pool,
        index: None,
    };
    let mappings = run.mapping_count as u64;
    let m = j.graded(
        None,
        "end.live_mappings",
        end.live_mappings.as_ref().unwrap_or(&zero),
        format!(
            "{mappings} ({})",
            serde_json::to_string(&run.end.mappings).unwrap_or_default()
        ),
        |a| u64_matches(a, mappings, &sym),
    )?;
    j.mismatches.extend(m);
    let slots = run.bounce_count as u64;
    let m = j.graded(
        None,
        "end.live_bounce_slots",
        end.live_bounce_slots.as_ref().unwrap_or(&zero),
        slots.to_string(),
        |a| u64_matches(a, slots, &sym),
    )?;
    j.mismatches.extend(m);
    let want: BTreeSet<&str> = end
        .leaked_states
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let have: BTreeSet<&str> = run
        .end
        .reservations
        .iter()
        .filter(|r| !r.freed)
        .map(|r| r.state.as_str())
        .collect();
    if want != have {
        let m = j.mismatch(
            None,
            "end.leaked_states",
            format!("{want:?}"),
            format!("{have:?}"),
        );
        j.mismatches.push(m);
    }
    Ok(())
}
