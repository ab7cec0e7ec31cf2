//! IOVA-06: the MSI doorbell page taken from the allocator at probe. Expected values from
//! KERNEL-FACTS.md §2.1 and `iommu_dma_get_msi_page` in the 7.3 source.

use dmaconf_platform::{errno, Arch, DmaApi, PgtableBackend, PlatformFacts};

use super::fake::{x86_facts, Call, Fake};
use super::{alloc, probed};
use crate::Reference;

const DOORBELL: u64 = 0x0809_0040;

/// An arm64 platform device with a 64-bit mask and an ITS doorbell.
fn arm64_msi() -> PlatformFacts {
    PlatformFacts {
        arch: Arch::Arm64,
        backend: PgtableBackend::IoPgtableArm,
        pci: false,
        dma_mask: u64::MAX,
        msi_doorbell: DOORBELL,
        max_seg_size: 0x10000,
        seg_boundary_mask: 0xFFFF_FFFF,
        swiotlb_force: false,
        dma_offset: 0,
        ..x86_facts()
    }
}

/// At probe: one granule from the aperture top (the domain's first allocation), mapped to the
/// doorbell's granule with WRITE | NOEXEC | MMIO, then iommu_map's sync. The driver's first
/// granule is one lower.
#[test]
fn doorbell_page_is_first_iova() {
    let (mut r, mut f) = probed(arm64_msi());
    assert_eq!(
        f.take(),
        vec![
            Call::Map {
                iova: 0xFFFF_FFFF_F000,
                phys: 0x0809_0000,
                len: 0x1000,
                prot: 0x1A,
            },
            Call::SyncMap {
                iova: 0xFFFF_FFFF_F000,
                len: 0x1000,
            },
        ]
    );
    assert_eq!(f.live_ptes(), 1);
    let s = alloc(&mut r, &mut f, 0, 0x1000);
    assert_eq!(s.addr, 0xFFFF_FFFF_E000);
}

/// A PCI device: the page goes through the below-4-GiB attempt like any IOVA.
#[test]
fn doorbell_page_of_pci_device_below_4g() {
    let mut facts = arm64_msi();
    facts.pci = true;
    let (mut r, mut f) = probed(facts);
    assert!(matches!(
        f.take()[0],
        Call::Map {
            iova: 0xFFFF_F000,
            ..
        }
    ));
    assert_eq!(alloc(&mut r, &mut f, 0, 0x1000).addr, 0xFFFF_E000);
}

/// No doorbell: nothing is allocated or mapped at probe.
#[test]
fn no_doorbell_no_page() {
    let mut facts = arm64_msi();
    facts.msi_doorbell = 0;
    let (mut r, mut f) = probed(facts);
    assert!(f.take().is_empty());
    assert_eq!(alloc(&mut r, &mut f, 0, 0x1000).addr, 0xFFFF_FFFF_F000);
}

/// iommu_map's sync fails: the map is undone (unmap, then the gather's sync) and the IOVA is
/// given back with free_iova_fast, so it sits in the rcache and the driver's first granule
/// gets it. The probe itself succeeds.
#[test]
fn failed_doorbell_map_gives_the_iova_back() {
    let mut f = Fake::new(arm64_msi());
    f.sync_map_ret = -errno::EINVAL;
    let mut r = Reference::new();
    assert_eq!(r.probe(&mut f), 0);
    assert_eq!(
        f.take()[1..],
        [
            Call::SyncMap {
                iova: 0xFFFF_FFFF_F000,
                len: 0x1000,
            },
            Call::Unmap {
                iova: 0xFFFF_FFFF_F000,
                len: 0x1000,
            },
            Call::IotlbSync {
                iova: 0xFFFF_FFFF_F000,
                len: 0x1000,
            },
        ]
    );
    assert_eq!(f.live_ptes(), 0);
    f.sync_map_ret = 0;
    assert_eq!(alloc(&mut r, &mut f, 0, 0x1000).addr, 0xFFFF_FFFF_F000);
}
