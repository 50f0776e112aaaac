//! `explain`'s trace: one indicator recomputed with what it reads, and one
//! zone's features, weights and values laid out.

use super::*;

/// How one value was computed (see [`crate::explain`]).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Trace {
    /// The indicator.
    pub indicator: String,
    /// Its kind.
    pub kind: Option<Kind>,
    /// The zone layer.
    pub zones: String,
    /// The zone's index in the layer.
    pub zone_index: usize,
    /// The attribution of features to zones, where it applies.
    pub assign: Option<Assign>,
    /// The layer read.
    pub layer: Option<String>,
    /// The features used: attributed to the zone and passing the filter.
    pub features: Vec<TracedFeature>,
    /// Features attributed to the zone but left out by the filter.
    pub filtered_out: usize,
    /// For a ratio: each name it reads and its value in the zone.
    pub operands: Vec<(String, Option<f64>)>,
    /// The value recomputed now (first output column).
    pub value: Option<f64>,
    /// Every output column of the indicator, recomputed.
    pub columns: Vec<(String, Option<f64>)>,
}

/// One feature of a [`Trace`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TracedFeature {
    /// Its index among the layer's kept features.
    pub row: u32,
    /// Its `id` column, when the layer has one.
    pub id: Option<String>,
    /// The attribution weight (1 by centroid or intersection; the share of
    /// the feature inside the zone when area-weighted).
    pub weight: f64,
    /// The measure of its part inside the zone (area, length, points),
    /// for the kinds that use it.
    pub measure_inside: Option<f64>,
    /// Its whole measure (for `extensive` with `allocate_total`, the
    /// default: its measure inside all zones, what the value is divided by).
    pub measure: Option<f64>,
    /// Its `column` value (or distance to `other`).
    pub value: Option<f64>,
    /// Its `column` as text (`category_share`).
    pub category: Option<String>,
    /// Its `weight` column.
    pub weight_column: Option<f64>,
    /// For `share_within`: whether it relates to `other`.
    pub related: Option<bool>,
}

