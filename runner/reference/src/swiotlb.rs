//! The SWIOTLB bounce policy of the IOVA API: when link bounces, how a range is split into a
//! bounced head, a directly mapped middle and a bounced tail, and how unlink copies back and
//! releases. LINK-04, LINK-09, UNLINK-05, STATE-04.
//!
//! The pool and its slot search belong to the machine (`Platform::bounce_alloc`); the copies
//! and the padding fills are made here through `Platform::copy` / `Platform::fill`.
//!
//! `CONFIG_SWIOTLB` is taken as built: every architecture with `CONFIG_IOMMU_DMA` selects it.
//! `PlatformFacts::swiotlb` is read as `is_swiotlb_active(dev)`, which only decides whether a
//! bounce that is needed can be made (else `-ENOMEM`).

use dmaconf_platform::{errno, Arch, Attrs, Dir, IovaState, Platform, DMA_IOVA_USE_SWIOTLB};

use crate::device::Device;
use crate::link::link_range;
use crate::seeded::{self, SeededBug};
use crate::unlink::dma_iova_unlink;

/// `ARCH_DMA_MINALIGN` of the architectures that can bounce kmalloc buffers.
fn arch_dma_minalign(arch: Arch) -> u64 {
    match arch {
        Arch::Arm64 => 128,
        Arch::X86 | Arch::Riscv | Arch::Arm => 64,
    }
}

/// `kmalloc_size_roundup` for the sizes that can reach it (below `2 * ARCH_DMA_MINALIGN`)
/// (LINK-04). With a bounce pool, a `CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC` kernel creates its
/// kmalloc caches at `ARCH_KMALLOC_MINALIGN` (8): 8, 16, 32, 64, 96, 128, 192, 256. Without a
/// pool, `__kmalloc_minalign` is `dma_get_cache_alignment()` and `new_kmalloc_cache` rounds
/// every cache up to it (`ALIGN(size, minalign)`), so every class is a multiple of the line.
/// Size 0 gives 0 (kmalloc's `ZERO_SIZE_PTR`).
fn kmalloc_size_roundup(size: u64, pool: bool, cache_line: u64) -> u64 {
    const CLASSES: [u64; 8] = [8, 16, 32, 64, 96, 128, 192, 256];
    if size == 0 {
        return 0;
    }
    let class = CLASSES.iter().copied().find(|&c| size <= c).unwrap_or(size);
    if pool || cache_line <= 8 {
        class
    } else {
        class.div_ceil(cache_line) * cache_line
    }
}

/// Mirrors `dma_kmalloc_needs_bounce`: with `CONFIG_DMA_BOUNCE_UNALIGNED_KMALLOC`, a
/// non-coherent device, a direction other than to-device, and a size that may come from a
/// kmalloc cache not aligned to `dma_get_cache_alignment()`.
pub fn dma_kmalloc_needs_bounce(dev: &Device, size: u64, dir: Dir) -> bool {
    let facts = &dev.facts;
    let to_device = dir == Dir::TO_DEVICE && !seeded::active(SeededBug::KmallocBounceToDevice);
    let kmalloc_safe = !facts.kmalloc_bounce || dev.coherent() || to_device;
    if kmalloc_safe {
        return false;
    }
    let size_aligned = size >= 2 * arch_dma_minalign(facts.arch)
        || kmalloc_size_roundup(size, facts.swiotlb, facts.cache_line)
            & facts.cache_line.wrapping_sub(1)
            == 0;
    !size_aligned
}

/// LINK-09; mirrors `dev_use_swiotlb`: an untrusted device, or a kmalloc buffer that needs
/// bouncing.
pub fn dev_use_swiotlb(dev: &Device, size: u64, dir: Dir) -> bool {
    dev.untrusted() || dma_kmalloc_needs_bounce(dev, size, dir)
}

/// Mirrors `iova_unaligned`: `phys` or `size` is not a granule multiple.
pub fn iova_unaligned(dev: &Device, phys: u64, size: u64) -> bool {
    dev.iovad.iova_offset(phys | size) != 0
}

