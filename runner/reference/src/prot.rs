//! IOMMU protection bits of a link. PROT-01, PROT-02.

use dmaconf_platform::{Attrs, Dir, Prot};

/// PROT-01, PROT-02; mirrors `dma_info_to_prot`.
///
/// Base bits: `MMIO` for `DMA_ATTR_MMIO`, else `CACHE` on a coherent device, else none; `PRIV`
/// for `DMA_ATTR_PRIVILEGED`. Then `READ|WRITE` for bidirectional, `READ` for to-device,
/// `WRITE` for from-device. Any other direction (`DMA_NONE`, or a value outside the enum) gives
/// 0 as a whole, which the page table refuses.
pub fn dma_info_to_prot(dir: Dir, coherent: bool, attrs: Attrs) -> Prot {
    let mut prot = if attrs.contains(Attrs::MMIO) {
        Prot::MMIO
    } else if coherent {
        Prot::CACHE
    } else {
        Prot(0)
    };
    if attrs.contains(Attrs::PRIVILEGED) {
        prot = prot | Prot::PRIV;
    }
    match dir {
        Dir::BIDIRECTIONAL => prot | Prot::READ | Prot::WRITE,
        Dir::TO_DEVICE => prot | Prot::READ,
        Dir::FROM_DEVICE => prot | Prot::WRITE,
        _ => Prot(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of KERNEL-FACTS §7.1.
    #[test]
    fn prot_table() {
        let none = Attrs(0);
        assert_eq!(dma_info_to_prot(Dir::BIDIRECTIONAL, true, none), Prot(0x7));
        assert_eq!(dma_info_to_prot(Dir::TO_DEVICE, false, none), Prot(0x1));
        assert_eq!(dma_info_to_prot(Dir::FROM_DEVICE, true, none), Prot(0x6));
        assert_eq!(
            dma_info_to_prot(Dir::BIDIRECTIONAL, true, Attrs::MMIO),
            Prot(0x13)
        );
        assert_eq!(
            dma_info_to_prot(Dir::BIDIRECTIONAL, false, Attrs::MMIO),
            Prot(0x13)
        );
        assert_eq!(
            dma_info_to_prot(Dir::BIDIRECTIONAL, false, Attrs::PRIVILEGED),
            Prot(0x23)
        );
        assert_eq!(
            dma_info_to_prot(Dir::TO_DEVICE, true, Attrs::PRIVILEGED),
            Prot(0x25)
        );
        assert_eq!(dma_info_to_prot(Dir::NONE, true, none), Prot(0));
        assert_eq!(
            dma_info_to_prot(Dir::NONE, true, Attrs::MMIO | Attrs::PRIVILEGED),
            Prot(0)
        );
        assert_eq!(dma_info_to_prot(Dir(77), false, none), Prot(0));
    }
}
