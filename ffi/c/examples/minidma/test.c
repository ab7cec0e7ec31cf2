/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Unit test of minidma against a fake host: a page table of granules, an event log, a
 * trivial bounce pool. The expected values are the worked examples of
 * spec/4-iova-allocator.md and the event lists of spec/3.x, worked out by hand.
 */
#include "dmaconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXPTE 4096
#define MAXLOG 64

struct fake {
    struct dmaconf_facts f;
    struct dmaconf_region regions[8];
    uint32_t nregions;
    uint64_t pte_iova[MAXPTE], pte_phys[MAXPTE];
    uint32_t npte;
    char log[MAXLOG][96];
    uint32_t nlog;
    uint64_t next_slot;
    uint64_t now;
};

static int failures;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);          \
            failures++;                                                                       \
        }                                                                                     \
    } while (0)

static void logf_(struct fake *k, const char *s)
{
    if (k->nlog < MAXLOG)
        snprintf(k->log[k->nlog++], sizeof k->log[0], "%s", s);
}

static int32_t f_facts(void *c, struct dmaconf_facts *out)
{
    struct fake *k = (struct fake *)c;
    uint32_t want = out->struct_size;
    memcpy(out, &k->f, want < sizeof k->f ? want : sizeof k->f);
    out->struct_size = want < sizeof k->f ? want : (uint32_t)sizeof k->f;
    return 0;
}
static int32_t f_region(void *c, uint32_t i, struct dmaconf_region *out)
{
    struct fake *k = (struct fake *)c;
    if (i >= k->nregions)
        return -DMACONF_ENOENT;
    *out = k->regions[i];
    return 0;
}
static uint32_t f_cpu(void *c)
{
    (void)c;
    return 0;
}
static uint64_t f_now(void *c)
{
    return ((struct fake *)c)->now;
}
static int32_t f_map(void *c, uint64_t iova, uint64_t phys, uint64_t len, uint32_t prot)
{
    struct fake *k = (struct fake *)c;
    char b[96];
    uint64_t o;
    snprintf(b, sizeof b, "map %llx %llx %llx %x", (unsigned long long)iova,
             (unsigned long long)phys, (unsigned long long)len, prot);
    logf_(k, b);
    if ((iova | phys | len) & 0xFFF)
        return -DMACONF_ENXIO;
    for (o = 0; o < len; o += 0x1000) {
        k->pte_iova[k->npte] = iova + o;
        k->pte_phys[k->npte++] = phys + o;
    }
    return 0;
}
static int32_t f_sync_map(void *c, uint64_t iova, uint64_t len)
{
    char b[96];
    snprintf(b, sizeof b, "sync_map %llx %llx", (unsigned long long)iova,
             (unsigned long long)len);
    logf_((struct fake *)c, b);
    return 0;
}
static uint64_t f_unmap(void *c, uint64_t iova, uint64_t len)
{
    struct fake *k = (struct fake *)c;
    uint64_t done = 0;
    char b[96];
    for (;;) {
        uint32_t i;
        int hit = 0;
        if (done >= len)
            break;
        for (i = 0; i < k->npte; i++)
            if (k->pte_iova[i] == iova + done) {
                k->pte_iova[i] = k->pte_iova[--k->npte];
                k->pte_phys[i] = k->pte_phys[k->npte];
                hit = 1;
                break;
            }
        if (!hit)
            break;
        done += 0x1000;
    }
    snprintf(b, sizeof b, "unmap %llx %llx %llx", (unsigned long long)iova,
             (unsigned long long)len, (unsigned long long)done);
    logf_(k, b);
    return done;
}
static void f_iotlb_sync(void *c, uint64_t iova, uint64_t len)
{
    char b[96];
    snprintf(b, sizeof b, "iotlb_sync %llx %llx", (unsigned long long)iova,
             (unsigned long long)len);
    logf_((struct fake *)c, b);
}
static void f_flush_all(void *c)
{
    logf_((struct fake *)c, "flush_all");
}
static uint64_t f_to_phys(void *c, uint64_t iova)
{
    struct fake *k = (struct fake *)c;
    uint32_t i;
    for (i = 0; i < k->npte; i++)
        if (k->pte_iova[i] == (iova & ~0xFFFull))
            return k->pte_phys[i] + (iova & 0xFFF);
    return 0;
}
static void f_for_device(void *c, uint64_t phys, uint64_t len, uint32_t dir)
{
    char b[96];
    snprintf(b, sizeof b, "for_device %llx %llx %u", (unsigned long long)phys,
             (unsigned long long)len, dir);
    logf_((struct fake *)c, b);
}
static void f_for_cpu(void *c, uint64_t phys, uint64_t len, uint32_t dir)
{
    char b[96];
    snprintf(b, sizeof b, "for_cpu %llx %llx %u", (unsigned long long)phys,
             (unsigned long long)len, dir);
    logf_((struct fake *)c, b);
}
static void f_barrier(void *c)
{
    logf_((struct fake *)c, "barrier");
}
/* A bump pool at 0x80000000 keeping the in-granule offset when min_align_mask says so. */
static int32_t f_bounce_alloc(void *c, uint64_t orig, uint64_t len, uint64_t am, uint64_t mm,
                              uint64_t *slot)
{
    struct fake *k = (struct fake *)c;
    char b[96];
    (void)am;
    *slot = k->next_slot + (orig & mm & 0xFFF);
    k->next_slot += 0x1000 * ((len + 0xFFF) / 0x1000 + 1);
    snprintf(b, sizeof b, "bounce_alloc %llx %llx -> %llx", (unsigned long long)orig,
             (unsigned long long)len, (unsigned long long)*slot);
    logf_(k, b);
    return 0;
}
static void f_bounce_free(void *c, uint64_t slot, uint64_t len)
{
    char b[96];
    snprintf(b, sizeof b, "bounce_free %llx %llx", (unsigned long long)slot,
             (unsigned long long)len);
    logf_((struct fake *)c, b);
}
static uint32_t f_is_bounce(void *c, uint64_t phys)
{
    (void)c;
    return phys >= 0x80000000ull && phys < 0x90000000ull;
}
static uint64_t f_bounce_orig(void *c, uint64_t phys)
{
    (void)c;
    return phys; /* not used by the checks below */
}
static void f_copy(void *c, uint64_t dst, uint64_t src, uint64_t len)
{
    char b[96];
    snprintf(b, sizeof b, "copy %llx %llx %llx", (unsigned long long)dst,
             (unsigned long long)src, (unsigned long long)len);
    logf_((struct fake *)c, b);
}
static void f_fill(void *c, uint64_t dst, uint8_t byte, uint64_t len)
{
    char b[96];
    snprintf(b, sizeof b, "fill %llx %u %llx", (unsigned long long)dst, byte,
             (unsigned long long)len);
    logf_((struct fake *)c, b);
}
static uint32_t f_p2p(void *c, uint64_t phys)
{
    (void)c;
    (void)phys;
    return DMACONF_P2P_NONE;
}
static uint64_t f_p2p_off(void *c, uint64_t phys)
{
    (void)c;
    (void)phys;
    return 0;
}
static void f_warn(void *c, uint32_t code)
{
    char b[96];
    snprintf(b, sizeof b, "warn %u", code);
    logf_((struct fake *)c, b);
}

