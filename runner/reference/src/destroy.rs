//! `dma_iova_destroy`. DESTROY-01..03.

use dmaconf_platform::{Attrs, Dir, IovaState, Platform};

use crate::device::Device;
use crate::free::dma_iova_free;
use crate::unlink::dma_iova_unlink;

/// DESTROY-01..03; mirrors `dma_iova_destroy`: a strict unlink of `[0, mapped_len)` when
/// `mapped_len` is not 0 (DESTROY-02: nothing to unlink otherwise), then the free of the whole
/// reservation. Ranges linked outside `[0, mapped_len)` stay mapped (DESTROY-03).
pub fn dma_iova_destroy(
    dev: &mut Device,
    p: &mut dyn Platform,
    state: &IovaState,
    mapped_len: u64,
    dir: Dir,
    attrs: Attrs,
) {
    if mapped_len != 0 {
        dma_iova_unlink(dev, p, state, 0, mapped_len, dir, attrs);
    }
    dma_iova_free(dev, p, state);
}
