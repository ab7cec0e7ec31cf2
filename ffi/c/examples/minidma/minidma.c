/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * minidma: an independent DMA layer for the dmaconf suite, written from spec/ alone.
 *
 * It implements the whole plug-in table of ffi/c/include/dmaconf.h: the two-step IOVA calls
 * (spec/3.x), the IOVA allocator (spec/4, in iova.c), the streaming calls, scatterlists and
 * the flush queue (spec/6). Places where the spec left a choice open are marked
 * "GUESS G-n" and listed in GUESSES.md.
 */
#include "minidma.h"

#include <stdlib.h>
#include <string.h>

#define FLAG DMACONF_IOVA_USE_SWIOTLB
#define ERR DMACONF_MAPPING_ERROR

/* ---- host calls (spec/1-platform.md §1.3) ------------------------------------------ */

static int32_t h_map(struct dmaconf_device *d, uint64_t iova, uint64_t phys, uint64_t len,
                     uint32_t prot)
{
    return d->host->iommu_map(d->ctx, iova, phys, len, prot);
}
static int32_t h_sync_map(struct dmaconf_device *d, uint64_t iova, uint64_t len)
{
    return d->host->iotlb_sync_map(d->ctx, iova, len);
}
static uint64_t h_unmap(struct dmaconf_device *d, uint64_t iova, uint64_t len)
{
    return d->host->iommu_unmap(d->ctx, iova, len);
}
static void h_iotlb_sync(struct dmaconf_device *d, uint64_t iova, uint64_t len)
{
    d->host->iotlb_sync(d->ctx, iova, len);
}
static uint64_t h_to_phys(struct dmaconf_device *d, uint64_t iova)
{
    return d->host->iova_to_phys(d->ctx, iova);
}
static void h_for_device(struct dmaconf_device *d, uint64_t phys, uint64_t len, uint32_t dir)
{
    d->host->sync_for_device(d->ctx, phys, len, dir);
}
static void h_for_cpu(struct dmaconf_device *d, uint64_t phys, uint64_t len, uint32_t dir)
{
    d->host->sync_for_cpu(d->ctx, phys, len, dir);
}
static void h_barrier(struct dmaconf_device *d)
{
    d->host->sync_barrier(d->ctx);
}
static int32_t h_bounce_alloc(struct dmaconf_device *d, uint64_t orig, uint64_t len,
                              uint64_t align_mask, uint64_t *slot)
{
    return d->host->bounce_alloc(d->ctx, orig, len, align_mask, d->f.min_align_mask, slot);
}
static void h_bounce_free(struct dmaconf_device *d, uint64_t slot, uint64_t len)
{
    d->host->bounce_free(d->ctx, slot, len);
}
static int h_is_bounce(struct dmaconf_device *d, uint64_t phys)
{
    return d->host->is_bounce(d->ctx, phys) != 0;
}
static void h_copy(struct dmaconf_device *d, uint64_t dst, uint64_t src, uint64_t len)
{
    d->host->copy(d->ctx, dst, src, len);
}
static void h_fill(struct dmaconf_device *d, uint64_t dst, uint64_t len)
{
    if (len) /* LINK-09: a zero-length padding side is no fill at all */
        d->host->fill(d->ctx, dst, 0, len);
}
static void h_warn(struct dmaconf_device *d, uint32_t code)
{
    d->host->warn(d->ctx, code);
}
static uint32_t h_cpu(struct dmaconf_device *d)
{
    return d->host->current_cpu(d->ctx);
}

/* The bounce copy back to the original (swiotlb_bounce towards the CPU): on a non-coherent
 * device a barrier comes right before it (UNLINK-05; the same copy ends a failed bounced
 * link, vector swiotlb-kmalloc-unaligned-head-einval). */
static void copy_back(struct dmaconf_device *d, uint64_t orig, uint64_t slot, uint64_t len)
{
    if (!d->f.coherent)
        h_barrier(d);
    h_copy(d, orig, slot, len);
}

/* ---- small rules ------------------------------------------------------------------- */

static uint64_t align_up(const struct dmaconf_device *d, uint64_t n)
{
    return (n + d->G - 1) & ~(d->G - 1);
}
static uint64_t pad_of(const struct dmaconf_device *d, uint64_t x)
{
    return x & (d->G - 1);
}
static int copies_back(uint32_t dir)
{
    return dir == DMACONF_DIR_FROM_DEVICE || dir == DMACONF_DIR_BIDIRECTIONAL;
}
static int copies_in(uint32_t dir)
{
    return dir == DMACONF_DIR_TO_DEVICE || dir == DMACONF_DIR_BIDIRECTIONAL;
}
/* CPU cache maintenance applies: non-coherent, neither SKIP_CPU_SYNC nor MMIO (LINK-06). */
static int cpu_sync(const struct dmaconf_device *d, uint64_t attrs)
{
    return !d->f.coherent && !(attrs & (DMACONF_ATTR_SKIP_CPU_SYNC | DMACONF_ATTR_MMIO));
}

