//! `extensive`: areal interpolation of a count-like `column` (tobler's
//! `area_interpolate` of extensive variables): each feature's value shared
//! among the zones by the measure of its piece in each.

use std::collections::BTreeMap;

use rayon::prelude::*;
use terrastat_core::ManyTerms;

use super::{sums, Accumulate, Check, Evaluation, IndicatorKind, Key, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Partial, Values};
use crate::spec::IndicatorSpec;

/// The `extensive` kind.
pub(crate) struct Extensive;

impl IndicatorKind for Extensive {
    fn name(&self) -> &'static str {
        "extensive"
    }

    fn keys(&self) -> Keys {
        Keys {
            column: Key::Required,
            allocate_total: true,
            ..Keys::PIECES
        }
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn check(&self, _: &Check<'_>) -> Result<()> {
        Ok(())
    }

    fn reads(&self, _: &IndicatorSpec) -> Reads {
        Reads::Pieces(PerFeature::Column)
    }

    fn centroids_suffice(&self, _: &IndicatorSpec) -> bool {
        false
    }

    fn needs_geometry(&self) -> Option<GeomKind> {
        None
    }

    fn evaluation(&self, _: &IndicatorSpec) -> Evaluation<'_> {
        Evaluation::Accumulate(self)
    }

    fn default_unit(&self, _: &IndicatorSpec) -> &'static str {
        ""
    }

    fn definition(&self, ind: &IndicatorSpec, w: &Words<'_>) -> String {
        let (col, layer, filter) = (w.column, w.layer, w.filter);
        if ind.allocate_total.unwrap_or(true) {
            format!("Areal interpolation of the extensive column `{col}` of `{layer}`{filter}: Σ_f v_f · area(f ∩ z) / Σ_k area(f ∩ z_k) (each feature's whole value shared among the zones it touches; tobler allocate_total=True).")
        } else {
            format!("Areal interpolation of the extensive column `{col}` of `{layer}`{filter}: Σ_f v_f · area(f ∩ z) / area(f) (tobler allocate_total=False).")
        }
    }
}

impl Accumulate for Extensive {
    fn state(&self, _: &IndicatorSpec, nz: usize, _: &BTreeMap<String, Vec<String>>) -> Partial {
        sums(2, nz)
    }

    fn update(&self, cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
        fold_pieces(cx, state, false)
    }

    fn evaluate(&self, cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
        let acc = state.into_sums()?;
        let v = Values::Float(acc.chunks(2).map(|s| Some(s[0].value())).collect());
        Ok(vec![(cx.ind().name.clone(), v)])
    }
}

/// Fold the pieces of the features inside each zone (`v` the feature's
/// `column`, `m` the measure of its piece): extensive, Σ v·m / d into the
/// first sum (`d` the feature's measure inside all zones with
/// `allocate_total`, the default, else its whole measure); intensive, Σ v·m
/// and Σ m into the two sums.
pub(crate) fn fold_pieces(cx: &mut dyn Cx<'_>, state: &mut Partial, intensive: bool) -> Result<()> {
    let fi = cx.features()?;
    let col = cx.ind().column.as_deref().unwrap_or_default();
    let v = cx.numeric("column", col)?;
    let pairs = cx.pairs(&fi)?;
    let fm = fi.ov.feature_measures()?;
    let allocate = cx.ind().allocate_total.unwrap_or(true);
    let mask = fi.mask();
    let acc = state.sums_mut()?;
    acc.par_chunks_mut(2).enumerate().for_each(|(z, s)| {
        let (fs, ms) = pairs.zone(z);
        if fs.is_empty() {
            return;
        }
        let (mut num, mut den) = (ManyTerms::new(), ManyTerms::new());
        for (f, m) in fs.iter().zip(ms) {
            let f = *f as usize;
            if mask.is_some_and(|mk| !mk[f]) {
                continue;
            }
            let Some(x) = v[f] else { continue };
            if intensive {
                num.add(x * m);
                den.add(*m);
            } else {
                let d = if allocate { pairs.totals[f] } else { fm[f] };
                if d > 0.0 {
                    num.add(x * m / d);
                }
            }
        }
        num.add_to(&mut s[0]);
        den.add_to(&mut s[1]);
    });
    Ok(())
}
