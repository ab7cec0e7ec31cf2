//! Sparse, byte-accurate physical memory.
//!
//! Memory is a map of 4 KiB frames that exist only once a non-zero byte has been written to
//! them, so the cost is proportional to what a vector touches, not to the addresses it uses
//! (a vector may write at 2^64 - 1). Bytes never written read as 0.
//!
//! Every entry point accepts any `u64` address and length without panicking:
//! * an access whose last byte would lie past 2^64 - 1 is truncated at the top of the address
//!   space (physical addresses do not wrap);
//! * an access longer than [`MAX_ACCESS_LEN`] is truncated to that length, so that a buggy
//!   length cannot exhaust the host.
//!
//! The methods report how many bytes they really handled; the machine turns a truncation into a
//! "not modelled" note.

use std::collections::BTreeMap;

/// Frame size of the sparse store (not a property of the simulated machine).
pub const FRAME_SIZE: u64 = 4096;

/// The longest single data access or copy the machine performs (1 GiB).
pub const MAX_ACCESS_LEN: u64 = 1 << 30;

type Frame = Box<[u8; FRAME_SIZE as usize]>;

/// How many of `len` bytes starting at `addr` an access may touch: capped by the top of the
/// address space and by [`MAX_ACCESS_LEN`].
pub fn clamp_len(addr: u64, len: u64) -> u64 {
    // Bytes from addr to 2^64 - 1 inclusive; saturates at u64::MAX when addr == 0, which is
    // above the access cap anyway.
    let room = (u64::MAX - addr).saturating_add(1);
    len.min(room).min(MAX_ACCESS_LEN)
}

/// Sparse physical memory. See the module documentation for the truncation rules.
#[derive(Clone, Debug, Default)]
pub struct PhysMemory {
    frames: BTreeMap<u64, Frame>,
}

impl PhysMemory {
    pub fn new() -> PhysMemory {
        PhysMemory::default()
    }

    /// Number of frames that hold data (the O(touched) cost of this memory).
    pub fn frames_touched(&self) -> usize {
        self.frames.len()
    }

    /// Reads `len` bytes from `phys`, truncated by [`clamp_len`].
    pub fn read(&self, phys: u64, len: u64) -> Vec<u8> {
        let len = clamp_len(phys, len);
        // len <= MAX_ACCESS_LEN, so it fits a usize on the 64-bit hosts we build for.
        let mut out = vec![0u8; len as usize];
        let mut done = 0u64;
        while done < len {
            let addr = phys + done;
            let base = addr & !(FRAME_SIZE - 1);
            let off = addr - base;
            let n = (FRAME_SIZE - off).min(len - done);
            if let Some(frame) = self.frames.get(&base) {
                out[done as usize..(done + n) as usize]
                    .copy_from_slice(&frame[off as usize..(off + n) as usize]);
            }
            done += n;
        }
        out
    }

    /// Writes `data` at `phys`; returns the bytes written (fewer than `data.len()` only when
    /// truncated by [`clamp_len`]). Zero bytes written to a frame that does not exist leave it
    /// absent, as it already reads as zero.
    pub fn write(&mut self, phys: u64, data: &[u8]) -> u64 {
        let len = clamp_len(phys, data.len() as u64);
        let mut done = 0u64;
        while done < len {
            let addr = phys + done;
            let base = addr & !(FRAME_SIZE - 1);
            let off = addr - base;
            let n = (FRAME_SIZE - off).min(len - done);
            let chunk = &data[done as usize..(done + n) as usize];
            match self.frames.get_mut(&base) {
                Some(frame) => frame[off as usize..(off + n) as usize].copy_from_slice(chunk),
                None if chunk.iter().all(|&b| b == 0) => {}
                None => {
                    let mut frame: Frame = Box::new([0u8; FRAME_SIZE as usize]);
                    frame[off as usize..(off + n) as usize].copy_from_slice(chunk);
                    self.frames.insert(base, frame);
                }
            }
            done += n;
        }
        len
    }

    /// Fills `len` bytes at `dst` with `byte`; returns the bytes filled. Filling with zero
    /// only visits frames that exist.
    pub fn fill(&mut self, dst: u64, byte: u8, len: u64) -> u64 {
        let len = clamp_len(dst, len);
        if byte == 0 {
            self.zero(dst, len);
            return len;
        }
        let block = [byte; FRAME_SIZE as usize];
        let mut done = 0u64;
        while done < len {
            let addr = dst + done;
            let n = (FRAME_SIZE - (addr & (FRAME_SIZE - 1))).min(len - done);
            self.write(addr, &block[..n as usize]);
            done += n;
        }
        len
    }

