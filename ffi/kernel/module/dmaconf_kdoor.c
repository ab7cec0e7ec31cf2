// SPDX-License-Identifier: GPL-2.0-only
/*
 * dmaconf kernel door: executes dmaconf vectors on a real kernel through QEMU's `edu` device.
 *
 * The runner compiles each vector into lines of a small text bytecode (ffi/kernel/src/program.rs);
 * the initramfs /init writes them one at a time to /sys/module/dmaconf_kdoor/parameters/cmd and
 * handles the domain reset between vectors itself (unbind; group type; bind). Every command
 * prints its result as one `DMACONF ...` console line, which the runner parses.
 *
 * Operands are expressions evaluated here, against this boot's buffers and states: terms joined
 * by '+' or '-'; a term is a number (decimal or 0x hex), bN / bNe / bNs (buffer N's phys, end,
 * size), sNa / sNz (state N's addr, size without the SWIOTLB flag) or g (the granule).
 *
 * Commands:
 *   untrusted 0|1               set pci_dev->untrusted (done by /init before the domain reset)
 *   begin V NSTATES             start vector V: prints the domain type
 *   mask HEX / minalign HEX     dma_set_mask_and_coherent / dma_set_min_align_mask
 *   buf N SIZE OFFSET SEED|-    alloc_pages for buffer N, byte 0 at OFFSET into a page, filled
 *   s K OP ARGS...              step K: ta S PHYS SIZE | ln S PHYS OFF SIZE DIR ATTRS |
 *                               sy S OFF SIZE | ul S OFF SIZE DIR ATTRS | de S LEN DIR ATTRS |
 *                               fr S | ui S | sz S | ss S ADDR SIZE | dr ADDR LEN |
 *                               dw ADDR P LEN | cr ADDR LEN | cw ADDR P LEN |
 *                               mp H PHYS SIZE DIR ATTRS | um ADDR SIZE DIR ATTRS |
 *                               sc ADDR SIZE DIR | sd ADDR SIZE DIR | nu | tm MS | nx WHY
 *                               (P: sSEED:AT or yBYTE, a pattern of spec/INTERPRETING.md;
 *                               mp keeps the DMA address in state slot H as addr, size as
 *                               size: sHa is HANDLE.dma; sc/sd: dma_sync_single_for_cpu /
 *                               _for_device; nu: dma_need_unmap; tm: sleep at least MS ms
 *                               (hrtimer); nx: a step the runner does not make, reported
 *                               unobserved with WHY)
 *   end                         counts live mappings of the vector's reservations, frees buffers
 *
 * Device accesses go through edu's DMA engine: at most 4 KiB per transfer, and only below 2^28
 * (edu clamps higher addresses): an access it cannot make is reported as unobserved, never faked.
 */

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/dma-mapping.h>
#include <linux/iommu.h>
#include <linux/io.h>
#include <linux/delay.h>
#include <linux/slab.h>
#include <linux/mutex.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/string.h>
#include <linux/kernel.h>
#include <linux/ktime.h>

#define KD "DMACONF "
#define NSTATES 16
#define NBUFS 16
#define NRES 64
#define EDU_BUF 0x40000
#define EDU_BUF_SIZE 4096
#define EDU_REACH (1ULL << 28)
#define MAX_PRINT (64 * 1024)
#define MAX_TOKENS 12

struct kd_buf {
	struct page *page;
	unsigned int order;
	u64 phys;
	u64 size;
};

struct kd_res {
	u64 base;
	u64 len;
};

static struct pci_dev *kd_pdev;	/* reference held from the first probe to module exit */
static void __iomem *kd_mmio;	/* BAR0 while bound */
static bool kd_bound;
static DEFINE_MUTEX(kd_lock);
static struct dma_iova_state kd_states[NSTATES];
static struct kd_buf kd_bufs[NBUFS];
static struct kd_res kd_res[NRES];
static unsigned int kd_nres;
static u8 *kd_scratch;		/* MAX_PRINT bytes for data moved by a step */
/*
 * edu has no MMIO window onto its DMA buffer: data reaches the CPU by a second DMA between the
 * edu buffer and this page. The page sits below 16 MiB (GFP_DMA); in a translated domain it is
 * mapped at IOVA 0x1000 with iommu_map, outside the tracing window and far below anything the
 * top-down IOVA allocator hands out, so it neither shows in a vector's events nor moves its IOVAs.
 */
