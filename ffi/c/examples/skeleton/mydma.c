/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The smallest valid dmaconf C plug-in (ffi/c/include/dmaconf.h, spec/8-c-abi.md): it loads,
 * probes, and never allocates an IOVA, so the suite runs and reports it red. Replace the bodies
 * with your DMA layer, calling the platform through dev->host->...(dev->ctx, ...).
 * Copied by the README's "Plug in a C implementation"; ffi/c/tests/skeleton.rs builds and runs it.
 */
#include <stdint.h>
#include <stdlib.h>
#include "dmaconf.h"

/* One device per vector run: keep the host table and context to call the platform. */
struct dmaconf_device {
	const struct dmaconf_host *host;
	void *ctx;
	struct dmaconf_facts facts;
};

static int32_t my_create(const struct dmaconf_host *host, void *ctx,
			 struct dmaconf_device **out)
{
	struct dmaconf_device *dev = (struct dmaconf_device *)calloc(1, sizeof(*dev));

	if (!dev)
		return -DMACONF_ENOMEM;
	dev->host = host;
	dev->ctx = ctx;
	*out = dev;
	return 0;
}

static void my_destroy(struct dmaconf_device *dev) { free(dev); }

static int32_t my_probe(struct dmaconf_device *dev)
{
	dev->facts.struct_size = sizeof(dev->facts);
	return dev->host->facts(dev->ctx, &dev->facts);
}

/* Replace these with your DMA layer. This one never allocates an IOVA. */
static uint32_t my_try_alloc(struct dmaconf_device *dev, struct dmaconf_iova_state *state,
			     uint64_t phys, uint64_t size)
{
	(void)dev; (void)phys; (void)size;
	state->addr = 0;
	state->size = 0;
	return 0;
}

static int32_t my_link(struct dmaconf_device *dev, struct dmaconf_iova_state *state,
		       uint64_t phys, uint64_t offset, uint64_t size, uint32_t dir, uint64_t attrs)
{
	(void)dev; (void)state; (void)phys; (void)offset; (void)size; (void)dir; (void)attrs;
	return -DMACONF_EOPNOTSUPP;
}

static int32_t my_sync(struct dmaconf_device *dev, const struct dmaconf_iova_state *state,
		       uint64_t offset, uint64_t size)
{
	(void)dev; (void)state; (void)offset; (void)size;
	return 0;
}

static void my_unlink(struct dmaconf_device *dev, const struct dmaconf_iova_state *state,
		      uint64_t offset, uint64_t size, uint32_t dir, uint64_t attrs)
{
	(void)dev; (void)state; (void)offset; (void)size; (void)dir; (void)attrs;
}

static void my_destroy_state(struct dmaconf_device *dev, const struct dmaconf_iova_state *state,
			     uint64_t mapped_len, uint32_t dir, uint64_t attrs)
{
	(void)dev; (void)state; (void)mapped_len; (void)dir; (void)attrs;
}

static void my_free(struct dmaconf_device *dev, const struct dmaconf_iova_state *state)
{
	(void)dev; (void)state;
}

static const struct dmaconf_plugin table = {
	sizeof(struct dmaconf_plugin), DMACONF_ABI_MAJOR, DMACONF_ABI_MINOR, 0,
	"mydma", "0.1",
	DMACONF_CAP_IOVA_API,
	my_create, my_destroy, my_probe,
	my_try_alloc, my_link, my_sync, my_unlink, my_destroy_state, my_free,
	/* Optional members (streaming, sg, ...) left NULL: the defaults of spec/8-c-abi.md. */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

const struct dmaconf_plugin *dmaconf_plugin_entry(void) { return &table; }