static struct dmaconf_host host_table(void)
{
    struct dmaconf_host h;
    memset(&h, 0, sizeof h);
    h.struct_size = (uint32_t)sizeof h;
    h.abi_major = DMACONF_ABI_MAJOR;
    h.facts = f_facts;
    h.reserved_region = f_region;
    h.current_cpu = f_cpu;
    h.now_ns = f_now;
    h.iommu_map = f_map;
    h.iotlb_sync_map = f_sync_map;
    h.iommu_unmap = f_unmap;
    h.iotlb_sync = f_iotlb_sync;
    h.flush_iotlb_all = f_flush_all;
    h.iova_to_phys = f_to_phys;
    h.sync_for_device = f_for_device;
    h.sync_for_cpu = f_for_cpu;
    h.sync_barrier = f_barrier;
    h.bounce_alloc = f_bounce_alloc;
    h.bounce_free = f_bounce_free;
    h.is_bounce = f_is_bounce;
    h.bounce_orig = f_bounce_orig;
    h.copy = f_copy;
    h.fill = f_fill;
    h.p2p_type = f_p2p;
    h.p2p_bus_offset = f_p2p_off;
    h.warn = f_warn;
    return h;
}

/* arm64-smmuv3 with a 32-bit mask (the worked example of chapter 4). */
static void smmu_facts(struct fake *k)
{
    memset(k, 0, sizeof *k);
    k->f.struct_size = (uint32_t)sizeof k->f;
    k->f.arch = DMACONF_ARCH_ARM64;
    k->f.domain = DMACONF_DOMAIN_DMA;
    k->f.backend = DMACONF_BACKEND_IO_PGTABLE_ARM;
    k->f.pgsize_bitmap = 0x40201000;
    k->f.aperture_end = 0xFFFFFFFFFFFFull;
    k->f.force_aperture = 1;
    k->f.coherent = 1;
    k->f.swiotlb = 1;
    k->f.dma_mask = 0xFFFFFFFF;
    k->f.cache_line = 64;
    k->f.iommu_dma_config = 1;
    k->f.nr_cpus = 1;
    k->f.max_seg_size = 0x10000;
    k->f.seg_boundary_mask = ~0ull;
    k->next_slot = 0x80000000ull;
}