static struct page *kd_bounce_page;
static u64 kd_bounce_dma;
static bool kd_bounce_mapped;
#define KD_BOUNCE_IOVA 0x1000
/*
 * Device steps are marked in QEMU's own log, where its `vtd_dmar_fault` trace lines go: a write
 * of a step mark (1..255, never the same twice in a row) to edu's PCI interrupt-line byte before
 * the step's transfers, and of its old value after them, shows as a `pci_cfg_write` trace line.
 * The runner gives each fault to the step whose marks enclose it.
 */
static u8 kd_mark;

static u8 kd_pattern(u64 seed, u64 i)
{
	u64 x = seed * 0x9E3779B97F4A7C15ULL + i;

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 32;
	return (u8)x;
}

static u64 kd_granule(void)
{
	struct iommu_domain *d;

	if (!kd_pdev)
		return 0;
	d = iommu_get_domain_for_dev(&kd_pdev->dev);
	if (!d || !d->pgsize_bitmap || d->type == IOMMU_DOMAIN_IDENTITY)
		return 0;
	return 1ULL << __ffs(d->pgsize_bitmap);
}

/* One term of an operand expression; returns 0 or -EINVAL. */
static int kd_term(const char *t, size_t n, u64 *out)
{
	char tmp[24];
	unsigned int idx;
	char kind = t[0];
	size_t i = 1;

	if (n == 0 || n >= sizeof(tmp))
		return -EINVAL;
	if (kind == 'g' && n == 1) {
		*out = kd_granule();
		return 0;
	}
	if (kind == 'b' || kind == 's') {
		idx = 0;
		if (i >= n || t[i] < '0' || t[i] > '9')
			return -EINVAL;
		while (i < n && t[i] >= '0' && t[i] <= '9')
			idx = idx * 10 + (t[i++] - '0');
		if (kind == 'b') {
			if (idx >= NBUFS)
				return -EINVAL;
			if (i == n)
				*out = kd_bufs[idx].phys;
			else if (i + 1 == n && t[i] == 'e')
				*out = kd_bufs[idx].phys + kd_bufs[idx].size;
			else if (i + 1 == n && t[i] == 's')
				*out = kd_bufs[idx].size;
			else
				return -EINVAL;
			return 0;
		}
		if (idx >= NSTATES || i + 1 != n)
			return -EINVAL;
		if (t[i] == 'a')
			*out = kd_states[idx].addr;
		else if (t[i] == 'z')
			*out = kd_states[idx].__size & ~DMA_IOVA_USE_SWIOTLB;
		else
			return -EINVAL;
		return 0;
	}
	memcpy(tmp, t, n);
	tmp[n] = 0;
	return kstrtou64(tmp, 0, out);
}

static int kd_eval(const char *s, u64 *out)
{
	u64 total = 0, v;
	int sign = 1;
	const char *p = s;

	while (*p) {
		const char *q = p;
		int rc;

		while (*q && *q != '+' && *q != '-')
			q++;
		rc = kd_term(p, q - p, &v);
		if (rc)
			return rc;
		total = sign > 0 ? total + v : total - v;
		if (!*q)
			break;
		sign = *q == '+' ? 1 : -1;
		p = q + 1;
		if (!*p)
			return -EINVAL;
	}
	*out = total;
	return 0;
}

static int kd_state_idx(const char *s, unsigned int *idx)
{
	if (kstrtouint(s, 10, idx) || *idx >= NSTATES)
		return -EINVAL;
	return 0;
}

static void kd_print_states(unsigned int k)
{
	char line[NSTATES * 40];
	int n = 0, i;

	for (i = 0; i < NSTATES; i++)
		n += scnprintf(line + n, sizeof(line) - n, "%s%llx:%llx", i ? "," : "",
			       (u64)kd_states[i].addr, kd_states[i].__size);
	pr_info(KD "st %u %s\n", k, line);
}

static void kd_print_data(unsigned int k, const u8 *data, size_t len)
{
	size_t off, i;
	char hex[2 * 256 + 1];

	for (off = 0; off < len; off += 256) {
		size_t n = min_t(size_t, 256, len - off);

		for (i = 0; i < n; i++)
			snprintf(hex + 2 * i, 3, "%02x", data[off + i]);
		hex[2 * n] = 0;
		pr_info(KD "data %u %zx %s\n", k, off, hex);
	}
}

