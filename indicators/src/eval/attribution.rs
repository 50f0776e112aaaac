//! Attribution: which features of a layer each zone reads, with which
//! weight (centroid, intersects, area-weighted), through a filter's mask
//! or a filter reading the zones; grouped for roll-up levels; computed once
//! per (layer, zone layer, assignment, filter) and shared.

use super::*;

/// A base attribution gathered per roll-up group. Centroids: each feature
/// is in one member; intersects: a feature touching several members counts
/// once; area weights add up.
pub(super) fn group_attribution(
    a: &Attribution,
    members: &[Vec<u32>],
    assign: Assign,
) -> Attribution {
    let add = assign == Assign::AreaWeighted;
    let per: Vec<Vec<(u32, f64)>> = members
        .par_iter()
        .map(|g| merge_members(g.iter().map(|z| a.zone(*z as usize)), add))
        .collect();
    let mut offsets = Vec::with_capacity(per.len() + 1);
    let mut features = Vec::new();
    let mut weights = Vec::new();
    offsets.push(0);
    for g in per {
        for (f, w) in g {
            features.push(f);
            weights.push(w);
        }
        offsets.push(features.len());
    }
    Attribution {
        offsets,
        features,
        weights,
    }
}

/// The (feature, value) entries of several member zones as one zone,
/// ascending by feature: duplicates are summed (`add`) or kept once.
/// Entries of one feature are met in member order, so sums are deterministic.
pub(super) fn merge_members<'a>(
    zones: impl Iterator<Item = (&'a [u32], &'a [f64])>,
    add: bool,
) -> Vec<(u32, f64)> {
    let mut all: Vec<(u32, f64)> = zones
        .flat_map(|(fs, ws)| fs.iter().copied().zip(ws.iter().copied()))
        .collect();
    all.sort_by_key(|e| e.0);
    let mut out: Vec<(u32, f64)> = Vec::with_capacity(all.len());
    for (f, w) in all {
        match out.last_mut() {
            Some(last) if last.0 == f => {
                if add {
                    last.1 += w;
                }
            }
            _ => out.push((f, w)),
        }
    }
    out
}

/// The overlay pairs of a roll-up level: measures of a feature in member
/// zones add up; per-feature totals are recomputed over the level's zones.
pub(super) fn group_pairs(
    p: &terrastat_core::Pairs,
    members: &[Vec<u32>],
) -> terrastat_core::Pairs {
    let per: Vec<Vec<(u32, f64)>> = members
        .par_iter()
        .map(|g| merge_members(g.iter().map(|z| p.zone(*z as usize)), true))
        .collect();
    let mut out = terrastat_core::Pairs {
        offsets: vec![0],
        features: vec![],
        measures: vec![],
        totals: vec![0.0; p.totals.len()],
    };
    for g in per {
        for (f, m) in g {
            out.features.push(f);
            out.measures.push(m);
            out.totals[f as usize] += m;
        }
        out.offsets.push(out.features.len());
    }
    out
}

impl<'a> Evaluator<'a> {
    /// The attribution of indicator `i`'s features to the zones of `zl`:
    /// those passing its filter (used), and all of them.
    pub(super) fn used_and_all(
        &mut self,
        i: usize,
        zl: &str,
        fi: &FeatureInputs,
        assign: Assign,
        members: Option<&[Vec<u32>]>,
    ) -> Result<(Arc<Attribution>, Arc<Attribution>)> {
        let ind: &IndicatorSpec = self.spec.indicators[i].get_ref();
        let layer = ind.layer.as_deref().unwrap_or_default();
        let used = self.attribution_at(
            &fi.ov,
            assign,
            fi.mask(),
            members,
            (layer, zl, ind.filter.is_some().then_some(i)),
        )?;
        let all = self.attribution_at(&fi.ov, assign, None, members, (layer, zl, None))?;
        Ok((used, all))
    }

    /// The mask of indicator `i`'s filter over `layer` (`None`: no filter,
    /// or one reading the zones, evaluated in the attribution); computed
    /// once per (layer, filter text).
    pub(super) fn mask(&mut self, i: usize, layer: &str) -> Result<Option<Arc<Vec<bool>>>> {
        let plan = self.plan;
        let step = plan.step(i);
        let (Some(parsed), Some(f)) = (&step.filter, &self.spec.indicators[i].get_ref().filter)
        else {
            return Ok(None);
        };
        if step.zone_filter {
            return Ok(None);
        }
        let key = (layer.to_string(), f.clone());
        if let Some(m) = self.masks.get(&key) {
            return Ok(Some(m.clone()));
        }
        let l = self.layer(layer)?;
        let cols = self.literal_columns(i, l, &parsed.columns())?;
        let m: Vec<bool> = (0..l.len())
            .into_par_iter()
            .map(|row| {
                parsed
                    .eval(&|c| cols.get(c).and_then(|v| v[row].clone()))
                    .unwrap_or(false)
            })
            .collect();
        let m = Arc::new(m);
        self.masks.insert(key, m.clone());
        Ok(Some(m))
    }

