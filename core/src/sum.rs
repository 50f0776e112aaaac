//! Correctly rounded sums, whatever the order of their terms.
//!
//! An indicator's sums (counts, sums, the numerators and denominators of
//! means, shares and interpolations) are folded in file order on one
//! machine, partition after partition when a layer is streamed, and in any
//! order on a Spark cluster. Plain `f64` addition would give results that
//! differ in their last bits between these runs. [`ExactSum`] keeps the
//! *exact* sum of its terms, as a short expansion of non-overlapping `f64`
//! partials (Shewchuk, "Adaptive Precision Floating-Point Arithmetic and
//! Fast Robust Geometric Predicates", 1997; the algorithm of Python's
//! `math.fsum`), and rounds it once, to nearest with ties to even. Every
//! order and every grouping of the same terms gives the same bits.
//!
//! The expansion of real data is one or two partials, held inline; a sum
//! whose terms span more than ~100 binary orders of magnitude spills to the
//! heap.
//!
//! To cross a cluster, an exact sum is written as integer digits in base
//! 2³² at fixed binary scales ([`ExactSum::digits`]): digits of many
//! partial sums add up exactly in a 64-bit integer (Spark's `sum(long)`), in
//! any order, and [`ExactSum::add_digit`] turns the totals back into the
//! same exact sum.
//!
//! ```
//! use terrastat_core::ExactSum;
//!
//! let terms = [1e16, 1.0, -1e16, 0.1, 0.2];
//! let mut a = ExactSum::new();
//! terms.iter().for_each(|t| a.add(*t));
//! let mut b = ExactSum::new();
//! terms.iter().rev().for_each(|t| b.add(*t));
//! assert_eq!(a.value(), 1.3000000000000000444); // the exact sum, rounded once
//! assert_eq!(a.value().to_bits(), b.value().to_bits());
//! assert_ne!(terms.iter().sum::<f64>(), a.value()); // plain addition loses the 1.0
//!
//! // Across a cluster: digits, summed as integers, give the same sum back.
//! let mut c = ExactSum::new();
//! for (k, d) in a.digits().unwrap() {
//!     c.add_digit(k, d);
//! }
//! assert_eq!(c.value().to_bits(), a.value().to_bits());
//! ```

use smallvec::SmallVec;

/// The exact sum of `f64` terms, rounded once when read ([`ExactSum::value`]).
///
/// Non-finite terms follow IEEE addition, which does not depend on the
/// order either: an infinity gives itself, opposite infinities or a NaN give
/// NaN. A sum of finite terms whose partials overflow `f64` (beyond
/// ±1.8e308) becomes that infinity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExactSum {
    /// Non-overlapping partials by increasing magnitude, none zero; or a
    /// single non-finite value.
    parts: SmallVec<[f64; 2]>,
}

/// The lowest digit scale: a digit at scale `k` is worth `d · 2^(32k)`, and
/// the lowest bit of an `f64` (2⁻¹⁰⁷⁴) falls in the digit of scale -34.
pub const LOWEST_DIGIT: i32 = -34;

impl ExactSum {
    /// An empty sum (its value is 0).
    pub const fn new() -> Self {
        ExactSum {
            parts: SmallVec::new_const(),
        }
    }

    /// Whether a non-finite term (or an overflow) decided the sum.
    fn special(&self) -> Option<f64> {
        match self.parts.as_slice() {
            [x] if !x.is_finite() => Some(*x),
            _ => None,
        }
    }

    /// Add a term, exactly.
    #[inline]
    pub fn add(&mut self, x: f64) {
        // One or two finite partials (real data): the same steps as the
        // general loop below, with branch-free TwoSum.
        match self.parts.as_mut_slice() {
            [] => {
                if x != 0.0 {
                    self.parts.push(x);
                }
                return;
            }
            [y] => {
                let (s, e) = two_sum(x, *y);
                if s.is_finite() {
                    if e == 0.0 {
                        *y = s;
                    } else {
                        *y = e;
                        self.parts.push(s);
                    }
                    return;
                }
            }
            [p0, p1] => {
                let (s0, e0) = two_sum(x, *p0);
                let (s1, e1) = two_sum(s0, *p1);
                if s1.is_finite() {
                    match (e0 != 0.0, e1 != 0.0) {
                        (true, true) => {
                            (*p0, *p1) = (e0, e1);
                            self.parts.push(s1);
                        }
                        (true, false) => (*p0, *p1) = (e0, s1),
                        (false, true) => (*p0, *p1) = (e1, s1),
                        (false, false) => {
                            *p0 = s1;
                            self.parts.truncate(1);
                        }
                    }
                    return;
                }
            }
            _ => {}
        }
        self.add_slow(x);
    }