/* PROT-01 / PROT-02. */
static uint32_t prot_of(const struct dmaconf_device *d, uint32_t dir, uint64_t attrs)
{
    uint32_t p;
    if (dir == DMACONF_DIR_BIDIRECTIONAL)
        p = DMACONF_PROT_READ | DMACONF_PROT_WRITE;
    else if (dir == DMACONF_DIR_TO_DEVICE)
        p = DMACONF_PROT_READ;
    else if (dir == DMACONF_DIR_FROM_DEVICE)
        p = DMACONF_PROT_WRITE;
    else
        return 0;
    if (attrs & DMACONF_ATTR_MMIO)
        p |= DMACONF_PROT_MMIO;
    else if (d->f.coherent)
        p |= DMACONF_PROT_CACHE;
    if (attrs & DMACONF_ATTR_PRIVILEGED)
        p |= DMACONF_PROT_PRIV;
    return p;
}

/* kmalloc_size_roundup below 2 x ARCH_DMA_MINALIGN, with a bounce pool (LINK-04): the
 * kmalloc caches 8, 16, 32, 64, 96, 128, 192, 256. */
static uint64_t kmalloc_roundup(uint64_t size)
{
    static const uint64_t cls[] = {8, 16, 32, 64, 96, 128, 192, 256};
    size_t i;
    if (size == 0)
        return 0;
    for (i = 0; i < sizeof cls / sizeof cls[0]; i++)
        if (size <= cls[i])
            return cls[i];
    return size;
}

/* The kmalloc rule of LINK-04 (dma_kmalloc_needs_bounce). Without a bounce pool every kmalloc
 * cache is a multiple of cache_line, so the rule never applies. ARCH_DMA_MINALIGN is 128 on
 * arm64 and 64 on riscv. */
static int kmalloc_needs_bounce(const struct dmaconf_device *d, uint64_t size, uint32_t dir)
{
    uint64_t minalign = d->f.arch == DMACONF_ARCH_RISCV ? 64 : 128;
    if (d->f.coherent || !d->f.kmalloc_bounce || dir == DMACONF_DIR_TO_DEVICE || !d->f.swiotlb)
        return 0;
    if (size >= 2 * minalign)
        return 0;
    return d->f.cache_line != 0 && kmalloc_roundup(size) % d->f.cache_line != 0;
}

/* LINK-04's first two conditions (dev_use_swiotlb). SWIOTLB is always built on iommu-dma;
 * whether the pool exists is asked only when a bounce is attempted. */
static int dev_use_swiotlb(const struct dmaconf_device *d, uint64_t size, uint32_t dir)
{
    return d->f.untrusted || kmalloc_needs_bounce(d, size, dir);
}

