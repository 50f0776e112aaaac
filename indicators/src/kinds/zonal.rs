//! `zonal`: a statistic of a raster's pixels over each zone, each pixel
//! weighted by the exact fraction of it the zone covers (exactextract's
//! definitions). The raster passes themselves are in [`crate::zonal`].

use rayon::prelude::*;
use terrastat_core::raster::ZonalStats;

use super::{AtOnce, Check, Evaluation, IndicatorKind, Key, Keys, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use crate::eval::{Columns, Cx, Values};
use crate::spec::{IndicatorSpec, Stat};

/// The `zonal` kind.
pub(crate) struct Zonal;

impl IndicatorKind for Zonal {
    fn name(&self) -> &'static str {
        "zonal"
    }

    fn keys(&self) -> Keys {
        Keys {
            layer: Key::No,
            stat: true,
            raster: true,
            ..Keys::PIECES
        }
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn check(&self, cx: &Check<'_>) -> Result<()> {
        cx.absent(
            &cx.ind.layer,
            "layer",
            "a zonal indicator reads a `raster`, not a layer",
        )?;
        crate::zonal::check_keys(cx, true)?;
        match cx.ind.stat {
            Some(Stat::Median) => Err(cx.error("stat", "`median` is not a zonal statistic (count, sum, mean, min, max, stdev, majority, minority, variety, frac, weighted_mean, coverage)")),
            Some(_) => Ok(()),
            None => Err(cx.error("stat", "missing: count, sum, mean, min, max, stdev, majority, minority, variety, frac, weighted_mean or coverage")),
        }
    }

    fn reads(&self, _: &IndicatorSpec) -> Reads {
        Reads::NoLayer
    }

    fn centroids_suffice(&self, _: &IndicatorSpec) -> bool {
        false
    }

    fn needs_geometry(&self) -> Option<GeomKind> {
        None
    }

    fn evaluation(&self, _: &IndicatorSpec) -> Evaluation<'_> {
        Evaluation::AtOnce(self)
    }

    fn default_unit(&self, ind: &IndicatorSpec) -> &'static str {
        match ind.stat {
            Some(Stat::Frac | Stat::Coverage) => "fraction",
            Some(Stat::Count) => "pixels",
            Some(Stat::Variety) => "count",
            _ => "",
        }
    }

    fn definition(&self, ind: &IndicatorSpec, _: &Words<'_>) -> String {
        crate::zonal::definition(ind)
    }
}

impl AtOnce for Zonal {
    fn compute(&self, cx: &mut Cx<'_, '_>) -> Result<Columns> {
        let ind = cx.ind();
        let raster = ind.raster.as_deref().unwrap_or_default();
        let weights = crate::zonal::weights_of(ind);
        let (pass, predicates) = cx.raster_pass(raster, weights)?;
        let merged;
        let stats = match cx.members() {
            None => &pass.stats,
            Some(m) => {
                merged = m
                    .par_iter()
                    .map(|zs| {
                        let mut acc = ZonalStats::default();
                        let mut it = zs.iter();
                        if let Some(&first) = it.next() {
                            acc = pass.stats[first as usize].clone();
                        }
                        for &z in it {
                            acc.merge(&pass.stats[z as usize]);
                        }
                        acc
                    })
                    .collect::<Vec<_>>();
                &merged
            }
        };
        Ok(
            crate::zonal::columns(cx.spec(), cx.index(), stats, &predicates)
                .into_iter()
                .map(|(n, v)| (n, Values::Float(v)))
                .collect(),
        )
    }
}
