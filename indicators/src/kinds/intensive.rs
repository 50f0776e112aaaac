//! `intensive`: the area-weighted mean of a rate-like `column` over the part
//! of each zone the layer covers (tobler's intensive variables).

use std::collections::BTreeMap;

use super::extensive::fold_pieces;
use super::mean::ratio_of_sums;
use super::{sums, Accumulate, Check, Evaluation, IndicatorKind, Key, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Partial};
use crate::spec::IndicatorSpec;

/// The `intensive` kind.
pub(crate) struct Intensive;

impl IndicatorKind for Intensive {
    fn name(&self) -> &'static str {
        "intensive"
    }

    fn keys(&self) -> Keys {
        Keys {
            column: Key::Required,
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

    fn definition(&self, _: &IndicatorSpec, w: &Words<'_>) -> String {
        format!("Area-weighted mean of the intensive column `{}` of `{}`{} over the part of the zone the layer covers: Σ_f v_f · area(f ∩ z) / Σ_f area(f ∩ z). Null where the layer does not reach.", w.column, w.layer, w.filter)
    }
}

impl Accumulate for Intensive {
    fn state(&self, _: &IndicatorSpec, nz: usize, _: &BTreeMap<String, Vec<String>>) -> Partial {
        sums(2, nz)
    }

    fn update(&self, cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
        fold_pieces(cx, state, true)
    }

    fn evaluate(&self, cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
        ratio_of_sums(cx, state)
    }
}
