//! A global allocator that keeps hostile length prefixes from aborting the process.
//!
//! The `kafka-protocol` decoders (0.18) size vectors from counts read off the wire
//! (`Vec::with_capacity(n)`) before checking that the bytes exist, so a 20-byte frame can
//! ask for hundreds of GiB. The system allocator refuses such a request and Rust then
//! aborts the whole broker. Upstream fixes are proposed but not released.
//!
//! This allocator serves every single allocation of [`HUGE`] bytes or more from an
//! anonymous `MAP_NORESERVE` mapping: the kernel reserves address space only and commits
//! pages when they are touched. A bogus capacity therefore costs nothing; the decoder then
//! runs out of input after a few elements, returns an error, and the mapping is unmapped.
//! Legitimate allocations this large do not occur in the broker (frames are bounded by
//! `socket.request.max.bytes`), so everything else goes to the system allocator unchanged.
//!
//! Limits: under `vm.overcommit_memory=2` the kernel ignores `MAP_NORESERVE` and the
//! mapping fails like any other allocation. Binaries opt in with `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are served by lazily committed mappings.
pub const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

pub struct GuardedAlloc;

unsafe fn map_huge(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no fixed address has no preconditions.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        ptr.cast()
    }
}

fn is_huge(layout: Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

// SAFETY: huge blocks come from mmap (page aligned, which satisfies align <= PAGE) and are
// returned with munmap of the same size; everything else is delegated to `System`.
unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout) {
            unsafe { map_huge(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout) {
            // Fresh anonymous pages are already zero.
            unsafe { map_huge(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(layout) {
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `layout.align()` is valid and new_size is non-zero.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_huge(layout) && !is_huge(new_layout) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
