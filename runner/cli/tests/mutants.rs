//! Proof that the vectors bite: deliberately broken implementations (test-only wrappers around
//! the reference) must fail named vectors, while the reference passes the same vectors. Also:
//! a panicking implementation is a `crash` for its vectors and the run goes on.

use std::collections::BTreeMap;
use std::path::Path;

use dmaconf_engine::report::{run_suite, Filter, Report};
use dmaconf_engine::{load_suite, Implementation, Profile, ResultClass};
use dmaconf_platform::{
    errno, Attrs, Dir, DmaApi, IovaState, Platform, PlatformFacts, Prot, Region, RegionKind,
    WarnCode,
};
use dmaconf_reference::Reference;

/// How a mutant breaks the reference.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Bug {
    /// unlink and destroy never reach `iommu_unmap` (and pretend it worked).
    UnlinkDoesNotUnmap,
    /// every map swaps the READ and WRITE bits of prot.
    WrongProtBits,
    /// try_alloc reports an IOVA one granule above the one it reserved.
    IovaOffByOneGranule,
    /// try_alloc leaves the caller's state as it was when it fails.
    TryAllocKeepsStateOnFailure,
    /// link panics (a crashing implementation).
    LinkPanics,
    /// the CPU-to-device cache clean of link is never issued (LINK-06 forgotten).
    NoCacheClean,
    /// the barrier (arm64 `dsb sy`) is never issued: cleans and invalidates never complete.
    NoBarrier,
    /// copies out of a bounce slot are dropped (no copy back at unlink).
    NoBounceCopyBack,
    /// bounce requests pass no `min_align_mask` (the bounce keeps no in-granule offset).
    BounceIgnoresMinAlign,
    /// bounce slots are never released.
    NoBounceRelease,
    /// LINK-09 unwind read as "always unlink": a link that fails in the page table is followed
    /// by `dma_iova_unlink(offset, 0)` even when nothing was mapped (issue 21 Q2).
    UnwindEvenWhenNothingMapped,
    /// `bounce_free` given the allocation's granule base and the granule, not the piece's
    /// address and length (issue 21 Q4).
    BounceFreeWholeGranule,
    /// a size-0 unlink takes no slow-path walk (no piece, no barrier), only the fast part
    /// (issue 21 Q10).
    EmptyUnlinkSkipsWalk,
    /// the kmalloc classes taken as 8-byte classes whether or not a bounce pool exists: the
    /// `swiotlb` fact read as always true (issue 21 Q1).
    KmallocClassesIgnorePool,
    /// every reported region reserved, host-bridge windows and dma-range gaps included, for a
    /// platform device too (issue 21 Q12).
    ReserveEveryRegion,
    /// the head bounce's clean taken as LINK-06's formula applied to the slot (the slot's own
    /// granule) instead of `slot - pad` (issue 21 Q6).
    HeadCleanAtSlotGranule,
    /// a link with `DMA_NONE` (or an invalid direction) refused by the DMA layer itself, before
    /// the page table sees it (issue 21 Q13).
    RefuseDmaNoneEarly,
    /// the zero-length head bounce mapped as one whole granule (issue 21 Q19).
    ZeroLengthBounceMapsGranule,
    /// once a platform call of an API call has failed, the unwinding's `iommu_unmap` and
    /// `bounce_free` are dropped: what the call had set up leaks on its error path (issue 15).
    LeaksOnErrorPath,
    /// no bug: the wrapper itself, as a control.
    None,
}

/// A platform seen through a bug: forwards everything, bending one call.
struct Bent<'a> {
    inner: &'a mut dyn Platform,
    bug: Bug,
    /// A fallible platform call of this API call has failed.
    failed: bool,
}

impl Bent<'_> {
    /// Notes a failed platform call; true when the unwinding that follows is to be dropped.
    fn note(&mut self, ret: i32) -> i32 {
        self.failed |= ret != 0;
        ret
    }
    fn leaking(&self) -> bool {
        self.bug == Bug::LeaksOnErrorPath && self.failed
    }
}

