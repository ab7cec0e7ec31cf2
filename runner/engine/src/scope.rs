//! What each step of a vector may name, checked before anything runs (issue 15): a buffer the
//! vector never declares (`buf.zz`), a state or handle no earlier step made (`s9.addr`), a list
//! no `dma_map_sg` mapped. Found here, each is an error at the step's file:line:column, in
//! `run` and in `lint` alike, rather than a message without a place when the step runs.
//!
//! A state comes into being at the first step that names it (`state:`, a map's `handle:`; a call
//! on a state no step allocated uses a zeroed one, as a caller's fresh struct would), a list at
//! its `dma_map_sg`. A step's arguments see what earlier steps made; its expectations, which
//! are judged after it ran, also see what it made itself.

use std::collections::BTreeSet;

use crate::expr::{self, Symbols};
use crate::model::{Atom, Expected, Expr, PatternSpec, Step, StepExpect, Vector};

/// The names known at one point of a vector.
#[derive(Default)]
struct Known<'a> {
    buffers: BTreeSet<&'a str>,
    /// Buffers with a `fill` (a pattern may name them with `buf:`).
    filled: BTreeSet<&'a str>,
    states: BTreeSet<&'a str>,
    lists: BTreeSet<&'a str>,
    /// The step being checked has `repeat`, so `i` names its index.
    repeated: bool,
}

impl Symbols for Known<'_> {
    fn buffer(&self, name: &str) -> Option<(u64, u64)> {
        self.buffers.contains(name).then_some((0, 0))
    }
    fn state(&self, name: &str) -> Option<(u64, u64)> {
        // `LIST.N` is DMA segment N of a mapped list (how many there are is known only when the
        // list is mapped).
        let known = match name.split_once('.') {
            Some((list, _)) => self.lists.contains(list),
            None => self.states.contains(name),
        };
        known.then_some((0, 0))
    }
    fn granule(&self) -> u64 {
        0
    }
    fn pool(&self) -> Option<u64> {
        Some(0)
    }
    fn index(&self) -> Option<u64> {
        self.repeated.then_some(0)
    }
}

impl<'a> Known<'a> {
    fn expr(&self, e: &Expr) -> Result<(), String> {
        match &e.0 {
            Atom::Str(s) => expr::check_names(s, self),
            _ => Ok(()),
        }
    }

    fn pattern(&self, p: &PatternSpec) -> Result<(), String> {
        match &p.buf {
            Some(b) if !self.filled.contains(b.as_str()) => {
                Err(format!("no buffer `{b}` with a `fill` in this vector"))
            }
            _ => Ok(()),
        }
    }

    /// An expected value may be an errno name or a keyword (`-EIO`, `ok`); only a string that is
    /// a well-formed expression is one whose names must exist.
    fn expected(&self, e: &Expected) -> Result<(), String> {
        let atoms: &[Atom] = match e {
            Expected::Exact(a) => std::slice::from_ref(a),
            Expected::OneOf(v) | Expected::ImplementationDefined(v) => v,
            Expected::Undefined => &[],
        };
        for a in atoms {
            if let Atom::Str(s) = a {
                if expr::check_syntax(s).is_ok() {
                    expr::check_names(s, self)?;
                }
            }
        }
        Ok(())
    }

    fn expectations(&self, e: &StepExpect) -> Result<(), String> {
        let mut values: Vec<&Expected> = [&e.ret, &e.fault].into_iter().flatten().collect();
        if let Some(s) = &e.state {
            values.extend([&s.addr, &s.size, &s.use_swiotlb].into_iter().flatten());
        }
        for ev in e.events.iter().flatten() {
            values.extend(ev.fields.values());
        }
        for sg in e.sg.iter().flatten() {
            values.extend([&sg.dma, &sg.len]);
        }
        for v in values {
            self.expected(v)?;
        }
        if let Some(p) = &e.data {
            self.pattern(p)?;
        }
        Ok(())
    }