    /// [`ExactSum::add`] for any number of partials and non-finite values.
    fn add_slow(&mut self, x: f64) {
        if let Some(s) = self.special() {
            self.parts[0] = s + x;
            return;
        }
        if !x.is_finite() {
            self.parts.clear();
            self.parts.push(x);
            return;
        }
        let mut x = x;
        let mut i = 0;
        for j in 0..self.parts.len() {
            let mut y = self.parts[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            // Fast2Sum: hi + lo == x + y exactly, as |x| >= |y|.
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.parts[i] = lo;
                i += 1;
            }
            x = hi;
        }
        self.parts.truncate(i);
        if x != 0.0 {
            if !x.is_finite() {
                // The partials overflowed.
                self.parts.clear();
            }
            self.parts.push(x);
        }
    }

    /// Add every term of another sum, exactly.
    pub fn merge(&mut self, other: &ExactSum) {
        for p in &other.parts {
            self.add(*p);
        }
    }

    /// The exact sum rounded to the nearest `f64`, ties to even (0 when
    /// empty).
    pub fn value(&self) -> f64 {
        let p = &self.parts;
        let Some(&top) = p.last() else {
            return 0.0;
        };
        if !top.is_finite() {
            return top;
        }
        // From the top, add partials while the sum stays exact.
        let mut n = p.len() - 1;
        let mut hi = top;
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            lo = y - (hi - x);
            if lo != 0.0 {
                break;
            }
        }
        // A half-way case: the partials below decide which way it rounds.
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }

    /// The exact sum as base-2³² digits `(k, d)`, each worth `d · 2^(32k)`,
    /// by increasing scale `k` (from [`LOWEST_DIGIT`] to 31), none zero and
    /// every `|d| < 2³³`; `None` when a non-finite term decided the sum
    /// (see [`ExactSum::value`]). Digits of many sums add up exactly in an
    /// `i64` (fewer than 2³⁰ sums per scale).
    pub fn digits(&self) -> Option<Vec<(i32, i64)>> {
        if self.special().is_some() {
            return None;
        }
        // The partials' digits, uncarried: non-overlapping partials put
        // disjoint bits in each digit, so `|d| < 2³²`.
        let mut m = ManyTerms::new();
        self.parts.iter().for_each(|p| m.add(*p));
        Some(
            m.d.iter()
                .enumerate()
                .filter(|(_, x)| **x != 0)
                .map(|(i, x)| (i as i32 - 2 + LOWEST_DIGIT, *x)) // two pads below
                .collect(),
        )
    }

    /// Add the digit `d · 2^(32k)` exactly (see [`ExactSum::digits`]).
    pub fn add_digit(&mut self, k: i32, d: i64) {
        // Two halves of at most 32 bits each, of the digit's sign: exact as
        // f64 (a total above the largest f64 gives an infinity, as the sum
        // would).
        let a = d.unsigned_abs();
        let sign = if d < 0 { -1.0 } else { 1.0 };
        self.add(sign * scale((a >> 32) as f64, 32 * (k + 1)));
        self.add(sign * scale((a & 0xffff_ffff) as f64, 32 * k));
    }
}

/// `(s, e)` with `s = fl(a + b)` and `s + e == a + b` exactly (Knuth's
/// TwoSum; `s` finite).
#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// `x · 2^e`, exact whenever the result is representable: by steps of at
/// most 2^±1000, each between `x` and the result in magnitude.
fn scale(mut x: f64, mut e: i32) -> f64 {
    let pow2 = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
    while e > 1000 {
        x *= pow2(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= pow2(-1000);
        e += 1000;
    }
    x * pow2(e)
}

/// The significand and exponent of a finite `x`: `|x| = m · 2^e`, with
/// `m < 2⁵³` and `e >= -1074`.
#[inline(always)]
fn decompose(x: f64) -> (u64, i32) {
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    if e == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), e - 1075)
    }
}

