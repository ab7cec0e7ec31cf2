//! The simulated machine: the host side of dmaconf.
//!
//! The machine owns everything a DMA layer must not touch directly: sparse physical memory, the
//! IOMMU page table and IOTLB, the CPU caches, the SWIOTLB pool and the device. It implements
//! [`Platform`], the only way a DMA layer reaches any of them, and records every effect in an
//! ordered event log, so what an implementation did is observed here rather than reported by the
//! implementation. It never calls a DMA layer.
//!
//! What the machine cannot model (an access longer than it moves, a page table beyond its PTE
//! limit) is named by [`Machine::not_modelled`], so a result that depends on it is not mistaken
//! for a verdict.
#![forbid(unsafe_code)]

pub mod cache;
pub mod device;
pub mod events;
pub mod iommu;
pub mod iotlb;
pub mod memory;
pub mod swiotlb;

use dmaconf_platform::{Dir, DomainType, Platform, PlatformFacts, Prot, Region, WarnCode};
use serde::Serialize;

pub use events::{Event, Fault, FaultReason, FieldValue, Hazard};
pub use iommu::Pte;
pub use swiotlb::SwiotlbConfig;

use cache::CpuCaches;
use device::AccessPlan;
use iommu::{IoPageTable, PtEffect};
use iotlb::Iotlb;
use memory::PhysMemory;
use swiotlb::SwiotlbPool;

/// Not-modelled label: a data access or copy longer than [`memory::MAX_ACCESS_LEN`] or running
/// past the top of the address space was truncated.
pub const NOT_MODELLED_OVERSIZED: &str = "access longer than 1 GiB or past 2^64";
/// Not-modelled label: a map hit [`iommu::MAX_PTES`] and failed with -ENOMEM.
pub const NOT_MODELLED_PTE_LIMIT: &str = "page table beyond 4M PTEs";

/// Everything that describes one simulated machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    pub facts: PlatformFacts,
    pub reserved: Vec<Region>,
    /// The IOMMU driver has iotlb_sync_map and the device does not use new PTEs until it runs
    /// (e.g. VT-d in caching mode). When false, new PTEs are visible at once.
    pub needs_sync_map: bool,
    /// Output address size of the page table, in bits (phys beyond it: iommupt -ERANGE).
    pub oas_bits: u32,
    pub swiotlb: Option<SwiotlbConfig>,
}

/// A run of live PTEs contiguous in IOVA and in physical address, with one protection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mapping {
    pub iova: u64,
    pub phys: u64,
    pub len: u64,
    pub prot: u32,
}

/// The outcome of a device access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceAccess {
    /// Bytes read (reads only; None for writes and when the access faulted or was refused).
    pub data: Option<Vec<u8>>,
    /// The IOMMU fault that stopped the access, if any.
    pub fault: Option<Fault>,
    pub hazards: Vec<Hazard>,
}

/// What a range of physical memory is, as the platform knows it (a vector's buffer `kind`).
/// `p2p_type` is a [`dmaconf_platform::p2p`] map type: what `pci_p2pdma_state` answers for the
/// device under test; `mmio` marks a BAR that is no P2P provider's (`dma_map_resource`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MemoryKind {
    pub phys: u64,
    pub len: u64,
    pub p2p_type: u32,
    pub bus_offset: u64,
    pub mmio: bool,
}

impl MemoryKind {
    fn contains(&self, phys: u64) -> bool {
        phys >= self.phys && phys - self.phys < self.len
    }

    /// The bus-address window a peer reaches this range at, for `BUS_ADDR` memory.
    fn bus_window(&self) -> Option<(u64, u64)> {
        (self.p2p_type == dmaconf_platform::p2p::BUS_ADDR)
            .then(|| (self.phys.wrapping_add(self.bus_offset), self.len))
    }
}

/// The simulated machine. See the crate documentation.
#[derive(Clone, Debug)]
pub struct Machine {
    cfg: MachineConfig,
    kinds: Vec<MemoryKind>,
    cpu: u32,
    now_ns: u64,
    mem: PhysMemory,
    pt: IoPageTable,
    iotlb: Iotlb,
    caches: CpuCaches,
    pool: SwiotlbPool,
    events: Vec<Event>,
    not_modelled: Vec<&'static str>,
}

