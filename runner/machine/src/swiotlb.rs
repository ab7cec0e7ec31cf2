//! The SWIOTLB bounce pool: machine memory whose slot allocator is a platform service, so that
//! every DMA layer gets the same bounce addresses and a leaked slot is seen by the machine.
//!
//! The model follows Linux 7.3's `kernel/dma/swiotlb.c` for one fixed pool (no
//! `CONFIG_SWIOTLB_DYNAMIC` growth, no memory encryption):
//!
//! * the pool is `nslabs` slots of 2 KiB, grouped in segments of 128 slots that no allocation
//!   crosses, and split into `nareas` equal areas; a search starts in the area of the calling
//!   CPU (`cpu & (nareas - 1)`) and tries the others in turn;
//! * every slot keeps the length of the free run from it to the end of its segment (`list`),
//!   the original address it shadows, the bytes from it to the end of its allocation, and, in
//!   the first slot after padding, the number of padding slots in front of it;
//! * an area keeps a next-fit start (`index`), which only ever moves forward, and a count of
//!   used slots;
//! * the search skips slots whose address does not satisfy the allocation alignment or whose
//!   `min_align_mask` bits above the slot size differ from the original's, steps by `stride`
//!   once a slot is aligned, and takes the first aligned slot whose free run is long enough;
//! * the returned address keeps the original's `min_align_mask` bits (within the alignment):
//!   whole slots of that offset become padding slots, the rest is an offset into the first
//!   slot after them;
//! * a release finds the allocation from the address alone (its padding slots, its length) and
//!   merges the freed run with the free slots after and before it inside the segment.
//!
//! What is not modelled: pool growth and transient pools (`CONFIG_SWIOTLB_DYNAMIC`), restricted
//! pools, the confidential-computing checks, and the WARN for an alignment wider than a page
//! (no WARN code exists for it). A pool that cannot satisfy a request is full: the allocation
//! fails and the DMA layer reports `-ENOMEM`.
//!
//! Every entry point takes any value without panicking; arithmetic that Linux does in
//! `unsigned int` or `size_t` is done in that width here, wrapping where Linux wraps.

use std::collections::BTreeMap;

use dmaconf_platform::errno;

/// `IO_TLB_SHIFT`: slots are 2 KiB.
pub const SLOT_SHIFT: u32 = 11;
/// `IO_TLB_SIZE`.
pub const SLOT_SIZE: u64 = 1 << SLOT_SHIFT;
/// `IO_TLB_SEGSIZE`: slots per segment; no allocation crosses a segment boundary.
pub const SEGSIZE: u64 = 128;
/// Linux's default pool: 64 MiB of slots (`CONFIG_SWIOTLB_DEFAULT_SIZE_MB`).
pub const DEFAULT_NSLABS: u64 = 32768;
/// `INVALID_PHYS_ADDR`: the `orig_addr` of a slot that shadows nothing.
const INVALID_PHYS_ADDR: u64 = u64::MAX;

/// Where the pool lives and how it is divided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwiotlbConfig {
    /// Physical (and DMA) address of the first slot.
    pub base: u64,
    /// Number of 2 KiB slots.
    pub nslabs: u64,
    /// Number of areas (per-CPU allocation domains); a power of two.
    pub nareas: u32,
    /// `dma_get_seg_boundary(dev)`: `0xFFFFFFFF` for PCI devices (set at PCI probe), all ones
    /// otherwise. An allocation never crosses a multiple of `mask + 1` in DMA address space.
    pub seg_boundary_mask: u64,
    /// The kernel's `PAGE_SIZE`: a streaming request of at least a page with no alignment
    /// constraint at all is page aligned (Linux's historic behaviour).
    pub page_size: u64,
}

