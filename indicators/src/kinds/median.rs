//! `median`: the weighted median of `column` over the features attributed
//! to each zone (equal weights: the usual median). Needs every feature at
//! once.

use rayon::prelude::*;

use super::{AtOnce, Check, Evaluation, IndicatorKind, Key, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Values};
use crate::spec::{Assign, IndicatorSpec};

/// The `median` kind.
pub(crate) struct Median;

impl IndicatorKind for Median {
    fn name(&self) -> &'static str {
        "median"
    }

    fn keys(&self) -> Keys {
        Keys {
            column: Key::Required,
            weight: true,
            ..Keys::FEATURES
        }
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn check(&self, _: &Check<'_>) -> Result<()> {
        Ok(())
    }

    fn reads(&self, ind: &IndicatorSpec) -> Reads {
        Reads::Features(ind.assign.unwrap_or_default(), PerFeature::Column)
    }

    fn centroids_suffice(&self, ind: &IndicatorSpec) -> bool {
        ind.assign.unwrap_or_default() == Assign::Centroid
    }

    fn needs_geometry(&self) -> Option<GeomKind> {
        None
    }

    fn evaluation(&self, _: &IndicatorSpec) -> Evaluation<'_> {
        Evaluation::AtOnce(self)
    }

    fn default_unit(&self, _: &IndicatorSpec) -> &'static str {
        ""
    }

    fn definition(&self, _: &IndicatorSpec, w: &Words<'_>) -> String {
        format!(
            "Weighted median of `{}` over `{}` {}{}{} (equal weights: the usual median). Null when none.",
            w.column, w.layer, w.assign, w.filter, w.weight
        )
    }
}

impl AtOnce for Median {
    fn compute(&self, cx: &mut dyn Cx<'_>) -> Result<Columns> {
        weighted_quantile(cx, 0.5)
    }
}

/// The weighted `q`-quantile (see [`quantile`]) of the values the kind
/// reads over each zone's features with a positive weight (attribution
/// weight times the `weight` column).
pub(crate) fn weighted_quantile(cx: &mut dyn Cx<'_>, q: f64) -> Result<Columns> {
    let fi = cx.features()?;
    let v = cx.values()?;
    let a = cx.attribution()?;
    let out = (0..cx.nz())
        .into_par_iter()
        .map(|z| {
            let (fs, ws) = a.zone(z);
            let items: Vec<(f64, f64)> = fs
                .iter()
                .zip(ws)
                .filter_map(|(f, w)| {
                    let f = *f as usize;
                    Some((v[f]?, w * fi.weight(f)?))
                })
                .filter(|(_, w)| *w > 0.0)
                .collect();
            quantile(&items, q)
        })
        .collect();
    Ok(vec![(cx.ind().name.clone(), Values::Float(out))])
}

/// The weighted `q`-quantile of `(value, weight)` pairs with positive
/// weights: in ascending value order, the first value where the cumulative
/// weight passes `q` × the total; if it lands exactly on it at a value, the
/// mean of that value and the next. `q = 0.5` is the weighted median (equal
/// weights: the usual median); with unit weights, `numpy.quantile(method =
/// "averaged_inverted_cdf")`. `None` without pairs. For example the
/// median of 3, 1 and 2 with unit weights is 2 (see the tests below).
pub(crate) fn quantile(items: &[(f64, f64)], q: f64) -> Option<f64> {
    if items.is_empty() {
        return None;
    }
    let mut s = items.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = s.iter().map(|(_, w)| w).sum();
    // `total * 0.5` is `total / 2` exactly: the median's rule.
    let target = total * q;
    let mut cum = 0.0;
    for k in 0..s.len() {
        cum += s[k].1;
        if cum > target {
            return Some(s[k].0);
        }
        if cum == target {
            return Some(match s.get(k + 1) {
                Some(next) => (s[k].0 + next.0) / 2.0,
                None => s[k].0,
            });
        }
    }
    s.last().map(|x| x.0)
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn medians() {
        assert_eq!(
            quantile(&[(3.0, 1.0), (1.0, 1.0), (2.0, 1.0)], 0.5),
            Some(2.0)
        );
        assert_eq!(
            quantile(&[(4.0, 1.0), (1.0, 1.0), (2.0, 1.0), (3.0, 1.0)], 0.5),
            Some(2.5)
        );
        assert_eq!(quantile(&[(1.0, 3.0), (10.0, 1.0)], 0.5), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