impl Machine {
    pub fn new(cfg: MachineConfig) -> Machine {
        Machine {
            kinds: Vec::new(),
            cpu: 0,
            now_ns: 0,
            mem: PhysMemory::new(),
            pt: IoPageTable::new(&cfg.facts, cfg.oas_bits),
            iotlb: Iotlb::new(),
            caches: CpuCaches::new(&cfg.facts),
            pool: SwiotlbPool::new(cfg.swiotlb),
            events: Vec::new(),
            not_modelled: Vec::new(),
            cfg,
        }
    }

    /// Declares what `[phys, phys + len)` is (set-up, not an event): P2P memory of a map type
    /// with its provider's bus offset, or a non-P2P MMIO range. Unlisted memory is RAM.
    pub fn set_memory_kind(&mut self, kind: MemoryKind) {
        self.kinds.push(kind);
    }

    fn kind_of(&self, phys: u64) -> Option<&MemoryKind> {
        self.kinds.iter().find(|k| k.contains(phys))
    }

    pub fn config(&self) -> &MachineConfig {
        &self.cfg
    }

    /// Sets what [`Platform::current_cpu`] returns.
    pub fn set_cpu(&mut self, cpu: u32) {
        self.cpu = cpu;
    }

    /// Sets the platform clock (`time.advance` steps); what `Platform::now_ns` returns.
    pub fn set_time(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
    }

    /// Set-up write: raw memory, no events, no hazards, no not-modelled notes. Bytes past
    /// 2^64 - 1 (or beyond [`memory::MAX_ACCESS_LEN`]) are dropped.
    pub fn mem_write(&mut self, phys: u64, data: &[u8]) {
        self.mem.write(phys, data);
    }

    /// Raw read of memory, truncated as [`memory::clamp_len`] says (at 2^64 - 1 and at
    /// [`memory::MAX_ACCESS_LEN`]), so the result may be shorter than `len`.
    pub fn mem_read(&self, phys: u64, len: u64) -> Vec<u8> {
        self.mem.read(phys, len)
    }

    /// A CPU store. Coherent machines: straight to memory. Non-coherent machines: into the
    /// cache lines (write-allocate), dirty until written back ([`cache`]). No hazards.
    pub fn cpu_write(&mut self, phys: u64, data: &[u8]) -> Vec<Hazard> {
        if self.caches.cpu_write(&mut self.mem, phys, data) != data.len() as u64 {
            self.note(NOT_MODELLED_OVERSIZED);
        }
        Vec::new()
    }

    /// A CPU load. Non-coherent machines read through the cache lines, loading the absent
    /// ones: `stale_cpu_line` for bytes the device wrote under a line already cached,
    /// `dirty_line_discarded` for bytes whose CPU write an invalidate threw away.
    pub fn cpu_read(&mut self, phys: u64, len: u64) -> (Vec<u8>, Vec<Hazard>) {
        let capped = memory::clamp_len(phys, len);
        if capped != len {
            self.note(NOT_MODELLED_OVERSIZED);
        }
        self.caches.cpu_read(&self.mem, phys, capped)
    }

    /// The CPU pulls the lines of `[phys, phys + len)` into its cache by itself, as it may at
    /// any time (prefetch, speculation): absent lines are loaded clean from memory. Changes
    /// nothing on a coherent machine. No events, no hazards.
    pub fn cpu_speculate(&mut self, phys: u64, len: u64) {
        if memory::clamp_len(phys, len) != len {
            self.note(NOT_MODELLED_OVERSIZED);
        }
        self.caches.speculate(&self.mem, phys, len);
    }

    /// The device reads `len` bytes at DMA address `dma`, through the IOMMU when the domain
    /// translates. See [`device::plan_translated`] for faults and hazards.
    pub fn device_read(&mut self, dma: u64, len: u64) -> DeviceAccess {
        let mut plan = self.plan_device(dma, len, false);
        if plan.fault.is_some() || plan.refused {
            return DeviceAccess {
                data: None,
                fault: plan.fault,
                hazards: plan.hazards,
            };
        }
        let mut data = Vec::new();
        for &(phys, n) in &plan.segments {
            // A non-coherent device reads memory, missing what sits dirty in CPU lines.
            plan.hazards.extend(self.caches.device_read(phys, n));
            data.extend(self.mem.read(phys, n));
        }
        DeviceAccess {
            data: Some(data),
            fault: None,
            hazards: plan.hazards,
        }
    }

