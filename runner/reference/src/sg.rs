//! Scatterlists on the streaming API (`spec/6-streaming.md`, STREAM-08..STREAM-12):
//! `dma_map_sg` / `dma_unmap_sg` on iommu-dma and on dma-direct, with the P2P map types of the
//! platform (`Platform::p2p_type`).
//!
//! Linux rewrites the caller's `struct scatterlist` in place and restores it; here the caller's
//! `phys` / `len` stay as they were and the per-entry working values live in local vectors. The
//! outcome is the same: DMA segment `k` is written to entry `k`, the entries after the last DMA
//! segment carry `DMA_MAPPING_ERROR` and length 0.

use dmaconf_platform::{
    errno, p2p, Attrs, Dir, Platform, SgEntry, DMA_MAPPING_ERROR, SG_DMA_BUS_ADDRESS,
    SG_DMA_SWIOTLB,
};

use crate::device::Device;
use crate::prot::dma_info_to_prot;
use crate::seeded::{self, SeededBug};
use crate::streaming::{
    direct_map_phys_flush, direct_unmap_phys_flush, iommu_dma_unmap, iommu_map_phys,
    iommu_unmap_phys, Direct, FlushQueue,
};
use crate::swiotlb::dev_use_swiotlb;

/// `__invalidate_sg`: every entry loses its DMA address, length and bus-address mark.
fn invalidate(segs: &mut [SgEntry]) {
    for s in segs.iter_mut() {
        s.dma_address = DMA_MAPPING_ERROR;
        s.dma_len = 0;
        s.flags &= !SG_DMA_BUS_ADDRESS;
    }
}

/// STREAM-11; mirrors `iommu_dma_map_sg_swiotlb`: each entry through `iommu_dma_map_phys` on its
/// own (bouncing what needs it), the list marked; a failure unmaps the entries mapped so far
/// without CPU syncs and reports -EIO.
fn map_sg_swiotlb(
    dev: &mut Device,
    fq: &mut FlushQueue,
    p: &mut dyn Platform,
    segs: &mut [SgEntry],
    dir: Dir,
    attrs: Attrs,
) -> i32 {
    if let Some(first) = segs.first_mut() {
        first.flags |= SG_DMA_SWIOTLB;
    }
    for i in 0..segs.len() {
        let dma = iommu_map_phys(dev, p, segs[i].phys, segs[i].len, dir, attrs);
        segs[i].dma_address = dma;
        if dma == DMA_MAPPING_ERROR {
            unmap_sg_swiotlb(dev, fq, p, &segs[..i], dir, attrs | Attrs::SKIP_CPU_SYNC);
            return -errno::EIO;
        }
        segs[i].dma_len = segs[i].len;
    }
    segs.len() as i32
}

/// Mirrors `iommu_dma_unmap_sg_swiotlb`.
fn unmap_sg_swiotlb(
    dev: &mut Device,
    fq: &mut FlushQueue,
    p: &mut dyn Platform,
    segs: &[SgEntry],
    dir: Dir,
    attrs: Attrs,
) {
    for s in segs {
        iommu_unmap_phys(dev, fq, p, s.dma_address, s.dma_len, dir, attrs);
    }
}

/// STREAM-08, STREAM-09, STREAM-10, STREAM-12; mirrors `iommu_dma_map_sg`, `iommu_map_sg` and
/// `__finalise_sg`.
pub fn iommu_map_sg(
    dev: &mut Device,
    fq: &mut FlushQueue,
    p: &mut dyn Platform,
    segs: &mut [SgEntry],
    dir: Dir,
    attrs: Attrs,
) -> i32 {
    // dev_use_sg_swiotlb: an untrusted device, or an entry kmalloc bouncing would catch.
    if segs.iter().any(|s| dev_use_swiotlb(dev, s.len, dir)) {
        return map_sg_swiotlb(dev, fq, p, segs, dir, attrs);
    }
    let ret = iommu_map_sg_translated(dev, p, segs, dir, attrs);
    // Everything but -ENOMEM and -EREMOTEIO is reported as -EINVAL.
    if ret < 0 && ret != -errno::ENOMEM && ret != -errno::EREMOTEIO {
        return -errno::EINVAL;
    }
    ret
}