impl Platform for Bent<'_> {
    fn facts(&self) -> PlatformFacts {
        let mut f = self.inner.facts();
        if self.bug == Bug::KmallocClassesIgnorePool {
            f.swiotlb = true;
        }
        f
    }
    fn reserved_region(&self, index: u32) -> Option<Region> {
        let r = self.inner.reserved_region(index);
        match r {
            Some(mut r) if self.bug == Bug::ReserveEveryRegion => {
                r.kind = RegionKind::Reserved;
                Some(r)
            }
            _ => r,
        }
    }
    fn current_cpu(&self) -> u32 {
        self.inner.current_cpu()
    }
    fn iommu_map(&mut self, iova: u64, phys: u64, len: u64, prot: Prot) -> i32 {
        let len = if self.bug == Bug::ZeroLengthBounceMapsGranule
            && len == 0
            && self.inner.is_bounce(phys)
        {
            self.inner.facts().granule()
        } else {
            len
        };
        let prot = if self.bug == Bug::WrongProtBits {
            let rw = prot.0 & 3;
            Prot((prot.0 & !3) | ((rw & 1) << 1) | ((rw & 2) >> 1))
        } else {
            prot
        };
        let r = self.inner.iommu_map(iova, phys, len, prot);
        self.note(r)
    }
    fn iotlb_sync_map(&mut self, iova: u64, len: u64) -> i32 {
        let r = self.inner.iotlb_sync_map(iova, len);
        self.note(r)
    }
    fn iommu_unmap(&mut self, iova: u64, len: u64) -> u64 {
        if self.bug == Bug::UnlinkDoesNotUnmap || self.leaking() {
            return len;
        }
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
        if self.bug == Bug::NoCacheClean {
            return;
        }
        let g = self.inner.facts().granule();
        let up = phys.next_multiple_of(g);
        if self.bug == Bug::HeadCleanAtSlotGranule
            && !self.inner.is_bounce(phys)
            && self.inner.is_bounce(up)
        {
            return self.inner.sync_for_device(up, len, dir);
        }
        self.inner.sync_for_device(phys, len, dir)
    }
    fn sync_for_cpu(&mut self, phys: u64, len: u64, dir: Dir) {
        self.inner.sync_for_cpu(phys, len, dir)
    }
    fn sync_barrier(&mut self) {
        if self.bug == Bug::NoBarrier {
            return;
        }
        self.inner.sync_barrier()
    }
    fn bounce_alloc(&mut self, orig: u64, len: u64, a: u64, m: u64, slot: &mut u64) -> i32 {
        let m = if self.bug == Bug::BounceIgnoresMinAlign {
            0
        } else {
            m
        };
        let r = self.inner.bounce_alloc(orig, len, a, m, slot);
        self.note(r)
    }
    fn bounce_free(&mut self, slot: u64, len: u64) {
        if self.bug == Bug::NoBounceRelease || self.leaking() {
            return;
        }
        if self.bug == Bug::BounceFreeWholeGranule {
            let g = self.inner.facts().granule();
            return self.inner.bounce_free(slot & !(g - 1), g);
        }
        self.inner.bounce_free(slot, len)
    }
    fn is_bounce(&self, phys: u64) -> bool {
        self.inner.is_bounce(phys)
    }
    fn p2p_type(&self, phys: u64) -> u32 {
        self.inner.p2p_type(phys)
    }
    fn p2p_bus_offset(&self, phys: u64) -> u64 {
        self.inner.p2p_bus_offset(phys)
    }
    fn bounce_orig(&self, phys: u64) -> u64 {
        self.inner.bounce_orig(phys)
    }
    fn copy(&mut self, dst: u64, src: u64, len: u64) {
        if self.bug == Bug::NoBounceCopyBack && self.inner.is_bounce(src) {
            return;
        }
        self.inner.copy(dst, src, len)
    }
    fn fill(&mut self, dst: u64, byte: u8, len: u64) {
        self.inner.fill(dst, byte, len)
    }
    fn warn(&mut self, code: WarnCode) {
        self.inner.warn(code)
    }
}

struct Mutant {
    reference: Reference,
    bug: Bug,
}