/* A pattern operand: sSEED:AT or yBYTE. */
static int kd_fill_pattern(const char *p, u8 *dst, size_t len)
{
	size_t i;

	if (p[0] == 's') {
		char tmp[48];
		char *colon;
		u64 seed, at;

		strscpy(tmp, p + 1, sizeof(tmp));
		colon = strchr(tmp, ':');
		if (!colon)
			return -EINVAL;
		*colon = 0;
		if (kstrtou64(tmp, 0, &seed) || kstrtou64(colon + 1, 0, &at))
			return -EINVAL;
		for (i = 0; i < len; i++)
			dst[i] = kd_pattern(seed, at + i);
		return 0;
	}
	if (p[0] == 'y') {
		u8 b;

		if (kstrtou8(p + 1, 0, &b))
			return -EINVAL;
		memset(dst, b, len);
		return 0;
	}
	return -EINVAL;
}

/* One edu DMA transfer; to_ram: edu buffer -> RAM at dma. 0, or -ETIMEDOUT. */
static int kd_edu_dma(u64 dma, size_t len, bool to_ram)
{
	int waited = 0;

	writeq(to_ram ? EDU_BUF : dma, kd_mmio + 0x80);
	writeq(to_ram ? dma : EDU_BUF, kd_mmio + 0x88);
	writeq(len, kd_mmio + 0x90);
	writeq(to_ram ? 0x3 : 0x1, kd_mmio + 0x98);
	while (readq(kd_mmio + 0x98) & 1) {
		if (++waited > 5000)
			return -ETIMEDOUT;
		usleep_range(1000, 2000);
	}
	/* Let a DMAR fault interrupt print before the step's result line. */
	usleep_range(2000, 3000);
	return 0;
}

/* Page-table readback of the pages an access touches: a hole is an unmapped page. */
static void kd_print_holes(unsigned int k, u64 addr, u64 len)
{
	struct iommu_domain *d = iommu_get_domain_for_dev(&kd_pdev->dev);
	u64 pg, first = addr & PAGE_MASK, last = (addr + len - 1) & PAGE_MASK;
	char line[512];
	int n = 0, count = 0;

	if (!d || d->type == IOMMU_DOMAIN_IDENTITY || !len)
		return;
	for (pg = first; pg <= last && count < 32; pg += PAGE_SIZE) {
		if (!iommu_iova_to_phys(d, pg)) {
			n += scnprintf(line + n, sizeof(line) - n, "%s%llx", count ? "," : "", pg);
			count++;
		}
	}
	pr_info(KD "holes %u %s\n", k, count ? line : "-");
}

static void kd_device(unsigned int k, bool write, char **tok, int ntok)
{
	u64 addr, len, off;
	const char *pat = NULL;
	int rc = 0;
	u8 line;

	if (write) {
		if (ntok < 3 || kd_eval(tok[0], &addr) || kd_eval(tok[2], &len)) {
			pr_info(KD "r %u err=bad-args\n", k);
			return;
		}
		pat = tok[1];
	} else if (ntok < 2 || kd_eval(tok[0], &addr) || kd_eval(tok[1], &len)) {
		pr_info(KD "r %u err=bad-args\n", k);
		return;
	}
	if (!kd_bound || !kd_mmio || !kd_bounce_dma) {
		pr_info(KD "r %u av=%llx,%llx unobserved=edu-not-ready\n", k, addr, len);
		return;
	}
	if (len > MAX_PRINT) {
		pr_info(KD "r %u av=%llx,%llx unobserved=longer-than-%x\n", k, addr, len, MAX_PRINT);
		return;
	}
	if (addr >= EDU_REACH || len > EDU_REACH - addr) {
		pr_info(KD "r %u av=%llx,%llx unobserved=edu-28bit-reach\n", k, addr, len);
		return;
	}
	if (write && kd_fill_pattern(pat, kd_scratch, len)) {
		pr_info(KD "r %u err=bad-pattern\n", k);
		return;
	}
	kd_print_holes(k, addr, len);
	pci_read_config_byte(kd_pdev, PCI_INTERRUPT_LINE, &line);
	kd_mark = kd_mark % 255 + 1;
	if (kd_mark == line)
		kd_mark = kd_mark % 255 + 1;
	pr_info(KD "mark %u %u\n", k, kd_mark);
	pci_write_config_byte(kd_pdev, PCI_INTERRUPT_LINE, kd_mark);
	for (off = 0; off < len && !rc; off += EDU_BUF_SIZE) {
		size_t n = min_t(u64, EDU_BUF_SIZE, len - off);

		u8 *bounce = page_address(kd_bounce_page);

		if (write) {
			memcpy(bounce, kd_scratch + off, n);
			rc = kd_edu_dma(kd_bounce_dma, n, false);
			if (!rc)
				rc = kd_edu_dma(addr + off, n, true);
		} else {
			memset(bounce, 0xA5, n);
			rc = kd_edu_dma(addr + off, n, false);
			if (!rc)
				rc = kd_edu_dma(kd_bounce_dma, n, true);
			memcpy(kd_scratch + off, bounce, n);
		}
	}
	pci_write_config_byte(kd_pdev, PCI_INTERRUPT_LINE, line);
	if (rc) {
		pr_info(KD "r %u av=%llx,%llx err=edu-timeout\n", k, addr, len);
		return;
	}
	if (!write)
		kd_print_data(k, kd_scratch, len);
	pr_info(KD "r %u av=%llx,%llx ok=1\n", k, addr, len);
}

