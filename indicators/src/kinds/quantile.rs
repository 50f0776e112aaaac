//! `quantile`: the weighted `q`-quantile of `column` over the features
//! attributed to each zone: in ascending value order, the first value where
//! the cumulative weight passes q·total, the mean of it and the next when it
//! lands exactly on q·total (the median's rule: `q = 0.5` is `median`; with
//! unit weights, `numpy.quantile(method="averaged_inverted_cdf")`).

use terrastat_core::GeomKind;

use super::median::weighted_quantile;
use super::{AtOnce, Check, Evaluation, IndicatorKind, Key, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use super::{Columns, Cx};
use crate::spec::{Assign, IndicatorSpec};

/// The `quantile` kind.
pub(crate) struct Quantile;

/// The quantile `q` of an indicator, once checked.
fn q_of(ind: &IndicatorSpec) -> Option<f64> {
    ind.params.get("q").and_then(|v| match v {
        toml::Value::Float(x) => Some(*x),
        toml::Value::Integer(n) => Some(*n as f64),
        _ => None,
    })
}

impl IndicatorKind for Quantile {
    fn name(&self) -> &'static str {
        "quantile"
    }

    fn keys(&self) -> Keys {
        Keys {
            column: Key::Required,
            weight: true,
            ..Keys::FEATURES
        }
    }

    fn params(&self) -> &'static [&'static str] {
        &["q"]
    }

    fn check(&self, cx: &Check<'_>) -> Result<()> {
        match (cx.ind.params.get("q"), q_of(cx.ind)) {
            (None, _) => Err(cx.error("q", "missing: a quantile needs `q`, from 0 to 1")),
            (Some(_), Some(q)) if (0.0..=1.0).contains(&q) => Ok(()),
            (Some(v), _) => Err(cx.error("q", format!("`{v}` is not a number from 0 to 1"))),
        }
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

    fn definition(&self, ind: &IndicatorSpec, w: &Words<'_>) -> String {
        format!(
            "Weighted {}-quantile of `{}` over `{}` {}{}{}: in ascending order, the first value where the cumulative weight passes q·Σw, the mean of it and the next when it equals q·Σw (unit weights: numpy's averaged_inverted_cdf). Null when none.",
            q_of(ind).unwrap_or(f64::NAN), w.column, w.layer, w.assign, w.filter, w.weight
        )
    }
}

impl AtOnce for Quantile {
    fn compute(&self, cx: &mut dyn Cx<'_>) -> Result<Columns> {
        let q = q_of(cx.ind()).ok_or_else(|| cx.internal("a quantile without `q`"))?;
        weighted_quantile(cx, q)
    }
}
