//! Coverage-weighted statistics of one zone, accumulated pixel by pixel and
//! mergeable (for strips and for roll-ups to coarser zones).

use std::collections::HashMap;
use std::sync::Arc;

/// A predicate on pixel values (for the `coverage` statistic).
pub type ValuePredicate = Arc<dyn Fn(f64) -> bool + Send + Sync>;

/// Which accumulations a pass computes beyond count and sum (each costs).
#[derive(Clone, Default)]
pub struct Needs {
    /// `min` and `max`.
    pub minmax: bool,
    /// `stdev`.
    pub variance: bool,
    /// A histogram of values: `majority`, `minority`, `variety`, `frac`.
    pub histogram: bool,
    /// Weighted sums with a second raster of weights: `weighted_mean`.
    pub weights: bool,
    /// Predicates whose covered share is wanted: `coverage`.
    pub predicates: Vec<ValuePredicate>,
}

impl std::fmt::Debug for Needs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Needs")
            .field("minmax", &self.minmax)
            .field("variance", &self.variance)
            .field("histogram", &self.histogram)
            .field("weights", &self.weights)
            .field("predicates", &self.predicates.len())
            .finish()
    }
}

/// The statistics of one zone, following exactextract's definitions: with
/// `c` the coverage fraction of a pixel and `v` its value, over pixels with
/// a valid value (not nodata) and `c > 0`:
///
/// | statistic | definition |
/// |---|---|
/// | `count` | Σ c |
/// | `sum` | Σ c·v |
/// | `mean` | Σ c·v / Σ c |
/// | `min`, `max` | min, max of v |
/// | `stdev` | coverage-weighted population standard deviation of v |
/// | `majority` | the value with the largest Σ c (ties: the largest value) |
/// | `minority` | the value with the smallest Σ c (ties: the smallest value) |
/// | `variety` | the number of distinct values |
/// | `frac(x)` | Σ c over pixels of value x / Σ c |
/// | `weighted_mean` | Σ c·w·v / Σ c·w, `w` from a weights raster (pixels with nodata weight skipped) |
/// | `coverage(p)` | Σ c over pixels whose value satisfies p / Σ c |
///
/// A zone without valid pixels has `count` = `sum` = 0 and every other
/// statistic `None`.
///
/// ```
/// use terrastat_core::raster::{Needs, ZonalStats};
/// let needs = Needs { minmax: true, variance: true, histogram: true, ..Needs::default() };
/// let mut z = ZonalStats::new(&needs);
/// z.add(&needs, 10.0, 1.0, f64::NAN);
/// z.add(&needs, 20.0, 0.5, f64::NAN);
/// assert_eq!(z.count(), 1.5);
/// assert_eq!(z.mean(), Some(20.0 / 1.5));
/// assert_eq!(z.majority(), Some(10.0));
/// # assert_eq!(z.variety(), Some(2));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ZonalStats {
    count: f64,
    sum: f64,
    // West's weighted running mean and sum of squared deviations.
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    hist: HashMap<u64, f64>,
    wsum: f64,
    wden: f64,
    pred: Vec<f64>,
}

fn key(v: f64) -> u64 {
    // -0.0 and 0.0 are one value.
    (v + 0.0).to_bits()
}

impl ZonalStats {
    /// Empty statistics with room for what `needs` asks.
    pub fn new(needs: &Needs) -> ZonalStats {
        ZonalStats {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            pred: vec![0.0; needs.predicates.len()],
            ..ZonalStats::default()
        }
    }

