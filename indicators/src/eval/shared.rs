//! The shared work of a run, built once per key and reused by every
//! indicator that needs it: loaded layers, overlays, feature inputs,
//! numeric columns, distances to the nearest feature of another layer,
//! relation flags, and the zone values a ratio reads.

use super::*;

impl<'a> Evaluator<'a> {
    pub(super) fn layer(&self, name: &str) -> Result<&'a Arc<Layer>> {
        self.inputs.layers.get(name).ok_or_else(|| Error::Internal {
            what: format!("layer `{name}` is not loaded"),
        })
    }

    pub(super) fn overlay(&mut self, layer: &str, zones: &str) -> Result<Arc<Overlay>> {
        let key = (layer.to_string(), zones.to_string());
        if let Some(o) = self.overlays.get(&key) {
            return Ok(o.clone());
        }
        let l = self.layer(layer)?.clone();
        let z = self
            .inputs
            .zones
            .get(zones)
            .cloned()
            .ok_or_else(|| Error::Internal {
                what: format!("zones `{zones}` are not loaded"),
            })?;
        let o = Arc::new(Overlay::new(l, z)?);
        self.overlays.insert(key, o.clone());
        Ok(o)
    }

    pub(super) fn numeric(
        &self,
        i: usize,
        layer: &Layer,
        key: &str,
        column: &str,
    ) -> Result<Vec<Option<f64>>> {
        layer
            .numeric_column(column)
            .map_err(|e| self.spec.indicator_error(i, key, e.to_string()))
    }

    /// The zone layer `zl` of indicator `i`, the base layer whose overlay
    /// serves it (itself, or the base of a roll-up level) and, for a level,
    /// the base zones of each of its zones.
    pub(super) fn level(
        &self,
        i: usize,
        zl: &str,
    ) -> Result<(Arc<Zones>, String, Option<Members>)> {
        let zones = self.inputs.zones.get(zl).cloned().ok_or_else(|| {
            self.spec
                .indicator_error(i, "zones", format!("zones `{zl}` not loaded"))
        })?;
        // A roll-up level is computed from its base zones' overlay.
        let (base, members) = match zones.grouping() {
            Some(g) => (g.base.clone(), Some(g.members.clone())),
            None => (zl.to_string(), None),
        };
        Ok((zones, base, members))
    }

    /// What indicator `i` reads of layer `layer_name`: the layer, its
    /// filter's mask, its overlay on the zones `base`, its weights.
    pub(super) fn feature_inputs(
        &mut self,
        i: usize,
        layer_name: &str,
        base: &str,
    ) -> Result<FeatureInputs> {
        let ind: &IndicatorSpec = self.spec.indicators[i].get_ref();
        let layer = self.layer(layer_name)?.clone();
        let mask = self.mask(i, layer_name)?;
        let ov = self.overlay(layer_name, base)?;
        let weights = match &ind.weight {
            Some(w) => Some(self.numeric(i, &layer, "weight", w)?),
            None => None,
        };
        Ok(FeatureInputs {
            layer,
            mask,
            ov,
            assign: ind.assign.unwrap_or_default(),
            weights,
        })
    }

    /// The values of `name` per zone of `zl`, for a ratio: a numeric column
    /// of the zones (at a roll-up level, an `additive` column of the base
    /// zones summed over members, null if a member's is), or `table.column`
    /// of a table joined to `zl`.
    pub(super) fn zone_values(&self, i: usize, zl: &str, name: &str) -> Result<Vec<Option<f64>>> {
        let fail = |m: String| Err(self.spec.indicator_error(i, "expr", m));
        let (zones, base_name, members) = self.level(i, zl)?;
        if let Some((t, c)) = name.split_once('.') {
            if let Some(table) = self.inputs.tables.get(t) {
                let joins = self.inputs.joins.get(t);
                if let Some((rows, _)) = joins.and_then(|j| j.get(zl)) {
                    return table.values(c, rows).or_else(fail);
                }
                // A roll-up of zones the table joins: additive columns sum up.
                if let (Some(m), Some((rows, _))) =
                    (members.as_deref(), joins.and_then(|j| j.get(&base_name)))
                {
                    let additive = self.spec.tables[t]
                        .additive
                        .as_ref()
                        .is_some_and(|a| a.iter().any(|x| x == c));
                    if !additive {
                        return fail(format!(
                            "table `{t}` joins `{base_name}`, not its roll-up `{zl}`: declare `additive = [\"{c}\"]` in `[tables.{t}]` to sum `{c}` over members"
                        ));
                    }
                    let v = table.values(c, rows).or_else(fail)?;
                    return Ok(m
                        .iter()
                        .map(|zs| zs.iter().map(|&z| v[z as usize]).sum::<Option<f64>>())
                        .collect());
                }
                return fail(format!(
                    "table `{t}` is not joined to zones `{zl}` (a table joins the zone layers whose id or roll-up column is its `key`, or those its `zones` names)"
                ));
            }
        }
        let column = |z: &Zones| -> Option<Result<Vec<Option<f64>>>> {
            let col = z.attributes().column_by_name(name)?;
            if !col.data_type().is_numeric() {
                return Some(fail(format!(
                    "column `{name}` of zones `{}` is {}, not numbers",
                    z.name(),
                    col.data_type()
                )));
            }
            Some(terrastat_core::numeric_values(col.as_ref()).map_or_else(
                || {
                    fail(format!(
                        "column `{name}` of zones `{}` cannot be read as numbers",
                        z.name()
                    ))
                },
                Ok,
            ))
        };
        if let Some(v) = column(&zones) {
            return v;
        }
        if let Some(m) = members.as_deref() {
            let base = self.inputs.zones.get(&base_name);
            if let Some(v) = base.and_then(|b| column(b)) {
                let additive = self
                    .spec
                    .zones
                    .get(&base_name)
                    .and_then(|z| z.get_ref().additive.as_ref())
                    .is_some_and(|a| a.iter().any(|c| c == name));
                if !additive {
                    return fail(format!(
                        "`{name}` is a column of zones `{base_name}`, not of their roll-up `{zl}`: declare `additive = [\"{name}\"]` in `[zones.{base_name}]` to sum it over members"
                    ));
                }
                let v = v?;
                return Ok(m
                    .iter()
                    .map(|zs| zs.iter().map(|&z| v[z as usize]).sum::<Option<f64>>())
                    .collect());
            }
        }
        let tables: Vec<String> = self
            .inputs
            .joins
            .iter()
            .filter(|(_, j)| j.contains_key(zl))
            .map(|(t, _)| format!("`{t}.<column>`"))
            .collect();
        fail(format!(
            "`{name}` is not an indicator computed for zones `{zl}`, nor a column of those zones{}",
            if tables.is_empty() {
                String::new()
            } else {
                format!(", nor a table column ({})", tables.join(", "))
            }
        ))
    }

    /// The per-feature values an indicator reduces: its `column`, or for
    /// `nearest_distance` the distance to the nearest feature of `other`.
    pub(super) fn feature_values(
        &mut self,
        i: usize,
        layer_name: &str,
        layer: &Layer,
    ) -> Result<Arc<Vec<Option<f64>>>> {
        let ind = self.spec.indicators[i].get_ref();
        if ind.kind.imp().reads(ind).per_feature() != PerFeature::Distance {
            let col = ind.column.as_deref().unwrap_or_default();
            return Ok(Arc::new(self.numeric(i, layer, "column", col)?));
        }
        let other = ind.other.clone().unwrap_or_default();
        let key = (layer_name.to_string(), other.clone());
        if let Some(d) = self.nearest.get(&key) {
            return Ok(d.clone());
        }
        let o = self.layer(&other)?;
        let d = Arc::new(relate::nearest_distances(layer, o, self.progress)?);
        self.nearest.insert(key, d.clone());
        Ok(d)
    }

    /// Whether each feature of `layer_name` relates to a feature of `other`
    /// as `predicate` says (`share_within`); computed once per key.
    pub(super) fn flags(
        &mut self,
        layer_name: &str,
        layer: &Arc<Layer>,
        other: &str,
        predicate: Predicate,
    ) -> Result<Arc<Vec<bool>>> {
        let fkey = (layer_name.to_string(), other.to_string(), predicate);
        if let Some(f) = self.flags.get(&fkey) {
            return Ok(f.clone());
        }
        // A partition that no feature of `other` meets.
        if self.absent_is_empty && !self.inputs.layers.contains_key(other) {
            return Ok(Arc::new(vec![false; layer.len()]));
        }
        let r = match self.relators.get(other) {
            Some(r) => r.clone(),
            None => {
                let o = self.layer(other)?.clone();
                let r = Arc::new(relate::Relator::new(o, layer.len()));
                self.relators.insert(other.to_string(), r.clone());
                r
            }
        };
        let f = Arc::new(r.flags(layer, predicate, self.progress)?);
        self.flags.insert(fkey, f.clone());
        Ok(f)
    }
}
