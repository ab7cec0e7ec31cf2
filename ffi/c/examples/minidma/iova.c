/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * minidma: the IOVA allocator, written from spec/4-iova-allocator.md (IOVA-01..IOVA-05).
 *
 * Positions are pfns (IOVA / G). The tree is a sorted array of disjoint inclusive nodes
 * with an anchor at pfn 2^64 - 1 on top; the cached pointers are kept as the `lo` of the
 * node they point at, so array moves cannot leave them dangling.
 */
#include "minidma.h"

#include <stdlib.h>
#include <string.h>

#define ANCHOR_PFN UINT64_MAX

uint64_t md_pow2_roundup(uint64_t n)
{
    uint64_t p = 1;
    while (p < n && p != 0)
        p <<= 1;
    return p;
}

/* order_base_2: the exponent of roundup_pow_of_two(n); 0 for n <= 1 (IOVA-04 buckets). */
static unsigned order_base_2(uint64_t n)
{
    unsigned o = 0;
    while (o < 64 && ((uint64_t)1 << o) < n)
        o++;
    return o;
}

/* Index of the node whose lo is exactly `lo`, or the index of the node containing it. */
static size_t node_containing(const struct md_iovad *d, uint64_t pfn, int *found)
{
    size_t a = 0, b = d->cnt;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (d->n[m].hi < pfn)
            a = m + 1;
        else
            b = m;
    }
    *found = a < d->cnt && d->n[a].lo <= pfn && pfn <= d->n[a].hi;
    return a;
}

static size_t node_by_lo(const struct md_iovad *d, uint64_t lo)
{
    int found;
    return node_containing(d, lo, &found);
}

static int insert_at(struct md_iovad *d, size_t pos, uint64_t lo, uint64_t hi)
{
    if (d->cnt == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct md_node *n = (struct md_node *)realloc(d->n, cap * sizeof *n);
        if (!n)
            return -1;
        d->n = n;
        d->cap = cap;
    }
    memmove(&d->n[pos + 1], &d->n[pos], (d->cnt - pos) * sizeof d->n[0]);
    d->n[pos].lo = lo;
    d->n[pos].hi = hi;
    d->cnt++;
    return 0;
}

/* Removal from the tree moves the cached pointers up and resets max32 (IOVA-02). */
static void remove_at(struct md_iovad *d, size_t i)
{
    struct md_node r = d->n[i];
    uint64_t above = d->n[i + 1].lo; /* the anchor is never removed, so i + 1 exists */
    if (r.lo == d->cached32_lo || (r.hi < d->dma32_pfn && r.lo >= d->cached32_lo))
        d->cached32_lo = above;
    if (r.lo >= d->cached_lo)
        d->cached_lo = above;
    if (r.lo < d->dma32_pfn)
        d->max32 = d->dma32_pfn;
    memmove(&d->n[i], &d->n[i + 1], (d->cnt - i - 1) * sizeof d->n[0]);
    d->cnt--;
}

/* free_iova: remove the node holding pfn, if any (a pfn the tree does not know is ignored). */
static void tree_free(struct md_iovad *d, uint64_t pfn)
{
    int found;
    size_t i = node_containing(d, pfn, &found);
    if (found && d->n[i].lo != ANCHOR_PFN)
        remove_at(d, i);
}

int md_iovad_init(struct md_iovad *d, unsigned shift, uint64_t start_pfn, uint32_t nr_cpus)
{
    unsigned b;
    memset(d, 0, sizeof *d);
    d->shift = shift;
    d->start_pfn = start_pfn;
    d->dma32_pfn = ((uint64_t)1 << 32) >> shift;
    d->max32 = d->dma32_pfn;
    d->nr_cpus = nr_cpus ? nr_cpus : 1;
    if (insert_at(d, 0, ANCHOR_PFN, ANCHOR_PFN))
        return -1;
    d->cached_lo = ANCHOR_PFN;
    d->cached32_lo = ANCHOR_PFN;
    for (b = 0; b < MD_RCACHE_BUCKETS; b++) {
        struct md_rcache *rc = &d->rcache[b];
        uint32_t c;
        rc->cpu = (struct md_cpu_rcache *)calloc(d->nr_cpus, sizeof *rc->cpu);
        if (!rc->cpu)
            return -1;
        for (c = 0; c < d->nr_cpus; c++) {
            rc->cpu[c].loaded = (struct md_magazine *)calloc(1, sizeof(struct md_magazine));
            rc->cpu[c].prev = (struct md_magazine *)calloc(1, sizeof(struct md_magazine));
            if (!rc->cpu[c].loaded || !rc->cpu[c].prev)
                return -1;
        }
    }
    return 0;
}

