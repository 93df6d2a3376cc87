//! A global allocator that makes burn-ndarray's results the same from run to run.
//!
//! burn-ndarray 0.21 splits a buffer into an unaligned head, an aligned SIMD body and a
//! tail (`align_to_mut`) and computes the head and tail with scalar code, whose results can
//! differ from the SIMD code's in the last bits (the f32 reciprocal, for one, is the
//! approximate `rcpps` in SIMD and exact in scalar code). Where the
//! split falls depends on the buffer's address modulo the vector size, and with several
//! threads allocating, addresses vary between runs: the same seeded training then drifts
//! apart in the last bits within a few steps, and a task at the edge of learnability can
//! end at 100% in one run and 50% in the next. With every allocation aligned to 64 bytes
//! (the widest SIMD vector) the split is the same in every run.

use std::alloc::{GlobalAlloc, Layout, System};

/// The alignment every allocation gets: the size of an AVX-512 vector.
pub const ALLOCATION_ALIGNMENT: usize = 64;

/// The system allocator with every allocation aligned to [`ALLOCATION_ALIGNMENT`] bytes.
///
/// Install it in a binary (or test) whose burn-ndarray results must be reproducible:
///
/// ```
/// #[global_allocator]
/// static ALLOCATOR: models::AlignedAllocator = models::AlignedAllocator;
///
/// let buffer = vec![0f32; 3];
/// assert_eq!(buffer.as_ptr() as usize % models::ALLOCATION_ALIGNMENT, 0);
/// ```
pub struct AlignedAllocator;

fn aligned(layout: Layout) -> Layout {
    // Cannot fail: ALLOCATION_ALIGNMENT is a power of two, and rounding a size that fits
    // `isize` up to 64 bytes still fits.
    layout
        .align_to(ALLOCATION_ALIGNMENT)
        .expect("64 is a power of two")
}

// SAFETY: every call is forwarded to `System` with the same layout, widened to a larger
// alignment, in allocation, reallocation and deallocation alike.
unsafe impl GlobalAlloc for AlignedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(aligned(layout)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(aligned(layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, aligned(layout)) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { System.realloc(ptr, aligned(layout), new_size) }
    }
}