    /// Columns of `l` as filter literals, by name.
    pub(super) fn literal_columns(
        &self,
        i: usize,
        l: &Layer,
        names: &std::collections::BTreeSet<String>,
    ) -> Result<HashMap<String, Vec<Option<Literal>>>> {
        let mut cols: HashMap<String, Vec<Option<Literal>>> = HashMap::new();
        for c in names {
            let arr = l
                .column(c)
                .map_err(|e| self.spec.indicator_error(i, "filter", e.to_string()))?;
            let vals: Vec<Option<Literal>> = match arr.data_type() {
                DataType::Boolean => {
                    let b = arr
                        .as_any()
                        .downcast_ref::<arrow_array::BooleanArray>()
                        .ok_or_else(|| self.spec.indicator_error(i, "filter", "boolean column"))?;
                    b.iter().map(|v| v.map(Literal::Bool)).collect()
                }
                t if t.is_numeric() => l
                    .numeric_column(c)?
                    .into_iter()
                    .map(|v| v.map(Literal::Num))
                    .collect(),
                _ => l
                    .string_column(c)?
                    .into_iter()
                    .map(|v| v.map(Literal::Str))
                    .collect(),
            };
            cols.insert(c.clone(), vals);
        }
        Ok(cols)
    }

    /// The attribution of `ov`'s features to its (base) zones, keeping the
    /// (feature, zone) entries for which indicator `i`'s filter, reading
    /// feature columns and the zone's columns (`zone.<column>`), is true.
    pub(super) fn attribution_zone_filtered(
        &mut self,
        i: usize,
        ov: &Overlay,
        assign: Assign,
    ) -> Result<Attribution> {
        let plan = self.plan;
        let Some(parsed) = plan.step(i).filter.as_ref() else {
            return Err(Error::Internal {
                what: format!("indicator {i} has no filter to evaluate per zone"),
            });
        };
        let (zone_names, feature_names): (std::collections::BTreeSet<String>, _) = parsed
            .columns()
            .into_iter()
            .partition(|c| c.starts_with(ZONE_PREFIX));
        let fcols = self.literal_columns(i, ov.layer(), &feature_names)?;
        // The zones' columns, through a layer over their attributes.
        let zones = ov.zones();
        let zl = Layer::new(
            zones.name(),
            zones.crs().clone(),
            zones.geometries(),
            zones.attributes().clone(),
        )?;
        let bare: std::collections::BTreeSet<String> = zone_names
            .iter()
            .map(|c| c[ZONE_PREFIX.len()..].to_string())
            .collect();
        let zcols = self.literal_columns(i, &zl, &bare)?;
        let a = self.attribution(ov, assign, None)?;
        let mut offsets = Vec::with_capacity(zones.len() + 1);
        let mut features = Vec::new();
        let mut weights = Vec::new();
        offsets.push(0);
        for z in 0..zones.len() {
            let (fs, ws) = a.zone(z);
            for (f, w) in fs.iter().zip(ws) {
                let get = |c: &str| match c.strip_prefix(ZONE_PREFIX) {
                    Some(zc) => zcols.get(zc).and_then(|v| v[z].clone()),
                    None => fcols.get(c).and_then(|v| v[*f as usize].clone()),
                };
                if parsed.eval(&get) == Some(true) {
                    features.push(*f);
                    weights.push(*w);
                }
            }
            offsets.push(features.len());
        }
        Ok(Attribution {
            offsets,
            features,
            weights,
        })
    }

