/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* minidma: an independent DMA layer for dmaconf, written from spec/ alone. Internal header. */
#ifndef MINIDMA_H
#define MINIDMA_H

#include "dmaconf.h"

#include <stddef.h>
#include <stdint.h>

#define MD_RCACHE_BUCKETS 6      /* IOVA-04: buckets 0..5, ranges up to 32 granules */
#define MD_RCACHE_MAX_GRANULES 32 /* IOVA-01: below this, sizes round to a power of two */
#define MD_MAG_SIZE 127          /* IOVA-04: entries per magazine */
#define MD_FQ_SIZE 256           /* STREAM-04: slots of a per-CPU flush queue */
#define MD_TICK_NS 4000000ull     /* one jiffy at HZ = 250 (spec/1-platform.md, Time) */
#define MD_FQ_TIMEOUT_TICKS 3     /* STREAM-04: msecs_to_jiffies(10) at HZ = 250 */

struct md_node {
    uint64_t lo, hi; /* inclusive pfns */
};

struct md_magazine {
    uint32_t n;
    uint64_t pfn[MD_MAG_SIZE];
};

struct md_cpu_rcache {
    struct md_magazine *loaded, *prev;
};

struct md_rcache {
    struct md_cpu_rcache *cpu; /* nr_cpus of them */
    struct md_magazine **depot;
    size_t ndepot;
};

/* The IOVA domain (chapter 4). */
struct md_iovad {
    unsigned shift;     /* log2(G) */
    uint64_t start_pfn; /* max(1, aperture_start / G) */
    uint64_t dma32_pfn; /* D = 2^32 / G */
    uint64_t max32;
    uint64_t cached_lo, cached32_lo;
    struct md_node *n; /* sorted, disjoint, anchor last */
    size_t cnt, cap;
    uint32_t nr_cpus;
    struct md_rcache rcache[MD_RCACHE_BUCKETS];
};

uint64_t md_pow2_roundup(uint64_t n);
int md_iovad_init(struct md_iovad *d, unsigned shift, uint64_t start_pfn, uint32_t nr_cpus);
void md_iovad_fini(struct md_iovad *d);
int md_iovad_reserve(struct md_iovad *d, uint64_t lo, uint64_t hi);
uint64_t md_iova_alloc(struct md_iovad *d, uint32_t cpu, uint64_t n, uint64_t dma_limit,
                       int *pci32);
void md_iova_free(struct md_iovad *d, uint32_t cpu, uint64_t pfn, uint64_t n);

/* One flush-queue entry (STREAM-04). */
struct md_fq_entry {
    uint64_t pfn, pages, counter;
};

struct md_fq {
    struct md_fq_entry e[MD_FQ_SIZE];
    uint32_t head, count;
};

struct dmaconf_device {
    const struct dmaconf_host *host;
    void *ctx;
    struct dmaconf_facts f;
    uint64_t G;
    unsigned shift;
    int iommu;      /* on iommu-dma: CONFIG_IOMMU_DMA and a dma or dma_fq domain */
    int lazy;       /* dma_fq */
    int domain_ok;  /* probe set the domain up */
    int pci32;      /* IOVA-03: try below 4 GiB first */
    int need_sync;  /* STREAM-06/13: the device's skip-sync flag, inverted */
    struct md_iovad iovad;
    /* flush queue (STREAM-04) */
    struct md_fq *fq; /* nr_cpus of them */
    uint64_t fq_start_cnt, fq_finish_cnt;
    int fq_timer_on;
    uint64_t fq_deadline;
};

/* minidma.c's services for the scatterlist code (sg.c). */
int32_t md_map_sg(struct dmaconf_device *d, struct dmaconf_sg_entry *segs, uint32_t nents,
                  uint32_t dir, uint64_t attrs);
void md_unmap_sg(struct dmaconf_device *d, struct dmaconf_sg_entry *segs, uint32_t nents,
                 uint32_t dir, uint64_t attrs);
uint64_t md_sg_iommu_map_phys(struct dmaconf_device *d, uint64_t phys, uint64_t size,
                              uint32_t dir, uint64_t attrs);
void md_sg_iommu_unmap_phys(struct dmaconf_device *d, uint64_t addr, uint64_t size, uint32_t dir,
                            uint64_t attrs);
uint64_t md_sg_direct_map(struct dmaconf_device *d, uint64_t phys, uint64_t size, uint32_t dir,
                          uint64_t attrs);
void md_sg_direct_unmap(struct dmaconf_device *d, uint64_t dma, uint64_t size, uint32_t dir,
                        uint64_t attrs);
int md_sg_on_iommu(struct dmaconf_device *d);
int md_sg_use_swiotlb(struct dmaconf_device *d, const struct dmaconf_sg_entry *segs,
                      uint32_t nents, uint32_t dir);
uint32_t md_sg_prot(struct dmaconf_device *d, uint32_t dir, uint64_t attrs);
uint64_t md_sg_alloc(struct dmaconf_device *d, uint64_t len);
void md_sg_free(struct dmaconf_device *d, uint64_t iova, uint64_t len);
void md_sg_unmap_range(struct dmaconf_device *d, uint64_t addr, uint64_t size);

#endif /* MINIDMA_H */
