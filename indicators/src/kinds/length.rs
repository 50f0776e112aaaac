//! `length`: the length of a line layer inside each zone, Σ length(f ∩ z),
//! lines cut exactly at zone boundaries. A part lying on a boundary shared
//! by two zones counts in both, as `ST_Length(ST_Intersection(line, zone))`
//! does. Road or cycle-lane km per km²: a `ratio` over `length` and `area`.

use std::collections::BTreeMap;

use rayon::prelude::*;
use terrastat_core::{GeomKind, ManyTerms};

use super::{sums, Accumulate, Check, Evaluation, IndicatorKind, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use super::{Columns, Cx, Partial, Values};
use crate::spec::IndicatorSpec;

/// The `length` kind.
pub(crate) struct Length;

impl IndicatorKind for Length {
    fn name(&self) -> &'static str {
        "length"
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
        Some(GeomKind::Line)
    }

    fn evaluation(&self, _: &IndicatorSpec) -> Evaluation<'_> {
        Evaluation::Accumulate(self)
    }

    fn default_unit(&self, _: &IndicatorSpec) -> &'static str {
        "m"
    }

    fn definition(&self, _: &IndicatorSpec, w: &Words<'_>) -> String {
        format!(
            "Σ length(f ∩ zone) over the lines of `{}`{}, in m of the working CRS (a part on a boundary shared by two zones counts in both). 0 when none.",
            w.layer, w.filter
        )
    }
}

impl Accumulate for Length {
    fn state(&self, _: &IndicatorSpec, nz: usize, _: &BTreeMap<String, Vec<String>>) -> Partial {
        sums(1, nz)
    }

    fn update(&self, cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
        let fi = cx.features()?;
        let pairs = cx.pairs(&fi)?;
        let mask = fi.mask();
        let acc = state.sums_mut()?;
        acc.par_iter_mut().enumerate().for_each(|(z, s)| {
            let (fs, ms) = pairs.zone(z);
            let mut t = ManyTerms::new();
            for (f, m) in fs.iter().zip(ms) {
                if mask.is_none_or(|mk| mk[*f as usize]) {
                    t.add(*m);
                }
            }
            t.add_to(s);
        });
        Ok(())
    }

    fn evaluate(&self, cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
        let acc = state.into_sums()?;
        let v = Values::Float(acc.iter().map(|s| Some(s.value())).collect());
        Ok(vec![(cx.ind().name.clone(), v)])
    }
}
