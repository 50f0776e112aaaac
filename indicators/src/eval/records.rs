//! The quality records: feature counts per zone folded with the features,
//! the layers' extents, and each indicator's record, thresholds applied.

use super::*;

/// What quality needs from the batches of a streamed layer: the feature
/// counts per (zone layer, indicator), and each layer's extent.
#[derive(Debug, Clone, Default)]
pub(crate) struct QualityState {
    pub(crate) counts: BTreeMap<(String, usize), crate::quality::Counts>,
    pub(crate) extents: BTreeMap<String, Option<geo::Rect>>,
}

impl<'a> Evaluator<'a> {
    /// Count, for indicator `i` at level `zl`, the features attributed to
    /// each zone, those with their needed columns, and those used; and
    /// widen the layer's extent (see [`crate::quality`]).
    pub(super) fn count_quality(&mut self, i: usize, zl: &str) -> Result<()> {
        let ind: &IndicatorSpec = self.spec.indicators[i].get_ref();
        let Some(layer_name) = ind.layer.clone() else {
            return Ok(());
        };
        let (zones, base_name, members) = self.level(i, zl)?;
        let members = members.as_deref();
        let fi = self.feature_inputs(i, &layer_name, &base_name)?;
        // Area kinds count the features by their centroid: the attribution
        // the count-like indicators share (cached), not a second one.
        let assign = match ind.kind.imp().reads(ind) {
            Reads::Pieces(_) => Assign::Centroid,
            Reads::Features(..) | Reads::NoLayer => fi.assign,
        };
        let (used, all) = self.used_and_all(i, zl, &fi, assign, members)?;
        // The columns the indicator needs, as validity masks.
        let attrs = fi.layer.attributes();
        let cols: Vec<&ArrayRef> = self
            .plan
            .step(i)
            .columns
            .iter()
            .filter_map(|c| attrs.column_by_name(c))
            .collect();
        let complete = |f: usize| cols.iter().all(|c| c.is_valid(f));
        let nz = zones.len();
        let c = self
            .quality
            .counts
            .entry((zl.to_string(), i))
            .or_insert_with(|| crate::quality::Counts::new(nz));
        for z in 0..nz {
            let fs = all.zone(z).0;
            c.attributed[z] += fs.len() as u64;
            c.complete[z] += fs.iter().filter(|f| complete(**f as usize)).count() as u64;
            c.used[z] += used.zone(z).0.len() as u64;
        }
        // The layer's extent, once per layer and batch.
        if self.extent_seen.insert(layer_name.clone()) {
            let e = self.quality.extents.entry(layer_name).or_insert(None);
            *e = terrastat_core::union_rects(*e, fi.layer.bounding_rect());
        }
        Ok(())
    }

    /// The thresholds that apply to the indicator named `name`, if any.
    pub(super) fn thresholds(&self, name: &str) -> Option<crate::quality::Thresholds> {
        let ind = self
            .spec
            .indicators
            .iter()
            .map(|s| s.get_ref())
            .find(|i| i.name == name)?;
        let t = ind
            .quality
            .clone()
            .unwrap_or_default()
            .over(&self.spec.quality.clone().unwrap_or_default());
        (t != crate::quality::Thresholds::default()).then_some(t)
    }

    /// The quality record of every indicator computed for `zl`, thresholds applied.
    pub(super) fn quality_records(
        &self,
        zl: &str,
        zones: &Zones,
        order: &[usize],
        done: &BTreeMap<String, Vec<(String, Values)>>,
    ) -> Result<Vec<(String, crate::quality::Record)>> {
        use crate::quality::{coverage, Record};
        let nz = zones.len();
        let mut covs: HashMap<String, Vec<Option<f64>>> = HashMap::new();
        let mut out: Vec<(String, Record)> = Vec::new();
        for &i in order {
            let ind = self.spec.indicators[i].get_ref();
            if !done.contains_key(&ind.name) {
                continue;
            }
            let mut r = if ind.kind.imp().keys().expr {
                let names = self
                    .plan
                    .step(i)
                    .expr
                    .as_ref()
                    .map(Arith::names)
                    .unwrap_or_default();
                let parts: Vec<(&str, &Record)> = out
                    .iter()
                    .filter(|(n, _)| names.contains(n))
                    .map(|(n, r)| (n.as_str(), r))
                    .collect();
                Record::combine(nz, &parts)
            } else {
                match (
                    self.quality.counts.get(&(zl.to_string(), i)),
                    ind.layer.as_ref(),
                ) {
                    (Some(c), Some(l)) => {
                        if !covs.contains_key(l) {
                            let declared = self.spec.layers.get(l).and_then(|s| s.extent.as_ref());
                            let cov = match declared {
                                Some(e) => {
                                    let polys =
                                        match (self.inputs.zones.get(e), self.inputs.layers.get(e))
                                        {
                                            (Some(z), _) => z.geometries(),
                                            (None, Some(layer)) => layer.geometries().to_vec(),
                                            (None, None) => {
                                                return Err(self.spec.indicator_error(
                                                    i,
                                                    "layer",
                                                    format!(
                                                    "the extent `{e}` of layer `{l}` is not loaded"
                                                ),
                                                ))
                                            }
                                        };
                                    crate::quality::coverage_by(zones, &polys)
                                }
                                None => {
                                    let e = self.quality.extents.get(l).copied().flatten();
                                    coverage(zones, e.as_ref())
                                }
                            };
                            covs.insert(l.clone(), cov);
                        }
                        Record::from_counts(c, covs[l].clone())
                    }
                    _ => Record::unknown(nz),
                }
            };
            // Thresholds apply to what is published: a hidden helper (the
            // numerator of a share) passes its measures on to its ratio.
            if let (Some(t), false) = (self.thresholds(&ind.name), ind.hidden == Some(true)) {
                r.apply(&t);
            }
            out.push((ind.name.clone(), r));
        }
        Ok(out)
    }
}
