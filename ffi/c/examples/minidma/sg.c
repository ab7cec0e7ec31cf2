/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* minidma: dma_map_sg / dma_unmap_sg, written from spec/6-streaming.md STREAM-08..12. */
#include "minidma.h"

#include <stdlib.h>
#include <string.h>

#define ERR DMACONF_MAPPING_ERROR

static int copies_cpu(const struct dmaconf_device *d, uint64_t attrs)
{
    return !d->f.coherent && !(attrs & DMACONF_ATTR_SKIP_CPU_SYNC);
}

static void clear_segments(struct dmaconf_sg_entry *segs, uint32_t from, uint32_t nents)
{
    uint32_t i;
    for (i = from; i < nents; i++) {
        segs[i].dma_address = ERR;
        segs[i].dma_len = 0;
        segs[i].flags = 0;
    }
}

/* STREAM-11: entry by entry through dma_map_phys when the device may bounce. */
static int32_t map_sg_swiotlb(struct dmaconf_device *d, struct dmaconf_sg_entry *segs,
                              uint32_t nents, uint32_t dir, uint64_t attrs)
{
    uint32_t i, j;
    for (i = 0; i < nents; i++) {
        uint64_t dma = md_sg_iommu_map_phys(d, segs[i].phys, segs[i].len, dir, attrs);
        if (dma == ERR) {
            for (j = 0; j < i; j++)
                md_sg_iommu_unmap_phys(d, segs[j].dma_address, segs[j].dma_len, dir,
                                       attrs | DMACONF_ATTR_SKIP_CPU_SYNC);
            clear_segments(segs, 0, nents);
            return -DMACONF_EIO;
        }
        segs[i].dma_address = dma;
        segs[i].dma_len = segs[i].len;
        segs[i].flags = 0;
    }
    if (nents)
        segs[0].flags |= DMACONF_SG_DMA_SWIOTLB;
    return (int32_t)nents;
}

/* One entry's layout on iommu-dma. */
struct lay {
    uint64_t off;   /* in-granule offset of phys */
    uint64_t mlen;  /* mapped length: granule-aligned, plus any padding after it */
    uint64_t bus;   /* bus address for a BUS_ADDR entry */
    int is_bus;
};

