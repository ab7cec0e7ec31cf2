// SPDX-License-Identifier: GPL-2.0-only
/*
 * dmaconf_iova_checker: the misuse checker of dmaconf's spec/10-misuse-checker.md for a running
 * Linux 7.3 kernel. Loadable without a rebuild: it puts kretprobes on the exported
 * dma_iova_{try_alloc,link,sync,unlink,destroy,free} and on dma_unmap_phys and
 * __dma_sync_single_for_{cpu,device}, keeps a record per caller state (keyed by the address of
 * the driver's struct dma_iova_state) and per link, and reports each broken caller obligation as
 * one line "dmaconf-checker: CHECK-NN name: ...". It only watches: every call goes on unchanged.
 *
 * What a kernel module cannot see, it does not check: device accesses (CHECK-10), CPU accesses
 * (CHECK-17, CHECK-18), the caller's own reads of the state (dma_use_iova and dma_iova_size are
 * header inlines, CHECK-02), bounce slots (CHECK-23) and the streaming API's own bookkeeping
 * (CHECK-16, CHECK-24, CHECK-25: DMA-API debugging's job). See README.md.
 */
#include <linux/debugfs.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/hashtable.h>
#include <linux/iommu.h>
#include <linux/ioport.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/ptrace.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

static bool stack;
module_param(stack, bool, 0644);
MODULE_PARM_DESC(stack, "dump the caller's stack with every finding");

static bool ratelimit = true;
module_param(ratelimit, bool, 0644);
MODULE_PARM_DESC(ratelimit, "rate-limit the finding lines (off for test runs that count them)");

static unsigned int max_freed = 4096;
module_param(max_freed, uint, 0644);
MODULE_PARM_DESC(max_freed, "freed states remembered for CHECK-03/04 (oldest forgotten first)");

/* The catalogue's codes this module can see (numbers as in spec/10-misuse-checker.md). */
enum ck_code {
	CK_NO_RESERVATION = 1,
	CK_USE_AFTER_FREE = 3,
	CK_DOUBLE_FREE = 4,
	CK_INVALID_SIZE = 5,
	CK_OUT_OF_BOUNDS = 6,
	CK_OVERLAP = 7,
	CK_MISALIGNED = 8,
	CK_INVALID_DIR = 9,
	CK_NOT_LINKED = 11,
	CK_ATTRS_MISMATCH = 12,
	CK_DESTROY_PARTIAL = 13,
	CK_FREE_LIVE_LINKS = 14,
	CK_MIXED_API = 15,
	CK_SKIP_SYNC_CACHED = 19,
	CK_WRONG_KIND = 20,
	CK_LEAKED_RESERVATION = 21,
	CK_LEAKED_LINK = 22,
	CK_CODES = 26,
};

static const char *const ck_names[CK_CODES] = {
	[CK_NO_RESERVATION] = "no_reservation",
	[CK_USE_AFTER_FREE] = "use_after_free",
	[CK_DOUBLE_FREE] = "double_free",
	[CK_INVALID_SIZE] = "invalid_size",
	[CK_OUT_OF_BOUNDS] = "link_out_of_bounds",
	[CK_OVERLAP] = "link_overlap",
	[CK_MISALIGNED] = "link_misaligned",
	[CK_INVALID_DIR] = "invalid_direction",
	[CK_NOT_LINKED] = "unlink_not_linked",
	[CK_ATTRS_MISMATCH] = "attrs_mismatch",
	[CK_DESTROY_PARTIAL] = "destroy_partial",
	[CK_FREE_LIVE_LINKS] = "free_with_live_links",
	[CK_MIXED_API] = "mixed_api",
	[CK_SKIP_SYNC_CACHED] = "skip_sync_cached",
	[CK_WRONG_KIND] = "wrong_memory_kind",
	[CK_LEAKED_RESERVATION] = "leaked_reservation",
	[CK_LEAKED_LINK] = "leaked_link",
};

static atomic_long_t ck_counts[CK_CODES];

struct ck_link {
	struct list_head node;
	size_t offset, size;
	phys_addr_t phys;
	int dir;
	unsigned long attrs;
};

