//! `mean`: the (weighted) mean of `column` over the features attributed to
//! each zone, Σ w·v / Σ w.

use std::collections::BTreeMap;

use rayon::prelude::*;
use terrastat_core::ManyTerms;

use super::{sums, Accumulate, Check, Evaluation, IndicatorKind, Key, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Partial, Values};
use crate::spec::{Assign, IndicatorSpec};

/// The `mean` kind.
pub(crate) struct Mean;

impl IndicatorKind for Mean {
    fn name(&self) -> &'static str {
        "mean"
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
        Evaluation::Accumulate(self)
    }

    fn default_unit(&self, _: &IndicatorSpec) -> &'static str {
        ""
    }

    fn definition(&self, _: &IndicatorSpec, w: &Words<'_>) -> String {
        format!(
            "Mean of `{}` over `{}` {}{}{}: Σ w·v / Σ w. Null when none.",
            w.column, w.layer, w.assign, w.filter, w.weight
        )
    }
}

impl Accumulate for Mean {
    fn state(&self, _: &IndicatorSpec, nz: usize, _: &BTreeMap<String, Vec<String>>) -> Partial {
        sums(2, nz)
    }

    fn update(&self, cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
        fold_mean(cx, state)
    }

    fn evaluate(&self, cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
        ratio_of_sums(cx, state)
    }
}

/// Add Σ w·v and Σ w of each zone's features to its two sums (`v` the
/// per-feature value the kind reads, `w` the attribution weight times the
/// `weight` column; features with a null or no positive weight skipped).
pub(crate) fn fold_mean(cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
    let fi = cx.features()?;
    let v = cx.values()?;
    let a = cx.attribution()?;
    let acc = state.sums_mut()?;
    acc.par_chunks_mut(2).enumerate().for_each(|(z, s)| {
        let (fs, ws) = a.zone(z);
        if fs.is_empty() {
            return;
        }
        let (mut num, mut den) = (ManyTerms::new(), ManyTerms::new());
        for (f, w) in fs.iter().zip(ws) {
            let f = *f as usize;
            let (Some(x), Some(wc)) = (v[f], fi.weight(f)) else {
                continue;
            };
            let w = w * wc;
            if w > 0.0 {
                num.add(x * w);
                den.add(w);
            }
        }
        num.add_to(&mut s[0]);
        den.add_to(&mut s[1]);
    });
    Ok(())
}

/// The first of two sums per zone divided by the second (null where the
/// second is not positive): means, shares, intensive interpolations.
pub(crate) fn ratio_of_sums(cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
    let acc = state.into_sums()?;
    let v = acc
        .chunks(2)
        .map(|s| {
            let d = s[1].value();
            (d > 0.0).then(|| s[0].value() / d)
        })
        .collect();
    Ok(vec![(cx.ind().name.clone(), Values::Float(v))])
}