    /// The device writes `data` at DMA address `dma`; nothing is written if any granule faults.
    pub fn device_write(&mut self, dma: u64, data: &[u8]) -> DeviceAccess {
        let mut plan = self.plan_device(dma, data.len() as u64, true);
        if plan.fault.is_none() && !plan.refused {
            let mut done = 0usize;
            for &(phys, n) in &plan.segments {
                let n = n as usize;
                let h = self
                    .caches
                    .device_write(&mut self.mem, phys, &data[done..done + n]);
                plan.hazards.extend(h);
                done += n;
            }
        }
        DeviceAccess {
            data: None,
            fault: plan.fault,
            hazards: plan.hazards,
        }
    }

    /// Drains the ordered event log.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Live PTEs, coalesced into runs contiguous in IOVA and physical address with equal
    /// protection, in IOVA order.
    pub fn mappings(&self) -> Vec<Mapping> {
        let mut out: Vec<Mapping> = Vec::new();
        for (iova, pte) in self.pt.ptes() {
            if let Some(m) = out.last_mut() {
                if m.prot == pte.prot
                    && m.iova.checked_add(m.len) == Some(iova)
                    && m.phys.checked_add(m.len) == Some(pte.phys)
                {
                    m.len += pte.size;
                    continue;
                }
            }
            out.push(Mapping {
                iova,
                phys: pte.phys,
                len: pte.size,
                prot: pte.prot,
            });
        }
        out
    }

    /// Live PTEs one by one, (IOVA, PTE), in IOVA order: the page sizes the table chose.
    pub fn ptes(&self) -> Vec<(u64, Pte)> {
        self.pt.ptes().collect()
    }

    /// (iova, len) ranges the device may still use after unmap, not yet invalidated; merged,
    /// in IOVA order.
    pub fn stale_translations(&self) -> Vec<(u64, u64)> {
        self.iotlb.stale_ranges()
    }

    /// (iova, len) of live PTEs the device cannot see yet (needs_sync_map machines).
    pub fn unsynced_translations(&self) -> Vec<(u64, u64)> {
        self.iotlb.pending()
    }

    /// Live bounce allocations, (bounce address, length asked for), in pool order.
    pub fn live_bounce_slots(&self) -> Vec<(u64, u64)> {
        self.pool.live()
    }

    /// The bounce pool (its configuration and bookkeeping), for tests and reports.
    pub fn bounce_pool(&self) -> &SwiotlbPool {
        &self.pool
    }

    /// The CPU caches (cached lines, queued maintenance), for tests and reports.
    pub fn caches(&self) -> &CpuCaches {
        &self.caches
    }

    /// Services used that this machine does not model yet, deduplicated, in first-use order.
    pub fn not_modelled(&self) -> Vec<&'static str> {
        self.not_modelled.clone()
    }

    fn note(&mut self, what: &'static str) {
        if !self.not_modelled.contains(&what) {
            self.not_modelled.push(what);
        }
    }

    fn translated(&self) -> bool {
        self.cfg.facts.domain.is_dma_api()
    }

    fn plan_device(&mut self, dma: u64, len: u64, write: bool) -> AccessPlan {
        let capped = memory::clamp_len(dma, len);
        if capped != len {
            self.note(NOT_MODELLED_OVERSIZED);
        }
        let f = &self.cfg.facts;
        let limit = device::addressing_limit(f.dma_mask, f.bus_dma_limit);
        // A peer's BAR behind a common switch (`BUS_ADDR`) is reached at its bus address,
        // peer to peer: the transaction never reaches the host bridge or the IOMMU.
        for k in &self.kinds {
            if let Some((bus, n)) = k.bus_window() {
                if dma >= bus && dma - bus < n && capped <= n - (dma - bus) {
                    return device::plan_direct(u64::MAX, k.phys + (dma - bus), capped);
                }
            }
        }
        if self.translated() {
            // A device cannot emit an address above its limit, translated or not.
            if let Some(h) = device::check_limit(limit, dma, capped) {
                return AccessPlan {
                    hazards: vec![h],
                    refused: true,
                    ..AccessPlan::default()
                };
            }
            device::plan_translated(&self.pt, &self.iotlb, dma, capped, write)
        } else {
            // dma-direct: the bus address reaches CPU address `dma + dma_offset` (the
            // device's `dma_range_map`); the limit applies to the bus address.
            let mut plan = device::plan_direct(limit, dma, capped);
            let off = f.dma_offset;
            for seg in &mut plan.segments {
                seg.0 = seg.0.wrapping_add(off);
            }
            plan
        }
    }

    /// Applies page-table effects, in order, to the IOTLB model and the event log.
    fn apply(&mut self, effects: Vec<PtEffect>) {
        for e in effects {
            match e {
                PtEffect::Installed { iova, size } => {
                    self.iotlb.installed(iova, size, self.cfg.needs_sync_map)
                }
                PtEffect::Removed { iova, pte } => self.iotlb.removed(iova, &pte),
                PtEffect::Flushed { iova, len } => {
                    self.events.push(Event::IotlbTableFlush { iova, len });
                    self.iotlb.invalidate(iova, len);
                }
            }
        }
    }

    /// `__iommu_unmap` plus its `unmap` tracepoint: the shared part of `Platform::iommu_unmap`
    /// and the map rollback.
    fn unmap_recorded(&mut self, iova: u64, len: u64) -> u64 {
        let unmapped = if self.translated() {
            let out = self.pt.unmap(iova, len);
            self.apply(out.effects);
            // The page table's WARNs come before the `unmap` tracepoint, as in __iommu_unmap.
            for code in out.warns {
                self.events.push(Event::Warn { code: code.name() });
            }
            out.unmapped
        } else {
            0
        };
        self.events.push(Event::IommuUnmap {
            iova,
            len,
            unmapped,
        });
        unmapped
    }
}