enum ck_status { CK_REFUSED, CK_LIVE, CK_FREED };

struct ck_state {
	struct hlist_node node;
	struct list_head freed; /* on ck_freed while CK_FREED */
	const void *key;        /* the driver's struct dma_iova_state */
	struct device *dev;
	enum ck_status status;
	dma_addr_t addr;        /* what try_alloc returned */
	size_t size;
	unsigned long granule;
	struct list_head links;
};

static DEFINE_HASHTABLE(ck_states, 10);
static LIST_HEAD(ck_freed);
static unsigned int ck_nfreed;
static DEFINE_SPINLOCK(ck_lock);

static void ck_report(enum ck_code code, struct device *dev, const void *key, const char *what)
{
	atomic_long_inc(&ck_counts[code]);
	if (!ratelimit || printk_ratelimit())
		pr_warn("dmaconf-checker: CHECK-%02d %s: %s state %px: %s\n", code, ck_names[code],
			dev ? dev_name(dev) : "?", key, what);
	if (stack)
		dump_stack();
}

/* The IOVA granule of the device's domain: iommu-dma's iovad granule is its lowest page size. */
static unsigned long ck_granule(struct device *dev)
{
	struct iommu_domain *d = iommu_get_domain_for_dev(dev);

	return d && d->pgsize_bitmap ? 1UL << __ffs(d->pgsize_bitmap) : PAGE_SIZE;
}

static struct ck_state *ck_find(const void *key)
{
	struct ck_state *s;

	hash_for_each_possible(ck_states, s, node, (unsigned long)key)
		if (s->key == key)
			return s;
	return NULL;
}

static void ck_drop_links(struct ck_state *s)
{
	struct ck_link *l, *n;

	list_for_each_entry_safe(l, n, &s->links, node) {
		list_del(&l->node);
		kfree(l);
	}
}

static void ck_forget(struct ck_state *s)
{
	if (s->status == CK_FREED) {
		list_del(&s->freed);
		ck_nfreed--;
	}
	hash_del(&s->node);
	ck_drop_links(s);
	kfree(s);
}

static bool ck_overlaps(size_t a0, size_t a1, size_t b0, size_t b1)
{
	return a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1;
}

/* RAM as the page allocator knows it; P2P BARs and MMIO are not (CHECK-19, CHECK-20). */
static bool ck_is_ram(phys_addr_t phys, size_t size)
{
	return page_is_ram(PHYS_PFN(phys)) && page_is_ram(PHYS_PFN(phys + (size ? size - 1 : 0)));
}

/*
 * Per-task nesting depth: dma_iova_destroy calls dma_iova_unlink and dma_iova_free, and a failed
 * SWIOTLB link unlinks what it linked. Only the outermost call is the driver's.
 */
#define CK_TASKS 256
static struct {
	struct task_struct *task;
	int depth;
} ck_tasks[CK_TASKS];
static DEFINE_SPINLOCK(ck_task_lock);

static bool ck_enter(void)
{
	unsigned long flags;
	int i, free = -1, prev = 0;

	spin_lock_irqsave(&ck_task_lock, flags);
	for (i = 0; i < CK_TASKS; i++) {
		if (ck_tasks[i].task == current)
			break;
		if (!ck_tasks[i].task && free < 0)
			free = i;
	}
	if (i == CK_TASKS && free >= 0) {
		i = free;
		ck_tasks[i].task = current;
		ck_tasks[i].depth = 0;
	}
	if (i < CK_TASKS)
		prev = ck_tasks[i].depth++;
	spin_unlock_irqrestore(&ck_task_lock, flags);
	return prev == 0;
}

static void ck_leave(void)
{
	unsigned long flags;
	int i;

	spin_lock_irqsave(&ck_task_lock, flags);
	for (i = 0; i < CK_TASKS; i++) {
		if (ck_tasks[i].task == current) {
			if (--ck_tasks[i].depth <= 0)
				ck_tasks[i].task = NULL;
			break;
		}
	}
	spin_unlock_irqrestore(&ck_task_lock, flags);
}

/* The call's arguments, saved at entry for the return handler. */
struct ck_args {
	unsigned long a[7];
	bool outer;
};

