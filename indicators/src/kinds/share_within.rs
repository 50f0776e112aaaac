//! `share_within`: among the features attributed to each zone, the
//! (weighted) share of those related to a feature of `other` (they
//! intersect it, or their centroid lies in it).

use std::collections::BTreeMap;

use rayon::prelude::*;
use terrastat_core::{ManyTerms, Predicate};

use super::mean::ratio_of_sums;
use super::{sums, Accumulate, Check, Evaluation, IndicatorKind, Keys, PerFeature, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Partial};
use crate::spec::{Assign, IndicatorSpec};

/// The `share_within` kind.
pub(crate) struct ShareWithin;

impl IndicatorKind for ShareWithin {
    fn name(&self) -> &'static str {
        "share_within"
    }

    fn keys(&self) -> Keys {
        Keys {
            weight: true,
            other: true,
            predicate: true,
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
        Reads::Features(ind.assign.unwrap_or_default(), PerFeature::Nothing)
    }

    fn centroids_suffice(&self, ind: &IndicatorSpec) -> bool {
        ind.assign.unwrap_or_default() == Assign::Centroid
            && ind.predicate == Some(Predicate::Centroid)
    }

    fn needs_geometry(&self) -> Option<GeomKind> {
        None
    }

    fn evaluation(&self, _: &IndicatorSpec) -> Evaluation<'_> {
        Evaluation::Accumulate(self)
    }

    fn default_unit(&self, _: &IndicatorSpec) -> &'static str {
        "fraction"
    }

    fn definition(&self, ind: &IndicatorSpec, w: &Words<'_>) -> String {
        format!(
            "Among `{}` {}{}{}, the share of those that {} `{}`. Null when none.",
            w.layer,
            w.assign,
            w.filter,
            w.weight,
            match ind.predicate.unwrap_or(Predicate::Intersects) {
                Predicate::Centroid => "have their centroid in",
                _ => "intersect (touching counts)",
            },
            w.other
        )
    }
}

impl Accumulate for ShareWithin {
    fn state(&self, _: &IndicatorSpec, nz: usize, _: &BTreeMap<String, Vec<String>>) -> Partial {
        sums(2, nz)
    }

    fn update(&self, cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()> {
        let fi = cx.features()?;
        let flags = cx.flags()?;
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
                let Some(wc) = fi.weight(f) else { continue };
                den.add(w * wc);
                if flags[f] {
                    num.add(w * wc);
                }
            }
            num.add_to(&mut s[0]);
            den.add_to(&mut s[1]);
        });
        Ok(())
    }

    fn evaluate(&self, cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns> {
        ratio_of_sums(cx, state)
    }
}