/* STREAM-08/09/12: one IOVA, merged runs, one sync_map; segments per __finalise_sg. */
static int32_t map_sg_iommu(struct dmaconf_device *d, struct dmaconf_sg_entry *segs,
                            uint32_t nents, uint32_t dir, uint64_t attrs)
{
    uint64_t G = (uint64_t)1 << d->shift, mask = d->f.seg_boundary_mask;
    uint64_t iova_len = 0, iova = 0, cur, run_iova = 0, run_phys = 0, run_len = 0, dma,
             cur_len = 0, max_len = d->f.max_seg_size;
    uint32_t prot = md_sg_prot(d, dir, attrs), i;
    int32_t prev = -1, seg = -1, ret = 0;
    int broken = 0;
    struct lay *l;

    if (md_sg_use_swiotlb(d, segs, nents, dir))
        return map_sg_swiotlb(d, segs, nents, dir, attrs);
    /* STREAM-08: the clean of every entry, P2P ones included, then one barrier */
    if (copies_cpu(d, attrs)) {
        for (i = 0; i < nents; i++)
            d->host->sync_for_device(d->ctx, segs[i].phys, segs[i].len, dir);
        d->host->sync_barrier(d->ctx);
    }
    l = (struct lay *)calloc(nents ? nents : 1, sizeof *l);
    if (!l)
        return -DMACONF_ENOMEM;
    for (i = 0; i < nents; i++) {
        uint32_t t = d->host->p2p_type(d->ctx, segs[i].phys);
        uint64_t slen, pad_len;
        if (t == DMACONF_P2P_BUS_ADDR) { /* STREAM-12 */
            l[i].is_bus = 1;
            l[i].bus = segs[i].phys + d->host->p2p_bus_offset(d->ctx, segs[i].phys);
            continue;
        }
        if (t != DMACONF_P2P_NONE && t != DMACONF_P2P_THRU_HOST_BRIDGE) {
            ret = -DMACONF_EREMOTEIO;
            goto out;
        }
        l[i].off = segs[i].phys & (G - 1);
        slen = (segs[i].len + l[i].off + G - 1) & ~(G - 1);
        /* STREAM-09: padding up to the next boundary, given to the previous IOVA-mapped
         * entry (bus-address entries take no part) */
        pad_len = (mask - iova_len + 1) & mask;
        if (pad_len && pad_len < slen - 1 && prev >= 0) {
            l[prev].mlen += pad_len;
            iova_len += pad_len;
        }
        l[i].mlen = slen;
        iova_len += slen;
        prev = (int32_t)i;
    }
    if (iova_len) {
        iova = md_sg_alloc(d, iova_len);
        if (!iova) {
            ret = -DMACONF_ENOMEM;
            goto out;
        }
    }
    /* one iommu_map per run of physically contiguous entries, at consecutive IOVAs; a
     * bus-address entry ends the run before it (STREAM-08) */
    cur = iova;
    for (i = 0; i < nents; i++) {
        uint64_t p;
        if (l[i].is_bus) {
            broken = 1;
            continue;
        }
        p = segs[i].phys - l[i].off;
        if (run_len && !broken && run_phys + run_len == p) {
            run_len += l[i].mlen;
        } else {
            if (run_len && d->host->iommu_map(d->ctx, run_iova, run_phys, run_len, prot) != 0)
                goto map_failed;
            run_iova = cur;
            run_phys = p;
            run_len = l[i].mlen;
        }
        broken = 0;
        cur += l[i].mlen;
    }
    if (run_len && d->host->iommu_map(d->ctx, run_iova, run_phys, run_len, prot) != 0)
        goto map_failed;
    if (iova_len && d->host->iotlb_sync_map(d->ctx, iova, iova_len) != 0) {
        run_iova = iova + iova_len; /* everything is mapped: undo all of it */
        goto map_failed;
    }
    /* __finalise_sg (STREAM-09): concatenate where allowed, write segments at the front */
    dma = iova;
    for (i = 0; i < nents; i++) {
        uint64_t s_len = segs[i].len;
        if (l[i].is_bus) {
            seg++;
            segs[seg].dma_address = l[i].bus;
            segs[seg].dma_len = s_len;
            segs[seg].flags = DMACONF_SG_DMA_BUS_ADDRESS;
            cur_len = 0;
            continue;
        }
        if (cur_len && !l[i].off && (dma & mask) && max_len - cur_len >= s_len) {
            segs[seg].dma_len += s_len;
            cur_len += s_len;
        } else {
            seg++;
            segs[seg].dma_address = dma + l[i].off;
            segs[seg].dma_len = s_len;
            segs[seg].flags = 0;
            cur_len = s_len;
        }
        dma += l[i].mlen;
        if (s_len + l[i].off < l[i].mlen) /* ends inside its granule, or padded */
            cur_len = 0;
    }
    clear_segments(segs, (uint32_t)(seg + 1), nents);
    free(l);
    return seg + 1;

map_failed:
    /* STREAM-08: a synchronous unmap of what was mapped, then the IOVA back, -EINVAL */
    if (run_iova > iova) {
        uint64_t n = d->host->iommu_unmap(d->ctx, iova, run_iova - iova);
        if (n)
            d->host->iotlb_sync(d->ctx, iova, n);
    }
    md_sg_free(d, iova, iova_len);
    ret = -DMACONF_EINVAL;
out:
    free(l);
    clear_segments(segs, 0, nents);
    return ret;
}

