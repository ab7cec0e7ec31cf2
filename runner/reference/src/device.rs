//! One device on iommu-dma: its facts, its DMA domain's IOVA space (the `iommu_dma_cookie`),
//! and the per-device flag Linux keeps (`pci_32bit_workaround`).

use dmaconf_platform::{Attrs, Platform, PlatformFacts};

use crate::iova::IovaDomain;

/// A device whose default domain is `IOMMU_DOMAIN_DMA` or `IOMMU_DOMAIN_DMA_FQ`.
#[derive(Clone, Debug)]
pub struct Device {
    /// The facts read at probe; device properties do not change afterwards.
    pub facts: PlatformFacts,
    /// The domain's IOVA space.
    pub iovad: IovaDomain,
    /// `dev->iommu->pci_32bit_workaround` (IOVA-03): set at probe for PCI devices unless
    /// `iommu.forcedac=1`, cleared for good by the first failed 32-bit attempt.
    pub pci_32bit_workaround: bool,
    /// A bounce was made for this device: `swiotlb_tbl_map_single` cleared its skip-sync flag
    /// for good (`dma_reset_need_sync`). A `Cell` because the bounce paths borrow the device
    /// shared.
    pub bounced: std::cell::Cell<bool>,
}

impl Device {
    /// Mirrors `iommu_setup_dma_ops` + `iommu_dma_init_domain` for a device on a DMA domain.
    pub fn probe(p: &dyn Platform, facts: PlatformFacts) -> Result<Device, i32> {
        let iovad = IovaDomain::from_platform(p, &facts)?;
        Ok(Device {
            facts,
            iovad,
            pci_32bit_workaround: facts.pci && !facts.forcedac,
            bounced: std::cell::Cell::new(false),
        })
    }

    /// `dev_is_dma_coherent`.
    pub fn coherent(&self) -> bool {
        self.facts.coherent
    }

    /// `dev_is_untrusted`: a PCI device marked untrusted (external-facing port).
    pub fn untrusted(&self) -> bool {
        self.facts.pci && self.facts.untrusted
    }

    /// `dma_get_mask`: the streaming mask, or 32 bits when the device never set one.
    pub fn dma_mask(&self) -> u64 {
        if self.facts.dma_mask == 0 {
            crate::iova::DMA_BIT_MASK_32
        } else {
            self.facts.dma_mask
        }
    }

    /// The condition under which link/unlink do CPU cache maintenance:
    /// `!dev_is_dma_coherent(dev) && !(attrs & (DMA_ATTR_SKIP_CPU_SYNC | DMA_ATTR_MMIO))`.
    pub fn needs_cache_maintenance(&self, attrs: Attrs) -> bool {
        !self.coherent() && !attrs.intersects(Attrs::SKIP_CPU_SYNC | Attrs::MMIO)
    }
}