impl Platform for Machine {
    fn facts(&self) -> PlatformFacts {
        self.cfg.facts
    }

    fn p2p_type(&self, phys: u64) -> u32 {
        self.kind_of(phys)
            .map_or(dmaconf_platform::p2p::NONE, |k| k.p2p_type)
    }

    fn p2p_bus_offset(&self, phys: u64) -> u64 {
        self.kind_of(phys).map_or(0, |k| k.bus_offset)
    }

    fn reserved_region(&self, index: u32) -> Option<Region> {
        self.cfg.reserved.get(index as usize).copied()
    }

    fn current_cpu(&self) -> u32 {
        self.cpu
    }

    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Models `iommu_map_nosync`. Event order follows the source: a WARN raised by the page
    /// table comes first, then any table flush the walk issued, then `iommu.map` (Linux emits
    /// its `map` tracepoint before rolling back), then, on failure, the rollback `iommu_unmap`
    /// of the bytes mapped: `iommu.unmap` always (even for 0 bytes), then `iotlb.sync` of what
    /// it removed when that is not nothing (its gather was non-empty). A domain that does not
    /// translate has no page table: -EINVAL, as Linux's paging-domain check returns, and no
    /// rollback.
    fn iommu_map(&mut self, iova: u64, phys: u64, len: u64, prot: Prot) -> i32 {
        if !self.translated() {
            self.events.push(Event::IommuMap {
                iova,
                phys,
                len,
                prot: prot.0,
                ret: -dmaconf_platform::errno::EINVAL,
            });
            return -dmaconf_platform::errno::EINVAL;
        }
        let out = self.pt.map(iova, phys, len, prot);
        if let Some(code) = out.warn {
            self.events.push(Event::Warn { code: code.name() });
        }
        if out.hit_pte_limit {
            self.note(NOT_MODELLED_PTE_LIMIT);
        }
        let (ret, mapped) = (out.ret, out.mapped);
        self.apply(out.effects);
        self.events.push(Event::IommuMap {
            iova,
            phys,
            len,
            prot: prot.0,
            ret,
        });
        // The paging-domain / page-size check of iommu_map_nosync returns before the walk,
        // the tracepoint and the rollback.
        if ret != 0 && self.cfg.facts.pgsize_bitmap != 0 {
            let unmapped = self.unmap_recorded(iova, mapped);
            if unmapped != 0 {
                self.events.push(Event::IotlbSync {
                    iova,
                    len: unmapped,
                });
                self.iotlb.invalidate(iova, unmapped);
            }
        }
        ret
    }

    /// Models `iommu_sync_map`: the driver's `iotlb_sync_map` invalidates the range on machines
    /// that need it (making pending PTEs visible and, being an invalidation, dropping stale
    /// entries there); elsewhere the driver has none or it does nothing. Always 0.
    fn iotlb_sync_map(&mut self, iova: u64, len: u64) -> i32 {
        if self.cfg.needs_sync_map {
            self.iotlb.invalidate(iova, len);
        }
        self.events.push(Event::IotlbSyncMap { iova, len, ret: 0 });
        0
    }

