//! DESTROY-01 and DESTROY-02 as a property, checked on the machine for any implementation: a
//! `dma_iova_destroy(mapped_len)` after a random set of links has exactly the effects of
//! `dma_iova_unlink(0, mapped_len)` followed by `dma_iova_free` (issue 12, behaviour 9): the same
//! events in the same order, the same translations and bounce slots left, and the same IOVA
//! handed out by the next try_alloc (the free reached the allocator in the same way).

use std::path::Path;

use dmaconf_engine::model::{DomainName, PlatformChoice};
use dmaconf_engine::preset::Presets;
use dmaconf_machine::Machine;
use dmaconf_platform::{Attrs, Dir, DmaApi, IovaState};
use proptest::prelude::*;

/// One link: `phys`, `offset`, `size`.
type Link = (u64, u64, u64);

/// A platform and a transaction: the state's phys offset and the links, laid out as a caller
/// must (only the first link unaligned; every link but the last ends on a granule).
#[derive(Clone, Debug)]
struct Case {
    choice: PlatformChoice,
    pad: u64,
    links: Vec<Link>,
    dir: Dir,
    attrs: Attrs,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![
            "x86-vtd-q35",
            "arm64-smmuv3",
            "arm64-smmuv3-noncoherent",
        ]),
        any::<bool>(),
        prop::sample::select(vec![0u64, 0xFFF]),
        (0u64..0x1000).prop_map(|p| p & !0x3F),
        prop::collection::vec((1u64..4, 0u64..0x1000), 0..4),
        0u32..3,
        any::<bool>(),
    )
        .prop_map(|(preset, untrusted, min_align, pad, parts, dir, skip)| {
            let choice = PlatformChoice {
                preset: preset.into(),
                pci: Some(untrusted || preset == "x86-vtd-q35"),
                untrusted: Some(untrusted),
                min_align_mask: Some(min_align),
                domain: Some(DomainName::Dma),
                ..PlatformChoice::default()
            };
            // Granule-sized pages; each link gets its own physical region.
            let g = 0x1000u64;
            let mut links = Vec::new();
            let mut offset = 0u64;
            let n = parts.len();
            for (i, (granules, tail)) in parts.into_iter().enumerate() {
                let phys = 0x1000_0000 + (i as u64) * 0x10_0000 + if i == 0 { pad } else { 0 };
                let lead = if i == 0 { pad } else { 0 };
                let mut size = granules * g - lead;
                if i + 1 == n && tail != 0 {
                    // The last link may end inside its last granule.
                    size = (size + tail).saturating_sub(g).max(1);
                }
                links.push((phys, offset, size));
                offset += size;
            }
            Case {
                choice,
                pad,
                links,
                dir: Dir(dir),
                attrs: if skip { Attrs::SKIP_CPU_SYNC } else { Attrs(0) },
            }
        })
}

struct Side {
    machine: Machine,
    dma: Box<dyn DmaApi>,
    state: IovaState,
    mapped: u64,
}

fn setup(presets: &Presets, c: &Case) -> Side {
    let cfg = presets.configure(&c.choice).expect("a known preset");
    let mut machine = Machine::new(cfg);
    let mut dma = dmaconf::reference().instance();
    assert_eq!(dma.probe(&mut machine), 0);
    let total: u64 = c.links.iter().map(|l| l.2).sum::<u64>().max(1);
    let mut state = IovaState::default();
    assert!(dma.iova_try_alloc(&mut machine, &mut state, 0x1000_0000 + c.pad, total));
    let mut mapped = 0;
    for &(phys, offset, size) in &c.links {
        // Only a fully successful prefix of links counts as linked.
        if dma.iova_link(&mut machine, &mut state, phys, offset, size, c.dir, c.attrs) != 0 {
            break;
        }
        mapped = offset + size;
    }
    machine.take_events();
    Side {
        machine,
        dma,
        state,
        mapped,
    }
}

fn presets() -> Presets {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors/presets");
    let (presets, errors) = Presets::load(&root);
    assert!(errors.is_empty(), "the presets load: {errors:?}");
    presets
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn destroy_is_unlink_then_free(c in case()) {
        let presets = presets();
        let mut a = setup(&presets, &c);
        let mut b = setup(&presets, &c);
        prop_assert_eq!(a.mapped, b.mapped);
        prop_assert_eq!(a.state, b.state);

        a.dma.iova_destroy(&mut a.machine, &a.state, a.mapped, c.dir, c.attrs);
        if b.mapped != 0 {
            b.dma.iova_unlink(&mut b.machine, &b.state, 0, b.mapped, c.dir, c.attrs);
        }
        b.dma.iova_free(&mut b.machine, &b.state);

        prop_assert_eq!(a.machine.take_events(), b.machine.take_events());
        prop_assert_eq!(a.machine.mappings(), b.machine.mappings());
        prop_assert_eq!(a.machine.live_bounce_slots(), b.machine.live_bounce_slots());
        prop_assert!(a.machine.mappings().is_empty());
        prop_assert!(a.machine.live_bounce_slots().is_empty());

        // The reservation went back to the allocator the same way: the next try_alloc of the
        // same size lands on the same IOVA.
        let size = a.state.size & !dmaconf_platform::DMA_IOVA_USE_SWIOTLB;
        let (mut na, mut nb) = (IovaState::default(), IovaState::default());
        let ra = a.dma.iova_try_alloc(&mut a.machine, &mut na, c.pad, size);
        let rb = b.dma.iova_try_alloc(&mut b.machine, &mut nb, c.pad, size);
        prop_assert_eq!((ra, na), (rb, nb));
    }
}
