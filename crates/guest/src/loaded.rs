//! The model an engine holds, and the allocator it is loaded with; shared by the component
//! (`lib.rs`) and the preview-1 command (`module.rs`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

use skiff_host::Repository;
use skiff_runtime::Model;

/// The model, alone in a repository for the protocol's endpoints.
pub struct Loaded {
    pub name: String,
    pub repo: Repository,
}

impl Loaded {
    /// Parses and optimises the ONNX file that `bytes` gives, served as `name`; a model that
    /// cannot load is an error naming why. What is freed meanwhile, the file's bytes included,
    /// is cleared.
    pub fn new(
        name: String,
        bytes: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<Loaded, String> {
        LOADING.store(true, Ordering::Relaxed);
        let model =
            bytes().and_then(|bytes| Model::from_bytes(&name, &bytes).map_err(|e| e.to_string()));
        LOADING.store(false, Ordering::Relaxed);
        let repo = Repository::single(&name, model?);
        Ok(Loaded { name, repo })
    }
}

/// The system allocator, clearing what is freed while the model loads: `skiff pack` snapshots
/// the instance's memory once the model is loaded, and zeroed memory takes no room in the
/// snapshot, so the component holds the model and not the leftovers of parsing and optimising it.
struct ClearingWhileLoading;

static LOADING: AtomicBool = AtomicBool::new(false);

// SAFETY: every call goes to the system allocator with the caller's own arguments; `dealloc`
// first writes zeros over the block being freed, which the caller owns until the call, and
// `realloc` while loading does what `GlobalAlloc::realloc`'s default does.
unsafe impl GlobalAlloc for ClearingWhileLoading {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if LOADING.load(Ordering::Relaxed) {
            unsafe { clear(ptr, layout.size()) };
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if LOADING.load(Ordering::Relaxed) {
            return unsafe { move_and_clear(ptr, layout, new_size) };
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Zeroes the `size` bytes at `ptr`, which are about to be freed.
unsafe fn clear(ptr: *mut u8, size: usize) {
    unsafe { ptr.write_bytes(0, size) };
    // Else the compiler may drop the writes, the memory being freed right after.
    std::hint::black_box(ptr);
}

/// `realloc` as a new block, the old one copied, then cleared and freed.
unsafe fn move_and_clear(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    unsafe {
        let new = System.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !new.is_null() {
            ptr.copy_to_nonoverlapping(new, layout.size().min(new_size));
            clear(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: ClearingWhileLoading = ClearingWhileLoading;
