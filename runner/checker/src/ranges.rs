//! Half-open ranges `[start, end)` of addresses or offsets.

pub type Range = (u64, u64);

pub fn align_down(v: u64, a: u64) -> u64 {
    v & !(a - 1)
}

/// Rounds up to a multiple of the power of two `a`, saturating at the top of the space.
pub fn align_up(v: u64, a: u64) -> u64 {
    v.checked_add(a - 1).map_or(!(a - 1), |x| x & !(a - 1))
}

/// Whether two ranges share at least one address (empty ranges share none).
pub fn intersects(a: Range, b: Range) -> bool {
    a.0 < a.1 && b.0 < b.1 && a.0 < b.1 && b.0 < a.1
}

/// `a` without `b`: zero, one or two ranges.
pub fn subtract(a: Range, b: Range) -> Vec<Range> {
    if !intersects(a, b) {
        return if a.0 < a.1 { vec![a] } else { Vec::new() };
    }
    let mut out = Vec::new();
    if a.0 < b.0 {
        out.push((a.0, b.0));
    }
    if b.1 < a.1 {
        out.push((b.1, a.1));
    }
    out
}