/// LINK-09, STATE-04; mirrors `iommu_dma_iova_link_swiotlb`.
///
/// Head: if `phys` is not granule-aligned (so `offset == 0`), bounce
/// `min(size, granule - pad)` bytes and map the bounce granule at the state's first granule;
/// set `DMA_IOVA_USE_SWIOTLB`. Middle: map the granule-aligned part directly. Tail: if the end
/// is not granule-aligned, bounce the last `end_pad` bytes and map that granule; set the flag.
/// A failure of the middle or tail unlinks what this call mapped (`dma_iova_unlink` of
/// `[offset, offset + mapped)`, which takes the slow path once the flag is set) and returns the
/// error. A failed head returns at once.
#[allow(clippy::too_many_arguments)]
pub fn iova_link_swiotlb(
    dev: &mut Device,
    p: &mut dyn Platform,
    state: &mut IovaState,
    phys: u64,
    offset: u64,
    size: u64,
    dir: Dir,
    attrs: Attrs,
) -> i32 {
    let iova_start_pad = dev.iovad.iova_offset(phys);
    let iova_end_pad = dev.iovad.iova_offset(phys.wrapping_add(size));
    let addr = state.addr.wrapping_add(offset);
    let mut size = size;
    let mut mapped: u64 = 0;

    if iova_start_pad != 0 {
        let bounce_len = size.min(dev.iovad.granule() - iova_start_pad);
        let error = bounce_and_link(dev, p, addr, phys, bounce_len, dir, attrs, iova_start_pad);
        if error != 0 {
            return error;
        }
        state.size |= DMA_IOVA_USE_SWIOTLB;
        mapped = mapped.wrapping_add(bounce_len);
        size = size.wrapping_sub(bounce_len);
        if size == 0 {
            return 0;
        }
    }

    // What is left after the head and tail may be empty; the tail is still bounced.
    size = size.wrapping_sub(iova_end_pad);
    let mut error = 0;
    if size != 0 || seeded::active(SeededBug::ZeroLengthMiddleLinked) {
        error = link_range(
            dev,
            p,
            addr.wrapping_add(mapped),
            phys.wrapping_add(mapped),
            size,
            dir,
            attrs,
        );
        if error == 0 {
            mapped = mapped.wrapping_add(size);
        }
    }
    if error == 0 && iova_end_pad != 0 {
        error = bounce_and_link(
            dev,
            p,
            addr.wrapping_add(mapped),
            phys.wrapping_add(mapped),
            iova_end_pad,
            dir,
            attrs,
            0,
        );
        if error == 0 {
            state.size |= DMA_IOVA_USE_SWIOTLB;
        }
    }
    if error != 0 && mapped != 0 {
        let offset = if seeded::active(SeededBug::UnwindFromOffsetZero) {
            0
        } else {
            offset
        };
        dma_iova_unlink(dev, p, state, offset, mapped, dir, attrs);
    }
    error
}

/// LINK-09; mirrors `iommu_dma_iova_bounce_and_link`: bounce `len` bytes of `phys`, then
/// [`link_range`] the bounce granule(s) at `addr - start_pad`. A failed bounce is `-ENOMEM`; a
/// failed map releases the slot (copying it back for from-device/bidirectional) and returns
/// the map's error.
#[allow(clippy::too_many_arguments)]
fn bounce_and_link(
    dev: &Device,
    p: &mut dyn Platform,
    addr: u64,
    phys: u64,
    len: u64,
    dir: Dir,
    attrs: Attrs,
    start_pad: u64,
) -> i32 {
    let Some(bounce) = map_swiotlb(dev, p, phys, len) else {
        return -errno::ENOMEM;
    };
    let error = link_range(
        dev,
        p,
        addr.wrapping_sub(start_pad),
        bounce.wrapping_sub(start_pad),
        dev.iovad.iova_align(len),
        dir,
        attrs,
    );
    if error != 0 {
        tbl_unmap_single(dev, p, bounce, len, dir, attrs);
    }
    error
}

/// LINK-09; mirrors `iommu_dma_map_swiotlb` with the copy of `swiotlb_tbl_map_single`:
/// refuse when the pool is inactive; take a slot aligned to the granule
/// (`alloc_align_mask = granule - 1`) that keeps the `min_align_mask` bits of `phys`; copy the
/// `len` bytes into it whatever the direction; for an untrusted device zero the bounce
/// granule's bytes before and after the copy. Returns the bounce address, `None` on failure.
/// Zero-length fills (a `memset` of nothing) are not issued.
pub fn map_swiotlb(dev: &Device, p: &mut dyn Platform, phys: u64, len: u64) -> Option<u64> {
    if !dev.facts.swiotlb {
        // Linux: dev_warn_once "DMA bounce buffers are inactive" (not a WARN).
        return None;
    }
    let mut bounce = 0u64;
    let ret = p.bounce_alloc(
        phys,
        len,
        dev.iovad.mask(),
        dev.facts.min_align_mask,
        &mut bounce,
    );
    if ret != 0 {
        return None;
    }
    dev.bounced.set(true);
    p.copy(bounce, phys, len);

    if dev.untrusted() {
        let pre = dev.iovad.iova_align_down(bounce);
        if bounce > pre {
            p.fill(pre, 0, bounce - pre);
        }
        let post = bounce.wrapping_add(len);
        let post_len = dev.iovad.iova_align(post).wrapping_sub(post);
        if post_len != 0 {
            p.fill(post, 0, post_len);
        }
    }
    Some(bounce)
}

/// UNLINK-05; mirrors `swiotlb_tbl_unmap_single`: nothing unless `phys` lies in a bounce pool.
/// Then, unless `SKIP_CPU_SYNC`, from-device and bidirectional copy the bounce bytes back
/// (`swiotlb_bounce`: skipped if the slot records no original; on a non-coherent device one
/// barrier first), and the slot is released.
pub fn tbl_unmap_single(
    dev: &Device,
    p: &mut dyn Platform,
    phys: u64,
    len: u64,
    dir: Dir,
    attrs: Attrs,
) {
    if !p.is_bounce(phys) {
        return;
    }
    if !attrs.contains(Attrs::SKIP_CPU_SYNC)
        && (dir == Dir::FROM_DEVICE || dir == Dir::BIDIRECTIONAL)
    {
        let orig = p.bounce_orig(phys);
        if orig != 0 {
            if !dev.coherent() {
                p.sync_barrier();
            }
            p.copy(orig, phys, len);
        }
    }
    p.bounce_free(phys, len);
}
