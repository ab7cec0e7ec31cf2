//! The IOMMU page table: leaf PTEs with their page sizes, the lower-level tables that exist
//! under each block, and the map/unmap semantics and error codes of the two Linux 7.3
//! page-table backends (`PgtableBackend`).
//!
//! Why tables are tracked at all: both backends behave differently when a block-sized leaf
//! meets an existing lower-level table. io-pgtable-arm silently replaces the table (dropping any
//! live leaves under it, with an immediate walk flush) both when mapping a block and when
//! unmapping at block size; iommupt refuses a table that still holds leaves (-EADDRINUSE) and
//! syncs the IOTLB after freeing an empty one. Those differences are observable (return values,
//! bytes unmapped, invalidations), so the machine keeps the table tree.
//!
//! Level structure: level 0 holds granule-sized entries and every level above it multiplies
//! the entry size by `granule / 8` (8-byte PTEs): 4 KiB, 2 MiB, 1 GiB, 512 GiB for a 4 KiB
//! granule. A page of size S lives at the highest level whose entry size is <= S (sizes between
//! levels are iommupt's contiguous entries). Only levels whose entry size is at most the largest
//! page of the bitmap matter (nothing else can be replaced or unmapped at block size), so only
//! those are tracked; the invariant is that a leaf at level j implies a table at every tracked
//! level above j for the blocks containing it.
//!
//! The page table does not touch the IOTLB itself: it returns its effects in order
//! ([`PtEffect`]) and the machine applies them to the IOTLB model and the event log.

use std::collections::{BTreeMap, BTreeSet};

use dmaconf_platform::{errno, PgtableBackend, PlatformFacts, Prot, WarnCode};

/// The most PTEs the machine keeps live. A map that would exceed it fails with -ENOMEM (as if
/// the page-table allocation had failed) and the machine notes a "not modelled" limit.
pub const MAX_PTES: usize = 1 << 22;

/// A leaf translation: `size` bytes at the key IOVA go to `phys`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pte {
    pub phys: u64,
    pub size: u64,
    pub prot: u32,
}

/// One effect of a page-table operation, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PtEffect {
    /// A leaf was installed at `iova`.
    Installed { iova: u64, size: u64 },
    /// A leaf was cleared; the device may keep using it until an invalidation covers it.
    Removed { iova: u64, pte: Pte },
    /// The page table invalidated `[iova, iova+len)` by itself (see `Event::IotlbTableFlush`).
    Flushed { iova: u64, len: u64 },
}

/// What a map did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapOutcome {
    /// 0 or a negative errno.
    pub ret: i32,
    /// Bytes mapped before the failure, as Linux counts them for the rollback.
    pub mapped: u64,
    /// A WARN raised by the page table before it did anything.
    pub warn: Option<WarnCode>,
    pub effects: Vec<PtEffect>,
    /// The map hit [`MAX_PTES`].
    pub hit_pte_limit: bool,
}

/// What an unmap did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnmapOutcome {
    pub unmapped: u64,
    pub effects: Vec<PtEffect>,
    /// WARNs the backend raised on the way, in order (io-pgtable-arm: a missing entry, a
    /// partial large leaf).
    pub warns: Vec<WarnCode>,
}

/// The IOMMU page table of one paging domain.
#[derive(Clone, Debug)]
pub struct IoPageTable {
    backend: PgtableBackend,
    /// Page sizes the table installs (for io-pgtable-arm, only sizes that are level sizes).
    bitmap: u64,
    granule: u64,
    /// Entry size of each tracked level, level 0 first.
    levels: Vec<u64>,
    oas_bits: u32,
    va_first: u64,
    va_last: u64,
    ptes: BTreeMap<u64, Pte>,
    /// `tables[k]`: bases of the level-k tables that exist (index 0 unused).
    tables: Vec<BTreeSet<u64>>,
    /// `PlatformFacts::write_only_pte`: a write-only PTE is not readable.
    write_only_pte: bool,
}

/// Linux `GENMASK(h, 0)`.
fn genmask(h: u32) -> u64 {
    if h >= 63 {
        u64::MAX
    } else {
        (1u64 << (h + 1)) - 1
    }
}

/// Exclusive end of `[start, start+len)`, widened so that 2^64 is representable.
fn end_of(start: u64, len: u64) -> u128 {
    u128::from(start) + u128::from(len)
}

