//! Reuse of the large scratch buffers of the kernels between calls.
//!
//! Every training step allocates the same buffers again: the saved activations, the gate
//! gradients, the packed operands of the weight-gradient products. Blocks this large come
//! from the OS (glibc hands blocks above its mmap threshold back on `free` and trims the
//! heap), so without reuse each step pays a page fault per 4 KiB on first touch, plus the
//! zeroing: about a quarter of a small LSTM's forward+backward. A [`Buffer`] goes back to a pool when it
//! is dropped and the next request of a similar size takes it, as PyTorch's caching
//! allocators do. The pool keeps at most [`POOL_BYTES`].

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// The most the pool keeps between calls; beyond it the oldest buffers are freed.
const POOL_BYTES: usize = 1 << 30;

/// Buffers waiting for reuse, oldest first.
static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// Frees the scratch buffers the fused CPU kernels keep for reuse between calls (as
/// `torch.cuda.empty_cache` does for PyTorch's caching allocator). They hold at most
/// 1 GiB, and a training step of the same shape reuses them, so this is for programs
/// that are done with training and want the memory back.
///
/// ```
/// models::empty_cache();
/// ```
pub fn empty_cache() {
    pool().clear();
}

/// The pool, locked (a panic while it was held leaves nothing half done).
fn pool() -> std::sync::MutexGuard<'static, Vec<Vec<f32>>> {
    POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A buffer of `f32` that returns to the pool when dropped.
#[derive(Default)]
pub(super) struct Buffer {
    values: Vec<f32>,
}

impl Buffer {
    /// `len` zeros.
    pub(super) fn zeroed(len: usize) -> Self {
        let mut buffer = Self::with_stale_values(len);
        buffer.values.fill(0.0);
        buffer
    }

    /// `len` values left from an earlier use: for buffers whose every element is written
    /// before it is read.
    pub(super) fn with_stale_values(len: usize) -> Self {
        if len == 0 {
            return Self::default();
        }
        let reused = {
            let mut pool = pool();
            // The smallest buffer that holds `len` without wasting more than half of itself.
            let best = pool
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= len && v.capacity() <= 2 * len)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(index, _)| index);
            best.map(|index| pool.remove(index))
        };
        let mut values = reused.unwrap_or_default();
        if values.len() >= len {
            values.truncate(len);
        } else {
            values.resize(len, 0.0);
        }
        Self { values }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if self.values.capacity() == 0 {
            return;
        }
        let values = std::mem::take(&mut self.values);
        let mut pool = pool();
        pool.push(values);
        let mut bytes: usize = pool.iter().map(|v| 4 * v.capacity()).sum();
        while bytes > POOL_BYTES {
            bytes -= 4 * pool.remove(0).capacity();
        }
    }
}

impl Clone for Buffer {
    fn clone(&self) -> Self {
        let mut copy = Self::with_stale_values(self.len());
        copy.copy_from_slice(self);
        copy
    }
}

impl Deref for Buffer {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.values
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.values
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer({} values)", self.values.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_buffer_is_reused_and_zeroed_on_request() {
        // A size no other test uses, so that the pool's other users cannot take it.
        let len = 123_457;
        let mut first = Buffer::with_stale_values(len);
        first.fill(7.0);
        let address = first.as_ptr();
        drop(first);
        let again = Buffer::zeroed(len - 1);
        assert_eq!(again.as_ptr(), address, "the dropped buffer is taken again");
        assert_eq!(again.len(), len - 1);
        assert!(again.iter().all(|&v| v == 0.0));
        drop(again);
        let stale = Buffer::with_stale_values(len);
        assert_eq!(stale.len(), len);
        let address = stale.as_ptr();
        drop(stale);
        // A request for less than half of it leaves it in the pool.
        let small = Buffer::zeroed(len / 3);
        assert_ne!(small.as_ptr(), address);
    }
}