static uint64_t min_not_zero(uint64_t a, uint64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

/* TRYALLOC-07's limit. */
static uint64_t dma_limit(const struct dmaconf_device *d)
{
    uint64_t l = min_not_zero(d->f.dma_mask, d->f.bus_dma_limit);
    if (d->f.force_aperture && d->f.aperture_end < l)
        l = d->f.aperture_end;
    return l;
}

/* ---- device life ------------------------------------------------------------------- */

static void read_facts(struct dmaconf_device *d)
{
    unsigned s = 0;
    memset(&d->f, 0, sizeof d->f);
    d->f.struct_size = (uint32_t)sizeof d->f;
    d->host->facts(d->ctx, &d->f);
    if (d->f.pgsize_bitmap) {
        while (!((d->f.pgsize_bitmap >> s) & 1))
            s++;
    } else {
        s = 12; /* no IOMMU: G only sizes nothing; 4 KiB */
    }
    d->shift = s;
    d->G = (uint64_t)1 << s;
    d->iommu = d->f.iommu_dma_config &&
               (d->f.domain == DMACONF_DOMAIN_DMA || d->f.domain == DMACONF_DOMAIN_DMA_FQ);
    d->lazy = d->iommu && d->f.domain == DMACONF_DOMAIN_DMA_FQ;
    d->need_sync = !d->f.coherent; /* STREAM-06: the skip-sync flag starts as "coherent" */
    d->pci32 = d->f.pci && !d->f.forcedac;
}

static int32_t md_create(const struct dmaconf_host *host, void *host_ctx,
                         struct dmaconf_device **out)
{
    struct dmaconf_device *d;
    if (!host || !out)
        return -DMACONF_EINVAL;
    d = (struct dmaconf_device *)calloc(1, sizeof *d);
    if (!d)
        return -DMACONF_ENOMEM;
    d->host = host;
    d->ctx = host_ctx;
    read_facts(d);
    *out = d;
    return 0;
}

static void md_destroy(struct dmaconf_device *d)
{
    if (!d)
        return;
    if (d->domain_ok)
        md_iovad_fini(&d->iovad);
    free(d->fq);
    free(d);
}

static uint64_t alloc_iova(struct dmaconf_device *d, uint64_t len)
{
    uint64_t pfn = md_iova_alloc(&d->iovad, h_cpu(d), len >> d->shift, dma_limit(d), &d->pci32);
    return pfn << d->shift; /* 0: failure (pfn 0 is never handed out) */
}

static void free_iova(struct dmaconf_device *d, uint64_t iova, uint64_t len)
{
    md_iova_free(&d->iovad, h_cpu(d), iova >> d->shift, len >> d->shift);
}

/* IOVA-06: the MSI doorbell granule, mapped at probe and kept for the domain's life. */
static void map_msi_doorbell(struct dmaconf_device *d)
{
    uint64_t iova = alloc_iova(d, d->G);
    if (!iova)
        return;
    if (h_map(d, iova, d->f.msi_doorbell & ~(d->G - 1), d->G,
              DMACONF_PROT_WRITE | DMACONF_PROT_NOEXEC | DMACONF_PROT_MMIO) != 0) {
        free_iova(d, iova, d->G);
        return;
    }
    if (h_sync_map(d, iova, d->G) != 0) { /* GUESS G-21: undo the map, give the IOVA back */
        uint64_t n = h_unmap(d, iova, d->G);
        if (n)
            h_iotlb_sync(d, iova, n);
        free_iova(d, iova, d->G);
    }
}

/* iommu_dma_init_domain (IOVA-05): the domain, its reserved regions, the MSI page. */
static int32_t md_probe(struct dmaconf_device *d)
{
    uint32_t i;
    uint64_t start;
    if (!d->iommu || d->domain_ok)
        return 0;
    start = d->f.aperture_start >> d->shift;
    if (start < 1)
        start = 1;
    if (md_iovad_init(&d->iovad, d->shift, start, d->f.nr_cpus))
        return -DMACONF_ENOMEM;
    d->domain_ok = 1;
    d->fq = (struct md_fq *)calloc(d->iovad.nr_cpus, sizeof *d->fq);
    if (!d->fq)
        return -DMACONF_ENOMEM;
    /* The platform reports every region; host-bridge windows and dma-range gaps apply to a
     * PCI device only. Each is widened to whole granules. */
    for (i = 0;; i++) {
        struct dmaconf_region r;
        memset(&r, 0, sizeof r);
        if (d->host->reserved_region(d->ctx, i, &r) != 0)
            break;
        if (!d->f.pci &&
            (r.kind == DMACONF_REGION_PCI_WINDOW || r.kind == DMACONF_REGION_DMA_RANGE_GAP))
            continue;
        if (md_iovad_reserve(&d->iovad, r.start >> d->shift, r.end >> d->shift))
            return -DMACONF_ENOMEM;
    }
    if (d->f.msi_doorbell)
        map_msi_doorbell(d);
    return 0;
}

/* Every IOVA call needs the domain; a host that skipped probe still gets one. */
static int domain(struct dmaconf_device *d)
{
    if (!d->iommu)
        return 0;
    if (!d->domain_ok)
        md_probe(d);
    return d->domain_ok;
}

/* ---- dma_iova_* (spec/3.x) --------------------------------------------------------- */

static uint32_t md_use_iova(struct dmaconf_device *d, const struct dmaconf_iova_state *st)
{
    if (!d->f.iommu_dma_config) /* STATE-02: the stub is always false */
        return 0;
    return st->size != 0;
}

static uint64_t md_iova_size(struct dmaconf_device *d, const struct dmaconf_iova_state *st)
{
    (void)d;
    return st->size & ~FLAG; /* STATE-03 */
}

static uint32_t md_try_alloc(struct dmaconf_device *d, struct dmaconf_iova_state *st,
                             uint64_t phys, uint64_t size)
{
    uint64_t pad, len, iova;
    if (!d->f.iommu_dma_config) /* TRYALLOC-03: the stub leaves the state alone */
        return 0;
    st->addr = 0; /* TRYALLOC-01 */
    st->size = 0;
    if (!domain(d)) /* TRYALLOC-02 */
        return 0;
    pad = pad_of(d, phys);
    if (size == 0) { /* TRYALLOC-04 */
        h_warn(d, DMACONF_WARN_TRY_ALLOC_ZERO_SIZE);
        return 0;
    }
    if (size & FLAG) { /* TRYALLOC-05 */
        h_warn(d, DMACONF_WARN_TRY_ALLOC_SIZE_FLAG_BIT);
        return 0;
    }
    len = align_up(d, size + pad);
    iova = alloc_iova(d, len);
    if (!iova) /* TRYALLOC-08 */
        return 0;
    st->addr = iova + pad; /* TRYALLOC-06 */
    st->size = size;
    return 1;
}

/* __dma_iova_link: the granule-expanded map of LINK-05 with LINK-06's clean before it. */
static int32_t link_range(struct dmaconf_device *d, uint64_t iova, uint64_t phys, uint64_t size,
                          uint32_t dir, uint64_t attrs)
{
    uint64_t pad = pad_of(d, phys), len = align_up(d, size + pad);
    if (cpu_sync(d, attrs))
        h_for_device(d, phys - pad, len, dir);
    return h_map(d, iova - pad, phys - pad, len, prot_of(d, dir, attrs));
}

/*
 * The slow path of UNLINK-02 (with UNLINK-04 and UNLINK-05) and the fast part of
 * UNLINK-01/03 over [A, A + size).
 */
static void unlink_range(struct dmaconf_device *d, int flagged, uint64_t A, uint64_t size,
                         uint32_t dir, uint64_t attrs)
{
    uint64_t pad = pad_of(d, A), L = align_up(d, size + pad), unmapped;
    int sync = cpu_sync(d, attrs);
    if (flagged || sync) {
        uint64_t pos = A, left = size;
        int whole = 1;
        do { /* at least one piece: size 0 is one piece of length 0 (UNLINK-02) */
            uint64_t piece = d->G - pad_of(d, pos), phys;
            if (piece > left)
                piece = left;
            phys = h_to_phys(d, pos);
            if (phys == 0) { /* UNLINK-04 */
                h_warn(d, DMACONF_WARN_UNLINK_UNTRANSLATED);
                whole = 0;
                break;
            }
            if (sync)
                h_for_cpu(d, phys, piece, dir);
            if (h_is_bounce(d, phys)) { /* UNLINK-05 */
                if (copies_back(dir) && !(attrs & DMACONF_ATTR_SKIP_CPU_SYNC))
                    copy_back(d, d->host->bounce_orig(d->ctx, phys), phys, piece);
                h_bounce_free(d, phys, piece);
            }
            pos += piece;
            left -= piece;
        } while (left > 0);
        if (whole && sync)
            h_barrier(d);
    }
    unmapped = h_unmap(d, A - pad, L);
    if (unmapped != L)
        h_warn(d, DMACONF_WARN_UNLINK_SHORT_UNMAP);
    if (unmapped)
        h_iotlb_sync(d, A - pad, unmapped);
}

/* Steps 1-4 of LINK-09's bounce: no pool, reserve, copy in, zero the untrusted padding.
 * Also the streaming bounce of STREAM-01. Returns 0 and the slot, or -ENOMEM. */
static int32_t bounce_in(struct dmaconf_device *d, uint64_t orig, uint64_t n, uint64_t *slot)
{
    if (!d->f.swiotlb) /* no pool: nothing is logged */
        return -DMACONF_ENOMEM;
    if (h_bounce_alloc(d, orig, n, d->G - 1, slot) != 0)
        return -DMACONF_ENOMEM;
    d->need_sync = 1; /* GUESS G-23: any bounce, a link's too, clears skip-sync (STREAM-06) */
    h_copy(d, *slot, orig, n);
    if (d->f.untrusted) { /* one fill per non-empty side */
        uint64_t q = pad_of(d, *slot), e = *slot + n;
        h_fill(d, *slot - q, q);
        h_fill(d, e, align_up(d, e) - e);
    }
    return 0;
}

/* LINK-09's bounce of n bytes at orig into the IOVA granule at I with start pad sp: steps
 * 1-6 (the map of the slot, its release on failure). The caller sets the flag. */
static int32_t bounce_and_link(struct dmaconf_device *d, uint64_t I, uint64_t orig, uint64_t n,
                               uint64_t sp, uint32_t dir, uint64_t attrs)
{
    uint64_t slot = 0, len = align_up(d, n);
    int32_t r = bounce_in(d, orig, n, &slot);
    if (r)
        return r;
    if (!d->f.coherent && !(attrs & DMACONF_ATTR_SKIP_CPU_SYNC))
        h_for_device(d, slot - sp, len, dir);
    r = h_map(d, I, slot - sp, len, prot_of(d, dir, attrs));
    if (r != 0) { /* release as UNLINK-05 does for one piece: no sync_for_cpu */
        if (copies_back(dir) && !(attrs & DMACONF_ATTR_SKIP_CPU_SYNC))
            copy_back(d, orig, slot, n);
        h_bounce_free(d, slot, n);
    }
    return r;
}

/* LINK-09: bounce the unaligned head and tail, map the aligned middle. */
static int32_t link_swiotlb(struct dmaconf_device *d, struct dmaconf_iova_state *st,
                            uint64_t phys, uint64_t offset, uint64_t size, uint32_t dir,
                            uint64_t attrs)
{
    uint64_t A = st->addr + offset, pad = pad_of(d, phys), end_pad = pad_of(d, phys + size);
    uint64_t mapped = 0, middle;
    int32_t r;
    if (pad) {
        uint64_t h = d->G - pad < size ? d->G - pad : size;
        r = bounce_and_link(d, A - pad, phys, h, pad, dir, attrs);
        if (r)
            return r;
        st->size |= FLAG; /* STATE-04 */
        mapped = h;
        if (mapped == size)
            return 0;
    }
    middle = size - mapped - end_pad;
    if (middle) {
        r = link_range(d, A + mapped, phys + mapped, middle, dir, attrs);
        if (r)
            goto unwind;
        mapped += middle;
    }
    if (end_pad) {
        r = bounce_and_link(d, A + mapped, phys + mapped, end_pad, 0, dir, attrs);
        if (r)
            goto unwind;
        st->size |= FLAG;
    }
    return 0;
unwind:
    if (mapped) /* nothing mapped: no unlink at all */
        unlink_range(d, (st->size & FLAG) != 0, A, mapped, dir, attrs);
    return r;
}

static int32_t md_link(struct dmaconf_device *d, struct dmaconf_iova_state *st, uint64_t phys,
                       uint64_t offset, uint64_t size, uint32_t dir, uint64_t attrs)
{
    if (!d->f.iommu_dma_config) /* TRYALLOC-03 stub */
        return -DMACONF_EOPNOTSUPP;
    if (!domain(d)) /* misuse no_reservation: undefined, an error is allowed (§1.6) */
        return -DMACONF_EOPNOTSUPP;
    if (pad_of(d, phys) && offset) { /* LINK-01 */
        h_warn(d, DMACONF_WARN_LINK_UNALIGNED_AT_OFFSET);
        return -DMACONF_EIO;
    }
    if ((st->size & FLAG) && (attrs & DMACONF_ATTR_REQUIRE_COHERENT)) { /* LINK-02 */
        h_warn(d, DMACONF_WARN_LINK_COHERENT_AFTER_BOUNCE);
        return -DMACONF_EOPNOTSUPP;
    }
    if (!d->f.coherent && (attrs & DMACONF_ATTR_REQUIRE_COHERENT)) /* LINK-03 */
        return -DMACONF_EOPNOTSUPP;
    if (dev_use_swiotlb(d, size, dir) && ((phys | size) & (d->G - 1))) { /* LINK-04 */
        if (attrs & (DMACONF_ATTR_MMIO | DMACONF_ATTR_REQUIRE_COHERENT))
            return -DMACONF_EPERM;
        return link_swiotlb(d, st, phys, offset, size, dir, attrs);
    }
    return link_range(d, st->addr + offset, phys, size, dir, attrs); /* LINK-05..08 */
}

static int32_t md_sync(struct dmaconf_device *d, const struct dmaconf_iova_state *st,
                       uint64_t offset, uint64_t size)
{
    uint64_t A, pad;
    if (!d->f.iommu_dma_config || !domain(d))
        return -DMACONF_EOPNOTSUPP;
    A = st->addr + offset;
    pad = pad_of(d, A);
    if (!d->f.coherent) /* SYNC-01 */
        h_barrier(d);
    return h_sync_map(d, A - pad, align_up(d, size + pad));
}

static void md_unlink(struct dmaconf_device *d, const struct dmaconf_iova_state *st,
                      uint64_t offset, uint64_t size, uint32_t dir, uint64_t attrs)
{
    if (!d->f.iommu_dma_config || !domain(d))
        return;
    unlink_range(d, (st->size & FLAG) != 0, st->addr + offset, size, dir, attrs);
}

static void md_free(struct dmaconf_device *d, const struct dmaconf_iova_state *st)
{
    uint64_t pad, len;
    if (!d->f.iommu_dma_config || !domain(d))
        return;
    pad = pad_of(d, st->addr); /* FREE-01: the reservation from the state alone */
    len = align_up(d, (st->size & ~FLAG) + pad);
    free_iova(d, st->addr - pad, len);
}

static void md_destroy_state(struct dmaconf_device *d, const struct dmaconf_iova_state *st,
                             uint64_t mapped_len, uint32_t dir, uint64_t attrs)
{
    if (!d->f.iommu_dma_config || !domain(d))
        return;
    if (mapped_len) /* DESTROY-01 / DESTROY-02 */
        md_unlink(d, st, 0, mapped_len, dir, attrs);
    md_free(d, st);
}

/* ---- streaming: the flush queue (STREAM-04) ----------------------------------------- */

static void fq_flush(struct dmaconf_device *d)
{
    d->fq_start_cnt++;
    d->host->flush_iotlb_all(d->ctx);
    d->fq_finish_cnt++;
}

/* Release the entries queued before the last completed flush. */
static void fq_ring_free(struct dmaconf_device *d, struct md_fq *q)
{
    while (q->count > 0 && q->e[q->head].counter < d->fq_finish_cnt) {
        struct md_fq_entry *e = &q->e[q->head];
        md_iova_free(&d->iovad, h_cpu(d), e->pfn, e->pages);
        q->head = (q->head + 1) % MD_FQ_SIZE;
        q->count--;
    }
}

static void fq_queue(struct dmaconf_device *d, uint64_t iova, uint64_t len)
{
    struct md_fq *q = &d->fq[h_cpu(d) % d->iovad.nr_cpus];
    struct md_fq_entry *e;
    fq_ring_free(d, q);
    /* Per-CPU rings of 256 slots, full at 255 entries; a full ring is flushed before the
     * add; only a queueing that finds the timer off arms it. */
    if (q->count == MD_FQ_SIZE - 1) {
        fq_flush(d);
        fq_ring_free(d, q);
    }
    e = &q->e[(q->head + q->count) % MD_FQ_SIZE];
    e->pfn = iova >> d->shift;
    e->pages = len >> d->shift;
    e->counter = d->fq_start_cnt;
    q->count++;
    if (!d->fq_timer_on) {
        d->fq_timer_on = 1;
        /* jiffies at HZ = 250: 10 ms is 3 ticks, counted from the tick the arming falls in */
        d->fq_deadline = (d->host->now_ns(d->ctx) / MD_TICK_NS + MD_FQ_TIMEOUT_TICKS) * MD_TICK_NS;
    }
}

static void md_advance_time(struct dmaconf_device *d, uint64_t now_ns)
{
    uint32_t c;
    if (!d->domain_ok || !d->fq_timer_on || now_ns < d->fq_deadline)
        return;
    d->fq_timer_on = 0;
    fq_flush(d);
    for (c = 0; c < d->iovad.nr_cpus; c++)
        fq_ring_free(d, &d->fq[c]);
}

/* ---- streaming on iommu-dma (STREAM-01..04) ---------------------------------------- */

/* __iommu_dma_map: allocate, map, sync_map. */
static uint64_t iommu_map_one(struct dmaconf_device *d, uint64_t phys, uint64_t size,
                              uint32_t prot)
{
    uint64_t off = pad_of(d, phys), len = align_up(d, size + off), iova;
    if (d->f.min_align_mask > d->G - 1) { /* STREAM-01; GUESS G-24: after the clean */
        h_warn(d, DMACONF_WARN_STREAM_MIN_ALIGN_UNSUPPORTED);
        return ERR;
    }
    iova = len ? alloc_iova(d, len) : 0;
    if (!iova)
        return ERR;
    if (h_map(d, iova, phys - off, len, prot) != 0) {
        free_iova(d, iova, len);
        return ERR;
    }
    if (h_sync_map(d, iova, len) != 0) {
        uint64_t n = h_unmap(d, iova, len);
        if (n)
            h_iotlb_sync(d, iova, n);
        free_iova(d, iova, len);
        return ERR;
    }
    return iova + off;
}

/* __iommu_dma_unmap: unmap, then invalidate and free (strict) or queue (lazy). */
static void iommu_unmap_one(struct dmaconf_device *d, uint64_t addr, uint64_t size)
{
    uint64_t off = pad_of(d, addr), iova = addr - off, len = align_up(d, size + off), n;
    n = h_unmap(d, iova, len);
    if (n != len)
        h_warn(d, DMACONF_WARN_STREAM_UNMAP_SHORT);
    if (d->lazy) {
        fq_queue(d, iova, len);
        return;
    }
    if (n)
        h_iotlb_sync(d, iova, n);
    free_iova(d, iova, len);
}

static uint64_t iommu_map_phys(struct dmaconf_device *d, uint64_t phys, uint64_t size,
                               uint32_t dir, uint64_t attrs)
{
    uint64_t target = phys, slot = 0, dma;
    int bounced = 0;
    /* STREAM-01 with LINK-04's bounce decision: an unaligned mapping bounces whole; MMIO is
     * mapped directly. */
    if (attrs & DMACONF_ATTR_CC_SHARED) /* STREAM-17 */
        return ERR;
    if (!(attrs & DMACONF_ATTR_MMIO) && dev_use_swiotlb(d, size, dir) &&
        ((phys | size) & (d->G - 1))) {
        if (attrs & DMACONF_ATTR_REQUIRE_COHERENT) /* refused silently */
            return ERR;
        if (bounce_in(d, phys, size, &slot) != 0)
            return ERR;
        target = slot;
        bounced = 1;
    }
    if (cpu_sync(d, attrs)) { /* STREAM-02: exact clean, barrier, then map */
        h_for_device(d, target, size, dir);
        h_barrier(d);
    }
    dma = iommu_map_one(d, target, size, prot_of(d, dir, attrs));
    if (dma == ERR && bounced) {
        if (copies_back(dir) && !(attrs & DMACONF_ATTR_SKIP_CPU_SYNC))
            copy_back(d, phys, slot, size);
        h_bounce_free(d, slot, size);
    }
    return dma;
}

static void iommu_unmap_phys(struct dmaconf_device *d, uint64_t addr, uint64_t size,
                             uint32_t dir, uint64_t attrs)
{
    uint64_t phys;
    if (attrs & DMACONF_ATTR_CC_SHARED) /* STREAM-17 */
        return;
    if (attrs & (DMACONF_ATTR_MMIO | DMACONF_ATTR_REQUIRE_COHERENT)) { /* STREAM-03 */
        iommu_unmap_one(d, addr, size);
        return;
    }
    phys = h_to_phys(d, addr);
    if (!phys) {
        h_warn(d, DMACONF_WARN_STREAM_UNMAP_UNTRANSLATED);
        return;
    }
    if (!d->f.coherent && !(attrs & DMACONF_ATTR_SKIP_CPU_SYNC)) {
        h_for_cpu(d, phys, size, dir);
        h_barrier(d);
    }
    iommu_unmap_one(d, addr, size);
    /* the bounce is copied back and released after the invalidation (STREAM-03) */
    if (h_is_bounce(d, phys)) {
        if (copies_back(dir) && !(attrs & DMACONF_ATTR_SKIP_CPU_SYNC))
            copy_back(d, d->host->bounce_orig(d->ctx, phys), phys, size);
        h_bounce_free(d, phys, size);
    }
}

/* ---- streaming on dma-direct (STREAM-05, 15, 16) ------------------------------------ */

static int direct_capable(const struct dmaconf_device *d, uint64_t dma, uint64_t size)
{
    uint64_t end = dma + size - 1;
    if (size && end < dma)
        return 0;
    return (size ? end : dma) <= min_not_zero(d->f.dma_mask, d->f.bus_dma_limit);
}

/* swiotlb_map on dma-direct: a slot with the pool's own alignment, copy in, clean. */
static uint64_t direct_bounce(struct dmaconf_device *d, uint64_t phys, uint64_t size,
                              uint32_t dir, uint64_t attrs)
{
    uint64_t slot = 0, dma;
    if (h_bounce_alloc(d, phys, size, 0, &slot) != 0)
        return ERR; /* GUESS G-26: a full pool fails without a WARN */
    d->need_sync = 1;
    h_copy(d, slot, phys, size);
    dma = slot >= d->f.dma_offset ? slot - d->f.dma_offset : ERR;
    if (dma == ERR || !direct_capable(d, dma, size)) {
        h_warn(d, DMACONF_WARN_DIRECT_OVERFLOW);
        h_bounce_free(d, slot, size);
        return ERR;
    }
    if (!d->f.coherent && !(attrs & DMACONF_ATTR_SKIP_CPU_SYNC)) {
        h_for_device(d, slot, size, dir);
        h_barrier(d); /* swiotlb_map completes its own clean, also inside a list (STREAM-15) */
    }
    return dma;
}

static uint64_t direct_map(struct dmaconf_device *d, uint64_t phys, uint64_t size, uint32_t dir,
                           uint64_t attrs, int barrier)
{
    uint64_t dma;
    int has_bus = phys >= d->f.dma_offset;
    if (d->f.swiotlb_force) { /* STREAM-15 */
        if (attrs & (DMACONF_ATTR_MMIO | DMACONF_ATTR_REQUIRE_COHERENT))
            return ERR;
        return direct_bounce(d, phys, size, dir, attrs);
    }
    /* GUESS G-27: the dma_range_map offset applies to MMIO too */
    dma = has_bus ? phys - d->f.dma_offset : 0;
    if (!has_bus || !direct_capable(d, dma, size)) {
        /* STREAM-05: REQUIRE_COHERENT refuses the bounce, with the overflow WARN */
        if (!(attrs & (DMACONF_ATTR_MMIO | DMACONF_ATTR_REQUIRE_COHERENT)) && d->f.swiotlb)
            return direct_bounce(d, phys, size, dir, attrs);
        h_warn(d, DMACONF_WARN_DIRECT_OVERFLOW);
        return ERR;
    }
    if (cpu_sync(d, attrs)) {
        h_for_device(d, phys, size, dir);
        if (barrier)
            h_barrier(d);
    }
    return dma;
}

static void direct_unmap(struct dmaconf_device *d, uint64_t dma, uint64_t size, uint32_t dir,
                         uint64_t attrs, int barrier)
{
    uint64_t phys = dma + d->f.dma_offset;
    if (attrs & (DMACONF_ATTR_MMIO | DMACONF_ATTR_REQUIRE_COHERENT))
        return;
    if (!d->f.coherent && !(attrs & DMACONF_ATTR_SKIP_CPU_SYNC)) {
        h_for_cpu(d, phys, size, dir);
        if (barrier)
            h_barrier(d);
    }
    if (h_is_bounce(d, phys)) {
        if (copies_back(dir) && !(attrs & DMACONF_ATTR_SKIP_CPU_SYNC))
            copy_back(d, d->host->bounce_orig(d->ctx, phys), phys, size);
        h_bounce_free(d, phys, size);
    }
}

/* ---- streaming entry points -------------------------------------------------------- */

static uint64_t md_map_phys(struct dmaconf_device *d, uint64_t phys, uint64_t size, uint32_t dir,
                            uint64_t attrs)
{
    if (domain(d))
        return iommu_map_phys(d, phys, size, dir, attrs);
    return direct_map(d, phys, size, dir, attrs, 1);
}

static void md_unmap_phys(struct dmaconf_device *d, uint64_t addr, uint64_t size, uint32_t dir,
                          uint64_t attrs)
{
    if (domain(d))
        iommu_unmap_phys(d, addr, size, dir, attrs);
    else
        direct_unmap(d, addr, size, dir, attrs, 1);
}

/* The physical address behind a streaming DMA address (STREAM-07, STREAM-16). */
static uint64_t stream_phys(struct dmaconf_device *d, uint64_t addr)
{
    return domain(d) ? h_to_phys(d, addr) : addr + d->f.dma_offset;
}

static void md_sync_for_cpu(struct dmaconf_device *d, uint64_t addr, uint64_t size, uint32_t dir)
{
    uint64_t phys;
    if (!d->need_sync) /* STREAM-07: nothing while the device needs no syncs */
        return;
    phys = stream_phys(d, addr);
    if (!phys && domain(d))
        return;
    if (!d->f.coherent) {
        h_for_cpu(d, phys, size, dir);
        h_barrier(d);
    }
    if (copies_back(dir) && h_is_bounce(d, phys))
        copy_back(d, d->host->bounce_orig(d->ctx, phys), phys, size);
}

static void md_sync_for_device(struct dmaconf_device *d, uint64_t addr, uint64_t size,
                               uint32_t dir)
{
    uint64_t phys;
    if (!d->need_sync)
        return;
    phys = stream_phys(d, addr);
    if (!phys && domain(d))
        return;
    if (copies_in(dir) && h_is_bounce(d, phys))
        h_copy(d, phys, d->host->bounce_orig(d->ctx, phys), size);
    if (!d->f.coherent) {
        h_for_device(d, phys, size, dir);
        h_barrier(d);
    }
}

static uint32_t md_need_unmap(struct dmaconf_device *d)
{
    return domain(d) ? 1 : (uint32_t)d->need_sync; /* STREAM-06 */
}

static uint32_t md_need_sync(struct dmaconf_device *d, uint64_t addr)
{
    if (!d->need_sync) /* STREAM-13 */
        return 0;
    if (domain(d))
        return 1;
    return !d->f.coherent || h_is_bounce(d, addr + d->f.dma_offset);
}

/* STREAM-14 */
static uint64_t md_map_page(struct dmaconf_device *d, uint64_t phys, uint64_t size, uint32_t dir,
                            uint64_t attrs)
{
    if (attrs & DMACONF_ATTR_MMIO)
        return ERR;
    return md_map_phys(d, phys, size, dir, attrs);
}
static void md_unmap_page(struct dmaconf_device *d, uint64_t addr, uint64_t size, uint32_t dir,
                          uint64_t attrs)
{
    if (!(attrs & DMACONF_ATTR_MMIO))
        md_unmap_phys(d, addr, size, dir, attrs);
}
static uint64_t md_map_resource(struct dmaconf_device *d, uint64_t phys, uint64_t size,
                                uint32_t dir, uint64_t attrs)
{
    return md_map_phys(d, phys, size, dir, attrs | DMACONF_ATTR_MMIO);
}
static void md_unmap_resource(struct dmaconf_device *d, uint64_t addr, uint64_t size,
                              uint32_t dir, uint64_t attrs)
{
    md_unmap_phys(d, addr, size, dir, attrs | DMACONF_ATTR_MMIO);
}

/* ---- services for the scatterlist code (sg.c, STREAM-08..12) ------------------------ */

uint64_t md_sg_iommu_map_phys(struct dmaconf_device *d, uint64_t phys, uint64_t size,
                              uint32_t dir, uint64_t attrs)
{
    return iommu_map_phys(d, phys, size, dir, attrs);
}
void md_sg_iommu_unmap_phys(struct dmaconf_device *d, uint64_t addr, uint64_t size, uint32_t dir,
                            uint64_t attrs)
{
    iommu_unmap_phys(d, addr, size, dir, attrs);
}
uint64_t md_sg_direct_map(struct dmaconf_device *d, uint64_t phys, uint64_t size, uint32_t dir,
                          uint64_t attrs)
{
    return direct_map(d, phys, size, dir, attrs, 0);
}
void md_sg_direct_unmap(struct dmaconf_device *d, uint64_t dma, uint64_t size, uint32_t dir,
                        uint64_t attrs)
{
    direct_unmap(d, dma, size, dir, attrs, 0);
}
int md_sg_on_iommu(struct dmaconf_device *d)
{
    return domain(d);
}
int md_sg_use_swiotlb(struct dmaconf_device *d, const struct dmaconf_sg_entry *segs,
                      uint32_t nents, uint32_t dir)
{
    uint32_t i;
    if (d->f.untrusted)
        return 1;
    for (i = 0; i < nents; i++)
        if (kmalloc_needs_bounce(d, segs[i].len, dir))
            return 1;
    return 0;
}
uint32_t md_sg_prot(struct dmaconf_device *d, uint32_t dir, uint64_t attrs)
{
    return prot_of(d, dir, attrs);
}
uint64_t md_sg_alloc(struct dmaconf_device *d, uint64_t len)
{
    return alloc_iova(d, len);
}
void md_sg_free(struct dmaconf_device *d, uint64_t iova, uint64_t len)
{
    free_iova(d, iova, len);
}
void md_sg_unmap_range(struct dmaconf_device *d, uint64_t addr, uint64_t size)
{
    iommu_unmap_one(d, addr, size);
}

/* ---- the entry point --------------------------------------------------------------- */

static struct dmaconf_plugin table;

#ifdef __cplusplus
extern "C" {
#endif

/* The one exported symbol (the build hides everything else). */
#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
const struct dmaconf_plugin *dmaconf_plugin_entry(void)
{
    memset(&table, 0, sizeof table);
    table.struct_size = (uint32_t)sizeof table;
    table.abi_major = DMACONF_ABI_MAJOR;
    table.abi_minor = DMACONF_ABI_MINOR;
    table.name = "minidma";
    table.version = "0.1.0";
    table.capabilities = DMACONF_CAP_IOVA_API | DMACONF_CAP_STREAMING | DMACONF_CAP_SG |
                         DMACONF_CAP_LINUX_EXACT;
    table.create = md_create;
    table.destroy = md_destroy;
    table.probe = md_probe;
    table.iova_try_alloc = md_try_alloc;
    table.iova_link = md_link;
    table.iova_sync = md_sync;
    table.iova_unlink = md_unlink;
    table.iova_destroy = md_destroy_state;
    table.iova_free = md_free;
    table.use_iova = md_use_iova;
    table.iova_size = md_iova_size;
    table.map_phys = md_map_phys;
    table.unmap_phys = md_unmap_phys;
    table.sync_single_for_cpu = md_sync_for_cpu;
    table.sync_single_for_device = md_sync_for_device;
    table.map_sg = md_map_sg;
    table.unmap_sg = md_unmap_sg;
    table.need_unmap = md_need_unmap;
    table.need_sync = md_need_sync;
    table.map_page_attrs = md_map_page;
    table.unmap_page_attrs = md_unmap_page;
    table.map_resource = md_map_resource;
    table.unmap_resource = md_unmap_resource;
    table.advance_time = md_advance_time;
    return &table;
}

#ifdef __cplusplus
}
#endif