/// One step of the core page-size choice, modelling `iommu_pgsize`: the largest page of
/// `bitmap` that fits `size` and the alignment of both `iova` and `paddr`, and how many such
/// pages to map before a bigger size could take over. `None` where Linux would BUG.
///
/// iommupt's own choice (`pt_compute_best_pgsize` / `pt_pgsz_count`) picks the same pages, so
/// the machine uses this for both backends.
pub fn pgsize_step(bitmap: u64, iova: u64, paddr: u64, size: u64) -> Option<(u64, u64)> {
    if size == 0 {
        return None;
    }
    let merge = iova | paddr;
    let mut sizes = bitmap & genmask(63 - size.leading_zeros());
    if merge != 0 {
        sizes &= genmask(merge.trailing_zeros());
    }
    if sizes == 0 {
        return None;
    }
    let idx = 63 - sizes.leading_zeros();
    let mut span = size;
    let bigger = bitmap & !genmask(idx);
    if bigger != 0 {
        let next = 1u64 << bigger.trailing_zeros();
        // A bigger page is only worth waiting for when iova and paddr share the offset in it.
        if (iova ^ paddr) & (next - 1) == 0 {
            let offset = next - (merge & (next - 1));
            if offset.checked_add(next).is_some_and(|e| e <= size) {
                span = offset;
            }
        }
    }
    Some((1u64 << idx, span >> idx))
}

impl IoPageTable {
    /// An empty table for the domain described by `facts`; `oas_bits` is the output address
    /// size (64 or more: unlimited).
    pub fn new(facts: &PlatformFacts, oas_bits: u32) -> IoPageTable {
        let bitmap = facts.pgsize_bitmap;
        let granule = facts.granule();
        let mut levels = Vec::new();
        if granule != 0 {
            let g_lg2 = granule.trailing_zeros();
            let per_level = g_lg2.saturating_sub(3).max(1);
            let max_page = 1u64 << (63 - bitmap.leading_zeros());
            let mut lg2 = g_lg2;
            while lg2 <= 63 && (1u64 << lg2) <= max_page {
                levels.push(1u64 << lg2);
                lg2 += per_level;
            }
        }
        let bitmap = match facts.backend {
            PgtableBackend::Iommupt => bitmap,
            // io-pgtable-arm restricts its sizes to block sizes of the granule.
            PgtableBackend::IoPgtableArm => bitmap & levels.iter().fold(0, |a, l| a | l),
        };
        IoPageTable {
            backend: facts.backend,
            bitmap,
            granule,
            tables: vec![BTreeSet::new(); levels.len().max(1)],
            levels,
            oas_bits,
            va_first: facts.aperture_start,
            va_last: facts.aperture_end,
            ptes: BTreeMap::new(),
            write_only_pte: facts.write_only_pte,
        }
    }

    /// May the device read through a PTE of protection `prot`? `IOMMU_READ`, or `IOMMU_WRITE`
    /// on a format that cannot express write-only (PROT-01: `arm_lpae_prot_to_pte` stage 1,
    /// `x86_64_pt_iommu_set_prot`, `riscvpt_iommu_set_prot` make every present PTE readable).
    pub fn readable(&self, prot: u32) -> bool {
        prot & Prot::READ.0 != 0 || (!self.write_only_pte && prot & Prot::WRITE.0 != 0)
    }

    pub fn granule(&self) -> u64 {
        self.granule
    }