static void ck_save(struct kretprobe_instance *ri, struct pt_regs *regs, int n)
{
	struct ck_args *args = (struct ck_args *)ri->data;
	int i;

	for (i = 0; i < n; i++)
		args->a[i] = regs_get_kernel_argument(regs, i);
	args->outer = ck_enter();
}

static void ck_check_dir(int dir, struct device *dev, const void *key)
{
	if (!valid_dma_direction(dir))
		ck_report(CK_INVALID_DIR, dev, key, "DMA_NONE or no direction");
}

/* The record a call on @key acts on, or NULL after reporting why there is none. */
static struct ck_state *ck_live(struct device *dev, const void *key, bool freeing)
{
	struct ck_state *s = ck_find(key);

	if (!s || s->status == CK_REFUSED) {
		ck_report(CK_NO_RESERVATION, dev, key, "no successful dma_iova_try_alloc");
		return NULL;
	}
	if (s->status == CK_FREED) {
		ck_report(freeing ? CK_DOUBLE_FREE : CK_USE_AFTER_FREE, dev, key,
			  "state already freed or destroyed");
		return NULL;
	}
	return s;
}

static void ck_set_freed(struct ck_state *s)
{
	s->status = CK_FREED;
	list_add_tail(&s->freed, &ck_freed);
	if (++ck_nfreed > max_freed) {
		struct ck_state *old = list_first_entry(&ck_freed, struct ck_state, freed);

		ck_forget(old);
	}
}

/* Unlink of [offset, offset + size): CHECK-11 for holes and cut links, CHECK-12. */
static void ck_unlink(struct ck_state *s, size_t offset, size_t size, int dir, unsigned long attrs)
{
	unsigned long g = s->granule;
	size_t end = offset + size, cover_lo, cover_hi, covered = 0;
	struct ck_link *l, *n;
	bool cut = false;

	/* Granule-expanded IOVA range asked, and how much of it links cover. */
	cover_lo = round_down(s->addr + offset, g);
	cover_hi = round_up(s->addr + end, g);
	list_for_each_entry_safe(l, n, &s->links, node) {
		size_t lo, hi;

		if (!ck_overlaps(l->offset, l->offset + l->size, offset, end))
			continue;
		if (l->dir != dir || l->attrs != attrs)
			ck_report(CK_ATTRS_MISMATCH, s->dev, s->key, "dir or attrs differ from the link's");
		lo = max_t(size_t, round_down(s->addr + l->offset, g), cover_lo);
		hi = min_t(size_t, round_up(s->addr + l->offset + l->size, g), cover_hi);
		covered += hi > lo ? hi - lo : 0;
		if (l->offset < offset || l->offset + l->size > end) {
			/* Cut: the parts outside the range stay linked. */
			cut = true;
			if (l->offset < offset && l->offset + l->size > end) {
				struct ck_link *t = kmalloc(sizeof(*t), GFP_ATOMIC);

				if (t) {
					*t = *l;
					t->offset = end;
					t->size = l->offset + l->size - end;
					t->phys = l->phys + (end - l->offset);
					list_add(&t->node, &l->node);
				}
				l->size = offset - l->offset;
			} else if (l->offset < offset) {
				l->size = offset - l->offset;
			} else {
				l->phys += end - l->offset;
				l->size = l->offset + l->size - end;
				l->offset = end;
			}
			continue;
		}
		list_del(&l->node);
		kfree(l);
	}
	if (cut || (size && covered < cover_hi - cover_lo))
		ck_report(CK_NOT_LINKED, s->dev, s->key, "range not made of whole links");
}

/* ---- dma_iova_try_alloc(dev, state, phys, size) -> bool ---- */
static int try_alloc_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	ck_save(ri, regs, 4);
	return 0;
}

