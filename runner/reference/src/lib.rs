//! The reference DMA layer: Linux 7.3's two-step IOVA API (`dma_iova_try_alloc`, `_link`,
//! `_sync`, `_unlink`, `_destroy`, `_free`) as one [`DmaApi`] implementation, faithful to the
//! `linux` profile: the same IOVA addresses (`drivers/iommu/iova.c`), the same platform calls in
//! the same order with the same arguments (`drivers/iommu/dma-iommu.c`), the same error codes
//! and WARNs.
//!
//! Modules follow the spec chapters: [`try_alloc`], [`link`] (+ [`prot`], [`swiotlb`]),
//! [`mod@sync`], [`unlink`], [`destroy`], [`free`]; the IOVA allocator is [`iova`]. Every public
//! function names the rule IDs it implements and the kernel function it mirrors.
//!
//! Three kinds of device:
//! * `PlatformFacts::iommu_dma_config == false` (RISC-V, 32-bit Arm): the header stubs —
//!   try_alloc is false and leaves the state alone, link/sync are `-EOPNOTSUPP`, the rest do
//!   nothing;
//! * a device not on a DMA domain (dma-direct, identity) or whose probe failed: try_alloc zeroes
//!   the state and is false. Linux would dereference a NULL cookie in the other calls; here they
//!   do nothing and return `-EOPNOTSUPP` where they return an int;
//! * a device on `IOMMU_DOMAIN_DMA` / `IOMMU_DOMAIN_DMA_FQ`: the real thing.
//!
//! The reference never panics: every `unsigned` sum or difference of Linux is a wrapping
//! operation here, at the same place, and loops that Linux could not leave are bounded.
#![forbid(unsafe_code)]

pub mod destroy;
pub mod device;
pub mod free;
pub mod iova;
pub mod link;
pub mod prot;
pub mod seeded;
pub mod sg;
pub mod streaming;
pub mod swiotlb;
pub mod sync;
pub mod try_alloc;
pub mod unlink;

#[cfg(test)]
mod tests;

use dmaconf_platform::{
    errno, Attrs, Dir, DmaApi, IovaState, Platform, SgEntry, DMA_MAPPING_ERROR,
};

pub use device::Device;
pub use iova::IovaDomain;
pub use prot::dma_info_to_prot;

/// What kind of device the reference serves, decided at probe.
#[derive(Clone, Debug)]
enum Mode {
    /// `probe` has not run yet; the first call probes.
    Unprobed,
    /// `!CONFIG_IOMMU_DMA`: the header stubs.
    Stub,
    /// Not on iommu-dma (`use_dma_iommu(dev)` is false).
    NotIommuDma,
    /// On iommu-dma.
    IommuDma(Box<Device>),
}

/// The Linux 7.3 reference implementation of the two-step IOVA API for one device.
#[derive(Clone, Debug)]
pub struct Reference {
    mode: Mode,
    /// The lazy domain's flush queue (streaming unmaps only; the IOVA API never uses it).
    fq: streaming::FlushQueue,
    /// dma-direct's per-device state (has it bounced?).
    direct: streaming::Direct,
}

impl Default for Reference {
    fn default() -> Self {
        Reference::new()
    }
}

impl Reference {
    /// A reference not yet probed.
    pub fn new() -> Reference {
        Reference {
            mode: Mode::Unprobed,
            fq: streaming::FlushQueue::default(),
            direct: streaming::Direct::default(),
        }
    }

    /// The device's IOVA domain, when it is on iommu-dma (for reports and tests).
    pub fn iova_domain(&self) -> Option<&IovaDomain> {
        match &self.mode {
            Mode::IommuDma(dev) => Some(&dev.iovad),
            _ => None,
        }
    }

    /// The device's iommu-dma context, when it has one.
    pub fn device(&self) -> Option<&Device> {
        match &self.mode {
            Mode::IommuDma(dev) => Some(dev),
            _ => None,
        }
    }

    /// `dma_dev_need_sync` then the sync itself (STREAM-07).
    fn sync_single(
        &mut self,
        p: &mut dyn Platform,
        addr: u64,
        size: u64,
        dir: Dir,
        to: streaming::SyncFor,
    ) {
        self.ensure_probed(p);
        let coherent = p.facts().coherent;
        match &self.mode {
            Mode::IommuDma(dev) => {
                let need = !coherent || dev.bounced.get();
                streaming::sync_single(p, need, Some(dev), addr, size, dir, to)
            }
            _ => {
                let need = !coherent || self.direct.bounced;
                streaming::sync_single(p, need, None, addr, size, dir, to)
            }
        }
    }

    fn ensure_probed(&mut self, p: &mut dyn Platform) {
        if matches!(self.mode, Mode::Unprobed) {
            self.probe(p);
        }
    }
}