fn iommu_map_sg_translated(
    dev: &mut Device,
    p: &mut dyn Platform,
    segs: &mut [SgEntry],
    dir: Dir,
    attrs: Attrs,
) -> i32 {
    let coherent = dev.coherent();
    let prot = dma_info_to_prot(dir, coherent, attrs);
    let mask = dev.facts.seg_boundary_mask;

    // iommu_dma_sync_sg_for_device: every entry, P2P or not, before the P2P check.
    if !attrs.contains(Attrs::SKIP_CPU_SYNC) && !coherent {
        for s in segs.iter() {
            p.sync_for_device(s.phys, s.len, dir);
        }
        p.sync_barrier();
    }

    let n = segs.len();
    // Per entry: in-granule offset, the granule-aligned (and padded) length mapped, whether it
    // is a bus address.
    let mut iova_off = vec![0u64; n];
    let mut iova_len_of = vec![0u64; n];
    let mut bus = vec![false; n];
    let mut iova_len: u64 = 0;
    let mut prev: Option<usize> = None;
    for i in 0..n {
        let s = segs[i];
        let off = dev.iovad.iova_offset(s.phys);
        let pad_len = mask.wrapping_sub(iova_len).wrapping_add(1) & mask;
        match p.p2p_type(s.phys) {
            p2p::THRU_HOST_BRIDGE | p2p::NONE => {}
            p2p::BUS_ADDR => {
                segs[i].dma_address = s.phys.wrapping_add(p.p2p_bus_offset(s.phys));
                segs[i].dma_len = s.len;
                bus[i] = true;
                continue;
            }
            _ => {
                invalidate(segs);
                return -errno::EREMOTEIO;
            }
        }
        iova_off[i] = off;
        let s_length = dev.iovad.iova_align(s.len.wrapping_add(off));
        if s_length > u64::from(u32::MAX) {
            invalidate(segs);
            return -errno::EOVERFLOW;
        }
        iova_len_of[i] = s_length;
        // Pad the previous entry so that this one starts on a boundary when it would cross it.
        if pad_len != 0 && pad_len < s_length.wrapping_sub(1) {
            if let Some(pi) = prev {
                let grown = iova_len_of[pi] + pad_len;
                if grown > u64::from(u32::MAX) {
                    invalidate(segs);
                    return -errno::EOVERFLOW;
                }
                iova_len_of[pi] = grown;
            }
            iova_len = iova_len.wrapping_add(pad_len);
        }
        iova_len = iova_len.wrapping_add(s_length);
        prev = Some(i);
    }

    if iova_len == 0 {
        return finalise(dev, segs, &iova_off, &iova_len_of, &bus, 0);
    }
    let cpu = p.current_cpu();
    let dma_mask = dev.dma_mask();
    let iova = dev.iovad.iommu_dma_alloc_iova(
        cpu,
        &dev.facts,
        &mut dev.pci_32bit_workaround,
        iova_len,
        dma_mask,
    );
    if iova == 0 {
        invalidate(segs);
        return -errno::ENOMEM;
    }
    let mapped = map_runs(p, segs, &iova_off, &iova_len_of, &bus, iova, prot);
    if mapped < 0 || (mapped as u64) < iova_len {
        let shift = dev.iovad.shift();
        dev.iovad
            .free_iova_fast(cpu, iova >> shift, iova_len >> shift);
        invalidate(segs);
        return if mapped < 0 {
            mapped as i32
        } else {
            -errno::EINVAL
        };
    }
    finalise(dev, segs, &iova_off, &iova_len_of, &bus, iova)
}

