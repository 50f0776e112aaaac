//! `density`: the number of features (or Σ `column`) attributed to each
//! zone, per km² of the zone's area.

use std::collections::BTreeMap;

use super::{sums, Accumulate, Check, Evaluation, IndicatorKind, Key, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Partial, Values};
use crate::spec::{Assign, IndicatorSpec};

/// The `density` kind.
pub(crate) struct Density;

impl IndicatorKind for Density {
    fn name(&self) -> &'static str {
        "density"
    }

    fn keys(&self) -> Keys {
        Keys {
            column: Key::Optional,
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
        let per = match ind.column {
            Some(_) => PerFeature::Column,
            None => PerFeature::Nothing,
        };
        Reads::Features(ind.assign.unwrap_or_default(), per)
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
        "km⁻²"
    }

    fn definition(&self, ind: &IndicatorSpec, w: &Words<'_>) -> String {
        match &ind.column {
            Some(c) => format!(
                "Σ `{c}` over `{}` {}{}, per km² of zone area.",
                w.layer, w.assign, w.filter
            ),
            None => format!(
                "Number of `{}` {}{}, per km² of zone area.",
                w.layer, w.assign, w.filter
            ),
        }
    }
}

impl Accumulate for Density {
    fn state(&self, _: &IndicatorSpec, nz: usize, _: &BTreeMap<String, Vec<String>>) -> Partial {
        sums(1, nz)
    }

    fn update(&self, cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
        match cx.ind().column {
            None => super::count::fold_weights(cx, state),
            Some(_) => super::sum::fold_values(cx, state),
        }
    }

    fn evaluate(&self, cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
        let acc = state.into_sums()?;
        let v = acc
            .iter()
            .zip(cx.zones().prepared())
            .map(|(c, p)| {
                let a = p.area() / 1e6;
                (a > 0.0).then(|| c.value() / a)
            })
            .collect();
        Ok(vec![(cx.ind().name.clone(), Values::Float(v))])
    }
}
