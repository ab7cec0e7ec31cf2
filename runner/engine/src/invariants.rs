//! Semantic invariants checked on every vector, whatever it expects (`spec/3.1-try-alloc.md`
//! TRYALLOC-06 and TRYALLOC-07): every reservation `dma_iova_try_alloc` reports keeps the
//! in-granule offset, lies inside the device's limit and the aperture, never covers IOVA 0 and
//! never overlaps a live reservation or a reserved region.
//!
//! The engine judges this from the call stream and the platform facts alone; it never asks the
//! implementation where it put things.

use crate::compare::Mismatch;
use crate::exec::{hex, Run};
use crate::model::Vector;

/// `min_not_zero(dma_mask, bus_dma_limit)`, clamped to the aperture when the domain forces it.
fn limit(f: &dmaconf_platform::PlatformFacts) -> u64 {
    let mut l = match (f.dma_mask, f.bus_dma_limit) {
        (0, b) => b,
        (m, 0) => m,
        (m, b) => m.min(b),
    };
    if f.force_aperture {
        l = l.min(f.aperture_end);
    }
    l
}

/// Every violation, as mismatches naming the rule.
pub fn check(vector: &Vector, run: &Run) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let Some(facts) = run.facts else {
        return out;
    };
    let g = facts.granule();
    if g == 0 {
        return out;
    }
    let limit = limit(&facts);
    // Live reservations as (state, base, len), replayed from the steps.
    let mut live: Vec<(String, u64, u64)> = Vec::new();
    for t in &run.steps {
        let Some(spec) = vector.steps.get(t.index) else {
            continue;
        };
        let step = &spec.value;
        let bad = |what: &str, detail: String| Mismatch {
            preset: run.preset.clone(),
            step: Some(t.index + 1),
            line: Some(spec.line),
            what: what.to_string(),
            expected: String::new(),
            actual: detail,
            diff: None,
        };
        let state = t.args.get("state").cloned().unwrap_or_default();
        if step.dma_iova_free.is_some() || step.dma_iova_destroy.is_some() {
            // Frees the reservation the state names now; an older one it overwrote stays.
            if let Some(i) = live.iter().rposition(|(s, _, _)| *s == state) {
                live.remove(i);
            }
            continue;
        }
        if step.dma_iova_try_alloc.is_none() || t.ret != Some(crate::exec::Ret::Bool(true)) {
            continue;
        }
        let (addr, word) = t.states_after.get(&state).copied().unwrap_or((0, 0));
        let phys = t
            .args
            .get("phys")
            .and_then(|p| crate::expr::number(p))
            .unwrap_or(0);
        let size = t
            .args
            .get("size")
            .and_then(|p| crate::expr::number(p))
            .unwrap_or(0);
        let off = phys & (g - 1);
        if addr & (g - 1) != off {
            out.push(bad(
                "invariant TRYALLOC-06",
                format!(
                    "state.addr {} does not keep the in-granule offset {} of phys",
                    hex(addr),
                    hex(off)
                ),
            ));
        }
        if word & !dmaconf_platform::DMA_IOVA_USE_SWIOTLB != size {
            out.push(bad(
                "invariant TRYALLOC-06",
                format!(
                    "state size {} is not the requested {}",
                    hex(word),
                    hex(size)
                ),
            ));
        }
        let base = addr.wrapping_sub(off);
        let len = size.saturating_add(off).saturating_add(g - 1) & !(g - 1);
        let last = base.saturating_add(len.saturating_sub(1));
        let lowest = (facts.aperture_start / g).max(1) * g;
        if base < lowest {
            out.push(bad(
                "invariant TRYALLOC-07",
                format!(
                    "reservation at {} starts below the first allocatable IOVA {}",
                    hex(base),
                    hex(lowest)
                ),
            ));
        }
        // TRYALLOC-07 item 2 holds at granule resolution: the last granule must start at or
        // below the limit (alloc_iova_fast takes `limit >> shift` as the last usable pfn).
        let last_granule = last - last % g;
        if last_granule > limit {
            out.push(bad(
                "invariant TRYALLOC-07",
                format!(
                    "reservation {}..={} has a granule above the device limit {}",
                    hex(base),
                    hex(last),
                    hex(limit)
                ),
            ));
        }
        for (other, b, l) in &live {
            let other_last = b.saturating_add(l.saturating_sub(1));
            if base <= other_last && *b <= last {
                out.push(bad(
                    "invariant TRYALLOC-07",
                    format!(
                        "reservation {}..={} overlaps the live reservation of `{other}` {}..={}",
                        hex(base),
                        hex(last),
                        hex(*b),
                        hex(other_last)
                    ),
                ));
            }
        }
        for (start, end) in &run.reserved {
            if base <= *end && *start <= last {
                out.push(bad(
                    "invariant TRYALLOC-07",
                    format!(
                        "reservation {}..={} overlaps the reserved region {}..={}",
                        hex(base),
                        hex(last),
                        hex(*start),
                        hex(*end)
                    ),
                ));
            }
        }
        live.push((state, base, len));
    }
    out
}
