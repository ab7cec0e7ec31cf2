//! Tests against a recording fake platform. Expected values are worked out by hand from
//! KERNEL-FACTS.md and the Linux 7.3 source (the derivation is in the comments), never taken
//! from a run of this code.

mod alloc;
mod calls;
mod fake;
mod msi;
mod naive;
mod prop;

use dmaconf_platform::{DmaApi, IovaState, PlatformFacts};

use crate::Reference;
use fake::Fake;

/// A probed reference on a fake platform with `facts`.
fn probed(facts: PlatformFacts) -> (Reference, Fake) {
    let mut f = Fake::new(facts);
    let mut r = Reference::new();
    assert_eq!(r.probe(&mut f), 0);
    (r, f)
}

/// `try_alloc` that must succeed; returns the state.
fn alloc(r: &mut Reference, f: &mut Fake, phys: u64, size: u64) -> IovaState {
    let mut s = IovaState::default();
    assert!(
        r.iova_try_alloc(f, &mut s, phys, size),
        "try_alloc({phys:#x}, {size:#x})"
    );
    s
}