impl DmaApi for Mutant {
    fn probe(&mut self, p: &mut dyn Platform) -> i32 {
        let mut bent = Bent {
            inner: p,
            bug: self.bug,
            failed: false,
        };
        self.reference.probe(&mut bent)
    }
    fn iova_try_alloc(
        &mut self,
        p: &mut dyn Platform,
        s: &mut IovaState,
        phys: u64,
        size: u64,
    ) -> bool {
        let before = *s;
        let granule = p.facts().granule();
        let ok = self.reference.iova_try_alloc(p, s, phys, size);
        match self.bug {
            Bug::IovaOffByOneGranule if ok => s.addr += granule,
            Bug::TryAllocKeepsStateOnFailure if !ok => *s = before,
            _ => {}
        }
        ok
    }
    fn iova_link(
        &mut self,
        p: &mut dyn Platform,
        s: &mut IovaState,
        phys: u64,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> i32 {
        if self.bug == Bug::LinkPanics {
            panic!("mutant link panics on purpose");
        }
        if self.bug == Bug::RefuseDmaNoneEarly && dir.0 > 2 {
            return -errno::EINVAL;
        }
        let mut bent = Bent {
            inner: p,
            bug: self.bug,
            failed: false,
        };
        let ret = self
            .reference
            .iova_link(&mut bent, s, phys, offset, size, dir, attrs);
        let checks = [
            -errno::EIO,
            -errno::EOPNOTSUPP,
            -errno::EPERM,
            -errno::ENOMEM,
        ];
        if self.bug == Bug::UnwindEvenWhenNothingMapped && ret != 0 && !checks.contains(&ret) {
            self.reference.iova_unlink(p, s, offset, 0, dir, attrs);
        }
        ret
    }
    fn iova_sync(&mut self, p: &mut dyn Platform, s: &IovaState, offset: u64, size: u64) -> i32 {
        let mut bent = Bent {
            inner: p,
            bug: self.bug,
            failed: false,
        };
        self.reference.iova_sync(&mut bent, s, offset, size)
    }
    fn iova_unlink(
        &mut self,
        p: &mut dyn Platform,
        s: &IovaState,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        if self.bug == Bug::EmptyUnlinkSkipsWalk && size == 0 {
            // Only the fast part of UNLINK-01, as if the walk had no piece to visit.
            let g = p.facts().granule();
            let addr = s.addr + offset;
            let pad = addr & (g - 1);
            let len = (pad + g - 1) & !(g - 1);
            let unmapped = p.iommu_unmap(addr - pad, len);
            if unmapped != 0 {
                p.iotlb_sync(addr - pad, unmapped);
            }
            return;
        }
        let mut bent = Bent {
            inner: p,
            bug: self.bug,
            failed: false,
        };
        self.reference
            .iova_unlink(&mut bent, s, offset, size, dir, attrs)
    }
    fn iova_destroy(
        &mut self,
        p: &mut dyn Platform,
        s: &IovaState,
        mapped_len: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        let mut bent = Bent {
            inner: p,
            bug: self.bug,
            failed: false,
        };
        self.reference
            .iova_destroy(&mut bent, s, mapped_len, dir, attrs)
    }
    fn iova_free(&mut self, p: &mut dyn Platform, s: &IovaState) {
        self.reference.iova_free(p, s)
    }
}

fn run(implementation: &Implementation) -> Report {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = load_suite(&root.join("vectors"));
    run_suite(
        &suite,
        implementation,
        &Profile::ALL,
        &Filter::default(),
        |_| {},
    )
    .expect("the suite runs")
}

fn results(report: &Report) -> BTreeMap<(Profile, String), ResultClass> {
    report
        .vectors
        .iter()
        .flat_map(|v| v.results.iter().map(|(p, r)| ((*p, v.id.clone()), r.class)))
        .collect()
}

fn mutant(bug: Bug) -> Implementation {
    Implementation::new(
        format!("mutant {bug:?}"),
        &["iova_api", "linux_exact"],
        move || {
            Box::new(Mutant {
                reference: Reference::new(),
                bug,
            })
        },
    )
}

/// The mutant gets `class` on each (profile, vector) listed, and the reference passes them.
fn assert_caught(bug: Bug, class: ResultClass, expected: &[(Profile, &str)]) {
    let reference = results(&run(&dmaconf::reference()));
    let got = results(&run(&mutant(bug)));
    for (profile, id) in expected {
        let key = (*profile, id.to_string());
        let r = reference.get(&key).copied();
        assert!(
            r.is_some_and(|c| c.is_ok()),
            "control: the reference must pass {}::{id}, got {r:?}",
            profile.name()
        );
        assert_eq!(
            got.get(&key).copied(),
            Some(class),
            "{bug:?} should give {class:?} on {}::{id}",
            profile.name()
        );
    }
}

#[test]
fn unlink_that_does_not_unmap_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::UnlinkDoesNotUnmap,
        ResultClass::Fail,
        &[
            (Semantic, "link-single-aligned-bidir"),
            (Semantic, "unlink-partial-middle"),
            (Semantic, "destroy-then-device-faults"),
            (Linux, "unlink-strict-on-lazy-domain"),
        ],
    );
}