/// Digits of [`ManyTerms`]: 2 zero pads below (so that a 3-digit window
/// always fits), 66 digits of the `f64` range, 2 for carries above.
const WIDE: usize = 70;

/// Many terms added at once to an [`ExactSum`]: every term goes into
/// base-2³² digits of the whole `f64` range held in `i64`s (Neal's "small
/// superaccumulator", 2015), a few integer additions per term whatever the
/// magnitudes, and [`ManyTerms::add_to`] rounds nothing: it turns the digits
/// into the sum's shortest expansion (53 bits per partial).
///
/// ```
/// use terrastat_core::{ExactSum, ManyTerms};
///
/// let mut s = ExactSum::new();
/// s.add(0.1);
/// let mut m = ManyTerms::new();
/// for x in [0.2, 0.3, 1e-30] {
///     m.add(x);
/// }
/// m.add_to(&mut s);
/// let one: ExactSum = [0.1, 0.2, 0.3, 1e-30].into_iter().collect();
/// assert_eq!(s.value().to_bits(), one.value().to_bits());
/// ```
#[derive(Debug, Clone)]
pub struct ManyTerms {
    /// Digit `i` is worth `d[i] · 2^(32(i - 2) - 1088)`.
    d: [i64; WIDE],
    /// The IEEE sum of the non-finite terms, if any.
    special: Option<f64>,
    /// Terms since the last carry (a digit takes 2³⁰ of them safely).
    adds: u32,
}

impl Default for ManyTerms {
    fn default() -> Self {
        Self::new()
    }
}

impl ManyTerms {
    /// No terms yet.
    pub fn new() -> Self {
        ManyTerms {
            d: [0; WIDE],
            special: None,
            adds: 0,
        }
    }

    /// Add a term, exactly.
    #[inline]
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            self.special = Some(self.special.map_or(x, |s| s + x));
            return;
        }
        let (m, e) = decompose(x);
        let p = (e + 1088) as u32;
        let (q, r) = ((p / 32) as usize + 2, p % 32);
        let v = (m as u128) << r;
        let lo = (v as u64 & 0xffff_ffff) as i64;
        let mid = ((v >> 32) as u64 & 0xffff_ffff) as i64;
        let hi = (v >> 64) as i64;
        if let Some(d) = self.d.get_mut(q..q + 3) {
            if x < 0.0 {
                d[0] -= lo;
                d[1] -= mid;
                d[2] -= hi;
            } else {
                d[0] += lo;
                d[1] += mid;
                d[2] += hi;
            }
        }
        self.adds += 1;
        if self.adds >= 1 << 30 {
            self.carry();
        }
    }

    /// Every digit but the top in `[0, 2³²)`, the top holding the sign.
    fn carry(&mut self) {
        for i in 0..WIDE - 1 {
            let c = self.d[i] >> 32;
            self.d[i] -= c << 32;
            self.d[i + 1] += c;
        }
        self.adds = 0;
    }

    /// Add the terms to `sum`, exactly; `sum` is left as the shortest
    /// expansion of the total.
    pub fn add_to(mut self, sum: &mut ExactSum) {
        if let Some(s) = sum.special() {
            sum.parts[0] = self.special.map_or(s, |t| s + t);
            return;
        }
        if let Some(t) = self.special {
            sum.parts.clear();
            sum.parts.push(t);
            return;
        }
        for p in std::mem::take(&mut sum.parts) {
            self.add(p);
        }
        self.carry();
        let negative = self.d[WIDE - 1] < 0;
        if negative {
            self.d.iter_mut().for_each(|x| *x = -*x);
            self.carry();
        }
        let sign = if negative { -1.0 } else { 1.0 };
        if self.d[WIDE - 2] != 0 || self.d[WIDE - 1] != 0 {
            // At or above 2^1024.
            sum.parts.push(sign * f64::INFINITY);
            return;
        }
        // Greedy: the top 53 bits, then the top 53 bits of the rest...
        let mut parts: SmallVec<[f64; 2]> = SmallVec::new();
        while let Some(h) = self.d.iter().rposition(|x| *x != 0) {
            // h >= 2: the pads stay 0.
            let w = ((self.d[h] as u128) << 64)
                | ((self.d[h - 1] as u128) << 32)
                | (self.d[h - 2] as u128);
            let top = 127 - w.leading_zeros();
            let shift = top - 52;
            let m = (w >> shift) as u64;
            let w = w - ((m as u128) << shift);
            self.d[h] = (w >> 64) as i64;
            self.d[h - 1] = ((w >> 32) & 0xffff_ffff) as i64;
            self.d[h - 2] = (w & 0xffff_ffff) as i64;
            let e = 32 * (h as i32 - 4) - 1088 + shift as i32;
            parts.push(sign * scale(m as f64, e));
        }
        parts.reverse();
        sum.parts = parts;
    }
}