impl SwiotlbConfig {
    /// The geometry Linux 7.3 sets up at boot for a pool of `requested_nslabs` slots (the
    /// default, or the `swiotlb=` parameter) on a machine with `nr_cpus` possible CPUs:
    /// the slot count is rounded up to a whole segment; the area count is the CPU count
    /// rounded up to a power of two (`swiotlb_adjust_nareas`); the slot count is then raised to
    /// at least one segment per area and to a power of two (`round_up_default_nslabs`); and the
    /// area count is limited to one segment per area (`limit_nareas`).
    pub fn linux(
        base: u64,
        requested_nslabs: u64,
        nr_cpus: u32,
        pci: bool,
        page_size: u64,
    ) -> SwiotlbConfig {
        let nareas = u64::from(nr_cpus.max(1)).next_power_of_two().min(1 << 31);
        let mut nslabs = requested_nslabs
            .min(1 << 40)
            .div_ceil(SEGSIZE)
            .saturating_mul(SEGSIZE);
        if nslabs < SEGSIZE * nareas {
            nslabs = SEGSIZE * nareas;
        }
        nslabs = nslabs.next_power_of_two();
        let nareas = if nslabs < nareas * SEGSIZE {
            nslabs / SEGSIZE
        } else {
            nareas
        };
        SwiotlbConfig {
            base,
            nslabs,
            nareas: nareas as u32,
            seg_boundary_mask: if pci { 0xFFFF_FFFF } else { u64::MAX },
            page_size,
        }
    }

    /// One past the last byte of the pool (as a wide number: the pool may end at 2^64).
    fn end(&self) -> u128 {
        u128::from(self.base) + (u128::from(self.nslabs) << SLOT_SHIFT)
    }
}

/// What an allocation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BounceAlloc {
    /// 0 or -errno.
    pub ret: i32,
    /// The bounce address (valid when `ret == 0`).
    pub slot: u64,
}

/// `struct io_tlb_slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    orig_addr: u64,
    alloc_size: u64,
    list: u32,
    pad_slots: u32,
}

/// `struct io_tlb_area`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Area {
    used: u64,
    index: u64,
}

/// The pool's bookkeeping, built on first use (a machine that never bounces pays nothing).
#[derive(Clone, Debug)]
struct Slots {
    slots: Vec<Slot>,
    areas: Vec<Area>,
    area_nslabs: u64,
}

/// A live allocation, keyed in [`SwiotlbPool`] by its first slot (padding included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Live {
    tlb_addr: u64,
    len: u64,
}

/// The bounce pool.
#[derive(Clone, Debug)]
pub struct SwiotlbPool {
    cfg: Option<SwiotlbConfig>,
    state: Option<Slots>,
    live: BTreeMap<u64, Live>,
}

/// `nr_slots`: slots needed for `bytes`.
fn nr_slots(bytes: u64) -> u64 {
    bytes.div_ceil(SLOT_SIZE)
}

/// `io_tlb_offset`: a slot's position inside its segment.
fn io_tlb_offset(index: u64) -> u64 {
    index & (SEGSIZE - 1)
}

/// `iommu_is_span_boundary(index, nr, shift, boundary_size)`.
fn is_span_boundary(index: u64, nr: u64, shift: u64, boundary_size: u64) -> bool {
    let shift = shift.wrapping_add(index) & boundary_size.wrapping_sub(1);
    u128::from(shift) + u128::from(nr) > u128::from(boundary_size)
}