#[test]
fn wrong_prot_bits_are_caught() {
    use Profile::*;
    assert_caught(
        Bug::WrongProtBits,
        ResultClass::Fail,
        &[
            (Semantic, "prot-per-direction-coherent"),
            (Semantic, "link-unaligned-first-range"),
            (Linux, "prot-noncoherent-granule-expanded-vs-exact"),
            (Linux, "link-page-by-page"),
        ],
    );
}

#[test]
fn iova_off_by_one_granule_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::IovaOffByOneGranule,
        ResultClass::Fail,
        &[
            (Semantic, "try-alloc-28bit-mask-top"),
            (Linux, "try-alloc-aligned-one-granule"),
            (Linux, "iova-worked-example-a-to-d"),
            (Linux, "link-single-aligned-bidir"),
        ],
    );
}

#[test]
fn try_alloc_that_keeps_the_state_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::TryAllocKeepsStateOnFailure,
        ResultClass::Fail,
        &[
            (Semantic, "try-alloc-zeroes-state-first"),
            (Semantic, "try-alloc-reused-state-zeroed-on-failure"),
            (Semantic, "try-alloc-direct-false"),
        ],
    );
}

#[test]
fn a_panicking_implementation_is_a_crash_and_the_run_goes_on() {
    let report = run(&mutant(Bug::LinkPanics));
    let got = results(&report);
    assert_eq!(
        got.get(&(Profile::Semantic, "link-single-aligned-bidir".into())),
        Some(&ResultClass::Crash)
    );
    // Vectors that never link still pass: the crash did not stop the run.
    assert_eq!(
        got.get(&(Profile::Semantic, "try-alloc-aligned-one-granule".into())),
        Some(&ResultClass::Pass)
    );
    assert_eq!(
        report.vectors.len(),
        run(&dmaconf::reference()).vectors.len()
    );
    assert!(!report.ok());
}

#[test]
fn a_forgotten_cache_clean_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::NoCacheClean,
        ResultClass::Fail,
        &[
            (Semantic, "cache-arm64-to-device-clean-then-barrier"),
            (Semantic, "cache-arm64-bidirectional-unaligned-round-trip"),
            (Semantic, "swiotlb-noncoherent-untrusted-bounce"),
        ],
    );
}

#[test]
fn a_forgotten_barrier_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::NoBarrier,
        ResultClass::Fail,
        &[
            (Semantic, "cache-arm64-to-device-clean-then-barrier"),
            (Semantic, "cache-arm64-from-device-invalidate-at-unlink"),
            (Semantic, "swiotlb-noncoherent-untrusted-bounce"),
        ],
    );
}

#[test]
fn a_missing_copy_back_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::NoBounceCopyBack,
        ResultClass::Fail,
        &[
            (Semantic, "swiotlb-nvme-worked-example"),
            (Semantic, "swiotlb-zero-length-middle-b1"),
            (Semantic, "swiotlb-kmalloc-tail-bounce-noncoherent"),
        ],
    );
}

#[test]
fn a_bounce_without_min_align_mask_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::BounceIgnoresMinAlign,
        ResultClass::Fail,
        &[
            (Semantic, "swiotlb-nvme-worked-example"),
            (Semantic, "swiotlb-zero-length-middle-b1"),
            (Linux, "swiotlb-sticky-flag-require-coherent"),
        ],
    );
}