static void kd_cpu(unsigned int k, bool write, char **tok, int ntok)
{
	u64 addr, len;
	u8 *va;

	if (ntok < (write ? 3 : 2) || kd_eval(tok[0], &addr) ||
	    kd_eval(tok[write ? 2 : 1], &len)) {
		pr_info(KD "r %u err=bad-args\n", k);
		return;
	}
	if (len > MAX_PRINT) {
		pr_info(KD "r %u av=%llx,%llx unobserved=longer-than-%x\n", k, addr, len, MAX_PRINT);
		return;
	}
	if (len && (!pfn_valid(PHYS_PFN(addr)) || !pfn_valid(PHYS_PFN(addr + len - 1)))) {
		pr_info(KD "r %u av=%llx,%llx unobserved=not-ram\n", k, addr, len);
		return;
	}
	va = phys_to_virt(addr);
	if (write) {
		if (kd_fill_pattern(tok[1], kd_scratch, len)) {
			pr_info(KD "r %u err=bad-pattern\n", k);
			return;
		}
		memcpy(va, kd_scratch, len);
	} else {
		memcpy(kd_scratch, va, len);
		kd_print_data(k, kd_scratch, len);
	}
	pr_info(KD "r %u av=%llx,%llx ok=1\n", k, addr, len);
}

static void kd_reserve(u64 addr, u64 size, u64 phys)
{
	u64 g = kd_granule(), off, base, len;

	if (!g || kd_nres >= NRES)
		return;
	off = phys & (g - 1);
	base = addr - off;
	len = ALIGN(size + off, g);
	kd_res[kd_nres].base = base;
	kd_res[kd_nres].len = len;
	kd_nres++;
}

/* Evaluates tok[1..=n] into a[]; dir and attrs that follow are plain numbers. */
static int kd_args(char **tok, int ntok, int n, u64 *a, bool dir_attrs, u32 *dir, u64 *attrs)
{
	int i;

	if (ntok != 1 + n + (dir_attrs ? 2 : 0))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (kd_eval(tok[1 + i], &a[i]))
			return -EINVAL;
	if (dir_attrs && (kstrtou32(tok[1 + n], 0, dir) || kstrtou64(tok[2 + n], 0, attrs)))
		return -EINVAL;
	return 0;
}

