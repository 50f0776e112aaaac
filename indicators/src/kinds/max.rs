//! `max`: the maximum of `column` over the features attributed to each zone.

use std::collections::BTreeMap;



use super::{Accumulate, Check, Evaluation, IndicatorKind, Key, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::min::{extremes, fold_extreme};
use super::{Columns, Cx, Partial};
use crate::spec::{Assign, IndicatorSpec};

/// The `max` kind.
pub(crate) struct Max;

impl IndicatorKind for Max {
    fn name(&self) -> &'static str {
        "max"
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
            "Maximum of `{}` over `{}` {}{}. Null when none.",
            w.column, w.layer, w.assign, w.filter
        )
    }
}

impl Accumulate for Max {
    fn state(&self, _: &IndicatorSpec, nz: usize, _: &BTreeMap<String, Vec<String>>) -> Partial {
        Partial::Extreme {
            max: true,
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