    /// Live PTEs in IOVA order.
    pub fn ptes(&self) -> impl Iterator<Item = (u64, Pte)> + '_ {
        self.ptes.iter().map(|(&i, &p)| (i, p))
    }

    pub fn pte_count(&self) -> usize {
        self.ptes.len()
    }

    /// The live PTE covering `addr`, with its IOVA.
    pub fn lookup(&self, addr: u64) -> Option<(u64, Pte)> {
        let (&iova, &pte) = self.ptes.range(..=addr).next_back()?;
        (end_of(iova, pte.size) > u128::from(addr)).then_some((iova, pte))
    }

    /// Models `iommu_iova_to_phys` for a paging domain: the translation of `iova` or 0.
    pub fn iova_to_phys(&self, iova: u64) -> u64 {
        self.lookup(iova)
            .map_or(0, |(base, pte)| pte.phys.wrapping_add(iova - base))
    }

    fn level_of(&self, size: u64) -> usize {
        self.levels.iter().rposition(|&l| l <= size).unwrap_or(0)
    }

    fn top(&self) -> usize {
        self.levels.len().saturating_sub(1)
    }

    fn block(&self, level: usize, addr: u64) -> u64 {
        addr & !(self.levels[level] - 1)
    }

    fn oa_out_of_range(&self, phys: u64) -> bool {
        self.oas_bits < 64 && phys >> self.oas_bits != 0
    }

    /// Is any byte of `[start, start+len)` covered by a live PTE?
    fn overlaps_live(&self, start: u64, len: u64) -> bool {
        if self.lookup(start).is_some() {
            return true;
        }
        match u64::try_from(end_of(start, len)) {
            Ok(end) => self.ptes.range(start..end).next().is_some(),
            Err(_) => self.ptes.range(start..).next().is_some(),
        }
    }

    /// Creates the tables above `level` on the path to `addr`.
    fn ensure_tables_above(&mut self, level: usize, addr: u64) {
        for k in level + 1..=self.top() {
            let b = self.block(k, addr);
            self.tables[k].insert(b);
        }
    }

    /// Frees the level-`level` table at `base`, every table under it and every leaf under it
    /// (io-pgtable-arm's `__arm_lpae_free_pgtable`; iommupt only frees empty ones).
    fn free_table(&mut self, level: usize, base: u64, effects: &mut Vec<PtEffect>) {
        let len = self.levels[level];
        let end = end_of(base, len);
        for k in 1..=level {
            let inside: Vec<u64> = self.tables[k]
                .range(base..)
                .take_while(|&&b| u128::from(b) < end)
                .copied()
                .collect();
            for b in inside {
                self.tables[k].remove(&b);
            }
        }
        let leaves: Vec<u64> = self
            .ptes
            .range(base..)
            .take_while(|(&i, _)| u128::from(i) < end)
            .map(|(&i, _)| i)
            .collect();
        for iova in leaves {
            if let Some(pte) = self.ptes.remove(&iova) {
                effects.push(PtEffect::Removed { iova, pte });
            }
        }
    }

    fn install(&mut self, iova: u64, phys: u64, size: u64, prot: u32, effects: &mut Vec<PtEffect>) {
        self.ptes.insert(iova, Pte { phys, size, prot });
        let level = self.level_of(size);
        self.ensure_tables_above(level, iova);
        effects.push(PtEffect::Installed { iova, size });
    }

    /// Models `iommu_map_nosync` up to (not including) its rollback: the machine emits the
    /// `iommu.map` event and then unmaps `mapped` bytes when `ret` is an error, as Linux does.
    pub fn map(&mut self, iova: u64, phys: u64, len: u64, prot: Prot) -> MapOutcome {
        let mut out = MapOutcome {
            ret: 0,
            mapped: 0,
            warn: None,
            effects: Vec::new(),
            hit_pte_limit: false,
        };
        // iommu_map_nosync refuses a domain without page sizes before anything else.
        if self.bitmap == 0 {
            out.ret = -errno::EINVAL;
            return out;
        }
        match self.backend {
            PgtableBackend::Iommupt => self.map_iommupt(iova, phys, len, prot.0, &mut out),
            PgtableBackend::IoPgtableArm => self.map_arm(iova, phys, len, prot.0, &mut out),
        }
        out
    }

    /// Models generic_pt's `map_range` (iommupt). Check order as in the source: access bits
    /// (WARN), output address, length (0 or wrapping), alignment, input range, then the walk.
    fn map_iommupt(&mut self, iova: u64, phys: u64, len: u64, prot: u32, out: &mut MapOutcome) {
        if prot & (Prot::READ.0 | Prot::WRITE.0) == 0 {
            out.warn = Some(WarnCode::MAP_NO_ACCESS);
            out.ret = -errno::EINVAL;
            return;
        }
        // Only the first output address is checked, as in the source.
        if self.oa_out_of_range(phys) {
            out.ret = -errno::ERANGE;
            return;
        }
        if len == 0 {
            out.ret = -errno::EINVAL;
            return;
        }
        let Some(last) = iova.checked_add(len - 1) else {
            out.ret = -errno::EOVERFLOW;
            return;
        };
        // The source finds no page size for a misaligned iova/phys or a length under one
        // granule (-ENXIO). A length that is not a multiple of the granule is not checked
        // there and would end in an undefined page-size computation; the machine refuses it
        // the same way, before mapping anything.
        if (iova | phys | len) & (self.granule - 1) != 0 {
            out.ret = -errno::ENXIO;
            return;
        }
        if iova < self.va_first || last > self.va_last {
            out.ret = -errno::ERANGE;
            return;
        }
        let mut flush: Option<(u64, u128)> = None;
        let (mut va, mut pa, mut rem) = (iova, phys, len);
        'walk: while rem > 0 {
            let Some((size, count)) = pgsize_step(self.bitmap, va, pa, rem) else {
                out.ret = -errno::ENXIO;
                break;
            };
            for _ in 0..count {
                let level = self.level_of(size);
                let item = self.levels[level];
                // A contiguous leaf spans several level entries; each is checked in turn.
                for i in 0..size / item {
                    let base = va + i * item;
                    if self.overlaps_live(base, item) {
                        out.ret = -errno::EADDRINUSE;
                        break 'walk;
                    }
                    if level >= 1 && self.tables[level].contains(&base) {
                        self.free_table(level, base, &mut out.effects);
                        let end = end_of(base, item);
                        flush = Some(match flush {
                            None => (base, end),
                            Some((s, e)) => (s.min(base), e.max(end)),
                        });
                    }
                }
                if self.ptes.len() >= MAX_PTES {
                    out.ret = -errno::ENOMEM;
                    out.hit_pte_limit = true;
                    break 'walk;
                }
                self.install(va, pa, size, prot, &mut out.effects);
                out.mapped += size;
                rem -= size;
                // Cannot wrap: [iova, last] is inside the address space.
                va = va.wrapping_add(size);
                pa = pa.wrapping_add(size);
            }
        }
        // Freed tables are flushed through the gather before map_range returns, failed or not.
        if let Some((s, e)) = flush {
            let len = u64::try_from(e - u128::from(s)).unwrap_or(u64::MAX);
            out.effects.push(PtEffect::Flushed { iova: s, len });
        }
    }

    /// Models `__iommu_map_domain_pgtbl` driving io-pgtable-arm's `map_pages`: an alignment
    /// check (pr_err, -EINVAL), then one `map_pages` call per run of same-size pages that fits
    /// one table, each checking the input/output range (WARN `map_out_of_range`, -ERANGE), the
    /// access bits (-EINVAL, no WARN) and existing leaves (WARN `map_exists`, -EEXIST). A run
    /// installs all its entries or none. Length 0 maps nothing and
    /// succeeds (the loop never runs, so even prot 0 passes).
    fn map_arm(&mut self, iova: u64, phys: u64, len: u64, prot: u32, out: &mut MapOutcome) {
        // __iommu_map_domain_pgtbl's alignment check, with its "unaligned" error print (the
        // map_unaligned code of spec/2-outcomes.md).
        if (iova | phys | len) & (self.granule - 1) != 0 {
            out.warn = Some(WarnCode::MAP_UNALIGNED);
            out.ret = -errno::EINVAL;
            return;
        }
        let (mut va, mut pa, mut rem) = (iova, phys, len);
        while rem > 0 {
            let Some((size, count)) = pgsize_step(self.bitmap, va, pa, rem) else {
                out.ret = -errno::EINVAL;
                return;
            };
            let level = self.level_of(size);
            // map_pages stops at the end of the table holding the entries.
            let to_table_end = match self.levels.get(level + 1) {
                Some(&span) => (span - (va & (span - 1))) / size,
                None => count,
            };
            let n = count.min(to_table_end);
            // arm_lpae_map_pages: WARN_ON(iaext || paddr >> oas), -ERANGE.
            if va > self.va_last || self.oa_out_of_range(pa) {
                out.warn = Some(WarnCode::MAP_OUT_OF_RANGE);
                out.ret = -errno::ERANGE;
                return;
            }
            if prot & (Prot::READ.0 | Prot::WRITE.0) == 0 {
                out.ret = -errno::EINVAL;
                return;
            }
            // The walk down meets a bigger leaf covering the run: __arm_lpae_map WARNs (no SMMU
            // driver sets IO_PGTABLE_QUIRK_NO_WARN) and returns -EEXIST.
            if let Some((_, pte)) = self.lookup(va) {
                if self.level_of(pte.size) > level {
                    out.warn = Some(WarnCode::MAP_EXISTS);
                    out.ret = -errno::EEXIST;
                    return;
                }
            }
            self.ensure_tables_above(level, va);
            for i in 0..n {
                let slot = va.wrapping_add(i * size);
                if self
                    .ptes
                    .get(&slot)
                    .is_some_and(|p| self.level_of(p.size) == level)
                {
                    // arm_lpae_init_pte: a leaf already there, WARN and -EEXIST.
                    out.warn = Some(WarnCode::MAP_EXISTS);
                    out.ret = -errno::EEXIST;
                    return;
                }
                if level >= 1 && self.tables[level].contains(&slot) {
                    self.free_table(level, slot, &mut out.effects);
                    out.effects.push(PtEffect::Flushed {
                        iova: slot,
                        len: size,
                    });
                }
            }
            if self.ptes.len().saturating_add(n as usize) > MAX_PTES {
                out.ret = -errno::ENOMEM;
                out.hit_pte_limit = true;
                return;
            }
            for i in 0..n {
                let off = i * size;
                self.install(
                    va.wrapping_add(off),
                    pa.wrapping_add(off),
                    size,
                    prot,
                    &mut out.effects,
                );
            }
            let bytes = n * size;
            out.mapped += bytes;
            rem -= bytes;
            va = va.wrapping_add(bytes);
            pa = pa.wrapping_add(bytes);
        }
    }

    /// Models `__iommu_unmap` (no IOTLB sync): clears translations from `iova` on and returns
    /// the bytes unmapped. Stops at the first hole.
    pub fn unmap(&mut self, iova: u64, len: u64) -> UnmapOutcome {
        let mut out = UnmapOutcome {
            unmapped: 0,
            effects: Vec::new(),
            warns: Vec::new(),
        };
        if self.bitmap == 0 {
            return out;
        }
        match self.backend {
            PgtableBackend::Iommupt => self.unmap_iommupt(iova, len, &mut out),
            PgtableBackend::IoPgtableArm => self.unmap_arm(iova, len, &mut out),
        }
        out
    }

    /// Models generic_pt's `unmap_range`: no alignment check; the range must be non-empty and
    /// inside the table. Walks entries from `iova`: an entry starting at the cursor is removed
    /// whole and counted whole (even past the end of the range); an entry the start falls in
    /// the middle of, or a hole, stops the walk. Tables the range fully covers are freed when
    /// the walk got past them.
    fn unmap_iommupt(&mut self, iova: u64, len: u64, out: &mut UnmapOutcome) {
        if len == 0 {
            return;
        }
        let Some(last) = iova.checked_add(len - 1) else {
            return;
        };
        if iova < self.va_first || last > self.va_last {
            return;
        }
        // The cursor may reach 2^64, hence u128.
        let mut cur = u128::from(iova);
        while cur <= u128::from(last) {
            let at = cur as u64;
            match self.lookup(at) {
                Some((base, pte)) if base == at => {
                    self.ptes.remove(&base);
                    out.effects.push(PtEffect::Removed { iova: base, pte });
                    out.unmapped += pte.size;
                    cur += u128::from(pte.size);
                }
                _ => break,
            }
        }
        for k in 1..=self.top() {
            let span = self.levels[k];
            let freed: Vec<u64> = self.tables[k]
                .range(iova..)
                .take_while(|&&b| u128::from(b) <= u128::from(last))
                .filter(|&&b| {
                    let end = end_of(b, span);
                    end <= u128::from(last) + 1 && end <= cur
                })
                .copied()
                .collect();
            for b in freed {
                self.tables[k].remove(&b);
            }
        }
    }

    /// Models `__iommu_unmap_domain_pgtbl` driving io-pgtable-arm's `unmap_pages`: iova and
    /// length must be granule-aligned (pr_err, 0). Each step picks a page size from the
    /// alignment of the IOVA alone, then walks to that level: a missing table (WARN
    /// `unmap_missing`) or a bigger leaf ("partial large IOPTE", WARN `unmap_partial_leaf`) ends
    /// the unmap; at the level, leaves are cleared and tables are freed whole with an immediate
    /// walk flush, until a hole (WARN `unmap_missing`; the next step then meets the same hole
    /// first and WARNs again, as `__iommu_unmap_domain_pgtbl` retries once before it stops).
    fn unmap_arm(&mut self, iova: u64, len: u64, out: &mut UnmapOutcome) {
        if (iova | len) & (self.granule - 1) != 0 {
            return;
        }
        while out.unmapped < len {
            let cur = iova.wrapping_add(out.unmapped);
            let Some((size, count)) = pgsize_step(self.bitmap, cur, cur, len - out.unmapped) else {
                return;
            };
            if cur > self.va_last {
                return;
            }
            let level = self.level_of(size);
            if let Some((_, pte)) = self.lookup(cur) {
                if self.level_of(pte.size) > level {
                    // __arm_lpae_unmap: "Unmap of a partial large IOPTE is not allowed".
                    out.warns.push(WarnCode::UNMAP_PARTIAL_LEAF);
                    return;
                }
            }
            if (level + 1..=self.top()).any(|k| !self.tables[k].contains(&self.block(k, cur))) {
                // __arm_lpae_unmap meets an empty entry on the walk down: WARN, 0.
                out.warns.push(WarnCode::UNMAP_MISSING);
                return;
            }
            let to_table_end = match self.levels.get(level + 1) {
                Some(&span) => (span - (cur & (span - 1))) / size,
                None => count,
            };
            let mut done = 0u64;
            for i in 0..count.min(to_table_end) {
                let slot = cur.wrapping_add(i * size);
                if let Some(&pte) = self
                    .ptes
                    .get(&slot)
                    .filter(|p| self.level_of(p.size) == level)
                {
                    self.ptes.remove(&slot);
                    out.effects.push(PtEffect::Removed { iova: slot, pte });
                } else if level >= 1 && self.tables[level].contains(&slot) {
                    self.free_table(level, slot, &mut out.effects);
                    out.effects.push(PtEffect::Flushed {
                        iova: slot,
                        len: size,
                    });
                } else {
                    // An empty entry at the level: WARN and stop (the first one returns 0).
                    out.warns.push(WarnCode::UNMAP_MISSING);
                    break;
                }
                done += size;
            }
            if done == 0 {
                return;
            }
            out.unmapped += done;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RW: Prot = Prot(3);

    fn facts(backend: PgtableBackend) -> PlatformFacts {
        PlatformFacts {
            backend,
            ..PlatformFacts::default()
        }
    }

    fn sizes(pt: &IoPageTable) -> Vec<(u64, u64)> {
        pt.ptes().map(|(i, p)| (i, p.size)).collect()
    }

    #[test]
    fn pgsize_step_matches_iommu_pgsize_by_hand() {
        let bm = 0x4020_1000;
        // 4 KiB-aligned start: 4 KiB pages up to the 2 MiB boundary (0x200000 - 0x1ff000 = 1).
        assert_eq!(
            pgsize_step(bm, 0x1f_f000, 0x1f_f000, 0x40_1000),
            Some((0x1000, 1))
        );
        // Not enough left for a 2 MiB page after the boundary: all 4 KiB.
        assert_eq!(
            pgsize_step(bm, 0x1f_f000, 0x1f_f000, 0x2000),
            Some((0x1000, 2))
        );
        // iova and phys at different offsets in 2 MiB: never a bigger page.
        assert_eq!(
            pgsize_step(bm, 0x20_0000, 0x30_1000, 0x40_0000),
            Some((0x1000, 0x400))
        );
        assert_eq!(pgsize_step(bm, 0, 0, 0x800), None);
    }

    #[test]
    fn page_sizes_4k_2m_1g() {
        for backend in [PgtableBackend::Iommupt, PgtableBackend::IoPgtableArm] {
            let mut pt = IoPageTable::new(&facts(backend), 52);
            // 4 KiB at 0x3fdff000, 2 MiB at 0x3fe00000, 1 GiB at 0x40000000, 4 KiB after.
            let out = pt.map(0x3fdf_f000, 0x3fdf_f000, 0x4020_2000, RW);
            assert_eq!(out.ret, 0, "{backend:?}");
            assert_eq!(out.mapped, 0x4020_2000);
            assert_eq!(
                sizes(&pt),
                vec![
                    (0x3fdf_f000, 0x1000),
                    (0x3fe0_0000, 0x20_0000),
                    (0x4000_0000, 0x4000_0000),
                    (0x8000_0000, 0x1000),
                ]
            );
            assert_eq!(pt.iova_to_phys(0x4000_1234), 0x4000_1234);
        }
        // A 2 MiB-aligned iova with a 4 KiB-aligned phys only gets 4 KiB pages.
        let mut pt = IoPageTable::new(&facts(PgtableBackend::Iommupt), 52);
        assert_eq!(pt.map(0x20_0000, 0x1000, 0x20_0000, RW).ret, 0);
        assert_eq!(pt.pte_count(), 512);
        assert_eq!(pt.iova_to_phys(0x3f_f010), 0x20_0010);
    }

    #[test]
    fn iommupt_error_codes() {
        let mut pt = IoPageTable::new(&facts(PgtableBackend::Iommupt), 39);
        let none = pt.map(0x1000, 0x1000, 0x1000, Prot(Prot::CACHE.0));
        assert_eq!((none.ret, none.warn), (-22, Some(WarnCode::MAP_NO_ACCESS)));
        assert_eq!(pt.map(0x1800, 0x1000, 0x1000, RW).ret, -6);
        assert_eq!(pt.map(0x1000, 0x1800, 0x1000, RW).ret, -6);
        assert_eq!(pt.map(0x1000, 0x1000, 0x1800, RW).ret, -6);
        assert_eq!(pt.map(0x1000, 0x1000, 0x800, RW).ret, -6);
        assert_eq!(pt.map(0x1000, 1 << 39, 0x1000, RW).ret, -34);
        assert_eq!(pt.map(1 << 48, 0x1000, 0x1000, RW).ret, -34);
        assert_eq!(pt.map(0x1000, 0x1000, 0, RW).ret, -22);
        assert_eq!(pt.map(u64::MAX - 0xfff, 0, 0x2000, RW).ret, -75);
        // Output range is checked before alignment, access bits before everything.
        assert_eq!(pt.map(0x1800, 1 << 39, 0x1000, RW).ret, -34);
        assert_eq!(pt.map(0x1800, 1 << 39, 0, Prot(0)).ret, -22);
        assert_eq!(pt.map(0x1000, 0x1000, 0x1000, RW).ret, 0);
        assert_eq!(pt.map(0x1000, 0x5000, 0x1000, RW).ret, -98);
        assert_eq!(pt.pte_count(), 1);
    }

    #[test]
    fn io_pgtable_arm_error_codes() {
        let mut pt = IoPageTable::new(&facts(PgtableBackend::IoPgtableArm), 40);
        assert_eq!(pt.map(0x1800, 0x1000, 0x1000, RW).ret, -22);
        let none = pt.map(0x1000, 0x1000, 0x1000, Prot(0));
        assert_eq!((none.ret, none.warn), (-22, None));
        // Length 0 never reaches map_pages: success, nothing mapped, prot not even checked.
        assert_eq!(pt.map(0x1000, 0x1000, 0, Prot(0)).ret, 0);
        assert_eq!(pt.map(0x1000, 1 << 40, 0x1000, RW).ret, -34);
        assert_eq!(pt.map(1 << 48, 0x1000, 0x1000, RW).ret, -34);
        // Alignment is checked before the range.
        assert_eq!(pt.map(0x1800, 1 << 40, 0x1000, RW).ret, -22);
        assert_eq!(pt.map(0x1000, 0x1000, 0x1000, RW).ret, 0);
        assert_eq!(pt.map(0x1000, 0x5000, 0x1000, RW).ret, -17);
        // A 4 KiB page under an existing 2 MiB block.
        assert_eq!(pt.map(0x20_0000, 0x20_0000, 0x20_0000, RW).ret, 0);
        assert_eq!(pt.map(0x20_1000, 0x1000, 0x1000, RW).ret, -17);
    }

    #[test]
    fn arm_run_fails_whole_iommupt_page_by_page() {
        // 0x1000..0x4000 with 0x3000 already mapped.
        let mut arm = IoPageTable::new(&facts(PgtableBackend::IoPgtableArm), 48);
        arm.map(0x3000, 0x9000, 0x1000, RW);
        let out = arm.map(0x1000, 0x1000, 0x3000, RW);
        assert_eq!((out.ret, out.mapped), (-17, 0));
        let mut pt = IoPageTable::new(&facts(PgtableBackend::Iommupt), 48);
        pt.map(0x3000, 0x9000, 0x1000, RW);
        let out = pt.map(0x1000, 0x1000, 0x3000, RW);
        assert_eq!((out.ret, out.mapped), (-98, 0x2000));
        // On arm a run crossing a table boundary is two map_pages calls: the first succeeds.
        let mut arm = IoPageTable::new(&facts(PgtableBackend::IoPgtableArm), 48);
        arm.map(0x20_1000, 0x9000, 0x1000, RW);
        let out = arm.map(0x1f_e000, 0x1f_e000, 0x4000, RW);
        assert_eq!((out.ret, out.mapped), (-17, 0x2000));
    }

    #[test]
    fn unmap_stops_at_a_hole() {
        for backend in [PgtableBackend::Iommupt, PgtableBackend::IoPgtableArm] {
            let mut pt = IoPageTable::new(&facts(backend), 48);
            pt.map(0x1000, 0x10_0000, 0x2000, RW);
            pt.map(0x4000, 0x20_0000, 0x1000, RW);
            let out = pt.unmap(0x1000, 0x4000);
            assert_eq!(out.unmapped, 0x2000, "{backend:?}");
            assert_eq!(sizes(&pt), vec![(0x4000, 0x1000)]);
            assert_eq!(
                out.effects,
                vec![
                    PtEffect::Removed {
                        iova: 0x1000,
                        pte: Pte {
                            phys: 0x10_0000,
                            size: 0x1000,
                            prot: 3
                        }
                    },
                    PtEffect::Removed {
                        iova: 0x2000,
                        pte: Pte {
                            phys: 0x10_1000,
                            size: 0x1000,
                            prot: 3
                        }
                    },
                ]
            );
            // Nothing at the start: nothing unmapped.
            assert_eq!(pt.unmap(0x1000, 0x1000).unmapped, 0);
        }
    }

    #[test]
    fn partial_large_page_unmap_per_backend() {
        // iommupt removes the whole 2 MiB entry and reports its size.
        let mut pt = IoPageTable::new(&facts(PgtableBackend::Iommupt), 48);
        pt.map(0x20_0000, 0x20_0000, 0x20_0000, RW);
        assert_eq!(pt.unmap(0x20_0000, 0x1000).unmapped, 0x20_0000);
        assert_eq!(pt.pte_count(), 0);
        // ...but not when the range starts inside it.
        pt.map(0x20_0000, 0x20_0000, 0x20_0000, RW);
        assert_eq!(pt.unmap(0x20_1000, 0x1000).unmapped, 0);
        // io-pgtable-arm refuses to split it ("partial large IOPTE").
        let mut arm = IoPageTable::new(&facts(PgtableBackend::IoPgtableArm), 48);
        arm.map(0x20_0000, 0x20_0000, 0x20_0000, RW);
        assert_eq!(arm.unmap(0x20_0000, 0x1000).unmapped, 0);
        assert_eq!(arm.pte_count(), 1);
        // Unaligned unmap arguments: 0.
        assert_eq!(arm.unmap(0x20_0800, 0x1000).unmapped, 0);
    }

    #[test]
    fn arm_block_unmap_frees_a_partly_filled_table() {
        let mut arm = IoPageTable::new(&facts(PgtableBackend::IoPgtableArm), 48);
        arm.map(0x20_3000, 0x5000, 0x1000, RW);
        // A 2 MiB unmap over a table holding one 4 KiB leaf: the whole table goes, 2 MiB
        // reported, the leaf dropped and flushed at once.
        let out = arm.unmap(0x20_0000, 0x20_0000);
        assert_eq!(out.unmapped, 0x20_0000);
        assert_eq!(
            out.effects,
            vec![
                PtEffect::Removed {
                    iova: 0x20_3000,
                    pte: Pte {
                        phys: 0x5000,
                        size: 0x1000,
                        prot: 3
                    }
                },
                PtEffect::Flushed {
                    iova: 0x20_0000,
                    len: 0x20_0000
                },
            ]
        );
        // iommupt stops at the hole at 0x200000.
        let mut pt = IoPageTable::new(&facts(PgtableBackend::Iommupt), 48);
        pt.map(0x20_3000, 0x5000, 0x1000, RW);
        assert_eq!(pt.unmap(0x20_0000, 0x20_0000).unmapped, 0);
    }

    #[test]
    fn block_over_a_table() {
        // arm: a 2 MiB block over a table with a live leaf replaces it silently.
        let mut arm = IoPageTable::new(&facts(PgtableBackend::IoPgtableArm), 48);
        arm.map(0x20_3000, 0x5000, 0x1000, RW);
        let out = arm.map(0x20_0000, 0x40_0000, 0x20_0000, RW);
        assert_eq!(out.ret, 0);
        assert_eq!(sizes(&arm), vec![(0x20_0000, 0x20_0000)]);
        assert_eq!(out.effects.len(), 3);
        assert_eq!(
            out.effects[1],
            PtEffect::Flushed {
                iova: 0x20_0000,
                len: 0x20_0000
            }
        );
        // iommupt refuses a table that still holds a leaf...
        let mut pt = IoPageTable::new(&facts(PgtableBackend::Iommupt), 48);
        pt.map(0x20_3000, 0x5000, 0x1000, RW);
        assert_eq!(pt.map(0x20_0000, 0x40_0000, 0x20_0000, RW).ret, -98);
        // ...and frees an empty one, flushing it after the walk.
        assert_eq!(pt.unmap(0x20_3000, 0x1000).unmapped, 0x1000);
        let out = pt.map(0x20_0000, 0x40_0000, 0x20_0000, RW);
        assert_eq!(out.ret, 0);
        assert_eq!(
            out.effects,
            vec![
                PtEffect::Installed {
                    iova: 0x20_0000,
                    size: 0x20_0000
                },
                PtEffect::Flushed {
                    iova: 0x20_0000,
                    len: 0x20_0000
                },
            ]
        );
        // A table the unmap fully covers is freed: the next block map needs no flush.
        let mut pt = IoPageTable::new(&facts(PgtableBackend::Iommupt), 48);
        pt.map(0x20_0000, 0x1000, 0x20_0000, RW);
        assert_eq!(pt.unmap(0x20_0000, 0x20_0000).unmapped, 0x20_0000);
        let out = pt.map(0x20_0000, 0x40_0000, 0x20_0000, RW);
        assert_eq!(out.effects.len(), 1);
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        for backend in [PgtableBackend::Iommupt, PgtableBackend::IoPgtableArm] {
            let mut f = facts(backend);
            f.aperture_end = u64::MAX;
            let mut pt = IoPageTable::new(&f, 64);
            assert_eq!(pt.map(u64::MAX - 0xfff, 0, 0x1000, RW).ret, 0);
            assert_eq!(pt.unmap(u64::MAX - 0xfff, 0x1000).unmapped, 0x1000);
            pt.unmap(u64::MAX, u64::MAX);
            pt.unmap(0, u64::MAX);
            pt.map(u64::MAX, u64::MAX, u64::MAX, RW);
            assert_eq!(pt.iova_to_phys(u64::MAX), 0);
            f.pgsize_bitmap = 0;
            let mut empty = IoPageTable::new(&f, 64);
            assert_eq!(empty.map(0, 0, 0x1000, RW).ret, -22);
            assert_eq!(empty.unmap(0, 0x1000).unmapped, 0);
            f.pgsize_bitmap = 1 << 63;
            let mut huge = IoPageTable::new(&f, 64);
            assert_eq!(huge.map(1 << 63, 0, 1 << 63, RW).ret, 0);
            assert_eq!(huge.unmap(1 << 63, 1 << 63).unmapped, 1 << 63);
            f.pgsize_bitmap = 1;
            let mut tiny = IoPageTable::new(&f, 64);
            assert_eq!(tiny.map(3, 5, 7, RW).ret, 0);
            assert_eq!(tiny.unmap(3, 7).unmapped, 7);
        }
    }
}