    /// Models `iommu_unmap_fast` into a gather: no IOTLB work.
    fn iommu_unmap(&mut self, iova: u64, len: u64) -> u64 {
        self.unmap_recorded(iova, len)
    }

    /// Models `iommu_iotlb_sync` of a gather covering `[iova, iova+len)`: ends the stale window
    /// there (and, being an invalidation, makes pending PTEs there visible).
    fn iotlb_sync(&mut self, iova: u64, len: u64) {
        self.events.push(Event::IotlbSync { iova, len });
        self.iotlb.invalidate(iova, len);
    }

    fn flush_iotlb_all(&mut self) {
        self.events.push(Event::IotlbFlushAll);
        self.iotlb.invalidate_all();
    }

    /// Models `iommu_iova_to_phys`: identity domains return the address itself, no IOMMU gives
    /// 0, paging domains walk the table.
    fn iova_to_phys(&self, iova: u64) -> u64 {
        match self.cfg.facts.domain {
            DomainType::None => 0,
            DomainType::Identity => iova,
            DomainType::Dma | DomainType::DmaFq => self.pt.iova_to_phys(iova),
        }
    }

    /// Models `arch_sync_dma_for_device`, lowered per architecture by [`cache`].
    fn sync_for_device(&mut self, phys: u64, len: u64, dir: Dir) {
        let e = self.caches.sync_for_device(&mut self.mem, phys, len, dir);
        self.events.push(e);
    }

    /// Models `arch_sync_dma_for_cpu`, lowered per architecture by [`cache`].
    fn sync_for_cpu(&mut self, phys: u64, len: u64, dir: Dir) {
        let e = self.caches.sync_for_cpu(&mut self.mem, phys, len, dir);
        self.events.push(e);
    }

    /// Models `arch_sync_dma_flush`: completes arm64's queued maintenance.
    fn sync_barrier(&mut self) {
        let e = self.caches.barrier(&mut self.mem);
        self.events.push(e);
    }

    fn bounce_alloc(
        &mut self,
        orig: u64,
        len: u64,
        alloc_align_mask: u64,
        min_align_mask: u64,
        slot: &mut u64,
    ) -> i32 {
        let a = self
            .pool
            .alloc(orig, len, alloc_align_mask, min_align_mask, self.cpu);
        if a.ret == 0 {
            *slot = a.slot;
        }
        self.events.push(Event::SwiotlbAlloc {
            orig,
            len,
            align_mask: alloc_align_mask,
            min_align_mask,
            slot: if a.ret == 0 { a.slot } else { 0 },
            ret: a.ret,
        });
        a.ret
    }

    /// Models `swiotlb_release_slots`: the allocation is found from `slot` and the device's
    /// `min_align_mask`, as in Linux; `len` is only recorded.
    fn bounce_free(&mut self, slot: u64, len: u64) {
        self.pool.free(slot, self.cfg.facts.min_align_mask);
        self.events.push(Event::SwiotlbFree { slot, len });
    }

    fn is_bounce(&self, phys: u64) -> bool {
        self.pool.contains(phys)
    }

    fn bounce_orig(&self, phys: u64) -> u64 {
        self.pool.orig(phys, self.cfg.facts.min_align_mask)
    }

    /// A bounce copy is a CPU `memcpy` (`swiotlb_bounce`): on a non-coherent machine it reads
    /// and writes through the cache lines.
    fn copy(&mut self, dst: u64, src: u64, len: u64) {
        self.events.push(Event::BounceCopy {
            from: src,
            to: dst,
            len,
        });
        if self.caches.cpu_copy(&mut self.mem, dst, src, len) != len {
            self.note(NOT_MODELLED_OVERSIZED);
        }
    }

    /// A CPU `memset`, through the cache lines on a non-coherent machine.
    fn fill(&mut self, dst: u64, byte: u8, len: u64) {
        self.events.push(Event::BounceFill { to: dst, byte, len });
        if self.caches.cpu_fill(&mut self.mem, dst, byte, len) != len {
            self.note(NOT_MODELLED_OVERSIZED);
        }
    }

    fn warn(&mut self, code: WarnCode) {
        self.events.push(Event::Warn { code: code.name() });
    }
}

#[cfg(test)]
mod tests;