impl DmaApi for Reference {
    /// Mirrors `iommu_setup_dma_ops` → `iommu_dma_init_domain` → `iova_reserve_iommu_regions`.
    /// On a failed set-up Linux keeps the platform DMA ops ("Failed to set up IOMMU for
    /// device"): the device is then not on iommu-dma. A second probe of an iommu-dma device
    /// keeps the domain when granule and start pfn agree (else `-EFAULT`), and re-arms the PCI
    /// 32-bit-first attempt, as a re-run of `iommu_setup_dma_ops` does.
    fn probe(&mut self, p: &mut dyn Platform) -> i32 {
        let facts = p.facts();
        if !facts.iommu_dma_config {
            self.mode = Mode::Stub;
            return 0;
        }
        if !facts.domain.is_dma_api() {
            self.mode = Mode::NotIommuDma;
            return 0;
        }
        if let Mode::IommuDma(dev) = &mut self.mode {
            let granule = facts.granule();
            let base_pfn = if granule == 0 {
                0
            } else {
                (facts.aperture_start >> granule.trailing_zeros()).max(1)
            };
            dev.pci_32bit_workaround = facts.pci && !facts.forcedac;
            if granule != dev.iovad.granule() || base_pfn != dev.iovad.start_pfn() {
                self.mode = Mode::NotIommuDma;
                return -errno::EFAULT;
            }
            return 0;
        }
        match Device::probe(p, facts) {
            Ok(mut dev) => {
                // IOVA-06: the driver's MSI set-up maps the doorbell page (iommu_dma_sw_msi).
                if facts.msi_doorbell != 0 {
                    iova::msi::iommu_dma_get_msi_page(&mut dev, p, facts.msi_doorbell);
                }
                self.mode = Mode::IommuDma(Box::new(dev));
                0
            }
            Err(e) => {
                self.mode = Mode::NotIommuDma;
                e
            }
        }
    }

    fn iova_try_alloc(
        &mut self,
        p: &mut dyn Platform,
        state: &mut IovaState,
        phys: u64,
        size: u64,
    ) -> bool {
        self.ensure_probed(p);
        match &mut self.mode {
            Mode::Unprobed | Mode::Stub => try_alloc::stub(state),
            Mode::NotIommuDma => try_alloc::not_iommu_dma(state),
            Mode::IommuDma(dev) => try_alloc::dma_iova_try_alloc(dev, p, state, phys, size),
        }
    }

