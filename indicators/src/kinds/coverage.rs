//! `coverage`: the share of each zone covered by the union of the layer's
//! polygons (overlaps counted once).

use super::{AtOnce, Check, Evaluation, IndicatorKind, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Values};
use crate::spec::IndicatorSpec;

/// The `coverage` kind.
pub(crate) struct Coverage;

impl IndicatorKind for Coverage {
    fn name(&self) -> &'static str {
        "coverage"
    }

    fn keys(&self) -> Keys {
        Keys::PIECES
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn check(&self, _: &Check<'_>) -> Result<()> {
        Ok(())
    }

    fn reads(&self, _: &IndicatorSpec) -> Reads {
        Reads::Pieces(PerFeature::Nothing)
    }

    fn centroids_suffice(&self, _: &IndicatorSpec) -> bool {
        false
    }

    fn needs_geometry(&self) -> Option<GeomKind> {
        Some(GeomKind::Polygon)
    }

    fn evaluation(&self, _: &IndicatorSpec) -> Evaluation<'_> {
        Evaluation::AtOnce(self)
    }

    fn default_unit(&self, _: &IndicatorSpec) -> &'static str {
        "fraction"
    }

    fn definition(&self, _: &IndicatorSpec, w: &Words<'_>) -> String {
        format!(
            "area(union of `{}`{} ∩ zone) / area(zone); overlapping features counted once.",
            w.layer, w.filter
        )
    }
}

impl AtOnce for Coverage {
    fn compute(&self, cx: &mut dyn Cx<'_>) -> Result<Columns> {
        let covered = covered_areas(cx)?;
        let v = covered
            .iter()
            .zip(cx.zones().prepared())
            .map(|(c, p)| (p.area() > 0.0).then(|| (c / p.area()).min(1.0)))
            .collect();
        Ok(vec![(cx.ind().name.clone(), Values::Float(v))])
    }
}

/// The area of the union of the layer's (filtered) polygons inside each
/// zone; at a roll-up level, summed over members (which do not overlap).
pub(crate) fn covered_areas(cx: &mut dyn Cx<'_>) -> Result<Vec<f64>> {
    let fi = cx.features()?;
    let mut covered = fi.ov.covered_areas(fi.mask(), cx.progress())?;
    if let Some(m) = cx.members() {
        covered = m
            .iter()
            .map(|g| g.iter().map(|z| covered[*z as usize]).sum())
            .collect();
    }
    Ok(covered)
}
