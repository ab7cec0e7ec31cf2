//! Fault injection, as iommufd's `fail_nth` does for its own code (issue 15): every vector runs
//! once per fallible platform call it makes, with the n-th such call failing. A correct DMA
//! layer unwinds: the call that met the failure returns an error, and leaves no page-table
//! entry, no bounce slot and no stale IOTLB entry that was not there before it (LINK-09's
//! unwind, `iommu_map`'s own roll-back, `swiotlb_tbl_unmap_single` on the error path).
//!
//! The fallible platform calls are `iommu_map`, `iotlb_sync_map` and `bounce_alloc`. The IOVA
//! allocator is the DMA layer's own (`spec/1-platform.md`), so the platform cannot fail it; an
//! implementation's IOVA bookkeeping after a failed streaming map is not visible here.

use dmaconf_machine::Machine;
use dmaconf_platform::{
    errno, Dir, Platform, PlatformFacts, Prot, Region, WarnCode, DMA_MAPPING_ERROR,
};
use serde::Serialize;

use crate::exec::{execute_failing, hex, Ret};
use crate::implementation::Implementation;
use crate::model::Vector;
use crate::preset::Presets;

/// Which fallible call to fail in one run, and what happened.
#[derive(Clone, Debug, Default)]
pub struct FailPlan {
    /// The 1-based number of the fallible call to fail (0: none, only count).
    pub fail_at: u64,
    /// Fallible calls made so far.
    pub calls: u64,
    /// The call that was failed, once it has been.
    pub failed: Option<&'static str>,
}

/// What the machine holds that a failed call must give back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub mappings: Vec<(u64, u64)>,
    pub slots: Vec<(u64, u64)>,
    pub stale: Vec<(u64, u64)>,
}

impl Held {
    pub fn of(m: &Machine) -> Held {
        Held {
            mappings: m.mappings().iter().map(|x| (x.iova, x.len)).collect(),
            slots: m.live_bounce_slots(),
            stale: m.stale_translations(),
        }
    }
}

/// The step during which the injected failure happened.
#[derive(Clone, Debug)]
pub struct Hit {
    /// Counted from 1, with the step's file line.
    pub step: usize,
    pub line: u64,
    pub action: String,
    pub call: &'static str,
    pub ret: Option<Ret>,
    pub before: Held,
    pub after: Held,
    /// The run stopped at that step with a crash, a harness error or a timeout.
    pub stopped: Option<String>,
}

/// The platform as the DMA layer sees it under injection: every call forwarded, the n-th
/// fallible one failed without touching the machine.
pub struct Injecting<'a> {
    pub inner: &'a mut Machine,
    pub plan: &'a mut FailPlan,
}

impl Injecting<'_> {
    fn fails(&mut self, call: &'static str) -> bool {
        self.plan.calls += 1;
        if self.plan.calls == self.plan.fail_at {
            self.plan.failed = Some(call);
            return true;
        }
        false
    }
}

impl Platform for Injecting<'_> {
    fn facts(&self) -> PlatformFacts {
        self.inner.facts()
    }
    fn reserved_region(&self, index: u32) -> Option<Region> {
        self.inner.reserved_region(index)
    }
    fn current_cpu(&self) -> u32 {
        self.inner.current_cpu()
    }
    fn now_ns(&self) -> u64 {
        self.inner.now_ns()
    }
    fn iommu_map(&mut self, iova: u64, phys: u64, len: u64, prot: Prot) -> i32 {
        // A page-table page that cannot be allocated (`-ENOMEM` from io-pgtable).
        if self.fails("iommu_map") {
            return -errno::ENOMEM;
        }
        self.inner.iommu_map(iova, phys, len, prot)
    }
    fn iotlb_sync_map(&mut self, iova: u64, len: u64) -> i32 {
        if self.fails("iotlb_sync_map") {
            return -errno::ENOMEM;
        }
        self.inner.iotlb_sync_map(iova, len)
    }
    fn iommu_unmap(&mut self, iova: u64, len: u64) -> u64 {
        self.inner.iommu_unmap(iova, len)
    }
    fn iotlb_sync(&mut self, iova: u64, len: u64) {
        self.inner.iotlb_sync(iova, len)
    }
    fn flush_iotlb_all(&mut self) {
        self.inner.flush_iotlb_all()
    }
    fn iova_to_phys(&self, iova: u64) -> u64 {
        self.inner.iova_to_phys(iova)
    }
    fn sync_for_device(&mut self, phys: u64, len: u64, dir: Dir) {
        self.inner.sync_for_device(phys, len, dir)
    }
    fn sync_for_cpu(&mut self, phys: u64, len: u64, dir: Dir) {
        self.inner.sync_for_cpu(phys, len, dir)
    }
    fn sync_barrier(&mut self) {
        self.inner.sync_barrier()
    }
    fn bounce_alloc(&mut self, orig: u64, len: u64, a: u64, m: u64, slot: &mut u64) -> i32 {
        // No free slot run in the pool (`swiotlb_tbl_map_single` finds none).
        if self.fails("bounce_alloc") {
            return -errno::ENOMEM;
        }
        self.inner.bounce_alloc(orig, len, a, m, slot)
    }
    fn bounce_free(&mut self, slot: u64, len: u64) {
        self.inner.bounce_free(slot, len)
    }
    fn is_bounce(&self, phys: u64) -> bool {
        self.inner.is_bounce(phys)
    }
    fn bounce_orig(&self, phys: u64) -> u64 {
        self.inner.bounce_orig(phys)
    }
    fn copy(&mut self, dst: u64, src: u64, len: u64) {
        self.inner.copy(dst, src, len)
    }
    fn fill(&mut self, dst: u64, byte: u8, len: u64) {
        self.inner.fill(dst, byte, len)
    }
    fn p2p_type(&self, phys: u64) -> u32 {
        self.inner.p2p_type(phys)
    }
    fn p2p_bus_offset(&self, phys: u64) -> u64 {
        self.inner.p2p_bus_offset(phys)
    }
    fn warn(&mut self, code: WarnCode) {
        self.inner.warn(code)
    }
}