void md_iovad_fini(struct md_iovad *d)
{
    unsigned b;
    for (b = 0; b < MD_RCACHE_BUCKETS; b++) {
        struct md_rcache *rc = &d->rcache[b];
        uint32_t c;
        size_t k;
        if (rc->cpu)
            for (c = 0; c < d->nr_cpus; c++) {
                free(rc->cpu[c].loaded);
                free(rc->cpu[c].prev);
            }
        free(rc->cpu);
        for (k = 0; k < rc->ndepot; k++)
            free(rc->depot[k]);
        free(rc->depot);
    }
    free(d->n);
    memset(d, 0, sizeof *d);
}

/* reserve_iova (IOVA-05): a reserved node; overlapping reservations merge into one. The
 * cached pointers do not move. */
int md_iovad_reserve(struct md_iovad *d, uint64_t lo, uint64_t hi)
{
    int found;
    size_t i;
    if (lo > hi)
        return 0;
    if (hi >= ANCHOR_PFN)
        hi = ANCHOR_PFN - 1;
    i = node_containing(d, lo, &found);
    /* merge every node overlapping [lo, hi] (never the anchor) */
    while (i < d->cnt && d->n[i].lo <= hi && d->n[i].lo != ANCHOR_PFN) {
        if (d->n[i].lo < lo)
            lo = d->n[i].lo;
        if (d->n[i].hi > hi)
            hi = d->n[i].hi;
        memmove(&d->n[i], &d->n[i + 1], (d->cnt - i - 1) * sizeof d->n[0]);
        d->cnt--;
    }
    return insert_at(d, i, lo, hi);
}

/*
 * The tree search of IOVA-02: top-down next fit from the cached node, one retry above it,
 * and the below-4-GiB fast fail. s = node size, a = alignment (a power of two), E = the
 * exclusive end pfn. Returns 1 and the first pfn, or 0.
 */
static int tree_alloc(struct md_iovad *d, uint64_t s, uint64_t a, uint64_t E, uint64_t *out)
{
    uint64_t high = E, low = d->start_pfn, cand = 0, retry_pfn;
    size_t i;
    int first = 1, ok;

    if (E <= d->dma32_pfn && s >= d->max32)
        return 0;
    i = node_by_lo(d, E <= d->dma32_pfn ? d->cached32_lo : d->cached_lo);
    retry_pfn = d->n[i].hi;
again:
    for (;;) {
        if (d->n[i].lo < high)
            high = d->n[i].lo;
        if (high < s)
            break;
        cand = (high - s) & ~(a - 1);
        if (i == 0 || !(cand <= d->n[i - 1].hi && cand >= low))
            break;
        i--;
    }
    ok = high >= s && cand >= low;
    if (!ok) {
        if (first && retry_pfn < E) {
            /* from the lowest node whose hi reaches E (IOVA-02) */
            int found;
            first = 0;
            low = retry_pfn + 1;
            high = E;
            i = node_containing(d, E, &found);
            goto again;
        }
        d->max32 = s;
        return 0;
    }
    {
        int found;
        size_t pos = node_containing(d, cand, &found);
        if (insert_at(d, pos, cand, cand + s - 1))
            return 0;
    }
    if (cand + s - 1 < d->dma32_pfn)
        d->cached32_lo = cand;
    else
        d->cached_lo = cand;
    *out = cand;
    return 1;
}

/* iova_magazine_pop: newest entry first, skip entries that do not fit under the limit,
 * fill the hole with the last entry. */
static int mag_pop(struct md_magazine *m, uint64_t max_pfn, uint64_t *out)
{
    uint32_t i = m->n;
    while (i > 0) {
        i--;
        if (m->pfn[i] <= max_pfn) {
            *out = m->pfn[i];
            m->pfn[i] = m->pfn[--m->n];
            return 1;
        }
    }
    return 0;
}

static int rcache_get(struct md_iovad *d, unsigned bucket, uint32_t cpu, uint64_t s, uint64_t E,
                      uint64_t *out)
{
    struct md_rcache *rc = &d->rcache[bucket];
    struct md_cpu_rcache *cr = &rc->cpu[cpu % d->nr_cpus];
    uint64_t pfn;
    if (E < s)
        return 0;
    /* IOVA-04: swap in "previous" only when "loaded" is empty; take a parked magazine
     * from the depot only when both are. */
    if (cr->loaded->n == 0) {
        if (cr->prev->n > 0) {
            struct md_magazine *t = cr->loaded;
            cr->loaded = cr->prev;
            cr->prev = t;
        } else if (rc->ndepot > 0) {
            free(cr->loaded);
            cr->loaded = rc->depot[--rc->ndepot];
        } else {
            return 0;
        }
    }
    if (!mag_pop(cr->loaded, E - s, &pfn))
        return 0;
    if (pfn == 0) /* a free of a zeroed state pushed pfn 0: Linux reads it as "nothing" */
        return 0;
    *out = pfn;
    return 1;
}

