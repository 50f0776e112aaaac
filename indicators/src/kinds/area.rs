//! `area`: the area in m² of each zone, or with `layer`, of the union of
//! the layer's polygons inside it.

use super::coverage::covered_areas;
use super::{AtOnce, Check, Evaluation, IndicatorKind, Key, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Values};
use crate::spec::IndicatorSpec;

/// The `area` kind.
pub(crate) struct Area;

impl IndicatorKind for Area {
    fn name(&self) -> &'static str {
        "area"
    }

    fn keys(&self) -> Keys {
        Keys {
            layer: Key::Optional,
            ..Keys::PIECES
        }
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn check(&self, _: &Check<'_>) -> Result<()> {
        Ok(())
    }

    fn reads(&self, ind: &IndicatorSpec) -> Reads {
        match ind.layer {
            Some(_) => Reads::Pieces(PerFeature::Nothing),
            None => Reads::NoLayer,
        }
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
        "m²"
    }

    fn definition(&self, ind: &IndicatorSpec, w: &Words<'_>) -> String {
        match &ind.layer {
            Some(_) => format!(
                "area(union of `{}`{} ∩ zone) in m² of the working CRS.",
                w.layer, w.filter
            ),
            None => "Area of the zone in m² of the working CRS.".into(),
        }
    }
}

impl AtOnce for Area {
    fn compute(&self, cx: &mut dyn Cx<'_>) -> Result<Columns> {
        let v = if cx.ind().layer.is_none() {
            cx.zones().prepared().iter().map(|p| Some(p.area())).collect()
        } else {
            covered_areas(cx)?.into_iter().map(Some).collect()
        };
        Ok(vec![(cx.ind().name.clone(), Values::Float(v))])
    }
}
