//! `dmaconf explain ID` on the real suite: the why, each cited rule's heading and text as the
//! spec states them, the preset, every step with its expectations as written.

mod common;
use common::{dmaconf, repo, text};

#[test]
fn explain_quotes_the_spec_and_the_vector() {
    let o = dmaconf(&repo(), &["explain", "free-no-effects-state-kept"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("free-no-effects-state-kept  (vectors/free/free.yaml:"),
        "{out}"
    );
    let spec = std::fs::read_to_string(repo().join("spec/3.6-free.md")).unwrap();
    let heading = spec
        .lines()
        .find(|l| l.starts_with("#### FREE-01 — "))
        .unwrap();
    let n = spec.lines().position(|l| l == heading).unwrap() + 1;
    assert!(
        out.contains(&format!("  {}  (spec/3.6-free.md:{n})", &heading[5..])),
        "{out}"
    );
    assert!(
        out.contains("The step logs no event."),
        "the rule's text: {out}"
    );
    assert!(out.contains("STATE-02 — "), "{out}");
    assert!(
        out.contains("preset x86-vtd-q35  (vectors/presets/x86-vtd-q35.yaml)"),
        "{out}"
    );
    assert!(out.contains("does not clear the state"), "the why: {out}");
    // Steps in order, each with its expectations per profile as written.
    let steps: Vec<usize> = (1..6)
        .map(|i| {
            out.find(&format!("  step {i}  (vectors/free/free.yaml:"))
                .expect("step")
        })
        .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]));
    // The fourth step (people count from 1), dma_iova_free.
    let step3 = &out[steps[3]..steps[4]];
    assert!(
        step3.contains("    dma_iova_free: {state: s0}\n"),
        "{step3}"
    );
    assert!(
        step3.contains("    expect: {state: {size: 0x1000, use_swiotlb: false}}\n"),
        "{step3}"
    );
    assert!(
        step3.contains("    linux: {state: {addr: 0xFFFFF000}}\n"),
        "{step3}"
    );

    let missing = dmaconf(&repo(), &["explain", "free-no"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).contains("no vector `free-no`; did you mean: free-no-effects-state-kept")
    );
}
