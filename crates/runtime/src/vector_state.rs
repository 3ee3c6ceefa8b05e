//! tract's AVX-512 matrix kernels return with the upper halves of the vector registers in use
//! (they end without `vzeroupper`). Until something clears them, the legacy-SSE instructions
//! that baseline x86-64 code compiles to each pay for the dirty state: on an MLP, the Softmax
//! of 256 rows of 8 classes after a Gemm took as long as the Gemm. skiff's own ops, and the
//! conversions after a run, start with [`clear_upper`].

/// Clears the upper halves of the vector registers where the CPU has them (`vzeroupper`).
#[inline]
pub(crate) fn clear_upper() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, the one feature `vzeroupper` needs; it writes no memory and
        // leaves the lower 128 bits, the only ones baseline code reads, as they are.
        #[allow(unsafe_code)]
        unsafe {
            zeroupper()
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn zeroupper() {
    std::arch::x86_64::_mm256_zeroupper();
}
