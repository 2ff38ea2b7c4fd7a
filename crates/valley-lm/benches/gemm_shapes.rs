//! `cargo bench -p valley-lm --bench gemm_shapes`: GFLOP/s of gemm's f32 matmul (the crate candle's
//! CPU backend and `valley_lm::fused` call) on one thread, at the matmuls of one training step of
//! the default student (`valley bench train`: 8 × 256 tokens, hidden 128, intermediate 384, 2
//! key/value heads of 32, vocabulary 261). Forward `x · Wᵀ`, backward `dy · W` and `dyᵀ · x`, and
//! the attention blocks. A benchmark, not a test: the numbers go in BENCHMARKS.md.
//!
//! It is how the cost of the dev profile's debug assertions was measured: run it once as above
//! and once with `--profile dev --config 'profile.dev.package."*".debug-assertions=true'` (in a
//! separate `CARGO_TARGET_DIR`, since every dependency is rebuilt).

use std::time::Instant;

/// One matmul `C[m, n] = A[m, k] · B[k, n]`; `a_t`: A is stored as `[k, m]`, `b_t`: B as `[n, k]`.
struct Shape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    a_t: bool,
    b_t: bool,
}

const fn shape(name: &'static str, m: usize, k: usize, n: usize, a_t: bool, b_t: bool) -> Shape {
    Shape {
        name,
        m,
        k,
        n,
        a_t,
        b_t,
    }
}

const TOKENS: usize = 8 * 256;
const SHAPES: &[Shape] = &[
    shape("q,k,v forward  x·Wᵀ", TOKENS, 128, 256, false, true),
    shape("o forward", TOKENS, 128, 128, false, true),
    shape("gate,up forward", TOKENS, 128, 768, false, true),
    shape("down forward", TOKENS, 384, 128, false, true),
    shape("lm head forward", TOKENS, 128, 261, false, true),
    shape("gate,up dx  dy·W", TOKENS, 768, 128, false, false),
    shape("gate,up dW  dyᵀ·x", 768, TOKENS, 128, true, false),
    shape("down dW", 128, TOKENS, 384, true, false),
    shape("lm head dW", 261, TOKENS, 128, true, false),
    shape("attention Q·Kᵀ block", 64, 32, 256, false, true),
    shape("attention P·V block", 64, 256, 32, false, false),
];

/// Best of three rounds, each of enough repetitions for ~2 GFLOP; operands rotate over `SETS`
/// buffers (~24 MB in all for the big shapes) so that they are not all hot in cache.
fn gflops(s: &Shape) -> f64 {
    const SETS: usize = 8;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut random = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    };
    let mut sets: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..SETS)
        .map(|_| (random(s.m * s.k), random(s.k * s.n), vec![0.0; s.m * s.n]))
        .collect();
    let (a_rs, a_cs) = if s.a_t {
        (1, s.m as isize)
    } else {
        (s.k as isize, 1)
    };
    let (b_rs, b_cs) = if s.b_t {
        (1, s.k as isize)
    } else {
        (s.n as isize, 1)
    };
    let flop = 2.0 * (s.m * s.k * s.n) as f64;
    let reps = ((2e9 / flop) as usize).max(SETS);
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        for r in 0..reps {
            let (a, b, c) = &mut sets[r % SETS];
            // SAFETY: the pointers and strides describe the buffers just allocated: A is m × k,
            // B is k × n and C is m × n, each with the strides computed above.
            unsafe {
                gemm::gemm(
                    s.m,
                    s.n,
                    s.k,
                    c.as_mut_ptr(),
                    1,
                    s.n as isize,
                    false,
                    a.as_ptr(),
                    a_cs,
                    a_rs,
                    b.as_ptr(),
                    b_cs,
                    b_rs,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        best = best.min(start.elapsed().as_secs_f64() / reps as f64);
    }
    flop / best / 1e9
}

fn main() {
    println!("gemm f32, one thread, the default student's training-step matmuls");
    println!(
        "{:24} {:>5} {:>5} {:>5} {:>8}",
        "matmul", "m", "k", "n", "GFLOP/s"
    );
    for s in SHAPES {
        println!(
            "{:24} {:>5} {:>5} {:>5} {:>8.1}",
            s.name,
            s.m,
            s.k,
            s.n,
            gflops(s)
        );
    }
}