static int logged(const struct fake *k, uint32_t i, const char *s)
{
    if (i >= k->nlog) {
        fprintf(stderr, "  event %u missing (want \"%s\")\n", i, s);
        return 0;
    }
    if (strcmp(k->log[i], s) != 0) {
        fprintf(stderr, "  event %u: \"%s\", want \"%s\"\n", i, k->log[i], s);
        return 0;
    }
    return 1;
}

static uint64_t alloc(const struct dmaconf_plugin *p, struct dmaconf_device *d,
                      struct dmaconf_iova_state *s, uint64_t phys, uint64_t size)
{
    memset(s, 0, sizeof *s);
    if (!p->iova_try_alloc(d, s, phys, size))
        return 0;
    return s->addr;
}

static void test_worked_example(const struct dmaconf_plugin *p, const struct dmaconf_host *h)
{
    struct fake k;
    struct dmaconf_device *d = NULL;
    struct dmaconf_iova_state a, b, c, e, x;
    smmu_facts(&k);
    CHECK(p->create(h, &k, &d) == 0);
    CHECK(p->probe(d) == 0);
    /* steps A-D */
    CHECK(alloc(p, d, &a, 0, 0x1000) == 0xFFFFF000ull);
    CHECK(alloc(p, d, &b, 0, 0x3000) == 0xFFFF8000ull);
    CHECK(alloc(p, d, &c, 0, 0x8000) == 0xFFFF0000ull);
    CHECK(alloc(p, d, &e, 0, 0x1000) == 0xFFFEF000ull);
    /* free B, then 2 granules come from the tree below D */
    p->iova_free(d, &b);
    CHECK(alloc(p, d, &x, 0, 0x2000) == 0xFFFEC000ull);
    /* 64 granules from below, freed from the tree, the same again */
    CHECK(alloc(p, d, &x, 0, 0x40000) == 0xFFF80000ull);
    p->iova_free(d, &x);
    CHECK(alloc(p, d, &x, 0, 0x40000) == 0xFFF80000ull);
    /* rcache LIFO: free A then D; a 1-granule request gets D back */
    p->iova_free(d, &a);
    p->iova_free(d, &e);
    CHECK(alloc(p, d, &x, 0, 0x1000) == 0xFFFEF000ull);
    CHECK(alloc(p, d, &x, 0, 0x1000) == 0xFFFFF000ull);
    CHECK(k.nlog == 0); /* TRYALLOC-09, FREE-01: no event */
    p->destroy(d);
}

static void test_edu(const struct dmaconf_plugin *p, const struct dmaconf_host *h)
{
    struct fake k;
    struct dmaconf_device *d = NULL;
    struct dmaconf_iova_state s;
    smmu_facts(&k);
    k.f.arch = DMACONF_ARCH_X86;
    k.f.domain = DMACONF_DOMAIN_DMA_FQ;
    k.f.backend = DMACONF_BACKEND_IOMMUPT;
    k.f.pci = 1;
    k.f.dma_mask = 0x0FFFFFFF;
    k.regions[0].start = 0xA0000;
    k.regions[0].end = 0xBFFFF;
    k.regions[1].start = 0xFEE00000;
    k.regions[1].end = 0xFEEFFFFF;
    k.nregions = 2;
    CHECK(p->create(h, &k, &d) == 0);
    CHECK(p->probe(d) == 0);
    CHECK(alloc(p, d, &s, 0, 0x4000) == 0xFFFC000ull);
    p->iova_destroy(d, &s, 0, DMACONF_DIR_BIDIRECTIONAL, 0);
    CHECK(alloc(p, d, &s, 0x64, 5000) == 0xFFFA064ull);
    CHECK(s.size == 5000);
    p->iova_destroy(d, &s, 0, DMACONF_DIR_BIDIRECTIONAL, 0);
    CHECK(alloc(p, d, &s, 0, 0x2000) == 0xFFFA000ull);
    p->destroy(d);
}