static int rcache_put(struct md_iovad *d, unsigned bucket, uint32_t cpu, uint64_t pfn)
{
    struct md_rcache *rc = &d->rcache[bucket];
    struct md_cpu_rcache *cr = &rc->cpu[cpu % d->nr_cpus];
    if (cr->loaded->n == MD_MAG_SIZE) {
        if (cr->prev->n < MD_MAG_SIZE) {
            struct md_magazine *t = cr->loaded;
            cr->loaded = cr->prev;
            cr->prev = t;
        } else {
            struct md_magazine *fresh = (struct md_magazine *)calloc(1, sizeof *fresh);
            struct md_magazine **dep;
            if (!fresh)
                return 0;
            dep = (struct md_magazine **)realloc(rc->depot, (rc->ndepot + 1) * sizeof *dep);
            if (!dep) {
                free(fresh);
                return 0;
            }
            rc->depot = dep;
            rc->depot[rc->ndepot++] = cr->loaded;
            cr->loaded = fresh;
        }
    }
    cr->loaded->pfn[cr->loaded->n++] = pfn;
    return 1;
}

static void mag_drain(struct md_iovad *d, struct md_magazine *m)
{
    uint32_t k;
    for (k = 0; k < m->n; k++)
        tree_free(d, m->pfn[k]);
    m->n = 0;
}

/* IOVA-04: the flush empties, CPU by CPU, each bucket's loaded then previous magazine
 * (oldest entry first), then every bucket's depot. */
static void rcache_flush_all(struct md_iovad *d)
{
    uint32_t c;
    unsigned b;
    for (c = 0; c < d->nr_cpus; c++)
        for (b = 0; b < MD_RCACHE_BUCKETS; b++) {
            mag_drain(d, d->rcache[b].cpu[c].loaded);
            mag_drain(d, d->rcache[b].cpu[c].prev);
        }
    for (b = 0; b < MD_RCACHE_BUCKETS; b++) {
        struct md_rcache *rc = &d->rcache[b];
        while (rc->ndepot > 0) {
            struct md_magazine *m = rc->depot[--rc->ndepot];
            mag_drain(d, m);
            free(m);
        }
    }
}

/* alloc_iova_fast: rcache first, then the tree; on a tree failure with `flush`, empty every
 * cache back into the tree and search once more (IOVA-04). s is the node size (already
 * rounded per IOVA-01). */
static uint64_t alloc_fast(struct md_iovad *d, uint32_t cpu, uint64_t s, uint64_t limit_pfn,
                           int flush)
{
    uint64_t E = limit_pfn + 1, pfn, a = md_pow2_roundup(s);
    unsigned bucket = order_base_2(s);
    if (limit_pfn == UINT64_MAX)
        E = UINT64_MAX; /* not reachable with 64-bit masks shifted by G, kept for safety */
    if (bucket < MD_RCACHE_BUCKETS && rcache_get(d, bucket, cpu, s, E, &pfn))
        return pfn;
    for (;;) {
        if (tree_alloc(d, s, a, E, &pfn))
            return pfn;
        if (!flush)
            return 0;
        flush = 0;
        rcache_flush_all(d);
    }
}

/* iommu_dma_alloc_iova: n granules under dma_limit (bytes, inclusive); PCI below-4-GiB
 * attempt first (IOVA-03). Returns the first pfn or 0. */
uint64_t md_iova_alloc(struct md_iovad *d, uint32_t cpu, uint64_t n, uint64_t dma_limit,
                       int *pci32)
{
    uint64_t pfn;
    if (n == 0)
        return 0;
    if (n < MD_RCACHE_MAX_GRANULES)
        n = md_pow2_roundup(n);
    if (*pci32 && dma_limit > 0xFFFFFFFFull) {
        pfn = alloc_fast(d, cpu, n, 0xFFFFFFFFull >> d->shift, 0);
        if (pfn)
            return pfn;
        *pci32 = 0;
    }
    return alloc_fast(d, cpu, n, dma_limit >> d->shift, 1);
}

/* free_iova_fast: n (unrounded) granules at pfn; small ones go to the current CPU's
 * rcache and stay in the tree (IOVA-04), larger ones leave the tree. */
void md_iova_free(struct md_iovad *d, uint32_t cpu, uint64_t pfn, uint64_t n)
{
    unsigned bucket = order_base_2(n);
    if (bucket < MD_RCACHE_BUCKETS && rcache_put(d, bucket, cpu, pfn))
        return;
    tree_free(d, pfn);
}