/// Mirrors `iommu_map_sg`: map each run of physically contiguous entries (granule-aligned
/// start `phys - off`, padded length) at consecutive IOVAs, skipping bus addresses, then one
/// `iotlb_sync_map` of everything; on failure unmap what was mapped. Returns the bytes mapped
/// or -errno. Linux's loop runs one extra turn on the last entry to flush the last run; the
/// same happens here.
fn map_runs(
    p: &mut dyn Platform,
    segs: &[SgEntry],
    iova_off: &[u64],
    iova_len_of: &[u64],
    bus: &[bool],
    iova: u64,
    prot: dmaconf_platform::Prot,
) -> i64 {
    let n = segs.len();
    let mut len: u64 = 0;
    let mut mapped: u64 = 0;
    let mut start: u64 = 0;
    let mut fail = 0i32;
    let mut i = 0usize;
    let mut k = 0usize; // the entry `sg` points at
    while i <= n && n > 0 {
        let s_phys = segs[k].phys.wrapping_sub(iova_off[k]);
        if len != 0 && s_phys != start.wrapping_add(len) {
            let ret = p.iommu_map(iova.wrapping_add(mapped), start, len, prot);
            if ret != 0 {
                fail = ret;
                break;
            }
            mapped += len;
            len = 0;
        }
        if !bus[k] {
            if len != 0 {
                len += iova_len_of[k];
            } else {
                len = iova_len_of[k];
                start = s_phys;
            }
        }
        i += 1;
        if i < n {
            k += 1;
        }
    }
    if fail == 0 {
        fail = p.iotlb_sync_map(iova, mapped);
        if fail == 0 {
            return mapped as i64;
        }
    }
    // iommu_unmap: unmap + IOTLB sync of the gather.
    let unmapped = p.iommu_unmap(iova, mapped);
    if unmapped != 0 {
        p.iotlb_sync(iova, unmapped);
    }
    i64::from(fail)
}

/// Mirrors `__finalise_sg`: bus-address entries become DMA segments of their own; an entry is
/// concatenated to the current DMA segment when it starts on a granule, its IOVA is not on a
/// segment boundary and the result stays within `max_seg_size`. Lengths are `unsigned int` in
/// Linux, so `max_len - cur_len` wraps when a single entry is already longer than the limit.
fn finalise(
    dev: &Device,
    segs: &mut [SgEntry],
    iova_off: &[u64],
    iova_len_of: &[u64],
    bus: &[bool],
    mut dma_addr: u64,
) -> i32 {
    let seg_mask = dev.facts.seg_boundary_mask;
    let max_len = dev.facts.max_seg_size;
    let stash: Vec<(u64, u64)> = segs.iter().map(|s| (s.dma_address, s.dma_len)).collect();
    for s in segs.iter_mut() {
        s.dma_address = DMA_MAPPING_ERROR;
        s.dma_len = 0;
        s.flags &= !SG_DMA_BUS_ADDRESS;
    }
    let mut cur = 0usize;
    let mut cur_len: u32 = 0;
    let mut count = 0i32;
    for i in 0..segs.len() {
        if bus[i] {
            if i > 0 {
                cur += 1;
            }
            segs[cur].dma_address = stash[i].0;
            segs[cur].dma_len = stash[i].1;
            segs[cur].flags |= SG_DMA_BUS_ADDRESS;
            count += 1;
            cur_len = 0;
            continue;
        }
        let s_iova_off = iova_off[i];
        let s_length = segs[i].len as u32;
        let s_iova_len = iova_len_of[i];
        if cur_len != 0
            && s_iova_off == 0
            && (dma_addr & seg_mask != 0 || seeded::active(SeededBug::SgMergeAcrossBoundary))
            && max_len.wrapping_sub(cur_len) >= s_length
        {
            cur_len = cur_len.wrapping_add(s_length);
        } else {
            if i > 0 {
                cur += 1;
            }
            cur_len = s_length;
            count += 1;
            segs[cur].dma_address = dma_addr.wrapping_add(s_iova_off);
        }
        segs[cur].dma_len = u64::from(cur_len);
        dma_addr = dma_addr.wrapping_add(s_iova_len);
        if u64::from(s_length) + s_iova_off < s_iova_len {
            cur_len = 0;
        }
    }
    count
}