static int try_alloc_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct ck_args *a = (struct ck_args *)ri->data;
	struct device *dev = (struct device *)a->a[0];
	struct dma_iova_state *state = (struct dma_iova_state *)a->a[1];
	u64 size = a->a[3];
	bool ok = regs_return_value(regs) & 1;
	struct ck_state *s;
	unsigned long flags;

	ck_leave();
	if (!a->outer)
		return 0;
	if (!size || (size & DMA_IOVA_USE_SWIOTLB))
		ck_report(CK_INVALID_SIZE, dev, state, "size 0 or bit 63 set");
	spin_lock_irqsave(&ck_lock, flags);
	s = ck_find(state);
	if (s && s->status == CK_LIVE)
		ck_report(CK_LEAKED_RESERVATION, dev, state, "try_alloc over a live reservation");
	if (s)
		ck_forget(s);
	s = kzalloc(sizeof(*s), GFP_ATOMIC);
	if (s) {
		s->key = state;
		s->dev = dev;
		INIT_LIST_HEAD(&s->links);
		s->status = ok ? CK_LIVE : CK_REFUSED;
		s->addr = ok ? state->addr : 0;
		s->size = ok ? size : 0;
		s->granule = ok ? ck_granule(dev) : PAGE_SIZE;
		hash_add(ck_states, &s->node, (unsigned long)state);
	}
	spin_unlock_irqrestore(&ck_lock, flags);
	return 0;
}

/* ---- dma_iova_link(dev, state, phys, offset, size, dir, attrs) -> int ---- */
static int link_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	ck_save(ri, regs, 7);
	return 0;
}

static void ck_check_link(struct ck_state *s, phys_addr_t phys, size_t offset, size_t size,
			  unsigned long attrs)
{
	unsigned long g = s->granule, pad = phys & (g - 1);
	dma_addr_t iova = s->addr + offset;
	bool mmio = attrs & DMA_ATTR_MMIO, ram = ck_is_ram(phys, size), misaligned;
	size_t end = offset + size;
	struct ck_link *l;

	if (end < offset || end > s->size)
		ck_report(CK_OUT_OF_BOUNDS, s->dev, s->key, "outside [0, dma_iova_size)");
	/* CALLER-02: IOVA start aligned once the phys pad is off; only offset 0 may be unaligned. */
	misaligned = pad != (iova & (g - 1)) || (offset && pad);
	list_for_each_entry(l, &s->links, node) {
		bool over = ck_overlaps(l->offset, l->offset + l->size, offset, end);

		if (over)
			ck_report(CK_OVERLAP, s->dev, s->key, "over a live link");
		else if (l->offset < offset && ((s->addr + l->offset + l->size) & (g - 1)))
			misaligned = true; /* an earlier link ends off a granule boundary */
		else if (l->offset > offset && ((iova + size) & (g - 1)))
			misaligned = true; /* this one ends off a boundary and is not the last */
	}
	if (misaligned)
		ck_report(CK_MISALIGNED, s->dev, s->key, "not granule aligned as CALLER-02 needs");
	if (!dev_is_dma_coherent(s->dev) && (attrs & DMA_ATTR_SKIP_CPU_SYNC) && !mmio && ram)
		ck_report(CK_SKIP_SYNC_CACHED, s->dev, s->key, "SKIP_CPU_SYNC of RAM, non-coherent");
	if (mmio == ram)
		ck_report(CK_WRONG_KIND, s->dev, s->key,
			  mmio ? "DMA_ATTR_MMIO on RAM" : "no DMA_ATTR_MMIO on memory that is not RAM");
}

static int link_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct ck_args *a = (struct ck_args *)ri->data;
	struct device *dev = (struct device *)a->a[0];
	const void *key = (const void *)a->a[1];
	phys_addr_t phys = a->a[2];
	size_t offset = a->a[3], size = a->a[4];
	int dir = a->a[5], ret = regs_return_value(regs);
	unsigned long attrs = a->a[6], flags;
	struct ck_state *s;

	ck_leave();
	if (!a->outer)
		return 0;
	ck_check_dir(dir, dev, key);
	spin_lock_irqsave(&ck_lock, flags);
	s = ck_live(dev, key, false);
	if (s) {
		ck_check_link(s, phys, offset, size, attrs);
		/* A size-0 link links no byte of the driver's: no record (LINK-05). */
		if (!ret && size) {
			struct ck_link *l = kmalloc(sizeof(*l), GFP_ATOMIC);

			if (l) {
				l->offset = offset;
				l->size = size;
				l->phys = phys;
				l->dir = dir;
				l->attrs = attrs;
				list_add_tail(&l->node, &s->links);
			}
		}
	}
	spin_unlock_irqrestore(&ck_lock, flags);
	return 0;
}

