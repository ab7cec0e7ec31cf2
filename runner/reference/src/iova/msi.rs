//! iommu-dma's software-managed MSI doorbell page. IOVA-06.
//!
//! On an Arm SMMU (and virtio-iommu) the MSI window is `IOMMU_RESV_SW_MSI`: iommu-dma does not
//! reserve it (IOVA-05) but maps each doorbell the device's MSIs target on demand, when the MSI
//! message is composed (`iommu_dma_sw_msi`, reached from the driver's interrupt set-up at
//! probe). The granule it maps comes from the same allocator as every DMA address, so it is the
//! first IOVA the device gets and every later one lands one step lower.

use dmaconf_platform::{Platform, Prot};

use crate::device::Device;

/// The protection of a doorbell page: `IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO` (0x1A).
pub const MSI_PAGE_PROT: Prot = Prot(Prot::WRITE.0 | Prot::NOEXEC.0 | Prot::MMIO.0);

/// IOVA-06; mirrors `iommu_dma_get_msi_page` on a domain with an IOVA cookie: one granule
/// (`cookie_msi_granule`) from `iommu_dma_alloc_iova` under `dma_get_mask` (so the PCI
/// below-4-GiB attempt applies too), mapped to the granule holding `msi_addr` with
/// [`MSI_PAGE_PROT`] by `iommu_map` (`iommu_map_nosync`, then `iommu_sync_map`, unmapped again
/// if the sync fails). If the map fails the IOVA goes back through `free_iova_fast`. Returns the
/// IOVA, 0 on failure. Linux keeps one page per doorbell in the cookie's list and finds it
/// there on later calls; a device here has one doorbell and probes once, so the list is not
/// modelled.
pub fn iommu_dma_get_msi_page(dev: &mut Device, p: &mut dyn Platform, msi_addr: u64) -> u64 {
    let size = dev.iovad.granule();
    let msi_addr = msi_addr & !(size - 1);
    let cpu = p.current_cpu();
    let facts = dev.facts;
    let mask = dev.dma_mask();
    let iova =
        dev.iovad
            .iommu_dma_alloc_iova(cpu, &facts, &mut dev.pci_32bit_workaround, size, mask);
    if iova == 0 {
        return 0;
    }
    let mut ret = p.iommu_map(iova, msi_addr, size, MSI_PAGE_PROT);
    if ret == 0 {
        ret = p.iotlb_sync_map(iova, size);
        if ret != 0 {
            // iommu_map's rollback: iommu_unmap, which syncs its own gather.
            let unmapped = p.iommu_unmap(iova, size);
            if unmapped != 0 {
                p.iotlb_sync(iova, unmapped);
            }
        }
    }
    if ret != 0 {
        let shift = dev.iovad.shift();
        dev.iovad.free_iova_fast(cpu, iova >> shift, 1);
        return 0;
    }
    iova
}