static void test_link_unlink_noncoherent(const struct dmaconf_plugin *p,
                                         const struct dmaconf_host *h)
{
    struct fake k;
    struct dmaconf_device *d = NULL;
    struct dmaconf_iova_state s;
    smmu_facts(&k);
    k.f.coherent = 0;
    k.f.kmalloc_bounce = 1;
    CHECK(p->create(h, &k, &d) == 0);
    CHECK(p->probe(d) == 0);
    CHECK(alloc(p, d, &s, 0x40000600, 0x2000) == 0xFFFFC600ull);
    CHECK(p->iova_link(d, &s, 0x40000600, 0, 0x2000, DMACONF_DIR_BIDIRECTIONAL, 0) == 0);
    CHECK(logged(&k, 0, "for_device 40000000 3000 0")); /* LINK-06: granule-expanded */
    CHECK(logged(&k, 1, "map ffffc000 40000000 3000 3")); /* LINK-05, PROT-01 */
    CHECK(k.nlog == 2);
    k.nlog = 0;
    CHECK(p->iova_sync(d, &s, 0, 0x2000) == 0);
    CHECK(logged(&k, 0, "barrier") && logged(&k, 1, "sync_map ffffc000 3000"));
    k.nlog = 0;
    p->iova_unlink(d, &s, 0, 0x2000, DMACONF_DIR_BIDIRECTIONAL, 0);
    /* UNLINK-02: pieces 0xA00, 0x1000, 0x600; barrier; UNLINK-01 */
    CHECK(logged(&k, 0, "for_cpu 40000600 a00 0"));
    CHECK(logged(&k, 1, "for_cpu 40001000 1000 0"));
    CHECK(logged(&k, 2, "for_cpu 40002000 600 0"));
    CHECK(logged(&k, 3, "barrier"));
    CHECK(logged(&k, 4, "unmap ffffc000 3000 3000"));
    CHECK(logged(&k, 5, "iotlb_sync ffffc000 3000"));
    CHECK(k.nlog == 6);
    k.nlog = 0;
    /* LINK-01 */
    CHECK(p->iova_link(d, &s, 0x40000600, 0x1000, 0x100, DMACONF_DIR_TO_DEVICE, 0) ==
          -DMACONF_EIO);
    CHECK(logged(&k, 0, "warn 3") && k.nlog == 1);
    /* LINK-03 */
    CHECK(p->iova_link(d, &s, 0x40000600, 0, 0x100, DMACONF_DIR_TO_DEVICE,
                       DMACONF_ATTR_REQUIRE_COHERENT) == -DMACONF_EOPNOTSUPP);
    p->iova_free(d, &s);
    p->destroy(d);
}

static void test_untrusted_bounce(const struct dmaconf_plugin *p, const struct dmaconf_host *h)
{
    struct fake k;
    struct dmaconf_device *d = NULL;
    struct dmaconf_iova_state s;
    smmu_facts(&k);
    k.f.untrusted = 1;
    k.f.pci = 1;
    k.f.min_align_mask = 0xFFF;
    CHECK(p->create(h, &k, &d) == 0);
    CHECK(p->probe(d) == 0);
    CHECK(alloc(p, d, &s, 0x40000600, 0x2000) == 0xFFFFC600ull);
    CHECK(p->iova_link(d, &s, 0x40000600, 0, 0x2000, DMACONF_DIR_FROM_DEVICE, 0) == 0);
    /* LINK-09: head 0xA00 bounced, middle 0x1000 mapped, tail 0x600 bounced */
    CHECK(logged(&k, 0, "bounce_alloc 40000600 a00 -> 80000600"));
    CHECK(logged(&k, 1, "copy 80000600 40000600 a00"));
    CHECK(logged(&k, 2, "fill 80000000 0 600"));
    CHECK(logged(&k, 3, "map ffffc000 80000000 1000 6"));
    CHECK(logged(&k, 4, "map ffffd000 40001000 1000 6"));
    CHECK(logged(&k, 5, "bounce_alloc 40002000 600 -> 80002000"));
    CHECK(logged(&k, 6, "copy 80002000 40002000 600"));
    CHECK(logged(&k, 7, "fill 80002600 0 a00"));
    CHECK(logged(&k, 8, "map ffffe000 80002000 1000 6"));
    CHECK(k.nlog == 9);
    CHECK(s.size == (0x2000 | DMACONF_IOVA_USE_SWIOTLB));
    CHECK(p->use_iova(d, &s) == 1);
    CHECK(p->iova_size(d, &s) == 0x2000);
    k.nlog = 0;
    p->iova_destroy(d, &s, 0x2000, DMACONF_DIR_FROM_DEVICE, 0);
    CHECK(logged(&k, 0, "copy 80000600 80000600 a00")); /* bounce_orig is the fake's identity */
    CHECK(logged(&k, 1, "bounce_free 80000600 a00"));
    CHECK(logged(&k, 2, "copy 80002000 80002000 600"));
    CHECK(logged(&k, 3, "bounce_free 80002000 600"));
    CHECK(logged(&k, 4, "unmap ffffc000 3000 3000"));
    CHECK(logged(&k, 5, "iotlb_sync ffffc000 3000"));
    CHECK(k.nlog == 6);
    p->destroy(d);
}