#[test]
fn a_leaked_bounce_slot_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::NoBounceRelease,
        ResultClass::Fail,
        &[
            (Semantic, "swiotlb-nvme-worked-example"),
            (Semantic, "swiotlb-pool-full-unwinds-own-range-b1"),
            (Semantic, "swiotlb-untrusted-no-min-align-enxio"),
        ],
    );
}

#[test]
fn an_unwind_after_nothing_mapped_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::UnwindEvenWhenNothingMapped,
        ResultClass::Fail,
        &[(Linux, "swiotlb-middle-fails-first-no-unwind")],
    );
}

#[test]
fn bounce_free_of_the_granule_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::BounceFreeWholeGranule,
        ResultClass::Fail,
        &[
            (Linux, "swiotlb-head-bounced-middle-fails-flag-stays"),
            (Linux, "swiotlb-tail-map-fails-noncoherent"),
            (Linux, "swiotlb-unlink-part-of-bounced-tail"),
        ],
    );
}

#[test]
fn an_empty_unlink_without_its_walk_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::EmptyUnlinkSkipsWalk,
        ResultClass::Fail,
        &[(Linux, "unlink-zero-size-slow-path-one-piece")],
    );
}

#[test]
fn kmalloc_classes_that_ignore_the_pool_are_caught() {
    use Profile::*;
    assert_caught(
        Bug::KmallocClassesIgnorePool,
        ResultClass::Fail,
        &[
            (Semantic, "link-kmalloc-no-pool-no-bounce"),
            (Linux, "link-kmalloc-no-pool-no-bounce"),
        ],
    );
}

#[test]
fn reserving_bridge_regions_for_a_platform_device_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::ReserveEveryRegion,
        ResultClass::Fail,
        &[(
            Linux,
            "iova-pcie-preset-platform-device-ignores-bridge-regions",
        )],
    );
}

#[test]
fn a_head_clean_of_the_slot_granule_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::HeadCleanAtSlotGranule,
        ResultClass::Fail,
        &[(Linux, "swiotlb-kmalloc-unaligned-head-einval")],
    );
}

#[test]
fn a_dma_none_refused_before_the_page_table_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::RefuseDmaNoneEarly,
        ResultClass::Fail,
        &[(Linux, "link-zero-size-aligned-io-pgtable-arm")],
    );
}

#[test]
fn a_zero_length_bounce_mapping_a_granule_is_caught() {
    use Profile::*;
    assert_caught(
        Bug::ZeroLengthBounceMapsGranule,
        ResultClass::Fail,
        &[
            (Linux, "swiotlb-zero-length-unaligned-iommupt"),
            (
                Linux,
                "swiotlb-zero-length-unaligned-io-pgtable-arm-leaks-slot",
            ),
        ],
    );
}

/// `dmaconf run --fail-nth`: the reference unwinds cleanly from every injected failure of the
/// two-step vectors; a mutant that drops its unwinding on the error path leaves PTEs or slots.
#[test]
fn a_leak_on_an_error_path_fails_the_fail_nth_sweep() {
    use dmaconf_engine::fail_nth::sweep;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = load_suite(&root.join("vectors"));
    let sweep_all = |implementation: &Implementation| {
        let mut problems = Vec::new();
        let mut runs = 0;
        for l in &suite.vectors {
            let Ok(v) = &l.vector else { continue };
            if v.misuse.is_some() || !dmaconf_engine::Door::unmet(implementation, v).is_empty() {
                continue;
            }
            let s = sweep(v, &suite.presets, implementation);
            runs += s.runs;
            problems.extend(s.problems.into_iter().map(|p| format!("{}: {p}", s.id)));
        }
        (runs, problems)
    };
    let (runs, problems) = sweep_all(&mutant(Bug::LeaksOnErrorPath));
    assert!(runs > 0, "no vector reaches a fallible platform call");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("left bounce slots behind"))
            && problems
                .iter()
                .any(|p| p.contains("left page-table entries behind")),
        "the leaking mutant passes the sweep: {problems:#?}"
    );
    // Control: the reference behind the same wrapper, without the bug.
    let (_, clean) = sweep_all(&mutant(Bug::None));
    assert!(clean.is_empty(), "{clean:#?}");
}