/* ---- dma_iova_sync(dev, state, offset, size) ---- */
static int sync_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct ck_args *a = (struct ck_args *)ri->data;
	unsigned long flags;

	ck_save(ri, regs, 2);
	if (a->outer) {
		spin_lock_irqsave(&ck_lock, flags);
		ck_live((struct device *)a->a[0], (const void *)a->a[1], false);
		spin_unlock_irqrestore(&ck_lock, flags);
	}
	return 0;
}

/* ---- dma_iova_unlink(dev, state, offset, size, dir, attrs) ---- */
static int unlink_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct ck_args *a = (struct ck_args *)ri->data;
	struct device *dev;
	const void *key;
	struct ck_state *s;
	unsigned long flags;

	ck_save(ri, regs, 6);
	if (!a->outer)
		return 0;
	dev = (struct device *)a->a[0];
	key = (const void *)a->a[1];
	ck_check_dir(a->a[4], dev, key);
	spin_lock_irqsave(&ck_lock, flags);
	s = ck_live(dev, key, false);
	if (s)
		ck_unlink(s, a->a[2], a->a[3], a->a[4], a->a[5]);
	spin_unlock_irqrestore(&ck_lock, flags);
	return 0;
}

/* ---- dma_iova_destroy(dev, state, mapped_len, dir, attrs) ---- */
static int destroy_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct ck_args *a = (struct ck_args *)ri->data;
	struct device *dev;
	const void *key;
	struct ck_state *s;
	unsigned long flags;

	ck_save(ri, regs, 5);
	if (!a->outer)
		return 0;
	dev = (struct device *)a->a[0];
	key = (const void *)a->a[1];
	ck_check_dir(a->a[3], dev, key);
	spin_lock_irqsave(&ck_lock, flags);
	s = ck_live(dev, key, true);
	if (s) {
		if (a->a[2])
			ck_unlink(s, 0, a->a[2], a->a[3], a->a[4]);
		if (!list_empty(&s->links))
			ck_report(CK_DESTROY_PARTIAL, dev, key, "links left beyond mapped_len");
		/* The survivors stay mapped: they are kept as leaks (CHECK-22 at unload). */
		ck_set_freed(s);
	}
	spin_unlock_irqrestore(&ck_lock, flags);
	return 0;
}

/* ---- dma_iova_free(dev, state) ---- */
static int free_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct ck_args *a = (struct ck_args *)ri->data;
	struct device *dev;
	const void *key;
	struct ck_state *s;
	unsigned long flags;

	ck_save(ri, regs, 2);
	if (!a->outer)
		return 0;
	dev = (struct device *)a->a[0];
	key = (const void *)a->a[1];
	spin_lock_irqsave(&ck_lock, flags);
	s = ck_live(dev, key, true);
	if (s) {
		if (!list_empty(&s->links))
			ck_report(CK_FREE_LIVE_LINKS, dev, key, "links still live");
		ck_set_freed(s);
	}
	spin_unlock_irqrestore(&ck_lock, flags);
	return 0;
}

/* ---- dma_unmap_phys / __dma_sync_single_for_{cpu,device}(dev, addr, size, dir, ...) ---- */
static int streaming_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct ck_args *a = (struct ck_args *)ri->data;
	struct device *dev;
	dma_addr_t addr;
	struct ck_state *s;
	unsigned long flags;
	int bkt;

	ck_save(ri, regs, 4);
	if (!a->outer)
		return 0;
	dev = (struct device *)a->a[0];
	addr = a->a[1];
	spin_lock_irqsave(&ck_lock, flags);
	hash_for_each(ck_states, bkt, s, node) {
		unsigned long g = s->granule;
		dma_addr_t lo = round_down(s->addr, g), hi = lo + round_up(s->size + (s->addr - lo), g);

		if (s->dev == dev && s->status == CK_LIVE && addr >= lo && addr < hi) {
			ck_report(CK_MIXED_API, dev, s->key, "streaming call on an IOVA-API address");
			break;
		}
	}
	spin_unlock_irqrestore(&ck_lock, flags);
	return 0;
}