/// STREAM-08, STREAM-11; mirrors `iommu_dma_unmap_sg`: a per-entry list is unmapped entry by
/// entry; otherwise the CPU syncs of every entry (one barrier), then one unmap from the first
/// DMA segment that is not a bus address to the end of the last one before an empty segment.
pub fn iommu_unmap_sg(
    dev: &mut Device,
    fq: &mut FlushQueue,
    p: &mut dyn Platform,
    segs: &mut [SgEntry],
    dir: Dir,
    attrs: Attrs,
) {
    if segs.first().is_some_and(|s| s.flags & SG_DMA_SWIOTLB != 0) {
        unmap_sg_swiotlb(dev, fq, p, segs, dir, attrs);
        return;
    }
    if !attrs.contains(Attrs::SKIP_CPU_SYNC) && !dev.coherent() {
        for s in segs.iter() {
            p.sync_for_cpu(s.phys, s.len, dir);
        }
        p.sync_barrier();
    }
    let mut start = None;
    let mut first = segs.len();
    for (i, s) in segs.iter_mut().enumerate() {
        if s.flags & SG_DMA_BUS_ADDRESS != 0 {
            s.flags &= !SG_DMA_BUS_ADDRESS;
            continue;
        }
        first = i;
        if s.dma_len != 0 {
            start = Some(s.dma_address);
        }
        break;
    }
    let mut end = 0u64;
    for s in segs.iter_mut().skip(first) {
        if s.flags & SG_DMA_BUS_ADDRESS != 0 {
            s.flags &= !SG_DMA_BUS_ADDRESS;
            continue;
        }
        if s.dma_len == 0 {
            break;
        }
        end = s.dma_address.wrapping_add(s.dma_len);
    }
    if let (Some(start), true) = (start, end != 0) {
        iommu_dma_unmap(dev, fq, p, start, end.wrapping_sub(start));
    }
}

/// STREAM-10, STREAM-12; mirrors `dma_direct_map_sg`: each entry on its own — RAM and
/// host-bridge P2P through `dma_direct_map_phys` (no barrier per entry, one at the end on a
/// non-coherent device), `BUS_ADDR` to its bus address, anything else -EREMOTEIO; a failure
/// unmaps the entries before it without CPU syncs (-EIO for a failed map).
pub fn direct_map_sg(
    direct: &mut Direct,
    p: &mut dyn Platform,
    segs: &mut [SgEntry],
    dir: Dir,
    attrs: Attrs,
) -> i32 {
    let mut need_sync = false;
    for i in 0..segs.len() {
        let s = segs[i];
        let ret = match p.p2p_type(s.phys) {
            p2p::THRU_HOST_BRIDGE | p2p::NONE => {
                need_sync = true;
                let dma = direct_map_phys_flush(direct, p, s.phys, s.len, dir, attrs, false);
                segs[i].dma_address = dma;
                if dma == DMA_MAPPING_ERROR {
                    -errno::EIO
                } else {
                    0
                }
            }
            p2p::BUS_ADDR => {
                segs[i].dma_address = s.phys.wrapping_add(p.p2p_bus_offset(s.phys));
                segs[i].flags |= SG_DMA_BUS_ADDRESS;
                0
            }
            _ => -errno::EREMOTEIO,
        };
        if ret != 0 {
            direct_unmap_sg(p, &mut segs[..i], dir, attrs | Attrs::SKIP_CPU_SYNC);
            return ret;
        }
        segs[i].dma_len = s.len;
    }
    if need_sync && !p.facts().coherent {
        p.sync_barrier();
    }
    segs.len() as i32
}

/// STREAM-10; mirrors `dma_direct_unmap_sg`.
pub fn direct_unmap_sg(p: &mut dyn Platform, segs: &mut [SgEntry], dir: Dir, attrs: Attrs) {
    let mut need_sync = false;
    for s in segs.iter_mut() {
        if s.flags & SG_DMA_BUS_ADDRESS != 0 {
            s.flags &= !SG_DMA_BUS_ADDRESS;
        } else {
            need_sync = true;
            direct_unmap_phys_flush(p, s.dma_address, s.dma_len, dir, attrs, false);
        }
    }
    if need_sync && !p.facts().coherent {
        p.sync_barrier();
    }
}
