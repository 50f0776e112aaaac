//! `min`: the minimum of `column` over the features attributed to each zone.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::{Accumulate, Check, Evaluation, IndicatorKind, Key, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{keep_extreme, Columns, Cx, Partial, Values};
use crate::spec::{Assign, IndicatorSpec};

/// The `min` kind.
pub(crate) struct Min;

impl IndicatorKind for Min {
    fn name(&self) -> &'static str {
        "min"
    }

    fn keys(&self) -> Keys {
        Keys {
            column: Key::Required,
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
            "Minimum of `{}` over `{}` {}{}. Null when none.",
            w.column, w.layer, w.assign, w.filter
        )
    }
}

impl Accumulate for Min {
    fn state(&self, _: &IndicatorSpec, nz: usize, _: &BTreeMap<String, Vec<String>>) -> Partial {
        Partial::Extreme {
            max: false,
            acc: vec![None; nz],
        }
    }

    fn update(&self, cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
        fold_extreme(cx, state)
    }

    fn evaluate(&self, cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
        extremes(cx, state)
    }
}

/// Fold each zone's features' values (those with a positive weight) into
/// its running minimum or maximum (as the state says).
pub(crate) fn fold_extreme(cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
    let fi = cx.features()?;
    let v = cx.values()?;
    let a = cx.attribution()?;
    let Partial::Extreme { max, acc } = state else {
        return Err(cx.internal("a minimum or maximum without its state"));
    };
    let max = *max;
    acc.par_iter_mut().enumerate().for_each(|(z, e)| {
        let (fs, ws) = a.zone(z);
        for (f, w) in fs.iter().zip(ws) {
            let f = *f as usize;
            let (Some(x), Some(wc)) = (v[f], fi.weight(f)) else {
                continue;
            };
            if w * wc > 0.0 {
                keep_extreme(e, x, max);
            }
        }
    });
    Ok(())
}

/// The running minima or maxima, as the output column.
pub(crate) fn extremes(cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
    let Partial::Extreme { acc, .. } = state else {
        return Err(cx.internal("a minimum or maximum without its state"));
    };
    Ok(vec![(cx.ind().name.clone(), Values::Float(acc))])
}
