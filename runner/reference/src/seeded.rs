//! Seeded bugs: the mutant catalogue (`runner/cli/tests/mutants.rs`, issue 20) proves that the
//! vectors catch plausible bugs of the DMA layer. Most of its mutants bend the reference from
//! outside (a wrapping `Platform` or `DmaApi`); the few below live inside a loop or a decision
//! no wrapper can reach, so they are switched here, one per thread, and only in a build with
//! the `seeded-bugs` feature. Without it [`active`] is the constant `false` and the reference
//! is exactly Linux's.

/// A bug the reference can be built to carry. Each names the rule it breaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SeededBug {
    /// LINK-09, B1 (a): the SWIOTLB path links the aligned middle even when it is empty
    /// (`__dma_iova_link` with size 0, before upstream `6ec91df8aff7`).
    ZeroLengthMiddleLinked,
    /// LINK-09, B1 (b): the SWIOTLB path's error unwind unlinks from IOVA offset 0 instead of
    /// the link's `offset`.
    UnwindFromOffsetZero,
    /// UNLINK-04, B4: an untranslated piece of the slow path WARNs and the walk goes on to the
    /// next piece (the review's `continue`, bounded here) instead of returning.
    UntranslatedPieceSkipped,
    /// IOVA-04: a magazine pops its oldest cached pfn (FIFO) instead of its newest (LIFO).
    RcacheFifo,
    /// STREAM-04: the flush-queue timer fires one jiffy early.
    FqTimerOneJiffyEarly,
    /// STREAM-09: consecutive entries are merged into one DMA segment across a segment boundary.
    SgMergeAcrossBoundary,
    /// LINK-04: a kmalloc buffer is bounced for `DMA_TO_DEVICE` too.
    KmallocBounceToDevice,
}

#[cfg(feature = "seeded-bugs")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<SeededBug>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with `bug` seeded on this thread (the engine runs a vector on the calling thread).
#[cfg(feature = "seeded-bugs")]
pub fn with<R>(bug: Option<SeededBug>, f: impl FnOnce() -> R) -> R {
    let before = ACTIVE.with(|a| a.replace(bug));
    let r = f();
    ACTIVE.with(|a| a.set(before));
    r
}

/// Whether `bug` is seeded on this thread; always `false` without the `seeded-bugs` feature.
#[inline(always)]
pub(crate) fn active(bug: SeededBug) -> bool {
    #[cfg(feature = "seeded-bugs")]
    {
        ACTIVE.with(|a| a.get() == Some(bug))
    }
    #[cfg(not(feature = "seeded-bugs"))]
    {
        let _ = bug;
        false
    }
}