    /// Add a pixel of valid value `v` (not `NaN`) covered by fraction `c`,
    /// with weight `w` (`NaN` when there is no weight or it is nodata).
    #[inline]
    pub fn add(&mut self, needs: &Needs, v: f64, c: f64, w: f64) {
        if c <= 0.0 || v.is_nan() {
            return;
        }
        let before = self.count;
        self.count += c;
        self.sum += c * v;
        if needs.variance {
            let delta = v - self.mean;
            let r = delta * c / self.count;
            self.mean += r;
            self.m2 += before * delta * r;
        }
        if needs.minmax {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        if needs.histogram {
            *self.hist.entry(key(v)).or_insert(0.0) += c;
        }
        if needs.weights && !w.is_nan() {
            self.wsum += c * w * v;
            self.wden += c * w;
        }
        for (p, acc) in needs.predicates.iter().zip(&mut self.pred) {
            if p(v) {
                *acc += c;
            }
        }
    }

    /// Merge the statistics of a disjoint region (another strip of the same
    /// zone, or another member of a roll-up group).
    pub fn merge(&mut self, o: &ZonalStats) {
        if o.count == 0.0 {
            return;
        }
        let n = self.count + o.count;
        let delta = o.mean - self.mean;
        self.m2 += o.m2 + delta * delta * self.count * o.count / n;
        self.mean += delta * o.count / n;
        self.count = n;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        for (k, c) in &o.hist {
            *self.hist.entry(*k).or_insert(0.0) += c;
        }
        self.wsum += o.wsum;
        self.wden += o.wden;
        for (a, b) in self.pred.iter_mut().zip(&o.pred) {
            *a += b;
        }
    }

    fn valid(&self) -> bool {
        self.count > 0.0
    }

    /// Σ c (0 without valid pixels).
    pub fn count(&self) -> f64 {
        self.count
    }
    /// Σ c·v (0 without valid pixels).
    pub fn sum(&self) -> f64 {
        self.sum
    }
    /// Σ c·v / Σ c.
    pub fn mean(&self) -> Option<f64> {
        self.valid().then(|| self.sum / self.count)
    }
    /// The smallest value (needs `minmax`).
    pub fn min(&self) -> Option<f64> {
        (self.valid() && self.min.is_finite()).then_some(self.min)
    }
    /// The largest value (needs `minmax`).
    pub fn max(&self) -> Option<f64> {
        (self.valid() && self.max.is_finite()).then_some(self.max)
    }
    /// Coverage-weighted population standard deviation (needs `variance`).
    pub fn stdev(&self) -> Option<f64> {
        self.valid().then(|| (self.m2 / self.count).max(0.0).sqrt())
    }
    fn classes(&self) -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = self
            .hist
            .iter()
            .map(|(k, c)| (f64::from_bits(*k), *c))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }
    /// The value with the largest Σ c; ties go to the largest value, as in
    /// exactextract (needs `histogram`).
    pub fn majority(&self) -> Option<f64> {
        let mut best: Option<(f64, f64)> = None;
        for (v, c) in self.classes() {
            if best.is_none_or(|(_, bc)| c >= bc) {
                best = Some((v, c));
            }
        }
        best.map(|b| b.0)
    }
    /// The value with the smallest Σ c; ties go to the smallest value (needs `histogram`).
    pub fn minority(&self) -> Option<f64> {
        let mut best: Option<(f64, f64)> = None;
        for (v, c) in self.classes() {
            if best.is_none_or(|(_, bc)| c < bc) {
                best = Some((v, c));
            }
        }
        best.map(|b| b.0)
    }
    /// The number of distinct values (needs `histogram`).
    pub fn variety(&self) -> Option<u64> {
        self.valid().then_some(self.hist.len() as u64)
    }
    /// The share of Σ c of each value, ascending by value (needs `histogram`).
    pub fn frac(&self) -> Vec<(f64, f64)> {
        self.classes()
            .into_iter()
            .map(|(v, c)| (v, c / self.count))
            .collect()
    }
    /// The share of Σ c of value `x` (`None` without valid pixels).
    pub fn frac_of(&self, x: f64) -> Option<f64> {
        self.valid()
            .then(|| self.hist.get(&key(x)).copied().unwrap_or(0.0) / self.count)
    }
    /// Σ c·w·v / Σ c·w (needs `weights`).
    pub fn weighted_mean(&self) -> Option<f64> {
        (self.wden > 0.0).then(|| self.wsum / self.wden)
    }
    /// The covered share of predicate `i` of [`Needs::predicates`].
    pub fn coverage(&self, i: usize) -> Option<f64> {
        self.valid()
            .then(|| self.pred.get(i).copied().unwrap_or(0.0) / self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all() -> Needs {
        Needs {
            minmax: true,
            variance: true,
            histogram: true,
            weights: true,
            predicates: vec![Arc::new(|v| v > 0.5)],
        }
    }

    proptest! {
        /// Merging split accumulations equals accumulating everything, and
        /// the statistics equal their two-pass definitions.
        #[test]
        fn merge_equals_one_pass(px in prop::collection::vec((0u8..6, 0.01..1.0f64, 0.1..3.0f64), 1..60), cut in 0usize..60) {
            let needs = all();
            let mut whole = ZonalStats::new(&needs);
            let (mut a, mut b) = (ZonalStats::new(&needs), ZonalStats::new(&needs));
            let cut = cut.min(px.len());
            for (i, (v, c, w)) in px.iter().enumerate() {
                let v = *v as f64 * 0.25 + 1000.0;
                whole.add(&needs, v, *c, *w);
                if i < cut { a.add(&needs, v, *c, *w) } else { b.add(&needs, v, *c, *w) }
            }
            a.merge(&b);
            let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                (None, None) => true,
                _ => false,
            };
            prop_assert!(close(a.mean(), whole.mean()));
            prop_assert!(close(a.stdev(), whole.stdev()));
            prop_assert_eq!(a.majority(), whole.majority());
            prop_assert_eq!(a.variety(), whole.variety());
            // Two-pass definitions.
            let sc: f64 = px.iter().map(|p| p.1).sum();
            let mean: f64 = px.iter().map(|p| p.1 * (p.0 as f64 * 0.25 + 1000.0)).sum::<f64>() / sc;
            let var: f64 = px.iter().map(|p| p.1 * (p.0 as f64 * 0.25 + 1000.0 - mean).powi(2)).sum::<f64>() / sc;
            prop_assert!(close(whole.stdev(), Some(var.sqrt())));
            prop_assert!(close(whole.mean(), Some(mean)));
            let wm = px.iter().map(|p| p.1 * p.2 * (p.0 as f64 * 0.25 + 1000.0)).sum::<f64>()
                / px.iter().map(|p| p.1 * p.2).sum::<f64>();
            prop_assert!(close(whole.weighted_mean(), Some(wm)));
            prop_assert!(close(whole.coverage(0), Some(1.0)));
            let fsum: f64 = whole.frac().iter().map(|f| f.1).sum();
            prop_assert!((fsum - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn empty_zone_and_ties() {
        let needs = all();
        let mut z = ZonalStats::new(&needs);
        assert_eq!((z.count(), z.sum()), (0.0, 0.0));
        assert_eq!(
            (z.mean(), z.min(), z.stdev(), z.majority()),
            (None, None, None, None)
        );
        assert_eq!(z.variety(), None);
        z.add(&needs, f64::NAN, 1.0, 1.0);
        assert_eq!(z.count(), 0.0);
        z.add(&needs, 3.0, 0.5, f64::NAN);
        z.add(&needs, 2.0, 0.5, f64::NAN);
        assert_eq!((z.majority(), z.minority()), (Some(3.0), Some(2.0)));
        assert_eq!(z.weighted_mean(), None);
        assert_eq!(z.frac_of(3.0), Some(0.5));
        assert_eq!(z.frac_of(7.0), Some(0.0));
    }
}
