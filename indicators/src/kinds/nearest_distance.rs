//! `nearest_distance`: the mean, median or maximum over the features
//! attributed to each zone of the distance from each feature to the nearest
//! feature of `other` (0 when they touch).

use std::collections::BTreeMap;

use super::median::weighted_quantile;
use super::mean::{fold_mean, ratio_of_sums};
use super::min::{extremes, fold_extreme};
use super::{
    sums, Accumulate, AtOnce, Check, Evaluation, IndicatorKind, Keys, PerFeature, Reads, Words,
};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Partial};
use crate::spec::{IndicatorSpec, Stat};

/// The `nearest_distance` kind.
pub(crate) struct NearestDistance;

impl IndicatorKind for NearestDistance {
    fn name(&self) -> &'static str {
        "nearest_distance"
    }

    fn keys(&self) -> Keys {
        Keys {
            weight: true,
            other: true,
            stat: true,
            ..Keys::FEATURES
        }
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn check(&self, cx: &Check<'_>) -> Result<()> {
        match cx.ind.stat {
            Some(Stat::Mean | Stat::Median | Stat::Max) | None => Ok(()),
            Some(_) => Err(cx.error(
                "stat",
                "nearest_distance takes `mean`, `median` or `max`",
            )),
        }
    }

    fn reads(&self, ind: &IndicatorSpec) -> Reads {
        Reads::Features(ind.assign.unwrap_or_default(), PerFeature::Distance)
    }

    fn centroids_suffice(&self, _: &IndicatorSpec) -> bool {
        // Distances are measured from the features' shapes.
        false
    }

    fn needs_geometry(&self) -> Option<GeomKind> {
        None
    }

    fn evaluation(&self, ind: &IndicatorSpec) -> Evaluation<'_> {
        match ind.stat.unwrap_or_default() {
            Stat::Median => Evaluation::AtOnce(self),
            _ => Evaluation::Accumulate(self),
        }
    }

    fn default_unit(&self, _: &IndicatorSpec) -> &'static str {
        "m"
    }

    fn definition(&self, ind: &IndicatorSpec, w: &Words<'_>) -> String {
        format!(
            "{} over `{}` {}{}{} of the Euclidean distance from each feature's geometry to the nearest geometry of `{}` (0 when they touch). Null when none.",
            match ind.stat.unwrap_or_default() {
                Stat::Median => "Median",
                Stat::Max => "Maximum",
                _ => "Mean",
            },
            w.layer, w.assign, w.filter, w.weight, w.other
        )
    }
}

impl Accumulate for NearestDistance {
    fn state(&self, ind: &IndicatorSpec, nz: usize, _: &BTreeMap<String, Vec<String>>) -> Partial {
        match ind.stat {
            Some(Stat::Max) => Partial::Extreme {
                max: true,
                acc: vec![None; nz],
            },
            _ => sums(2, nz),
        }
    }

    fn update(&self, cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
        match state {
            Partial::Extreme { .. } => fold_extreme(cx, state),
            _ => fold_mean(cx, state),
        }
    }

    fn evaluate(&self, cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
        match state {
            Partial::Extreme { .. } => extremes(cx, state),
            _ => ratio_of_sums(cx, state),
        }
    }
}

impl AtOnce for NearestDistance {
    fn compute(&self, cx: &mut dyn Cx<'_>) -> Result<Columns> {
        weighted_quantile(cx, 0.5)
    }
}
