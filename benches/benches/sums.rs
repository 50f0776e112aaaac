//! The cost of exact sums (`terrastat_core::sum`) against plain `f64`
//! addition, on 1,000,000 terms grouped as zones of 300 (a commune's
//! buildings at 10 M over France), two kinds of terms:
//! - `floor`: floor areas with one decimal (the generator's), as `sum` adds them;
//! - `weighted`: the same times a fraction, as an extensive interpolation adds them.
//!
//! `plain` is `f64` addition (order-dependent), `exact_add` adds each term to an
//! `ExactSum` (a Shewchuk expansion), `many_terms` is what the zone loops do
//! (`ManyTerms`: integer digits, then the shortest expansion).
//!
//! `cargo bench -p terrastat-benches --bench sums`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use terrastat_core::{ExactSum, ManyTerms};

const ZONE: usize = 300;

fn bench(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let floor: Vec<f64> = (0..1_000_000)
        .map(|_| (rng.random_range(200..40_000) as f64) / 10.0)
        .collect();
    let weighted: Vec<f64> = floor.iter().map(|x| x * rng.random::<f64>()).collect();
    let mut g = c.benchmark_group("sums");
    g.throughput(Throughput::Elements(floor.len() as u64));
    for (name, terms) in [("floor", &floor), ("weighted", &weighted)] {
        g.bench_with_input(BenchmarkId::new("plain", name), terms, |b, t| {
            b.iter(|| t.chunks(ZONE).map(|z| z.iter().sum::<f64>()).sum::<f64>())
        });
        g.bench_with_input(BenchmarkId::new("exact_add", name), terms, |b, t| {
            b.iter(|| {
                t.chunks(ZONE)
                    .map(|z| z.iter().copied().collect::<ExactSum>().value())
                    .sum::<f64>()
            })
        });
        g.bench_with_input(BenchmarkId::new("many_terms", name), terms, |b, t| {
            b.iter(|| {
                t.chunks(ZONE)
                    .map(|z| {
                        let mut m = ManyTerms::new();
                        z.iter().for_each(|x| m.add(*x));
                        let mut s = ExactSum::new();
                        m.add_to(&mut s);
                        s.value()
                    })
                    .sum::<f64>()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
