//! Feeds a run's trace to the misuse checker (spec/10-misuse-checker.md) and records its
//! findings in the trace.
//!
//! The checker gets what the trace recorded and nothing else: each call with the arguments the
//! engine passed, its return and the caller's state words, the accesses, and the machine's
//! bounce-slot events; plus the platform facts and which buffers are not RAM. So it judges any
//! door whose traces carry those, and never an implementation's internals.

use dmaconf_checker::{Checker, Entry, Facts, Observation, SlotEvent};
use dmaconf_machine::Event;
use dmaconf_platform::{Attrs, Dir};

use crate::exec::{Ret, Run, StepTrace, Stop};
use crate::expr;
use crate::model::{MemoryKindName, Vector};

/// Runs the checker over a completed run and writes `detected` into its steps and its end.
pub fn annotate(vector: &Vector, run: &mut Run) {
    let Some(facts) = run.facts else {
        return;
    };
    if run.stop != Stop::Completed {
        return;
    }
    let page = 0x1000u64;
    let not_ram = vector
        .buffers
        .iter()
        .filter(|(_, b)| b.kind.is_some_and(|k| k != MemoryKindName::Ram))
        .filter_map(|(name, b)| {
            let (phys, _) = run.buffer_places.get(name)?;
            let end = phys.saturating_add(b.size).saturating_add(page - 1) & !(page - 1);
            Some((phys & !(page - 1), end))
        })
        .collect();
    let mut checker = Checker::new(Facts {
        granule: facts.granule(),
        coherent: facts.coherent,
        cache_line: facts.cache_line,
        not_ram,
    });
    for t in &mut run.steps {
        let obs = if t.error.is_some() {
            Observation::Other
        } else {
            observation(t)
        };
        let found = checker.observe(&obs, &slot_events(&t.raw_events));
        t.detected = found.iter().map(|c| c.id()).collect();
    }
    run.end.detected = checker.finish().iter().map(|c| c.id()).collect();
    run.end.checked = true;
}

fn slot_events(events: &[Event]) -> Vec<SlotEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SwiotlbAlloc {
                orig,
                len,
                slot,
                ret: 0,
                ..
            } => Some(SlotEvent::Alloc {
                slot: *slot,
                orig: *orig,
                len: *len,
            }),
            Event::SwiotlbFree { slot, .. } => Some(SlotEvent::Free { slot: *slot }),
            _ => None,
        })
        .collect()
}

/// The observation a traced step is, read back from what the trace recorded.
fn observation(t: &StepTrace) -> Observation {
    let num = |k: &str| t.args.get(k).and_then(|v| expr::number(v)).unwrap_or(0);
    let state = || t.args.get("state").cloned().unwrap_or_default();
    // A raw direction above DMA_NONE is traced as `invalid`: any number above 3 says the same.
    let dir = || {
        t.args
            .get("dir")
            .and_then(|d| Dir::from_name(d))
            .unwrap_or(Dir(u32::MAX))
    };
    let attrs = || Attrs(num("attrs"));
    let errno = || match t.ret {
        Some(Ret::Errno(e)) => e,
        _ => 0,
    };
    let boolean = || matches!(t.ret, Some(Ret::Bool(true)));
    let value = || match &t.ret {
        Some(Ret::Value(v)) => expr::number(v).unwrap_or(0),
        _ => 0,
    };
    let entry = |name: &str| {
        if name.ends_with("page_attrs") {
            Entry::Page
        } else if name.ends_with("resource") {
            Entry::Resource
        } else {
            Entry::Phys
        }
    };
    match t.action.as_str() {
        "dma_iova_try_alloc" => Observation::TryAlloc {
            state: state(),
            phys: num("phys"),
            size: num("size"),
            ret: boolean(),
            after: t.states_after.get(&state()).copied().unwrap_or((0, 0)),
        },
        "dma_iova_link" => Observation::Link {
            state: state(),
            phys: num("phys"),
            offset: num("offset"),
            size: num("size"),
            dir: dir(),
            attrs: attrs(),
            ret: errno(),
        },
        "dma_iova_sync" => Observation::Sync {
            state: state(),
            offset: num("offset"),
            size: num("size"),
            ret: errno(),
        },
        "dma_iova_unlink" => Observation::Unlink {
            state: state(),
            offset: num("offset"),
            size: num("size"),
            dir: dir(),
            attrs: attrs(),
        },
        "dma_iova_destroy" => Observation::Destroy {
            state: state(),
            mapped_len: num("mapped_len"),
            dir: dir(),
            attrs: attrs(),
        },
        "dma_iova_free" => Observation::Free { state: state() },
        "dma_use_iova" => Observation::UseIova {
            state: state(),
            ret: boolean(),
        },
        "dma_iova_size" => Observation::IovaSize {
            state: state(),
            ret: value(),
        },
        "state.set" => Observation::StateSet { state: state() },
        a @ ("dma_map_phys" | "dma_map_page_attrs" | "dma_map_resource") => Observation::Map {
            entry: entry(a),
            phys: num("phys"),
            size: num("size"),
            dir: dir(),
            attrs: attrs(),
            ret: match &t.ret {
                Some(Ret::Value(v)) => {
                    expr::number(v).unwrap_or(dmaconf_platform::DMA_MAPPING_ERROR)
                }
                _ => dmaconf_platform::DMA_MAPPING_ERROR,
            },
        },
        a @ ("dma_unmap_phys" | "dma_unmap_page_attrs" | "dma_unmap_resource") => {
            Observation::Unmap {
                entry: entry(a),
                addr: num("addr"),
                size: num("size"),
                dir: dir(),
            }
        }
        "dma_sync_single_for_cpu" | "dma_sync_single_for_device" => Observation::SyncSingle {
            addr: num("addr"),
            size: num("size"),
            dir: dir(),
        },
        "dma_map_sg" => {
            let segs = (0..)
                .map_while(|i| {
                    let p = t.args.get(&format!("seg{i}.phys"))?;
                    let l = t.args.get(&format!("seg{i}.len"))?;
                    Some((expr::number(p)?, expr::number(l)?))
                })
                .collect();
            Observation::MapSg {
                list: t.args.get("list").cloned().unwrap_or_default(),
                segs,
                dir: dir(),
                ret: match &t.ret {
                    Some(Ret::Sg(r)) => r.ret,
                    _ => 0,
                },
            }
        }
        "dma_unmap_sg" => Observation::UnmapSg {
            list: t.args.get("list").cloned().unwrap_or_default(),
            dir: dir(),
        },
        "device.read" | "device.write" => Observation::DeviceAccess {
            addr: num("addr"),
            len: num("len"),
        },
        a @ ("cpu.read" | "cpu.write") => Observation::CpuAccess {
            addr: num("addr"),
            len: num("len"),
            write: a == "cpu.write",
        },
        "dma_need_unmap" => Observation::NeedUnmap { ret: boolean() },
        _ => Observation::Other,
    }
}