static void test_stub_and_direct(const struct dmaconf_plugin *p, const struct dmaconf_host *h)
{
    struct fake k;
    struct dmaconf_device *d = NULL;
    struct dmaconf_iova_state s;
    smmu_facts(&k);
    k.f.domain = DMACONF_DOMAIN_NONE;
    k.f.iommu_dma_config = 0;
    k.f.coherent = 0;
    k.f.swiotlb = 0;
    CHECK(p->create(h, &k, &d) == 0);
    CHECK(p->probe(d) == 0);
    s.addr = 5;
    s.size = 7;
    CHECK(p->iova_try_alloc(d, &s, 0, 0x1000) == 0);
    CHECK(s.addr == 5 && s.size == 7); /* TRYALLOC-03 */
    CHECK(p->use_iova(d, &s) == 0);    /* STATE-02 */
    CHECK(p->map_phys(d, 0x40000000, 0x100, DMACONF_DIR_TO_DEVICE, 0) == 0x40000000ull);
    CHECK(logged(&k, 0, "for_device 40000000 100 1") && logged(&k, 1, "barrier"));
    k.nlog = 0;
    /* STREAM-05: unreachable RAM without a pool: the overflow WARN and an error */
    CHECK(p->map_phys(d, 0x140000000ull, 0x100, DMACONF_DIR_TO_DEVICE, 0) ==
          DMACONF_MAPPING_ERROR);
    CHECK(logged(&k, 0, "warn 12") && k.nlog == 1);
    p->destroy(d);
}

static void test_lazy_flush_queue(const struct dmaconf_plugin *p, const struct dmaconf_host *h)
{
    struct fake k;
    struct dmaconf_device *d = NULL;
    uint64_t a, b;
    smmu_facts(&k);
    k.f.domain = DMACONF_DOMAIN_DMA_FQ;
    CHECK(p->create(h, &k, &d) == 0);
    CHECK(p->probe(d) == 0);
    a = p->map_phys(d, 0x40000000, 0x1000, DMACONF_DIR_BIDIRECTIONAL, 0);
    CHECK(a == 0xFFFFF000ull);
    p->unmap_phys(d, a, 0x1000, DMACONF_DIR_BIDIRECTIONAL, 0);
    b = p->map_phys(d, 0x40000000, 0x1000, DMACONF_DIR_BIDIRECTIONAL, 0);
    CHECK(b == 0xFFFFE000ull); /* STREAM-04: the first IOVA waits in the queue */
    p->unmap_phys(d, b, 0x1000, DMACONF_DIR_BIDIRECTIONAL, 0);
    k.nlog = 0;
    p->advance_time(d, 5000000);
    CHECK(k.nlog == 0);
    p->advance_time(d, 15000000);
    CHECK(logged(&k, 0, "flush_all") && k.nlog == 1);
    CHECK(p->map_phys(d, 0x40000000, 0x1000, DMACONF_DIR_BIDIRECTIONAL, 0) == 0xFFFFE000ull);
    p->destroy(d);
}

int main(void)
{
    const struct dmaconf_plugin *p = dmaconf_plugin_entry();
    struct dmaconf_host h = host_table();
    CHECK(p && p->abi_major == DMACONF_ABI_MAJOR && p->struct_size == sizeof *p);
    test_worked_example(p, &h);
    test_edu(p, &h);
    test_link_unlink_noncoherent(p, &h);
    test_untrusted_bounce(p, &h);
    test_stub_and_direct(p, &h);
    test_lazy_flush_queue(p, &h);
    if (failures) {
        fprintf(stderr, "minidma-test: %d check(s) failed\n", failures);
        return 1;
    }
    printf("minidma-test: all checks passed\n");
    return 0;
}
