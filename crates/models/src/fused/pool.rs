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

/// Tells glibc's `malloc` to keep freed blocks of up to 32 MiB in the process, once per
/// process, the first time a fused kernel runs.
///
/// The pool covers the kernels' own buffers; burn's tensor operations around them (the
/// slices of the layer output, the sums and broadcasts of the backward pass) allocate and
/// free blocks of hundreds of KiB every step too. By default glibc serves a block that
/// large with `mmap` until it has seen one freed, and gives the top of its heap back to the
/// OS whenever more than twice that is free, so every call faults in the same pages
/// again. Fixed thresholds (the mmap threshold at glibc's 32 MiB ceiling, trimming only
/// past 256 MiB free) keep them: in a fresh process a small RNN's forward (B32 T100
/// 40→128) took 6.4 ms with glibc's defaults and 2.7 ms with these, its forward+backward
/// 14.0 and 8.5 ms.
/// Setting a threshold by hand also switches off glibc's own adjustment of it, as
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=…` does. Other C libraries are left alone,
/// and so is a process started with any `glibc.malloc.*` tunable in `GLIBC_TUNABLES`
/// (`GLIBC_TUNABLES=glibc.malloc.tcache_count=7`, glibc's default, keeps every default).
pub(super) fn keep_freed_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        const TRIM_THRESHOLD: libc::c_int = 256 << 20;
        ONCE.call_once(|| {
            // A user who tunes glibc's malloc keeps their settings.
            let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
            if tunables.contains("glibc.malloc.") {
                return;
            }
            // SAFETY: `mallopt` only changes malloc's parameters; any value is accepted or
            // refused with a return of 0, and a refusal leaves glibc's defaults.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
                libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            }
        });
    }
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

    /// Minor page faults of the calling thread so far.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn thread_page_faults() -> i64 {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `getrusage` fills the struct it is given.
        let usage = unsafe {
            assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()), 0);
            usage.assume_init()
        };
        usage.ru_minflt
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn a_freed_block_of_megabytes_is_not_faulted_in_again() {
        keep_freed_blocks();
        // 8 MiB: with glibc's defaults each round maps it afresh (2,048 faults in the 4 rounds).
        let len = 8 << 20;
        let touch = || {
            let mut block = vec![0u8; len];
            for page in block.chunks_mut(4096) {
                page[0] = 1;
            }
            std::hint::black_box(&block);
        };
        touch();
        let before = thread_page_faults();
        for _ in 0..4 {
            touch();
        }
        let faults = thread_page_faults() - before;
        assert!(faults < 256, "{faults} page faults in 4 rounds of 8 MiB");
    }

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
