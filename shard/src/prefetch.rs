//! Software prefetch, so that the memory a request will touch can be
//! requested before the request runs (see [`crate::Shard::prefetch`]).
//!
//! At 10^6 PEs almost every line a request touches comes from main memory
//! (about 170-200 ns a dependent load on the development host), and one
//! request's loads depend on each other: the index slot names the pool, the
//! pool names its arrays, the selection names the PEs. Asking for the lines
//! of several requests ahead, one level deeper for each, lets their loads
//! overlap instead of queueing.

/// Asks the CPU to bring the cache line holding `p` into its caches. A hint
/// only: nothing observable changes, whatever `p` is.
#[inline(always)]
pub(crate) fn line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: PREFETCHT0 reads nothing architecturally and cannot fault for
    // any address, valid or not; SSE is part of the x86_64 baseline, so the
    // target feature the intrinsic asks for is always present.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Prefetches the lines of the first `bytes` bytes from `p`.
#[inline(always)]
pub(crate) fn span<T>(p: *const T, bytes: usize) {
    let p = p.cast::<u8>();
    let mut off = 0;
    while off < bytes {
        line(p.wrapping_add(off));
        off += 64;
    }
    // The last byte's line, when `p` is not line-aligned.
    if bytes > 0 {
        line(p.wrapping_add(bytes - 1));
    }
}
