//! How many multiply-adds per nanosecond one core retires with each instruction the
//! recurrent kernels are built on, 512 bits wide: `vfmadd231ps` (f32: 16 per instruction),
//! `vdpbf16ps` (bf16 pairs: 32) and `vpdpbusd` (int8 quads: 64). Sixteen independent sums, so
//! the figure is the instruction's throughput, not its latency. It bounds what the bf16 and
//! int8 kernels can gain over f32 where the arithmetic, not memory, limits them.
//!
//! ```sh
//! cargo bench -p models --bench instructions
//! ```

use std::time::Instant;

/// Iterations of sixteen instructions each.
const ITERATIONS: usize = 50_000_000;

fn main() {
    println!(
        "CPU: {}, {}; one thread, 16 independent sums, best of 3",
        isa::cpu_model(),
        isa::cpu_flags()
    );
    println!(
        "| instruction | multiply-adds each | instructions per ns | multiply-adds per ns | ÷ f32 FMA |"
    );
    println!("|---|---|---|---|---|");
    #[cfg(target_arch = "x86_64")]
    x86::table();
    #[cfg(not(target_arch = "x86_64"))]
    println!("(x86-64 only)");
}

/// The best of three timings of `run`, in instructions per nanosecond.
fn rate(run: impl Fn() -> f32) -> f64 {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(run());
            (ITERATIONS * 16) as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{ITERATIONS, rate};
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// An instruction's name, its multiply-adds and its loop.
    type Row = (&'static str, usize, fn() -> f32);

    pub fn table() {
        // One loop measures all three, so it is compiled for all three.
        let all = ["avx512f", "avx512bf16", "avx512vnni"];
        let supported = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
            && std::arch::is_x86_feature_detected!("avx512vnni");
        if !supported {
            println!("(needs {}: not all on this CPU)", all.join(", "));
            return;
        }
        // SAFETY (each row): the CPU has every feature `chains` is compiled for (above).
        let rows: [Row; 3] = [
            ("vfmadd231ps zmm", 16, || unsafe {
                chains(Instruction::Fma)
            }),
            ("vdpbf16ps zmm", 32, || unsafe { chains(Instruction::Bf16) }),
            ("vpdpbusd zmm", 64, || unsafe { chains(Instruction::Int8) }),
        ];
        let mut f32_rate = None;
        for (name, products, run) in rows {
            let per_ns = rate(run);
            let macs = per_ns * products as f64;
            let base = *f32_rate.get_or_insert(macs);
            println!(
                "| {name} | {products} | {per_ns:.2} | {macs:.1} | {:.2} |",
                macs / base
            );
        }
    }

    /// Multiply-adds by the chosen instruction into 16 independent sums, `ITERATIONS` times.
    /// One loop serves all three because a separate f32 loop gets two of its sums spilled to
    /// the stack, which halves the rate it shows.
    #[target_feature(enable = "avx512f,avx512bf16,avx512vnni")]
    unsafe fn chains(instruction: Instruction) -> f32 {
        let (x, y) = (
            black_box(_mm512_set1_ps(1.0001)),
            black_box(_mm512_set1_ps(0.9999)),
        );
        // SAFETY: both are 512 bits of plain data.
        let pairs: __m512bh =
            unsafe { std::mem::transmute(black_box(_mm512_set1_epi32(0x3f80_3f80))) };
        let quads = black_box(_mm512_set1_epi32(0x0101_0101));
        let mut floats = [_mm512_setzero_ps(); 16];
        let mut integers = [_mm512_setzero_si512(); 16];
        for _ in 0..ITERATIONS {
            match instruction {
                Instruction::Fma => floats
                    .iter_mut()
                    .for_each(|s| *s = _mm512_fmadd_ps(x, y, *s)),
                Instruction::Bf16 => floats
                    .iter_mut()
                    .for_each(|s| *s = _mm512_dpbf16_ps(*s, pairs, pairs)),
                Instruction::Int8 => integers
                    .iter_mut()
                    .for_each(|s| *s = _mm512_dpbusd_epi32(*s, quads, quads)),
            }
        }
        let floats: f32 = floats.iter().map(|&s| _mm512_reduce_add_ps(s)).sum();
        let integers: i32 = integers.iter().map(|&s| _mm512_reduce_add_epi32(s)).sum();
        floats + integers as f32
    }

    #[derive(Clone, Copy)]
    enum Instruction {
        Fma,
        Bf16,
        Int8,
    }
}