/* STREAM-10/12: dma-direct, one segment per entry. */
static int32_t map_sg_direct(struct dmaconf_device *d, struct dmaconf_sg_entry *segs,
                             uint32_t nents, uint32_t dir, uint64_t attrs)
{
    uint32_t i, j;
    int32_t ret;
    int any_mapped = 0;
    for (i = 0; i < nents; i++) {
        uint32_t t = d->host->p2p_type(d->ctx, segs[i].phys);
        uint64_t dma;
        if (t == DMACONF_P2P_BUS_ADDR) {
            segs[i].dma_address = segs[i].phys + d->host->p2p_bus_offset(d->ctx, segs[i].phys);
            segs[i].dma_len = segs[i].len;
            segs[i].flags = DMACONF_SG_DMA_BUS_ADDRESS;
            continue;
        }
        if (t != DMACONF_P2P_NONE && t != DMACONF_P2P_THRU_HOST_BRIDGE) {
            ret = -DMACONF_EREMOTEIO;
            goto fail;
        }
        dma = md_sg_direct_map(d, segs[i].phys, segs[i].len, dir, attrs);
        if (dma == ERR) {
            ret = -DMACONF_EIO;
            goto fail;
        }
        segs[i].dma_address = dma;
        segs[i].dma_len = segs[i].len;
        segs[i].flags = 0;
        any_mapped = 1;
    }
    /* STREAM-10: one barrier after the last entry on a non-coherent device. GUESS G-28: when
     * some entry was not a bus address, as for the unmap. */
    if (!d->f.coherent && any_mapped)
        d->host->sync_barrier(d->ctx);
    return (int32_t)nents;
fail:
    for (j = 0; j < i; j++)
        if (!(segs[j].flags & DMACONF_SG_DMA_BUS_ADDRESS))
            md_sg_direct_unmap(d, segs[j].dma_address, segs[j].dma_len, dir,
                               attrs | DMACONF_ATTR_SKIP_CPU_SYNC);
    clear_segments(segs, 0, nents);
    return ret;
}

int32_t md_map_sg(struct dmaconf_device *d, struct dmaconf_sg_entry *segs, uint32_t nents,
                  uint32_t dir, uint64_t attrs)
{
    if (!segs || nents == 0)
        return -DMACONF_EINVAL;
    if (md_sg_on_iommu(d))
        return map_sg_iommu(d, segs, nents, dir, attrs);
    return map_sg_direct(d, segs, nents, dir, attrs);
}

void md_unmap_sg(struct dmaconf_device *d, struct dmaconf_sg_entry *segs, uint32_t nents,
                 uint32_t dir, uint64_t attrs)
{
    uint32_t i;
    uint64_t start = 0, end = 0;
    int started = 0;
    if (!segs || nents == 0)
        return;
    if (!md_sg_on_iommu(d)) { /* STREAM-10: entry by entry, one barrier at the end */
        int any = 0;
        for (i = 0; i < nents; i++) {
            if (segs[i].flags & DMACONF_SG_DMA_BUS_ADDRESS)
                continue;
            if (segs[i].dma_address == ERR)
                continue;
            md_sg_direct_unmap(d, segs[i].dma_address, segs[i].dma_len, dir, attrs);
            any = 1;
        }
        if (!d->f.coherent && any)
            d->host->sync_barrier(d->ctx);
        return;
    }
    if (segs[0].flags & DMACONF_SG_DMA_SWIOTLB) { /* STREAM-11 */
        for (i = 0; i < nents; i++)
            if (segs[i].dma_len)
                md_sg_iommu_unmap_phys(d, segs[i].dma_address, segs[i].dma_len, dir, attrs);
        return;
    }
    /* STREAM-08: CPU-side work of every entry, one barrier, then one unmap */
    if (copies_cpu(d, attrs)) {
        for (i = 0; i < nents; i++)
            d->host->sync_for_cpu(d->ctx, segs[i].phys, segs[i].len, dir);
        d->host->sync_barrier(d->ctx);
    }
    /* STREAM-08: from the first non-bus segment to the end of the last non-bus one before
     * the first empty segment */
    for (i = 0; i < nents; i++) {
        if (segs[i].flags & DMACONF_SG_DMA_BUS_ADDRESS)
            continue;
        if (segs[i].dma_len == 0)
            break;
        if (!started) {
            start = segs[i].dma_address;
            started = 1;
        }
        end = segs[i].dma_address + segs[i].dma_len;
    }
    if (started && end > start)
        md_sg_unmap_range(d, start, end - start);
}