    pub(super) fn attribution(
        &mut self,
        ov: &Overlay,
        assign: Assign,
        mask: Option<&[bool]>,
    ) -> Result<Attribution> {
        let n_zones = ov.zones().len();
        let keep = |f: usize| mask.is_none_or(|m| m[f]);
        match assign {
            Assign::Centroid => {
                let cz = ov.centroid_zones(self.progress)?;
                let mut offsets = vec![0usize; n_zones + 1];
                for (f, z) in cz.iter().enumerate() {
                    if let (Some(z), true) = (z, keep(f)) {
                        offsets[*z as usize + 1] += 1;
                    }
                }
                for i in 1..offsets.len() {
                    offsets[i] += offsets[i - 1];
                }
                let mut next = offsets.clone();
                let mut features = vec![0u32; offsets[n_zones]];
                for (f, z) in cz.iter().enumerate() {
                    if let (Some(z), true) = (z, keep(f)) {
                        features[next[*z as usize]] = f as u32;
                        next[*z as usize] += 1;
                    }
                }
                let weights = vec![1.0; features.len()];
                Ok(Attribution {
                    offsets,
                    features,
                    weights,
                })
            }
            Assign::Intersects | Assign::AreaWeighted => {
                let pairs = ov.pairs(self.progress)?;
                let fm = ov.feature_measures()?;
                let mut offsets = Vec::with_capacity(n_zones + 1);
                let mut features = Vec::new();
                let mut weights = Vec::new();
                offsets.push(0);
                for z in 0..n_zones {
                    let (fs, ms) = pairs.zone(z);
                    for (f, m) in fs.iter().zip(ms) {
                        if !keep(*f as usize) {
                            continue;
                        }
                        let w = if assign == Assign::Intersects {
                            1.0
                        } else if fm[*f as usize] > 0.0 {
                            m / fm[*f as usize]
                        } else {
                            0.0
                        };
                        if assign == Assign::AreaWeighted && w <= 0.0 {
                            continue;
                        }
                        features.push(*f);
                        weights.push(w);
                    }
                    offsets.push(features.len());
                }
                Ok(Attribution {
                    offsets,
                    features,
                    weights,
                })
            }
        }
    }

    /// [`Self::attribution`] on the base zones, grouped for a roll-up level;
    /// computed once per (layer, zone layer, assignment, filter) and shared
    /// by the indicators that agree on them.
    pub(super) fn attribution_at(
        &mut self,
        ov: &Overlay,
        assign: Assign,
        mask: Option<&[bool]>,
        members: Option<&[Vec<u32>]>,
        key: (&str, &str, Option<usize>),
    ) -> Result<Arc<Attribution>> {
        // Keyed by the filter's text: indicators with the same filter share it.
        let filter = key
            .2
            .and_then(|i| self.spec.indicators[i].get_ref().filter.clone());
        let ckey = (key.0.to_string(), key.1.to_string(), assign, filter);
        if let Some(a) = self.attributions.get(&ckey) {
            return Ok(a.clone());
        }
        if let Some(i) = key.2.filter(|&i| self.plan.step(i).zone_filter) {
            let base = self.attribution_zone_filtered(i, ov, assign)?;
            let a = Arc::new(match members {
                None => base,
                Some(m) => group_attribution(&base, m, assign),
            });
            self.attributions.insert(ckey, a.clone());
            return Ok(a);
        }
        let a = Arc::new(self.attribution_grouped(ov, assign, mask, members)?);
        self.attributions.insert(ckey, a.clone());
        Ok(a)
    }

    pub(super) fn attribution_grouped(
        &mut self,
        ov: &Overlay,
        assign: Assign,
        mask: Option<&[bool]>,
        members: Option<&[Vec<u32>]>,
    ) -> Result<Attribution> {
        let Some(members) = members else {
            return self.attribution(ov, assign, mask);
        };
        if assign == Assign::Centroid {
            // Each feature is in one member zone, so in one group when the
            // groups do not share members: a counting sort by group, in
            // ascending feature order (what merging the members would give).
            let mut group_of = vec![u32::MAX; ov.zones().len()];
            let mut disjoint = true;
            for (g, ms) in members.iter().enumerate() {
                for &m in ms {
                    match group_of.get_mut(m as usize) {
                        Some(x) if *x == u32::MAX => *x = g as u32,
                        _ => disjoint = false,
                    }
                }
            }
            if disjoint {
                let cz = ov.centroid_zones(self.progress)?;
                let group = |f: usize| -> Option<usize> {
                    if mask.is_some_and(|m| !m[f]) {
                        return None;
                    }
                    let g = *group_of.get(cz[f]? as usize)?;
                    (g != u32::MAX).then_some(g as usize)
                };
                let mut offsets = vec![0usize; members.len() + 1];
                for f in 0..cz.len() {
                    if let Some(g) = group(f) {
                        offsets[g + 1] += 1;
                    }
                }
                for i in 1..offsets.len() {
                    offsets[i] += offsets[i - 1];
                }
                let mut next = offsets.clone();
                let mut features = vec![0u32; offsets[members.len()]];
                for f in 0..cz.len() {
                    if let Some(g) = group(f) {
                        features[next[g]] = f as u32;
                        next[g] += 1;
                    }
                }
                let weights = vec![1.0; features.len()];
                return Ok(Attribution {
                    offsets,
                    features,
                    weights,
                });
            }
        }
        let a = self.attribution(ov, assign, mask)?;
        Ok(group_attribution(&a, members, assign))
    }
}