impl Extend<f64> for ExactSum {
    fn extend<I: IntoIterator<Item = f64>>(&mut self, iter: I) {
        for x in iter {
            self.add(x);
        }
    }
}

impl FromIterator<f64> for ExactSum {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        let mut s = ExactSum::new();
        s.extend(iter);
        s
    }
}

impl std::ops::AddAssign<f64> for ExactSum {
    #[inline]
    fn add_assign(&mut self, x: f64) {
        self.add(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigInt;
    use num_traits::{One, Signed, ToPrimitive, Zero};
    use proptest::prelude::*;

    /// The exact sum of finite terms, in units of 2⁻¹⁰⁷⁴.
    fn exact(terms: &[f64]) -> BigInt {
        terms
            .iter()
            .map(|&c| {
                let bits = c.to_bits();
                let e = ((bits >> 52) & 0x7ff) as i64;
                let frac = bits & ((1u64 << 52) - 1);
                let (m, e) = if e == 0 {
                    (frac, -1074)
                } else {
                    (frac | (1u64 << 52), e - 1075)
                };
                let v = BigInt::from(m) << ((e + 1074) as usize);
                if c < 0.0 {
                    -v
                } else {
                    v
                }
            })
            .sum()
    }

    /// `n · 2⁻¹⁰⁷⁴` rounded to nearest, ties to even (finite results only).
    fn round(n: &BigInt) -> f64 {
        let neg = n.is_negative();
        let a = n.abs();
        let bits = a.bits() as i64;
        // Keep 53 significant bits, but none below 2⁻¹⁰⁷⁴ (subnormals).
        let drop = (bits - 53).max(0);
        let (mut m, rest) = (
            &a >> (drop as usize),
            &a - ((&a >> (drop as usize)) << (drop as usize)),
        );
        if drop > 0 {
            let half = BigInt::one() << ((drop - 1) as usize);
            if rest > half || (rest == half && (&m % 2u8) == BigInt::one()) {
                m += 1u8;
            }
        }
        let v = scale(m.to_f64().unwrap_or(f64::NAN), (drop - 1074) as i32);
        if neg {
            -v
        } else {
            v
        }
    }

    fn term() -> impl Strategy<Value = f64> {
        prop_oneof![
            // Real measures: areas, lengths, weights.
            (-1e7f64..1e7),
            (0.0f64..1.0),
            // Wide exponents, cancellation, subnormals.
            (-60i32..60, -1.0f64..1.0).prop_map(|(e, m)| m * 2f64.powi(e * 5)),
            any::<f64>().prop_filter("finite", |x| x.is_finite() && x.abs() < 1e300),
            Just(5e-324),
            Just(-5e-324),
            Just(1.0),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The value is the exact sum rounded once, in any order and any grouping,
        /// and digits carry it exactly.
        #[test]
        fn exact_sum_is_the_exact_sum_rounded_once(
            terms in prop::collection::vec(term(), 0..40),
            cut in 0usize..40,
            seed in any::<u64>(),
        ) {
            let want = round(&exact(&terms));
            let s: ExactSum = terms.iter().copied().collect();
            prop_assert_eq!(s.value().to_bits(), want.to_bits(), "{:?}", terms);
            // Another order.
            let mut shuffled = terms.clone();
            let mut x = seed;
            for i in (1..shuffled.len()).rev() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (x >> 33) as usize % (i + 1));
            }
            let r: ExactSum = shuffled.iter().copied().collect();
            prop_assert_eq!(r.value().to_bits(), want.to_bits());
            // Two groups merged.
            let cut = cut.min(terms.len());
            let mut a: ExactSum = terms[..cut].iter().copied().collect();
            let b: ExactSum = terms[cut..].iter().copied().collect();
            a.merge(&b);
            prop_assert_eq!(a.value().to_bits(), want.to_bits());
            // Digits of the two groups, added as integers per scale.
            let mut totals = std::collections::BTreeMap::new();
            for g in [&terms[..cut], &terms[cut..]] {
                let g: ExactSum = g.iter().copied().collect();
                for (k, d) in g.digits().unwrap() {
                    prop_assert!((LOWEST_DIGIT..=31).contains(&k) && d != 0 && d.abs() < 1 << 33);
                    *totals.entry(k).or_insert(0i64) += d;
                }
            }
            let mut c = ExactSum::new();
            for (k, d) in totals {
                c.add_digit(k, d);
            }
            prop_assert_eq!(c.value().to_bits(), want.to_bits());
            // Many terms at once (the middle ones), between single additions.
            let (lo, hi) = (cut / 2, cut.max(terms.len() / 2));
            let mut m: ExactSum = terms[..lo].iter().copied().collect();
            let mut many = ManyTerms::new();
            terms[lo..hi].iter().for_each(|x| many.add(*x));
            many.add_to(&mut m);
            m.extend(terms[hi..].iter().copied());
            prop_assert_eq!(m.value().to_bits(), want.to_bits());
            let mut many = ManyTerms::new();
            terms.iter().for_each(|x| many.add(*x));
            let mut all = ExactSum::new();
            many.add_to(&mut all);
            prop_assert_eq!(all.value().to_bits(), want.to_bits());
            // The shortest expansion: 53 bits per part, from the top set bit to the lowest.
            let n = exact(&terms).abs();
            let span = n.bits() - n.trailing_zeros().unwrap_or(0);
            prop_assert!(all.parts.len() as u64 <= span.div_ceil(53), "{:?} {}", all.parts, span);
        }
    }

    #[test]
    fn half_way_cases_round_to_even_across_partials() {
        // 1e16 + 1 is half-way between two f64: the tiny term decides.
        let s: ExactSum = [1e16, 1.0, 1e-16].into_iter().collect();
        assert_eq!(s.value(), 1.0000000000000002e16);
        let s: ExactSum = [1e16, 1.0, -1e-16].into_iter().collect();
        assert_eq!(s.value(), 1e16);
        let s: ExactSum = [1e16, 1.0].into_iter().collect();
        assert_eq!(s.value(), 1e16);
        assert!(BigInt::zero() == exact(&[]));
    }

    #[test]
    fn non_finite_terms_follow_ieee_in_any_order() {
        let s: ExactSum = [1.0, f64::INFINITY, 2.0].into_iter().collect();
        assert_eq!(s.value(), f64::INFINITY);
        assert_eq!(s.digits(), None);
        let s: ExactSum = [f64::INFINITY, 1.0, f64::NEG_INFINITY]
            .into_iter()
            .collect();
        assert!(s.value().is_nan());
        let s: ExactSum = [f64::NAN, 1.0].into_iter().collect();
        assert!(s.value().is_nan());
        let s: ExactSum = [f64::MAX, f64::MAX].into_iter().collect();
        assert_eq!(s.value(), f64::INFINITY);
        assert_eq!(ExactSum::new().value(), 0.0);
    }

    #[test]
    fn an_exact_sum_is_three_words() {
        // Partials are held per zone and indicator: keep them small.
        assert_eq!(std::mem::size_of::<ExactSum>(), 24);
    }
}