static void kd_api(unsigned int k, const char *op, char **tok, int ntok)
{
	struct device *dev = &kd_pdev->dev;
	struct dma_iova_state *st;
	unsigned int s;
	u64 a[3] = { 0 }, attrs = 0;
	u32 dir = 0;
	int rc;

	if (ntok < 1 || kd_state_idx(tok[0], &s)) {
		pr_info(KD "r %u err=bad-state\n", k);
		return;
	}
	st = &kd_states[s];
	if (!kd_bound && strcmp(op, "ss") && strcmp(op, "ui") && strcmp(op, "sz")) {
		pr_info(KD "r %u err=edu-not-bound\n", k);
		return;
	}
	if (!strcmp(op, "ta")) {
		bool ok;

		if (kd_args(tok, ntok, 2, a, false, NULL, NULL))
			goto bad;
		ok = dma_iova_try_alloc(dev, st, a[0], a[1]);
		if (ok)
			kd_reserve(st->addr, a[1], a[0]);
		pr_info(KD "r %u av=%llx,%llx ret=%d\n", k, a[0], a[1], ok);
	} else if (!strcmp(op, "ln")) {
		if (kd_args(tok, ntok, 3, a, true, &dir, &attrs))
			goto bad;
		rc = dma_iova_link(dev, st, a[0], a[1], a[2], dir, attrs);
		pr_info(KD "r %u av=%llx,%llx,%llx ret=%d\n", k, a[0], a[1], a[2], rc);
	} else if (!strcmp(op, "sy")) {
		if (kd_args(tok, ntok, 2, a, false, NULL, NULL))
			goto bad;
		rc = dma_iova_sync(dev, st, a[0], a[1]);
		pr_info(KD "r %u av=%llx,%llx ret=%d\n", k, a[0], a[1], rc);
	} else if (!strcmp(op, "ul")) {
		if (kd_args(tok, ntok, 2, a, true, &dir, &attrs))
			goto bad;
		dma_iova_unlink(dev, st, a[0], a[1], dir, attrs);
		pr_info(KD "r %u av=%llx,%llx\n", k, a[0], a[1]);
	} else if (!strcmp(op, "de")) {
		if (kd_args(tok, ntok, 1, a, true, &dir, &attrs))
			goto bad;
		dma_iova_destroy(dev, st, a[0], dir, attrs);
		pr_info(KD "r %u av=%llx\n", k, a[0]);
	} else if (!strcmp(op, "fr")) {
		if (kd_args(tok, ntok, 0, a, false, NULL, NULL))
			goto bad;
		dma_iova_free(dev, st);
		pr_info(KD "r %u av=\n", k);
	} else if (!strcmp(op, "ui")) {
		if (kd_args(tok, ntok, 0, a, false, NULL, NULL))
			goto bad;
		pr_info(KD "r %u av= ret=%d\n", k, dma_use_iova(st));
	} else if (!strcmp(op, "sz")) {
		if (kd_args(tok, ntok, 0, a, false, NULL, NULL))
			goto bad;
		pr_info(KD "r %u av= ret=%zx\n", k, dma_iova_size(st));
	} else if (!strcmp(op, "ss")) {
		if (kd_args(tok, ntok, 2, a, false, NULL, NULL))
			goto bad;
		st->addr = a[0];
		st->__size = a[1];
		pr_info(KD "r %u av=%llx,%llx\n", k, a[0], a[1]);
	} else {
		pr_info(KD "r %u err=bad-op\n", k);
		return;
	}
	kd_print_states(k);
	return;
bad:
	pr_info(KD "r %u err=bad-args\n", k);
}

/*
 * The streaming calls. tok[0] is the op. The kernel BUG()s on an invalid direction
 * (BUG_ON(!valid_dma_direction(dir)) in dma_map_phys and friends): refused here, never called.
 */