    /// The step's arguments, against what earlier steps made.
    fn arguments(&self, s: &Step) -> Result<(), String> {
        let mut exprs: Vec<&Expr> = Vec::new();
        let mut patterns: Vec<&PatternSpec> = Vec::new();
        if let Some(a) = &s.dma_iova_try_alloc {
            exprs.extend([&a.phys, &a.size]);
        }
        if let Some(a) = &s.dma_iova_link {
            exprs.extend([&a.phys, &a.offset, &a.size]);
        }
        if let Some(a) = &s.dma_iova_sync {
            exprs.extend([&a.offset, &a.size]);
        }
        if let Some(a) = &s.dma_iova_unlink {
            exprs.extend([&a.offset, &a.size]);
        }
        if let Some(a) = &s.dma_iova_destroy {
            exprs.push(&a.mapped_len);
        }
        for a in [&s.device_read, &s.cpu_read, &s.cpu_speculate]
            .into_iter()
            .flatten()
        {
            exprs.extend([&a.addr, &a.len]);
        }
        for a in [&s.device_write, &s.cpu_write].into_iter().flatten() {
            exprs.push(&a.addr);
            patterns.push(&a.data);
        }
        if let Some(a) = &s.state_set {
            exprs.extend([&a.addr, &a.size]);
        }
        for a in [&s.dma_map_phys, &s.dma_map_page_attrs, &s.dma_map_resource]
            .into_iter()
            .flatten()
        {
            exprs.extend([&a.phys, &a.size]);
        }
        for a in [
            &s.dma_unmap_phys,
            &s.dma_unmap_page_attrs,
            &s.dma_unmap_resource,
        ]
        .into_iter()
        .flatten()
        {
            exprs.extend([&a.addr, &a.size]);
        }
        if let Some(a) = &s.dma_need_sync {
            exprs.push(&a.addr);
        }
        for a in [&s.dma_sync_single_for_cpu, &s.dma_sync_single_for_device]
            .into_iter()
            .flatten()
        {
            exprs.extend([&a.addr, &a.size]);
        }
        if let Some(a) = &s.pci_p2pdma_state {
            exprs.push(&a.phys);
        }
        if let Some(a) = &s.dma_map_sg {
            for seg in &a.segs {
                exprs.extend([&seg.phys, &seg.len]);
            }
        }
        if let Some(a) = &s.dma_unmap_sg {
            if !self.lists.contains(a.list.as_str()) {
                return Err(format!(
                    "no list `{}` mapped by an earlier dma_map_sg step",
                    a.list
                ));
            }
        }
        for e in exprs {
            self.expr(e)?;
        }
        for p in patterns {
            self.pattern(p)?;
        }
        Ok(())
    }

    /// What the step makes: the state or handle it names, the list it maps.
    fn made_by(&mut self, s: &'a Step) {
        let state = [
            s.dma_iova_try_alloc.as_ref().map(|a| &a.state),
            s.dma_iova_link.as_ref().map(|a| &a.state),
            s.dma_iova_sync.as_ref().map(|a| &a.state),
            s.dma_iova_unlink.as_ref().map(|a| &a.state),
            s.dma_iova_destroy.as_ref().map(|a| &a.state),
            s.dma_iova_free.as_ref().map(|a| &a.state),
            s.dma_use_iova.as_ref().map(|a| &a.state),
            s.dma_iova_size.as_ref().map(|a| &a.state),
            s.state_set.as_ref().map(|a| &a.state),
            s.dma_map_phys.as_ref().map(|a| &a.handle),
            s.dma_map_page_attrs.as_ref().map(|a| &a.handle),
            s.dma_map_resource.as_ref().map(|a| &a.handle),
        ];
        self.states
            .extend(state.into_iter().flatten().map(String::as_str));
        if let Some(a) = &s.dma_map_sg {
            self.lists.insert(&a.list);
        }
    }
}

/// The step's line and column (none: the vector as a whole) and what is wrong there.
type Refusal = (Option<(u64, u64)>, String);

/// Checks every name a vector uses; the error carries the step's line and column (as the
/// vector's steps hold them) and says what is missing.
pub fn check(v: &Vector) -> Result<(), Refusal> {
    let mut known = Known {
        buffers: v.buffers.keys().map(String::as_str).collect(),
        filled: v
            .buffers
            .iter()
            .filter(|(_, b)| b.fill.is_some())
            .map(|(n, _)| n.as_str())
            .collect(),
        ..Known::default()
    };
    for (i, step) in v.steps.iter().enumerate() {
        let at = |m: String| {
            (
                Some((step.line, step.column)),
                format!("step {}: {m}", i + 1),
            )
        };
        known.repeated = step.value.repeat.is_some();
        known.arguments(&step.value).map_err(at)?;
        known.made_by(&step.value);
        for e in [&step.value.expect, &step.value.linux]
            .into_iter()
            .flatten()
        {
            known.expectations(e).map_err(at)?;
        }
    }
    for name in v.end.iter().flat_map(|e| e.leaked_states.iter().flatten()) {
        if !known.states.contains(name.as_str()) {
            return Err((
                None,
                format!("`end.leaked_states` names `{name}`, which no step makes"),
            ));
        }
    }
    Ok(())
}