impl SwiotlbPool {
    pub fn new(cfg: Option<SwiotlbConfig>) -> SwiotlbPool {
        // A pool with no slots, or with an area count that is not a power of two dividing it,
        // is treated as absent, as Linux has no such pool (`!mem->nslabs`).
        let cfg = cfg
            .filter(|c| {
                c.nslabs > 0
                    && c.nareas > 0
                    && c.nareas.is_power_of_two()
                    && c.nslabs % u64::from(c.nareas) == 0
                    && c.nslabs <= 1 << 24
                    && c.end() <= 1u128 << 64
            })
            .map(|c| SwiotlbConfig {
                page_size: if c.page_size.is_power_of_two() {
                    c.page_size
                } else {
                    4096
                },
                ..c
            });
        SwiotlbPool {
            cfg,
            state: None,
            live: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> Option<SwiotlbConfig> {
        self.cfg
    }

    /// `swiotlb_init_io_tlb_pool`: every slot free, its `list` the run to its segment's end.
    fn slots(&mut self) -> Option<(&SwiotlbConfig, &mut Slots)> {
        let cfg = self.cfg.as_ref()?;
        let st = self.state.get_or_insert_with(|| {
            let n = cfg.nslabs;
            Slots {
                slots: (0..n)
                    .map(|i| Slot {
                        orig_addr: INVALID_PHYS_ADDR,
                        alloc_size: 0,
                        list: (SEGSIZE - io_tlb_offset(i)).min(n - i) as u32,
                        pad_slots: 0,
                    })
                    .collect(),
                areas: vec![Area::default(); cfg.nareas as usize],
                area_nslabs: n / u64::from(cfg.nareas),
            }
        });
        Some((cfg, st))
    }

    /// Models the slot search and bookkeeping of `swiotlb_tbl_map_single` (without its copy:
    /// the DMA layer copies). `cpu` selects the first area searched. Fails with `-ENOMEM` when
    /// there is no pool or no area has room.
    pub fn alloc(
        &mut self,
        orig: u64,
        len: u64,
        alloc_align_mask: u64,
        min_align_mask: u64,
        cpu: u32,
    ) -> BounceAlloc {
        let fail = BounceAlloc {
            ret: -errno::ENOMEM,
            slot: 0,
        };
        // Both masks are `unsigned int` in Linux.
        let alloc_align_mask = alloc_align_mask as u32;
        let min_align_mask = min_align_mask as u32;
        let Some((cfg, st)) = self.slots() else {
            return fail;
        };
        // swiotlb_align_offset(dev, alloc_align_mask, orig).
        let offset = orig & u64::from(min_align_mask) & u64::from(alloc_align_mask | 0x7FF);
        // ALIGN(mapping_size + offset, alloc_align_mask + 1): the "+ 1" wraps in 32 bits.
        let align = u64::from(alloc_align_mask.wrapping_add(1));
        let size =
            len.wrapping_add(offset).wrapping_add(align.wrapping_sub(1)) & !align.wrapping_sub(1);

        let nareas = u64::from(cfg.nareas);
        let start = u64::from(cpu) & (nareas - 1);
        let mut found = None;
        for k in 0..nareas {
            let area = (start + k) % nareas;
            if let Some(i) =
                search_area(cfg, st, area, orig, size, alloc_align_mask, min_align_mask)
            {
                found = Some(i);
                break;
            }
        }
        let Some(first) = found else {
            return fail;
        };

        // Padding slots, the per-slot original addresses, and the address handed out.
        let pad_slots = offset >> SLOT_SHIFT;
        let index = first + pad_slots;
        let n = st.slots.len() as u64;
        if let Some(s) = st.slots.get_mut(index as usize) {
            s.pad_slots = pad_slots as u32;
        }
        for k in 0..nr_slots(size).saturating_sub(pad_slots) {
            if index + k >= n {
                break;
            }
            st.slots[(index + k) as usize].orig_addr = orig.wrapping_add(k << SLOT_SHIFT);
        }
        let tlb_addr = cfg
            .base
            .wrapping_add(index << SLOT_SHIFT)
            .wrapping_add(offset & (SLOT_SIZE - 1));
        self.live.insert(first, Live { tlb_addr, len });
        BounceAlloc {
            ret: 0,
            slot: tlb_addr,
        }
    }

    /// Models `swiotlb_release_slots`: the allocation is found from `tlb_addr` and the
    /// device's `min_align_mask` alone (the length a caller passes is not used, as in Linux).
    /// An address outside the pool is ignored (`swiotlb_tbl_unmap_single` finds no pool). An
    /// address that is not a live allocation is released the way Linux would, from whatever
    /// the slot records say.
    pub fn free(&mut self, tlb_addr: u64, min_align_mask: u64) {
        if !self.contains(tlb_addr) {
            return;
        }
        let Some((cfg, st)) = self.slots() else {
            return;
        };
        let n = st.slots.len() as u64;
        let offset = tlb_addr & (min_align_mask as u32 as u64) & (SLOT_SIZE - 1);
        let Some(rel) = tlb_addr
            .checked_sub(offset)
            .and_then(|a| a.checked_sub(cfg.base))
        else {
            return;
        };
        let mut index = rel >> SLOT_SHIFT;
        if index >= n {
            return;
        }
        index = index.saturating_sub(u64::from(st.slots[index as usize].pad_slots));
        // `int nslots`: clamp what a corrupted record could claim to the pool.
        let nslots =
            nr_slots(st.slots[index as usize].alloc_size.wrapping_add(offset)).min(n - index);
        let aindex = (index / st.area_nslabs) as usize;

        let seg_end = (index + 1).div_ceil(SEGSIZE) * SEGSIZE;
        let mut count: u32 = if index + nslots < seg_end {
            st.slots[(index + nslots) as usize].list
        } else {
            0
        };
        for i in (index..index + nslots).rev() {
            count = count.wrapping_add(1);
            st.slots[i as usize] = Slot {
                orig_addr: INVALID_PHYS_ADDR,
                alloc_size: 0,
                list: count,
                pad_slots: 0,
            };
        }
        let mut i = index;
        while i > 0 && io_tlb_offset(i - 1) != SEGSIZE - 1 && st.slots[(i - 1) as usize].list != 0 {
            count = count.wrapping_add(1);
            st.slots[(i - 1) as usize].list = count;
            i -= 1;
        }
        if let Some(a) = st.areas.get_mut(aindex) {
            a.used = a.used.saturating_sub(nslots);
        }
        self.live.remove(&index);
    }

    /// Models `swiotlb_find_pool`: is `phys` inside the pool's memory?
    pub fn contains(&self, phys: u64) -> bool {
        self.cfg
            .is_some_and(|c| phys >= c.base && u128::from(phys) < c.end())
    }

    /// The original address of the bounce byte at `phys`, as `swiotlb_bounce` computes it: the
    /// `orig_addr` of its slot, moved by the byte's offset in the slot minus the preserved
    /// `min_align_mask` offset. 0 when `phys` is outside the pool or its slot shadows nothing
    /// (free, or a padding slot).
    pub fn orig(&self, phys: u64, min_align_mask: u64) -> u64 {
        let (Some(cfg), Some(st)) = (self.cfg.as_ref(), self.state.as_ref()) else {
            return 0;
        };
        if !self.contains(phys) {
            return 0;
        }
        let slot = st.slots[((phys - cfg.base) >> SLOT_SHIFT) as usize];
        if slot.orig_addr == INVALID_PHYS_ADDR {
            return 0;
        }
        let kept = slot.orig_addr & (min_align_mask as u32 as u64) & (SLOT_SIZE - 1);
        slot.orig_addr
            .wrapping_add(phys & (SLOT_SIZE - 1))
            .wrapping_sub(kept)
    }

    /// Live allocations, (bounce address, requested length), in slot order.
    pub fn live(&self) -> Vec<(u64, u64)> {
        self.live.values().map(|l| (l.tlb_addr, l.len)).collect()
    }

    /// Used slots per area (for tests and reports).
    pub fn used(&self) -> Vec<u64> {
        self.state
            .as_ref()
            .map(|s| s.areas.iter().map(|a| a.used).collect())
            .unwrap_or_default()
    }

    /// Next-fit start of each area (for tests and reports).
    pub fn area_index(&self) -> Vec<u64> {
        self.state
            .as_ref()
            .map(|s| s.areas.iter().map(|a| a.index).collect())
            .unwrap_or_default()
    }

    /// The `list` counter of every slot (for tests).
    pub fn free_runs(&self) -> Vec<u32> {
        self.state
            .as_ref()
            .map(|s| s.slots.iter().map(|s| s.list).collect())
            .unwrap_or_default()
    }
}

/// `wrap_area_index`: past the area's end the next-fit index goes back to 0 (not modulo).
fn wrap(index: u64, area_nslabs: u64) -> u64 {
    if index >= area_nslabs {
        0
    } else {
        index
    }
}

/// Models `swiotlb_search_pool_area` for one area: returns the first slot (padding included)
/// of the allocation it made, or `None`.
fn search_area(
    cfg: &SwiotlbConfig,
    st: &mut Slots,
    area_index: u64,
    orig: u64,
    alloc_size: u64,
    alloc_align_mask: u32,
    min_align_mask: u32,
) -> Option<u64> {
    let boundary_mask = cfg.seg_boundary_mask;
    let max_slots = (boundary_mask >> SLOT_SHIFT) + 1;
    let mut iotlb_align_mask = min_align_mask;
    // `unsigned int nslots`.
    let nslots = u64::from(nr_slots(alloc_size) as u32);
    let offset = orig & u64::from(min_align_mask) & (SLOT_SIZE - 1);
    if nslots == 0 {
        // Linux stops the kernel here (BUG_ON); the model refuses the request.
        return None;
    }
    let tbl_dma_addr = cfg.base & boundary_mask;

    let mut alloc_align_mask = alloc_align_mask;
    if alloc_align_mask == 0 && iotlb_align_mask == 0 && alloc_size >= cfg.page_size {
        alloc_align_mask = cfg.page_size.wrapping_sub(1) as u32;
    }
    alloc_align_mask |= (SLOT_SIZE - 1) as u32;
    iotlb_align_mask &= !alloc_align_mask;
    let stride = (u64::from(alloc_align_mask.max(iotlb_align_mask)) >> SLOT_SHIFT) + 1;

    let area_nslabs = st.area_nslabs;
    let area = st.areas[area_index as usize];
    if nslots > area_nslabs - area.used.min(area_nslabs) {
        return None;
    }
    let slot_base = area_index * area_nslabs;
    let mut index = area.index;
    let mut checked = 0u64;
    let mut hit = None;
    while checked < area_nslabs {
        let slot_index = slot_base + index;
        let tlb_addr = tbl_dma_addr.wrapping_add(slot_index << SLOT_SHIFT);
        if tlb_addr & u64::from(alloc_align_mask) != 0
            || (orig != 0
                && tlb_addr & u64::from(iotlb_align_mask) != orig & u64::from(iotlb_align_mask))
        {
            index = wrap(index + 1, area_nslabs);
            checked += 1;
            continue;
        }
        if !is_span_boundary(slot_index, nslots, nr_slots(tbl_dma_addr), max_slots)
            && u64::from(st.slots[slot_index as usize].list) >= nslots
        {
            hit = Some(slot_index);
            break;
        }
        index = wrap(index + stride, area_nslabs);
        checked += stride;
    }
    let slot_index = hit?;

    for k in 0..nslots {
        let s = &mut st.slots[(slot_index + k) as usize];
        s.list = 0;
        s.alloc_size = alloc_size.wrapping_sub(offset + (k << SLOT_SHIFT));
    }
    let mut count: u32 = 0;
    let mut i = slot_index;
    while i > 0 && io_tlb_offset(i - 1) != SEGSIZE - 1 && st.slots[(i - 1) as usize].list != 0 {
        count += 1;
        st.slots[(i - 1) as usize].list = count;
        i -= 1;
    }
    let a = &mut st.areas[area_index as usize];
    a.index = wrap(index + nslots, area_nslabs);
    a.used += nslots;
    Some(slot_index)
}

#[cfg(test)]
mod tests;