/// Did the call report its failure? `None`: the call has no way to report one.
fn reported_error(ret: &Option<Ret>) -> Option<bool> {
    match ret.as_ref()? {
        Ret::Errno(r) => Some(*r < 0),
        Ret::Bool(b) => Some(!b),
        Ret::Value(v) => Some(*v == hex(DMA_MAPPING_ERROR)),
        Ret::Sg(s) => Some(s.ret <= 0),
        _ => None,
    }
}

/// Ranges in `after` not in `before`.
fn added(before: &[(u64, u64)], after: &[(u64, u64)]) -> Vec<String> {
    after
        .iter()
        .filter(|r| !before.contains(r))
        .map(|(a, l)| format!("{a:#x}+{l:#x}"))
        .collect()
}

/// What is wrong with how a run unwound from the injected failure (empty: clean).
pub fn judge(hit: &Hit) -> Vec<String> {
    let mut wrong = Vec::new();
    if let Some(s) = &hit.stopped {
        wrong.push(format!("the run stopped: {s}"));
    }
    if reported_error(&hit.ret) == Some(false) {
        wrong.push("the call returned success although its platform call failed".into());
    }
    for (what, before, after) in [
        (
            "page-table entries",
            &hit.before.mappings,
            &hit.after.mappings,
        ),
        ("bounce slots", &hit.before.slots, &hit.after.slots),
        (
            "stale IOTLB entries (unmapped, never flushed)",
            &hit.before.stale,
            &hit.after.stale,
        ),
    ] {
        let new = added(before, after);
        if !new.is_empty() {
            wrong.push(format!("left {what} behind: {}", new.join(", ")));
        }
    }
    wrong
}

/// One vector's sweep.
#[derive(Clone, Debug, Serialize)]
pub struct VectorSweep {
    pub id: String,
    /// Fallible platform calls of the clean run (all presets).
    pub calls: u64,
    /// Runs made with one call failed.
    pub runs: u64,
    /// What went wrong, one line each (`preset: fail n (call) at step k (action, line L): ...`).
    pub problems: Vec<String>,
}

/// Runs `vector` once per fallible call of each preset's clean run, failing that call.
pub fn sweep(vector: &Vector, presets: &Presets, implementation: &Implementation) -> VectorSweep {
    let counted = execute_failing(vector, presets, implementation, 0);
    let per_run: Vec<u64> = counted.iter().map(|(_, plan, _)| plan.calls).collect();
    let most = per_run.iter().copied().max().unwrap_or(0);
    let mut out = VectorSweep {
        id: vector.id.clone(),
        calls: per_run.iter().sum(),
        runs: 0,
        problems: Vec::new(),
    };
    for n in 1..=most {
        for (run, plan, hit) in execute_failing(vector, presets, implementation, n) {
            let Some(call) = plan.failed else { continue };
            out.runs += 1;
            let Some(hit) = hit else {
                out.problems.push(format!(
                    "{}: fail {n} ({call}): the failure happened outside any step",
                    run.preset
                ));
                continue;
            };
            for w in judge(&hit) {
                out.problems.push(format!(
                    "{}: fail {n} ({call}) at step {} ({}, line {}): {w}",
                    run.preset, hit.step, hit.action, hit.line
                ));
            }
        }
    }
    out
}