    fn iova_link(
        &mut self,
        p: &mut dyn Platform,
        state: &mut IovaState,
        phys: u64,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> i32 {
        self.ensure_probed(p);
        match &mut self.mode {
            Mode::IommuDma(dev) => {
                link::dma_iova_link(dev, p, state, phys, offset, size, dir, attrs)
            }
            _ => -errno::EOPNOTSUPP,
        }
    }

    fn iova_sync(
        &mut self,
        p: &mut dyn Platform,
        state: &IovaState,
        offset: u64,
        size: u64,
    ) -> i32 {
        self.ensure_probed(p);
        match &mut self.mode {
            Mode::IommuDma(dev) => sync::dma_iova_sync(dev, p, state, offset, size),
            _ => -errno::EOPNOTSUPP,
        }
    }

    fn iova_unlink(
        &mut self,
        p: &mut dyn Platform,
        state: &IovaState,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        self.ensure_probed(p);
        if let Mode::IommuDma(dev) = &mut self.mode {
            unlink::dma_iova_unlink(dev, p, state, offset, size, dir, attrs);
        }
    }

    fn iova_destroy(
        &mut self,
        p: &mut dyn Platform,
        state: &IovaState,
        mapped_len: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        self.ensure_probed(p);
        if let Mode::IommuDma(dev) = &mut self.mode {
            destroy::dma_iova_destroy(dev, p, state, mapped_len, dir, attrs);
        }
    }

    fn iova_free(&mut self, p: &mut dyn Platform, state: &IovaState) {
        self.ensure_probed(p);
        if let Mode::IommuDma(dev) = &mut self.mode {
            free::dma_iova_free(dev, p, state);
        }
    }

    /// STREAM-01, STREAM-05; mirrors `dma_map_phys`: an invalid direction is a BUG in Linux
    /// (here a mapping error), a non-coherent device refuses REQUIRE_COHERENT, then iommu-dma
    /// or dma-direct maps.
    fn map_phys(
        &mut self,
        p: &mut dyn Platform,
        phys: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> u64 {
        self.ensure_probed(p);
        if dir.0 >= Dir::NONE.0 {
            return DMA_MAPPING_ERROR;
        }
        if !p.facts().coherent && attrs.contains(Attrs::REQUIRE_COHERENT) {
            return DMA_MAPPING_ERROR;
        }
        match &mut self.mode {
            // STREAM-17: dma_map_phys refuses CC_SHARED when the device does not map directly.
            Mode::IommuDma(_) if attrs.contains(Attrs::CC_SHARED) => DMA_MAPPING_ERROR,
            Mode::IommuDma(dev) => streaming::iommu_map_phys(dev, p, phys, size, dir, attrs),
            _ => streaming::direct_map_phys(&mut self.direct, p, phys, size, dir, attrs),
        }
    }

    /// STREAM-03, STREAM-04, STREAM-05; mirrors `dma_unmap_phys`.
    fn unmap_phys(&mut self, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir, attrs: Attrs) {
        self.ensure_probed(p);
        match &mut self.mode {
            // STREAM-17: dma_unmap_phys returns at once for CC_SHARED off dma-direct.
            Mode::IommuDma(_) if attrs.contains(Attrs::CC_SHARED) => {}
            Mode::IommuDma(dev) => {
                streaming::iommu_unmap_phys(dev, &mut self.fq, p, addr, size, dir, attrs)
            }
            _ => streaming::direct_unmap_phys(p, addr, size, dir, attrs),
        }
    }

    /// STREAM-07; mirrors `dma_sync_single_for_cpu`.
    fn sync_single_for_cpu(&mut self, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir) {
        self.sync_single(p, addr, size, dir, streaming::SyncFor::Cpu);
    }

    /// STREAM-07; mirrors `dma_sync_single_for_device`.
    fn sync_single_for_device(&mut self, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir) {
        self.sync_single(p, addr, size, dir, streaming::SyncFor::Device);
    }

    /// STREAM-08, STREAM-10; mirrors `__dma_map_sg_attrs`: an invalid direction is a BUG in
    /// Linux (here -EINVAL), a non-coherent device refuses REQUIRE_COHERENT (-EOPNOTSUPP), then
    /// dma-direct or iommu-dma maps.
    fn map_sg(
        &mut self,
        p: &mut dyn Platform,
        segs: &mut [SgEntry],
        dir: Dir,
        attrs: Attrs,
    ) -> i32 {
        self.ensure_probed(p);
        if dir.0 >= Dir::NONE.0 {
            return -errno::EINVAL;
        }
        if !p.facts().coherent && attrs.contains(Attrs::REQUIRE_COHERENT) {
            return -errno::EOPNOTSUPP;
        }
        match &mut self.mode {
            Mode::IommuDma(dev) => sg::iommu_map_sg(dev, &mut self.fq, p, segs, dir, attrs),
            _ => sg::direct_map_sg(&mut self.direct, p, segs, dir, attrs),
        }
    }

    /// STREAM-08, STREAM-10; mirrors `dma_unmap_sg_attrs`.
    fn unmap_sg(&mut self, p: &mut dyn Platform, segs: &mut [SgEntry], dir: Dir, attrs: Attrs) {
        self.ensure_probed(p);
        match &mut self.mode {
            Mode::IommuDma(dev) => sg::iommu_unmap_sg(dev, &mut self.fq, p, segs, dir, attrs),
            _ => sg::direct_unmap_sg(p, segs, dir, attrs),
        }
    }

    /// STREAM-06; mirrors `dma_need_unmap`.
    fn need_unmap(&mut self, p: &mut dyn Platform) -> bool {
        self.ensure_probed(p);
        let iommu_dma = matches!(self.mode, Mode::IommuDma(_));
        streaming::need_unmap(iommu_dma, &p.facts(), &self.direct)
    }

    /// STREAM-13; mirrors `dma_need_sync` → `__dma_need_sync` → `dma_direct_need_sync`: false
    /// while the device's skip-sync flag holds (coherent, never bounced); then iommu-dma says
    /// true for any address, dma-direct only for a non-coherent device or an address in the
    /// bounce pool.
    fn need_sync(&mut self, p: &mut dyn Platform, addr: u64) -> bool {
        self.ensure_probed(p);
        let coherent = p.facts().coherent;
        match &self.mode {
            Mode::IommuDma(dev) => !coherent || dev.bounced.get(),
            _ => {
                if coherent && !self.direct.bounced {
                    return false;
                }
                !coherent || p.is_bounce(streaming::dma_to_phys(&p.facts(), addr))
            }
        }
    }

    /// STATE-02; mirrors both `dma_use_iova` inlines of include/linux/dma-mapping.h: with
    /// `CONFIG_IOMMU_DMA` it reads the size word, without it the stub is false and never reads
    /// the state (a stale state the stub try_alloc left alone still says false).
    fn use_iova(&self, state: &IovaState) -> bool {
        !matches!(self.mode, Mode::Stub) && dmaconf_platform::dma_use_iova(state)
    }

    /// STREAM-04: the flush queue's timer.
    fn advance_time(&mut self, p: &mut dyn Platform, now_ns: u64) {
        if let Mode::IommuDma(dev) = &mut self.mode {
            self.fq.advance(p, &mut dev.iovad, now_ns);
        }
    }
}