impl Evaluator<'_> {
    /// Recompute indicator `target` for zone layer `zl` (with what it
    /// reads), and trace zone `z`: the features used, their weights and
    /// values, the operands of a ratio.
    pub(crate) fn trace(&mut self, target: usize, zl: &str, z: usize) -> Result<Trace> {
        let zones = self
            .inputs
            .zones
            .get(zl)
            .cloned()
            .ok_or_else(|| Error::Internal {
                what: format!("zones `{zl}` are not loaded"),
            })?;
        let mut done: BTreeMap<String, Vec<(String, Values)>> = BTreeMap::new();
        // What the target reads, then the target.
        let plan = self.plan.restricted(target);
        for &i in plan.order() {
            if !self.applies(i, zl, &zones) {
                continue;
            }
            let cols = self.compute(i, zl, &done)?;
            done.insert(self.spec.indicators[i].get_ref().name.clone(), cols);
        }
        let ind: &IndicatorSpec = self.spec.indicators[target].get_ref();
        let mut t = Trace {
            indicator: ind.name.clone(),
            kind: Some(ind.kind),
            zones: zl.to_string(),
            zone_index: z,
            layer: ind.layer.clone(),
            ..Default::default()
        };
        let Some(cols) = done.get(&ind.name) else {
            return Err(self.spec.indicator_error(
                target,
                "zones",
                format!("not computed for zones `{zl}`"),
            ));
        };
        t.columns = cols.iter().map(|(n, v)| (n.clone(), v.get(z))).collect();
        t.value = t.columns.first().and_then(|c| c.1);
        if ind.expr.is_some() {
            let names = self.plan.step(target).expr.as_ref().map(Arith::names);
            for n in names.unwrap_or_default() {
                let v = match done.get(&n) {
                    Some(c) => c.first().and_then(|c| c.1.get(z)),
                    None => self.zone_values(target, zl, &n)?[z],
                };
                t.operands.push((n, v));
            }
            return Ok(t);
        }
        let Some(layer_name) = ind.layer.clone() else {
            return Ok(t);
        };
        let reads = ind.kind.imp().reads(ind);
        if reads == Reads::NoLayer {
            return Ok(t);
        }
        self.trace_features(target, zl, z, &layer_name, &mut t)?;
        Ok(t)
    }

    /// The features of indicator `target`'s layer `layer_name` that zone `z`
    /// of `zl` reads, with their weights, measures and values, into `t`.
    pub(super) fn trace_features(
        &mut self,
        target: usize,
        zl: &str,
        z: usize,
        layer_name: &str,
        t: &mut Trace,
    ) -> Result<()> {
        let ind: &IndicatorSpec = self.spec.indicators[target].get_ref();
        let reads = ind.kind.imp().reads(ind);
        let (_, base_name, members) = self.level(target, zl)?;
        let members = members.as_deref();
        let fi = self.feature_inputs(target, layer_name, &base_name)?;
        let area_kinds = matches!(reads, Reads::Pieces(_));
        let assign = if area_kinds {
            Assign::AreaWeighted
        } else {
            fi.assign
        };
        t.assign = (!area_kinds).then_some(assign);
        let (used, all) = self.used_and_all(target, zl, &fi, assign, members)?;
        t.filtered_out = all.zone(z).0.len() - used.zone(z).0.len();
        let values = match (reads.per_feature(), &ind.column) {
            (PerFeature::Distance, _) => Some(self.feature_values(target, layer_name, &fi.layer)?),
            (PerFeature::Category, _) | (_, None) => None,
            (PerFeature::Column | PerFeature::Nothing, Some(_)) => {
                Some(self.feature_values(target, layer_name, &fi.layer)?)
            }
        };
        let text = |col: &str, f: usize| -> Option<String> {
            let a = fi.layer.attributes().column_by_name(col)?;
            let s = arrow_cast::cast(a, &arrow_schema::DataType::Utf8).ok()?;
            let s = s.as_any().downcast_ref::<arrow_array::StringArray>()?;
            s.is_valid(f).then(|| s.value(f).to_string())
        };
        let flags = ind.other.as_ref().and_then(|o| {
            self.flags
                .get(&(
                    layer_name.to_string(),
                    o.clone(),
                    ind.predicate.unwrap_or(Predicate::Intersects),
                ))
                .cloned()
        });
        // The part of each feature inside the zone (area kinds): from the pairs.
        let inside: HashMap<u32, f64> = if area_kinds {
            let pairs = fi.ov.pairs(self.progress)?;
            let base: Vec<u32> = match members {
                Some(m) => m[z].clone(),
                None => vec![z as u32],
            };
            let mut m: HashMap<u32, f64> = HashMap::new();
            for b in base {
                let (fs, ms) = pairs.zone(b as usize);
                for (f, x) in fs.iter().zip(ms) {
                    *m.entry(*f).or_default() += x;
                }
            }
            m
        } else {
            HashMap::new()
        };
        // What an extensive interpolation divides by: the feature's measure
        // inside all zones (`allocate_total`, the default) or its whole measure.
        let denominators: Vec<f64> =
            if ind.allocate_total.unwrap_or(true) && ind.kind.imp().keys().allocate_total {
                fi.ov.pairs(self.progress)?.totals.clone()
            } else {
                fi.ov.feature_measures()?.to_vec()
            };
        let (fs, ws) = used.zone(z);
        for (f, w) in fs.iter().zip(ws) {
            let fu = *f as usize;
            t.features.push(TracedFeature {
                row: *f,
                id: text("id", fu),
                weight: *w,
                measure_inside: inside.get(f).copied(),
                measure: area_kinds.then(|| denominators[fu]),
                value: values.as_ref().and_then(|v| v[fu]),
                category: (reads.per_feature() == PerFeature::Category)
                    .then(|| ind.column.as_deref().and_then(|c| text(c, fu)))
                    .flatten(),
                weight_column: ind.weight.as_ref().and_then(|_| fi.weight(fu)),
                related: flags.as_ref().map(|fl| fl[fu]),
            });
        }
        Ok(())
    }
}