static int leave_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	ck_leave();
	return 0;
}

#define CK_PROBE(sym, entry, ret)                                                          \
	{                                                                                  \
		.kp.symbol_name = sym, .entry_handler = entry, .handler = ret,             \
		.data_size = sizeof(struct ck_args), .maxactive = 64,                     \
	}

static struct kretprobe ck_probes[] = {
	CK_PROBE("dma_iova_try_alloc", try_alloc_entry, try_alloc_ret),
	CK_PROBE("dma_iova_link", link_entry, link_ret),
	CK_PROBE("dma_iova_sync", sync_entry, leave_ret),
	CK_PROBE("dma_iova_unlink", unlink_entry, leave_ret),
	CK_PROBE("dma_iova_destroy", destroy_entry, leave_ret),
	CK_PROBE("dma_iova_free", free_entry, leave_ret),
	CK_PROBE("dma_unmap_phys", streaming_entry, leave_ret),
	CK_PROBE("__dma_sync_single_for_cpu", streaming_entry, leave_ret),
	CK_PROBE("__dma_sync_single_for_device", streaming_entry, leave_ret),
};

static struct kretprobe *ck_probe_ptrs[ARRAY_SIZE(ck_probes)];
static struct dentry *ck_dir;

static int counts_show(struct seq_file *m, void *v)
{
	int c;

	for (c = 1; c < CK_CODES; c++)
		if (ck_names[c])
			seq_printf(m, "CHECK-%02d %s %ld\n", c, ck_names[c],
				   atomic_long_read(&ck_counts[c]));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(counts);

static int live_show(struct seq_file *m, void *v)
{
	struct ck_state *s;
	struct ck_link *l;
	unsigned long flags;
	int bkt;

	spin_lock_irqsave(&ck_lock, flags);
	hash_for_each(ck_states, bkt, s, node) {
		if (s->status == CK_LIVE)
			seq_printf(m, "state %px %s addr %pad size %zu\n", s->key, dev_name(s->dev),
				   &s->addr, s->size);
		list_for_each_entry(l, &s->links, node)
			seq_printf(m, "  link offset %zu size %zu phys %pa dir %d attrs %#lx\n",
				   l->offset, l->size, &l->phys, l->dir, l->attrs);
	}
	spin_unlock_irqrestore(&ck_lock, flags);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(live);

static int __init ck_init(void)
{
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(ck_probes); i++)
		ck_probe_ptrs[i] = &ck_probes[i];
	ret = register_kretprobes(ck_probe_ptrs, ARRAY_SIZE(ck_probe_ptrs));
	if (ret) {
		pr_err("dmaconf-checker: cannot probe the DMA API: %d\n", ret);
		return ret;
	}
	ck_dir = debugfs_create_dir("dmaconf_checker", NULL);
	debugfs_create_file("counts", 0444, ck_dir, NULL, &counts_fops);
	debugfs_create_file("live", 0444, ck_dir, NULL, &live_fops);
	pr_info("dmaconf-checker: watching dma_iova_* (spec/10-misuse-checker.md)\n");
	return 0;
}

static void __exit ck_exit(void)
{
	struct ck_state *s;
	struct hlist_node *n;
	int bkt;

	unregister_kretprobes(ck_probe_ptrs, ARRAY_SIZE(ck_probe_ptrs));
	debugfs_remove_recursive(ck_dir);
	/* What is still live when the checker goes is what the drivers leaked (or still use). */
	hash_for_each_safe(ck_states, bkt, n, s, node) {
		if (s->status == CK_LIVE)
			ck_report(CK_LEAKED_RESERVATION, s->dev, s->key, "live at unload");
		if (!list_empty(&s->links))
			ck_report(CK_LEAKED_LINK, s->dev, s->key, "links live at unload");
		ck_forget(s);
	}
	pr_info("dmaconf-checker: unloaded\n");
}

module_init(ck_init);
module_exit(ck_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dmaconf misuse checker for the two-step IOVA DMA API (kretprobes)");
