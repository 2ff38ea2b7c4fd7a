//! Process settings that tensor work in plugins needs, applied once at start by the `valley`
//! binary (plugins are loaded into its process and share its C allocator and environment).

/// Sets rayon's thread count to `threads` unless `RAYON_NUM_THREADS` is set, and keeps freed
/// tensor buffers in glibc's heap.
///
/// - candle's CPU kernels read /proc/cpuinfo on every matrix product unless `RAYON_NUM_THREADS`
///   is set (measured: single-sequence generation ~3× faster with it set).
/// - glibc serves every allocation over 128 KiB with a fresh `mmap` and returns it with `munmap`
///   when freed, so each activation and gradient tensor of a training step costs page faults and
///   zeroing in the kernel. Never using `mmap` for allocations (`M_MMAP_MAX` 0: they come from the
///   heap, also those over the 32 MiB that the mmap threshold cannot exceed, such as a packed
///   batch's attention scores) and never trimming the heap lets the buffers be reused. Measured
///   with `valley bench train --no-reference --seq 512 --batch 8 --steps 10` (2 cores): 1,868 →
///   3,773 tokens/s with the threshold raised, system time 21.1 s → 3.6 s, the same loss; at
///   `--batch 16` (tensors over 32 MiB, one thread) the threshold alone gave 1,639 tokens/s and
///   16.6 s of system time, without mmap 3,357 and 3.1 s, peak memory 3.35 → 3.54 GB
///   (BENCHMARKS.md).
///
/// Call it before any other thread starts (it writes the environment).
pub fn configure(threads: usize) {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", threads.max(1).to_string());
    }
    keep_freed_memory();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // glibc's M_MMAP_THRESHOLD maximum on 64-bit targets (HEAP_MAX_SIZE / 2).
    const MMAP_THRESHOLD: libc::c_int = 32 * 1024 * 1024;
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 * 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