static void kd_stream(unsigned int k, char **tok, int ntok)
{
	struct device *dev = &kd_pdev->dev;
	const char *op = tok[0];
	u64 a[2] = { 0 }, attrs = 0;
	u32 dir = 0;
	unsigned int h;

	if (!strcmp(op, "tm")) {
		ktime_t t0;
		u64 ms;

		if (ntok != 2 || kstrtou64(tok[1], 0, &ms) || ms > 60000)
			goto bad;
		t0 = ktime_get();
		if (ms)
			usleep_range(ms * USEC_PER_MSEC, ms * USEC_PER_MSEC + 100);
		pr_info(KD "r %u av=%llx slept_us=%lld\n", k, ms,
			ktime_us_delta(ktime_get(), t0));
		return;
	}
	if (!strcmp(op, "nx")) {
		pr_info(KD "r %u av= unobserved=%s\n", k, ntok > 1 ? tok[1] : "-");
		return;
	}
	if (!kd_bound) {
		pr_info(KD "r %u err=edu-not-bound\n", k);
		return;
	}
	if (!strcmp(op, "mp")) {
		dma_addr_t dma;

		if (ntok != 6 || kd_state_idx(tok[1], &h) ||
		    kd_args(tok + 1, ntok - 1, 2, a, true, &dir, &attrs))
			goto bad;
		if (!valid_dma_direction(dir))
			goto baddir;
		dma = dma_map_phys(dev, a[0], a[1], dir, attrs);
		kd_states[h].addr = dma;
		kd_states[h].__size = a[1];
		if (!dma_mapping_error(dev, dma))
			kd_reserve(dma, a[1], a[0]);
		pr_info(KD "r %u av=%llx,%llx ret=%llx\n", k, a[0], a[1], (u64)dma);
	} else if (!strcmp(op, "um")) {
		if (kd_args(tok, ntok, 2, a, true, &dir, &attrs))
			goto bad;
		if (!valid_dma_direction(dir))
			goto baddir;
		dma_unmap_phys(dev, a[0], a[1], dir, attrs);
		pr_info(KD "r %u av=%llx,%llx\n", k, a[0], a[1]);
	} else if (!strcmp(op, "sc") || !strcmp(op, "sd")) {
		bool need;

		if (ntok != 4 || kd_eval(tok[1], &a[0]) || kd_eval(tok[2], &a[1]) ||
		    kstrtou32(tok[3], 0, &dir))
			goto bad;
		if (!valid_dma_direction(dir))
			goto baddir;
		need = dma_dev_need_sync(dev);
		if (op[1] == 'c')
			dma_sync_single_for_cpu(dev, a[0], a[1], dir);
		else
			dma_sync_single_for_device(dev, a[0], a[1], dir);
		pr_info(KD "r %u av=%llx,%llx need_sync=%d\n", k, a[0], a[1], need);
	} else if (!strcmp(op, "nu")) {
		if (ntok != 1)
			goto bad;
		pr_info(KD "r %u av= ret=%d\n", k, dma_need_unmap(dev));
	} else {
		pr_info(KD "r %u err=bad-op\n", k);
	}
	return;
baddir:
	pr_info(KD "r %u err=invalid-dir\n", k);
	return;
bad:
	pr_info(KD "r %u err=bad-args\n", k);
}

static bool kd_is_stream(const char *op)
{
	static const char *const ops[] = { "mp", "um", "sc", "sd", "nu", "tm", "nx" };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ops); i++)
		if (!strcmp(op, ops[i]))
			return true;
	return false;
}

static void kd_step(unsigned int k, char **tok, int ntok)
{
	const char *op = tok[0];

	if (kd_is_stream(op))
		kd_stream(k, tok, ntok);
	else if (!strcmp(op, "dr"))
		kd_device(k, false, tok + 1, ntok - 1);
	else if (!strcmp(op, "dw"))
		kd_device(k, true, tok + 1, ntok - 1);
	else if (!strcmp(op, "cr"))
		kd_cpu(k, false, tok + 1, ntok - 1);
	else if (!strcmp(op, "cw"))
		kd_cpu(k, true, tok + 1, ntok - 1);
	else {
		kd_api(k, op, tok + 1, ntok - 1);
		return;
	}
	kd_print_states(k);
}

static void kd_free_bufs(void)
{
	int i;

	for (i = 0; i < NBUFS; i++) {
		if (kd_bufs[i].page)
			__free_pages(kd_bufs[i].page, kd_bufs[i].order);
		memset(&kd_bufs[i], 0, sizeof(kd_bufs[i]));
	}
}

static void kd_buf_cmd(char **tok, int ntok)
{
	unsigned int n, order;
	u64 size, off, seed = 0, i;
	bool fill = false;
	struct kd_buf *b;
	u8 *va;

	if (ntok != 5 || kstrtouint(tok[1], 10, &n) || n >= NBUFS ||
	    kstrtou64(tok[2], 0, &size) || kstrtou64(tok[3], 0, &off) || off >= PAGE_SIZE) {
		pr_info(KD "buf err=bad-args\n");
		return;
	}
	if (strcmp(tok[4], "-")) {
		if (kstrtou64(tok[4], 0, &seed)) {
			pr_info(KD "buf %u err=bad-seed\n", n);
			return;
		}
		fill = true;
	}
	b = &kd_bufs[n];
	order = get_order(max_t(u64, off + size, 1));
	if (order > MAX_PAGE_ORDER) {
		pr_info(KD "buf %u err=too-large\n", n);
		return;
	}
	b->page = alloc_pages(GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN, order);
	if (!b->page) {
		pr_info(KD "buf %u err=enomem\n", n);
		return;
	}
	b->order = order;
	b->phys = page_to_phys(b->page) + off;
	b->size = size;
	va = page_address(b->page) + off;
	if (fill)
		for (i = 0; i < size; i++)
			va[i] = kd_pattern(seed, i);
	pr_info(KD "buf %u phys=%llx size=%llx\n", n, b->phys, size);
}