    /// Zeroes `[dst, dst+len)` (already clamped), touching only frames that exist.
    fn zero(&mut self, dst: u64, len: u64) {
        if len == 0 {
            return;
        }
        let end = u128::from(dst) + u128::from(len);
        let first = dst & !(FRAME_SIZE - 1);
        for (&base, frame) in self.frames.range_mut(first..) {
            if u128::from(base) >= end {
                break;
            }
            let from = dst.max(base) - base;
            let to = (end.min(u128::from(base) + u128::from(FRAME_SIZE)) - u128::from(base)) as u64;
            frame[from as usize..to as usize].fill(0);
        }
    }

    /// Copies `len` bytes from `src` to `dst` with `memmove` semantics (overlap allowed);
    /// returns the bytes copied (both ranges are clamped). Source frames that do not exist are
    /// copied as zeros without visiting their bytes.
    pub fn copy(&mut self, dst: u64, src: u64, len: u64) -> u64 {
        let len = clamp_len(src, len).min(clamp_len(dst, len));
        // Copy backwards when the destination starts inside the source, as memmove does.
        let backwards = dst > src && dst - src < len;
        // Pieces that never cross a source frame boundary, in copy order.
        let mut pieces = Vec::new();
        let mut done = 0u64;
        while done < len {
            let addr = src + done;
            let n = (FRAME_SIZE - (addr & (FRAME_SIZE - 1))).min(len - done);
            pieces.push((done, n));
            done += n;
        }
        if backwards {
            pieces.reverse();
        }
        for (off, n) in pieces {
            let src_frame = (src + off) & !(FRAME_SIZE - 1);
            if self.frames.contains_key(&src_frame) {
                let chunk = self.read(src + off, n);
                self.write(dst + off, &chunk);
            } else {
                self.zero(dst + off, n);
            }
        }
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritten_memory_reads_zero_and_costs_nothing() {
        let m = PhysMemory::new();
        assert_eq!(m.read(0x1234_5678_9000, 5), vec![0; 5]);
        assert_eq!(m.frames_touched(), 0);
    }

    #[test]
    fn write_across_frames_reads_back_and_touches_two_frames() {
        let mut m = PhysMemory::new();
        // 0xFFE..0x1002: two bytes in frame 0, two in frame 0x1000.
        assert_eq!(m.write(0xFFE, &[1, 2, 3, 4]), 4);
        assert_eq!(m.read(0xFFD, 6), vec![0, 1, 2, 3, 4, 0]);
        assert_eq!(m.frames_touched(), 2);
    }

    #[test]
    fn memory_is_proportional_to_touched_frames_not_addresses() {
        let mut m = PhysMemory::new();
        m.write(0, &[9]);
        m.write(1 << 40, &[9]);
        m.write(u64::MAX - 10, &[9]);
        assert_eq!(m.frames_touched(), 3);
        // Zero writes to absent frames allocate nothing.
        m.write(1 << 50, &[0; 64]);
        m.fill(1 << 52, 0, 1 << 20);
        assert_eq!(m.frames_touched(), 3);
    }

    #[test]
    fn accesses_at_the_top_of_the_address_space_are_truncated() {
        let mut m = PhysMemory::new();
        // Two bytes fit below 2^64 (u64::MAX - 1 and u64::MAX); the other two are dropped.
        assert_eq!(m.write(u64::MAX - 1, &[0xA, 0xB, 0xC, 0xD]), 2);
        assert_eq!(m.read(u64::MAX - 1, 4), vec![0xA, 0xB]);
        assert_eq!(m.read(u64::MAX, u64::MAX), vec![0xB]);
        assert_eq!(clamp_len(u64::MAX, 1), 1);
        assert_eq!(clamp_len(0, u64::MAX), MAX_ACCESS_LEN);
    }

    #[test]
    fn copy_and_fill() {
        let mut m = PhysMemory::new();
        m.write(0x1000, &[1, 2, 3, 4, 5, 6]);
        // Overlapping copy forward by 2: memmove semantics.
        assert_eq!(m.copy(0x1002, 0x1000, 4), 4);
        assert_eq!(m.read(0x1000, 6), vec![1, 2, 1, 2, 3, 4]);
        // Overlapping copy backward by 1.
        m.copy(0x1000, 0x1001, 5);
        assert_eq!(m.read(0x1000, 6), vec![2, 1, 2, 3, 4, 4]);
        // A copy crossing a frame boundary.
        m.copy(0x2FFF, 0x1000, 3);
        assert_eq!(m.read(0x2FFE, 5), vec![0, 2, 1, 2, 0]);
        assert_eq!(m.fill(0x1001, 0xEE, 2), 2);
        assert_eq!(m.read(0x1000, 4), vec![2, 0xEE, 0xEE, 3]);
        // Copying zeros over data clears it.
        m.copy(0x1000, 0x9_0000, 2);
        assert_eq!(m.read(0x1000, 3), vec![0, 0, 0xEE]);
    }
}