/* Live mapping runs left in the vector's reservations: contiguous in IOVA and in phys. */
/* Is the page already counted under an earlier reservation? Reservations can overlap when a
 * vector frees a state and the allocator hands its IOVA out again (a misuse vector). */
static bool kd_counted(unsigned int r, u64 pg)
{
	unsigned int i;

	for (i = 0; i < r; i++)
		if (pg >= kd_res[i].base && pg < kd_res[i].base + kd_res[i].len)
			return true;
	return false;
}

static void kd_end(void)
{
	struct iommu_domain *d = kd_pdev ? iommu_get_domain_for_dev(&kd_pdev->dev) : NULL;
	unsigned int r, runs = 0;
	u64 pg, prev_iova = 0, prev_phys = 0;
	bool in_run = false;

	if (d && d->type != IOMMU_DOMAIN_IDENTITY) {
		for (r = 0; r < kd_nres; r++) {
			for (pg = kd_res[r].base; pg < kd_res[r].base + kd_res[r].len; pg += PAGE_SIZE) {
				phys_addr_t p;

				if (kd_counted(r, pg)) {
					in_run = false;
					continue;
				}
				p = iommu_iova_to_phys(d, pg);

				if (p && in_run && pg == prev_iova + PAGE_SIZE && p == prev_phys + PAGE_SIZE) {
					/* continues the run */
				} else if (p) {
					runs++;
				}
				in_run = p != 0;
				prev_iova = pg;
				prev_phys = p;
			}
			in_run = false;
		}
	}
	pr_info(KD "end maps=%u res=%u\n", runs, kd_nres);
	if (d && kd_bounce_mapped)
		iommu_unmap(d, KD_BOUNCE_IOVA, PAGE_SIZE);
	kd_bounce_mapped = false;
	kd_bounce_dma = 0;
	kd_free_bufs();
	memset(kd_states, 0, sizeof(kd_states));
	kd_nres = 0;
}

static void kd_begin(char **tok, int ntok)
{
	struct iommu_domain *d;

	kd_free_bufs();
	memset(kd_states, 0, sizeof(kd_states));
	kd_nres = 0;
	if (!kd_pdev || !kd_bound) {
		pr_info(KD "begin %s err=edu-not-bound\n", ntok > 1 ? tok[1] : "?");
		return;
	}
	d = iommu_get_domain_for_dev(&kd_pdev->dev);
	kd_bounce_mapped = false;
	kd_bounce_dma = 0;
	if (d && d->type != IOMMU_DOMAIN_IDENTITY) {
		int rc = iommu_map(d, KD_BOUNCE_IOVA, page_to_phys(kd_bounce_page), PAGE_SIZE,
				   IOMMU_READ | IOMMU_WRITE, GFP_KERNEL);

		if (rc)
			pr_info(KD "bounce-map rc=%d\n", rc);
		else
			kd_bounce_mapped = true;
		kd_bounce_dma = rc ? 0 : KD_BOUNCE_IOVA;
	} else {
		kd_bounce_dma = page_to_phys(kd_bounce_page);
	}
	pr_info(KD "begin %s dom=%x pgsize=%lx untrusted=%d mask=%llx\n", ntok > 1 ? tok[1] : "?",
		d ? d->type : 0, d ? d->pgsize_bitmap : 0, kd_pdev->untrusted,
		kd_pdev->dev.dma_mask ? *kd_pdev->dev.dma_mask : 0);
}

static int kd_cmd_set(const char *val, const struct kernel_param *kp)
{
	char *line, *p, *tok[MAX_TOKENS];
	int ntok = 0;
	u64 v;

	line = kstrdup(val, GFP_KERNEL);
	if (!line)
		return -ENOMEM;
	p = strim(line);
	while (p && *p && ntok < MAX_TOKENS) {
		char *t = strsep(&p, " ");

		if (*t)
			tok[ntok++] = t;
	}
	mutex_lock(&kd_lock);
	if (ntok == 0) {
		/* nothing */
	} else if (!strcmp(tok[0], "untrusted") && ntok == 2 && kd_pdev) {
		kd_pdev->untrusted = !strcmp(tok[1], "1");
		pr_info(KD "untrusted %d\n", kd_pdev->untrusted);
	} else if (!strcmp(tok[0], "begin")) {
		kd_begin(tok, ntok);
	} else if (!strcmp(tok[0], "mask") && ntok == 2 && !kstrtou64(tok[1], 0, &v) && kd_bound) {
		pr_info(KD "mask %llx rc=%d\n", v, dma_set_mask_and_coherent(&kd_pdev->dev, v));
	} else if (!strcmp(tok[0], "minalign") && ntok == 2 && !kstrtou64(tok[1], 0, &v) && kd_bound) {
		dma_set_min_align_mask(&kd_pdev->dev, v);
		pr_info(KD "minalign %llx\n", v);
	} else if (!strcmp(tok[0], "buf")) {
		kd_buf_cmd(tok, ntok);
	} else if (!strcmp(tok[0], "s") && ntok >= 3) {
		unsigned int k;

		if (kstrtouint(tok[1], 10, &k))
			pr_info(KD "r ? err=bad-step\n");
		else
			kd_step(k, tok + 2, ntok - 2);
	} else if (!strcmp(tok[0], "end")) {
		kd_end();
	} else {
		pr_info(KD "bad-command %s\n", tok[0]);
	}
	mutex_unlock(&kd_lock);
	kfree(line);
	return 0;
}

static const struct kernel_param_ops kd_cmd_ops = {
	.set = kd_cmd_set,
	.get = NULL,
};
module_param_cb(cmd, &kd_cmd_ops, NULL, 0200);
MODULE_PARM_DESC(cmd, "one line of the dmaconf vector bytecode");

static int kd_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int rc = pci_enable_device(pdev);

	if (rc)
		return rc;
	pci_set_master(pdev);
	kd_mmio = pci_iomap(pdev, 0, 0);
	if (!kd_mmio) {
		pci_disable_device(pdev);
		return -ENOMEM;
	}
	mutex_lock(&kd_lock);
	if (!kd_pdev)
		kd_pdev = pci_dev_get(pdev);
	kd_bound = true;
	mutex_unlock(&kd_lock);
	pr_info(KD "probe %s ident=%x\n", pci_name(pdev), readl(kd_mmio));
	return 0;
}

static void kd_remove(struct pci_dev *pdev)
{
	mutex_lock(&kd_lock);
	kd_bound = false;
	mutex_unlock(&kd_lock);
	pci_iounmap(pdev, kd_mmio);
	kd_mmio = NULL;
	pci_clear_master(pdev);
	pci_disable_device(pdev);
}

static const struct pci_device_id kd_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ 0 }
};
MODULE_DEVICE_TABLE(pci, kd_ids);

static struct pci_driver kd_driver = {
	.name = "dmaconf_kdoor",
	.id_table = kd_ids,
	.probe = kd_probe,
	.remove = kd_remove,
};

static int __init kd_init(void)
{
	kd_scratch = kvmalloc(MAX_PRINT, GFP_KERNEL);
	if (!kd_scratch)
		return -ENOMEM;
	kd_bounce_page = alloc_page(GFP_KERNEL | GFP_DMA | __GFP_ZERO);
	if (!kd_bounce_page) {
		kvfree(kd_scratch);
		return -ENOMEM;
	}
	return pci_register_driver(&kd_driver);
}

static void __exit kd_exit(void)
{
	pci_unregister_driver(&kd_driver);
	kd_free_bufs();
	if (kd_pdev)
		pci_dev_put(kd_pdev);
	kvfree(kd_scratch);
	__free_page(kd_bounce_page);
}

module_init(kd_init);
module_exit(kd_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dmaconf kernel door: runs dmaconf vectors through the two-step DMA API");
