//! Evaluation: load the inputs of a spec, build overlays once per
//! (layer, zones) pair, compute every indicator per zone in parallel.
//!
//! Determinism: every per-zone value is computed by one thread, reading the
//! zone's features in ascending feature order; per-feature totals are summed
//! in zone order. Results are therefore the same bytes whatever the thread count.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use rayon::prelude::*;
use terrastat_core::{relate, ExactSum, Layer, NoProgress, Overlay, Predicate, Progress, Zones};

use crate::error::{Error, Result};
use crate::expr::{Arith, Filter, Literal, ZONE_PREFIX};
use crate::inputs::{check_columns, Inputs};
use crate::kinds::{Evaluation, PerFeature, Reads};
use crate::spec::{Assign, IndicatorSpec, Kind, Spec};

/// The result for one zone layer: the id column first, then one column per
/// indicator (several for `category_share`), in spec order.
#[derive(Debug, Clone)]
pub struct ZoneTable {
    /// The zone layer's name.
    pub zones: String,
    /// The table.
    pub batch: RecordBatch,
    /// For each indicator name, its output columns.
    pub columns: BTreeMap<String, Vec<String>>,
    /// The raster passes made for this zone layer (zonal indicators).
    pub rasters: Vec<crate::zonal::PassReport>,
    /// The quality of every value (see [`crate::quality::table`]).
    pub quality: RecordBatch,
    /// Per published indicator, a summary of its quality.
    pub quality_summary: BTreeMap<String, serde_json::Value>,
}

/// Features attributed to each zone, with their weights (CSR by zone).
pub(crate) struct Attribution {
    offsets: Vec<usize>,
    features: Vec<u32>,
    weights: Vec<f64>,
}

impl Attribution {
    /// The features attributed to zone `z` (ascending) and their weights.
    pub(crate) fn zone(&self, z: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.offsets[z], self.offsets[z + 1]);
        (&self.features[a..b], &self.weights[a..b])
    }
}

/// Computed values of one output column.
pub(crate) enum Values {
    /// Counts.
    Int(Vec<i64>),
    /// Counts some of which may be withheld (see [`crate::quality`]).
    IntOpt(Vec<Option<i64>>),
    /// Numbers, null where undefined.
    Float(Vec<Option<f64>>),
}

/// The output columns of one indicator: (column name, values).
pub(crate) type Columns = Vec<(String, Values)>;

/// The columns computed so far for a zone layer, by indicator name.
type Done = BTreeMap<String, Columns>;

impl Values {
    fn to_array(&self) -> ArrayRef {
        match self {
            Values::Int(v) => Arc::new(Int64Array::from(v.clone())),
            Values::IntOpt(v) => Arc::new(Int64Array::from(v.clone())),
            Values::Float(v) => Arc::new(Float64Array::from(v.clone())),
        }
    }
    /// The value of zone `z`, as a number.
    pub(crate) fn get(&self, z: usize) -> Option<f64> {
        match self {
            Values::Int(v) => Some(v[z] as f64),
            Values::IntOpt(v) => v[z].map(|x| x as f64),
            Values::Float(v) => v[z],
        }
    }
    /// The same values, nullable, with the zones `withheld` says set to null.
    fn withhold(self, withheld: &[Option<String>]) -> Values {
        match self {
            Values::Int(v) => Values::IntOpt(
                v.into_iter()
                    .zip(withheld)
                    .map(|(x, w)| w.is_none().then_some(x))
                    .collect(),
            ),
            Values::IntOpt(v) => Values::IntOpt(
                v.into_iter()
                    .zip(withheld)
                    .map(|(x, w)| x.filter(|_| w.is_none()))
                    .collect(),
            ),
            Values::Float(v) => Values::Float(
                v.into_iter()
                    .zip(withheld)
                    .map(|(x, w)| x.filter(|_| w.is_none()))
                    .collect(),
            ),
        }
    }
}

/// What quality needs from the batches of a streamed layer: the feature
/// counts per (zone layer, indicator), and each layer's extent.
#[derive(Debug, Clone, Default)]
pub(crate) struct QualityState {
    pub(crate) counts: BTreeMap<(String, usize), crate::quality::Counts>,
    pub(crate) extents: BTreeMap<String, Option<geo::Rect>>,
}

/// The running per-zone state of a streamable indicator: what a batch of
/// features adds to, and what the final values are computed from.
#[derive(Debug, Clone)]
pub(crate) enum Partial {
    /// `slots` sums per zone (zone-major): a count or sum, or the numerator
    /// and denominator of a mean, a share or an intensive interpolation.
    Sums {
        /// Sums per zone.
        slots: usize,
        /// `zones × slots` running sums, exact (the same bits in any order).
        acc: Vec<ExactSum>,
    },
    /// A running minimum or maximum per zone.
    Extreme {
        /// Maximum (else minimum).
        max: bool,
        /// The running extreme of each zone.
        acc: Vec<Option<f64>>,
    },
    /// Per category (in byte order) the weight per zone, and the total.
    Categories {
        /// Category → weight per zone.
        names: BTreeMap<String, Vec<ExactSum>>,
        /// Total weight per zone.
        total: Vec<ExactSum>,
        /// The categories met in the features folded so far (`names` may
        /// also hold categories seeded from an earlier run).
        seen: std::collections::BTreeSet<String>,
    },
}

impl Partial {
    /// The empty state of a streamable indicator for `nz` zones.
    pub(crate) fn new(
        ind: &IndicatorSpec,
        nz: usize,
        seeds: &BTreeMap<String, Vec<String>>,
    ) -> Result<Partial> {
        match ind.kind.imp().evaluation(ind) {
            Evaluation::Accumulate(a) => Ok(a.state(ind, nz, seeds)),
            Evaluation::AtOnce(_) => Err(Error::Internal {
                what: format!("indicator `{}` has no partial state", ind.name),
            }),
        }
    }

    /// The sums of a count-like state.
    pub(crate) fn sums_mut(&mut self, cx: &Cx<'_, '_>) -> Result<&mut [ExactSum]> {
        match self {
            Partial::Sums { acc, .. } => Ok(acc),
            _ => Err(cx.internal("a sum without its state")),
        }
    }

    /// The sums of a count-like state, taken.
    pub(crate) fn into_sums(self, cx: &Cx<'_, '_>) -> Result<Vec<ExactSum>> {
        match self {
            Partial::Sums { acc, .. } => Ok(acc),
            _ => Err(cx.internal("a sum without its state")),
        }
    }
}

/// Fold `x` into a running minimum (`max == false`) or maximum, in the
/// total order of `f64` (the first of equal values stays).
pub(crate) fn keep_extreme(e: &mut Option<f64>, x: f64, max: bool) {
    *e = Some(match *e {
        Some(cur) if max == x.total_cmp(&cur).is_le() => cur,
        _ => x,
    });
}

/// Whether an indicator reduces its layer's features through a [`Partial`]:
/// then batches of features (partitions of a streamed layer) can be folded
/// one after the other. Medians and the union areas of `coverage` / `area`
/// need every feature at once.
pub(crate) fn streamable(ind: &IndicatorSpec) -> bool {
    ind.layer.is_some() && matches!(ind.kind.imp().evaluation(ind), Evaluation::Accumulate(_))
}

/// What an indicator reads of its layer (see `Evaluator::feature_inputs`).
pub(crate) struct FeatureInputs {
    /// The layer.
    pub(crate) layer: Arc<Layer>,
    mask: Option<Arc<Vec<bool>>>,
    /// Its overlay on the (base) zones.
    pub(crate) ov: Arc<Overlay>,
    assign: Assign,
    /// The `weight` column, if any.
    weights: Option<Vec<Option<f64>>>,
}

impl FeatureInputs {
    /// The filter's mask (`None`: every feature).
    pub(crate) fn mask(&self) -> Option<&[bool]> {
        self.mask.as_deref().map(|v| v.as_slice())
    }

    /// Feature `f`'s weight: 1 without a `weight` column, `None` when null.
    pub(crate) fn weight(&self, f: usize) -> Option<f64> {
        match &self.weights {
            Some(w) => w[f],
            None => Some(1.0),
        }
    }
}

type Key2 = (String, String);

/// A base attribution gathered per roll-up group. Centroids: each feature
/// is in one member; intersects: a feature touching several members counts
/// once; area weights add up.
fn group_attribution(a: &Attribution, members: &[Vec<u32>], assign: Assign) -> Attribution {
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

/// For each zone of a roll-up level, its base zones.
type Members = Vec<Vec<u32>>;

/// Evaluation state: caches of overlays, masks, flags and distances, shared
/// by all indicators of a run.
pub struct Evaluator<'a> {
    spec: &'a Spec,
    inputs: &'a Inputs,
    progress: &'a dyn Progress,
    overlays: HashMap<Key2, Arc<Overlay>>,
    masks: HashMap<Key2, Arc<Vec<bool>>>,
    flags: HashMap<(String, String, Predicate), Arc<Vec<bool>>>,
    /// Feature counts and layer extents for the quality records.
    quality: QualityState,
    /// Layers whose extent this evaluator already added to `quality`.
    extent_seen: std::collections::HashSet<String>,
    /// Indexed `other` layers of `share_within`, by name (kept across the
    /// batches of a streamed layer).
    relators: HashMap<String, Arc<relate::Relator<Arc<Layer>>>>,
    nearest: HashMap<Key2, Arc<Vec<Option<f64>>>>,
    passes: crate::zonal::Passes,
    /// Running per-zone state of the streamable indicators, by (zone layer, indicator).
    partials: BTreeMap<(String, usize), Partial>,
    /// Layers whose partials were accumulated batch by batch elsewhere
    /// (the streamed run): [`Self::run`] only finishes them.
    external: std::collections::BTreeSet<String>,
    /// A layer missing from the inputs is an empty one (a partition of a
    /// distributed run that no feature of a related layer meets).
    absent_is_empty: bool,
    /// Attributions by (layer, zone layer, assignment, filter).
    attributions: HashMap<(String, String, Assign, Option<String>), Arc<Attribution>>,
    /// Categories known before any feature is folded, per `category_share`
    /// indicator (an incremental run seeds those of the previous run).
    seeds: BTreeMap<String, Vec<String>>,
    /// Per `category_share` indicator, its categories and those met.
    categories: BTreeMap<String, (Vec<String>, std::collections::BTreeSet<String>)>,
}

impl<'a> Evaluator<'a> {
    /// A new evaluator over loaded inputs.
    pub fn new(spec: &'a Spec, inputs: &'a Inputs, progress: &'a dyn Progress) -> Self {
        Evaluator {
            spec,
            inputs,
            progress,
            overlays: HashMap::new(),
            masks: HashMap::new(),
            flags: HashMap::new(),
            relators: HashMap::new(),
            quality: QualityState::default(),
            extent_seen: Default::default(),
            nearest: HashMap::new(),
            passes: Default::default(),
            partials: BTreeMap::new(),
            external: Default::default(),
            seeds: BTreeMap::new(),
            categories: BTreeMap::new(),
            attributions: HashMap::new(),
            absent_is_empty: false,
        }
    }

    /// Seed the categories of `category_share` indicators (by indicator name).
    pub(crate) fn with_seeds(mut self, seeds: BTreeMap<String, Vec<String>>) -> Self {
        self.seeds = seeds;
        self
    }

    /// Per `category_share` indicator finished, its categories (columns)
    /// and the categories met in the features folded.
    pub(crate) fn categories(
        &self,
    ) -> &BTreeMap<String, (Vec<String>, std::collections::BTreeSet<String>)> {
        &self.categories
    }

    /// Treat a layer missing from the inputs as empty.
    pub(crate) fn absent_is_empty(mut self) -> Self {
        self.absent_is_empty = true;
        self
    }

    /// Take over the partials accumulated by earlier batches of `layer`.
    pub(crate) fn with_partials(
        mut self,
        partials: BTreeMap<(String, usize), Partial>,
        external: Option<&str>,
    ) -> Self {
        self.partials = partials;
        self.external.extend(external.map(str::to_string));
        self
    }

    /// The partials accumulated so far.
    pub(crate) fn into_partials(self) -> BTreeMap<(String, usize), Partial> {
        self.partials
    }

    /// Continue the quality counts of earlier batches.
    pub(crate) fn with_quality(mut self, q: QualityState) -> Self {
        self.quality = q;
        self
    }

    /// The quality counts so far.
    pub(crate) fn take_quality(&mut self) -> QualityState {
        std::mem::take(&mut self.quality)
    }

    /// The attribution of indicator `i`'s features to the zones of `zl`:
    /// those passing its filter (used), and all of them.
    fn used_and_all(
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
            (layer, zl, ind.filter.as_deref()),
        )?;
        let all = self.attribution_at(&fi.ov, assign, None, members, (layer, zl, None))?;
        Ok((used, all))
    }

    /// Count, for indicator `i` at level `zl`, the features attributed to
    /// each zone, those with their needed columns, and those used; and
    /// widen the layer's extent (see [`crate::quality`]).
    fn count_quality(&mut self, i: usize, zl: &str) -> Result<()> {
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
        let mut needed: Vec<String> = ind
            .column
            .iter()
            .chain(ind.weight.iter())
            .cloned()
            .collect();
        if let Some(f) = &ind.filter {
            needed.extend(crate::expr::Filter::parse(f)?.columns());
        }
        let attrs = fi.layer.attributes();
        let cols: Vec<&ArrayRef> = needed
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

    /// Reuse indexes of related layers built by an earlier evaluator.
    pub(crate) fn with_relators(
        mut self,
        relators: HashMap<String, Arc<relate::Relator<Arc<Layer>>>>,
    ) -> Self {
        self.relators = relators;
        self
    }

    /// The indexes of related layers built so far.
    pub(crate) fn relators(&self) -> HashMap<String, Arc<relate::Relator<Arc<Layer>>>> {
        self.relators.clone()
    }

    /// Declared zone layers, then the roll-up levels (`<zones>_by_<column>`).
    fn zone_layer_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.spec.zones.keys().cloned().collect();
        names.extend(
            self.inputs
                .zones
                .keys()
                .filter(|k| !self.spec.zones.contains_key(*k))
                .cloned(),
        );
        names
    }

    /// Whether indicator `i` is computed for zone layer `zl` (a roll-up
    /// level not declared in the spec gets its base's indicators).
    fn applies(&self, i: usize, zl: &str, zones: &Zones) -> bool {
        let selector = match zones.grouping() {
            Some(g) if !self.spec.zones.contains_key(zl) => g.base.as_str(),
            _ => zl,
        };
        self.spec.indicators[i]
            .get_ref()
            .zone_names(&self.spec.zones)
            .contains(&selector)
    }

    /// One batch of a streamed run: fold the features of `layer` now loaded
    /// into the partials of every streamable indicator over that layer.
    pub(crate) fn accumulate_layer(&mut self, layer: &str) -> Result<()> {
        for zl in self.zone_layer_names() {
            let Some(zones) = self.inputs.zones.get(&zl).cloned() else {
                continue;
            };
            for i in 0..self.spec.indicators.len() {
                let ind = self.spec.indicators[i].get_ref();
                if ind.layer.as_deref() == Some(layer)
                    && streamable(ind)
                    && self.applies(i, &zl, &zones)
                {
                    self.accumulate(i, &zl)?;
                }
            }
        }
        Ok(())
    }

    fn layer(&self, name: &str) -> Result<&'a Arc<Layer>> {
        self.inputs.layers.get(name).ok_or_else(|| Error::Internal {
            what: format!("layer `{name}` is not loaded"),
        })
    }

    fn overlay(&mut self, layer: &str, zones: &str) -> Result<Arc<Overlay>> {
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

    fn mask(
        &mut self,
        i: usize,
        layer: &str,
        filter: Option<&str>,
    ) -> Result<Option<Arc<Vec<bool>>>> {
        let Some(f) = filter else {
            return Ok(None);
        };
        let key = (layer.to_string(), f.to_string());
        if let Some(m) = self.masks.get(&key) {
            return Ok(Some(m.clone()));
        }
        let l = self.layer(layer)?;
        let parsed =
            Filter::parse(f).map_err(|e| self.spec.indicator_error(i, "filter", e.to_string()))?;
        if parsed.columns().iter().any(|c| c.starts_with(ZONE_PREFIX)) {
            // Evaluated per feature and zone, in the attribution.
            return Ok(None);
        }
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
    fn literal_columns(
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
    /// (feature, zone) entries for which `filter`, reading feature columns
    /// and the zone's columns (`zone.<column>`), is true.
    fn attribution_zone_filtered(
        &mut self,
        i: usize,
        ov: &Overlay,
        assign: Assign,
        filter: &str,
    ) -> Result<Attribution> {
        let parsed = Filter::parse(filter)
            .map_err(|e| self.spec.indicator_error(i, "filter", e.to_string()))?;
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

    fn attribution(
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
    fn attribution_at(
        &mut self,
        ov: &Overlay,
        assign: Assign,
        mask: Option<&[bool]>,
        members: Option<&[Vec<u32>]>,
        key: (&str, &str, Option<&str>),
    ) -> Result<Arc<Attribution>> {
        let ckey = (
            key.0.to_string(),
            key.1.to_string(),
            assign,
            key.2.map(str::to_string),
        );
        if let Some(a) = self.attributions.get(&ckey) {
            return Ok(a.clone());
        }
        if let Some(f) = key.2.filter(|f| f.contains(ZONE_PREFIX)) {
            let i = self
                .spec
                .indicators
                .iter()
                .position(|s| s.get_ref().filter.as_deref() == Some(f))
                .unwrap_or(0);
            let base = self.attribution_zone_filtered(i, ov, assign, f)?;
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

    fn attribution_grouped(
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

    fn numeric(
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
    fn level(&self, i: usize, zl: &str) -> Result<(Arc<Zones>, String, Option<Members>)> {
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
    fn feature_inputs(&mut self, i: usize, layer_name: &str, base: &str) -> Result<FeatureInputs> {
        let ind: &IndicatorSpec = self.spec.indicators[i].get_ref();
        let layer = self.layer(layer_name)?.clone();
        let mask = self.mask(i, layer_name, ind.filter.as_deref())?;
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
    fn zone_values(&self, i: usize, zl: &str, name: &str) -> Result<Vec<Option<f64>>> {
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

    /// The thresholds that apply to the indicator named `name`, if any.
    fn thresholds(&self, name: &str) -> Option<crate::quality::Thresholds> {
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
    fn quality_records(
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
                let names = Arith::parse(ind.expr.as_deref().unwrap_or_default())?.names();
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

    /// Compute indicator `i` for zone layer `zl`: one or more (column name,
    /// values). A streamable indicator is finished from its partial (folded
    /// now, unless its layer was folded batch by batch elsewhere).
    fn compute(&mut self, i: usize, zl: &str, done: &Done) -> Result<Columns> {
        let ind: &'a IndicatorSpec = self.spec.indicators[i].get_ref();
        match ind.kind.imp().evaluation(ind) {
            Evaluation::Accumulate(acc) if ind.layer.is_some() => {
                if !self
                    .external
                    .contains(ind.layer.as_deref().unwrap_or_default())
                {
                    self.accumulate(i, zl)?;
                }
                let partial = match self.partials.remove(&(zl.to_string(), i)) {
                    Some(p) => p,
                    None => {
                        let nz = self.level(i, zl)?.0.len();
                        acc.state(ind, nz, &self.seeds)
                    }
                };
                let mut cx = Cx::new(self, i, zl, Some(done))?;
                acc.evaluate(&mut cx, partial)
            }
            Evaluation::Accumulate(_) => Err(Error::Internal {
                what: format!("streamable indicator `{}` without a layer", ind.name),
            }),
            Evaluation::AtOnce(at_once) => {
                self.count_quality(i, zl)?;
                let mut cx = Cx::new(self, i, zl, Some(done))?;
                if ind.layer.is_some() {
                    cx.features()?;
                }
                at_once.compute(&mut cx)
            }
        }
    }

    /// The per-feature values an indicator reduces: its `column`, or for
    /// `nearest_distance` the distance to the nearest feature of `other`.
    fn feature_values(
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
    fn flags(
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

    /// Fold the features of indicator `i`'s layer, as loaded now, into its
    /// partial for zone layer `zl` (created empty on first use). Every zone's
    /// state continues from where the previous batch left it, features met in
    /// ascending order: batches of consecutive features give the same bytes
    /// as one batch of all of them.
    fn accumulate(&mut self, i: usize, zl: &str) -> Result<()> {
        self.count_quality(i, zl)?;
        let ind: &'a IndicatorSpec = self.spec.indicators[i].get_ref();
        let Evaluation::Accumulate(acc) = ind.kind.imp().evaluation(ind) else {
            return Err(Error::Internal {
                what: format!("indicator `{}` is not streamable", ind.name),
            });
        };
        let key = (zl.to_string(), i);
        let mut partial = match self.partials.remove(&key) {
            Some(p) => p,
            None => {
                let nz = self.level(i, zl)?.0.len();
                acc.state(ind, nz, &self.seeds)
            }
        };
        let mut cx = Cx::new(self, i, zl, None)?;
        cx.features()?;
        acc.update(&mut cx, &mut partial)?;
        self.partials.insert(key, partial);
        Ok(())
    }

    /// Evaluate every indicator for every zone layer.
    pub fn run(&mut self) -> Result<Vec<ZoneTable>> {
        let order = self.spec.ratio_order()?;
        let mut tables = Vec::new();
        for zl in self.zone_layer_names() {
            let zones = self
                .inputs
                .zones
                .get(&zl)
                .cloned()
                .ok_or_else(|| Error::Internal {
                    what: format!("zones `{zl}` are not loaded"),
                })?;
            let mut done: BTreeMap<String, Vec<(String, Values)>> = BTreeMap::new();
            for &i in &order {
                if !self.applies(i, &zl, &zones) {
                    continue;
                }
                let cols = self.compute(i, &zl, &done)?;
                done.insert(self.spec.indicators[i].get_ref().name.clone(), cols);
            }
            let records = self.quality_records(&zl, &zones, &order, &done)?;
            for (name, r) in &records {
                if let Some(cols) = done.remove(name) {
                    let cols = if self.thresholds(name).is_some() {
                        cols.into_iter()
                            .map(|(n, v)| (n, v.withhold(&r.withheld)))
                            .collect()
                    } else {
                        cols
                    };
                    done.insert(name.clone(), cols);
                }
            }
            // Output in spec order, the key columns (id) first.
            let mut fields = Vec::new();
            let mut arrays: Vec<ArrayRef> = Vec::new();
            for key in zones.key_columns() {
                let col =
                    zones
                        .attributes()
                        .column_by_name(key)
                        .ok_or_else(|| Error::Internal {
                            what: format!("zones lost their key column `{key}`"),
                        })?;
                fields.push(Field::new(key, col.data_type().clone(), false));
                arrays.push(col.clone());
            }
            let mut columns = BTreeMap::new();
            for ind in &self.spec.indicators {
                let ind = ind.get_ref();
                if ind.hidden == Some(true) {
                    continue;
                }
                if let Some(cols) = done.get(&ind.name) {
                    columns.insert(
                        ind.name.clone(),
                        cols.iter().map(|(n, _)| n.clone()).collect(),
                    );
                    for (n, v) in cols {
                        let arr = v.to_array();
                        fields.push(Field::new(
                            n,
                            arr.data_type().clone(),
                            arr.null_count() > 0 || !matches!(v, Values::Int(_)),
                        ));
                        arrays.push(arr);
                    }
                }
            }
            let keys: Vec<(Field, ArrayRef)> = fields
                .iter()
                .zip(&arrays)
                .take(zones.key_columns().len())
                .map(|(f, a)| (f.clone(), a.clone()))
                .collect();
            let published: Vec<(String, crate::quality::Record)> = self
                .spec
                .indicators
                .iter()
                .map(|s| s.get_ref())
                .filter(|ind| ind.hidden != Some(true))
                .filter_map(|ind| records.iter().find(|(n, _)| *n == ind.name).cloned())
                .collect();
            let quality = crate::quality::table(&keys, &published, zones.len())?;
            let quality_summary = published
                .iter()
                .map(|(n, r)| (n.clone(), crate::quality::summary(r)))
                .collect();
            let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?;
            let base = zones
                .grouping()
                .map(|g| g.base.clone())
                .unwrap_or_else(|| zl.clone());
            let rasters = self
                .passes
                .reports
                .iter()
                .filter(|r| r.zones == base)
                .cloned()
                .collect();
            tables.push(ZoneTable {
                zones: zl,
                batch,
                columns,
                rasters,
                quality,
                quality_summary,
            });
        }
        Ok(tables)
    }
}

/// What a kind sees of the executor while it evaluates one indicator for
/// one zone layer (see [`crate::kinds`]): the indicator, the zones, and the
/// shared, cached work (overlays, attributions, filter masks, relations,
/// distances, raster passes) built once for every indicator that needs it.
pub(crate) struct Cx<'e, 'a> {
    ev: &'e mut Evaluator<'a>,
    i: usize,
    zl: &'e str,
    zones: Arc<Zones>,
    base: String,
    members: Option<Members>,
    features: Option<Arc<FeatureInputs>>,
    done: Option<&'e Done>,
}

impl<'e, 'a> Cx<'e, 'a> {
    fn new(
        ev: &'e mut Evaluator<'a>,
        i: usize,
        zl: &'e str,
        done: Option<&'e Done>,
    ) -> Result<Self> {
        let (zones, base, members) = ev.level(i, zl)?;
        Ok(Cx {
            ev,
            i,
            zl,
            zones,
            base,
            members,
            features: None,
            done,
        })
    }

    /// The indicator.
    pub(crate) fn ind(&self) -> &'a IndicatorSpec {
        let spec: &'a Spec = self.ev.spec;
        spec.indicators[self.i].get_ref()
    }

    /// The spec.
    pub(crate) fn spec(&self) -> &'a Spec {
        self.ev.spec
    }

    /// The indicator's index in the spec.
    pub(crate) fn index(&self) -> usize {
        self.i
    }

    /// The zones.
    pub(crate) fn zones(&self) -> &Zones {
        &self.zones
    }

    /// The number of zones.
    pub(crate) fn nz(&self) -> usize {
        self.zones.len()
    }

    /// At a roll-up level, the base zones of each zone.
    pub(crate) fn members(&self) -> Option<&[Vec<u32>]> {
        self.members.as_deref()
    }

    /// Where progress is reported.
    pub(crate) fn progress(&self) -> &'a dyn Progress {
        self.ev.progress
    }

    /// The error for key `key` of the indicator.
    pub(crate) fn error(&self, key: &str, message: impl Into<String>) -> Error {
        self.ev.spec.indicator_error(self.i, key, message)
    }

    /// An internal invariant broken while evaluating the indicator.
    pub(crate) fn internal(&self, what: &str) -> Error {
        Error::Internal {
            what: format!("indicator `{}`: {what}", self.ind().name),
        }
    }

    /// What the indicator reads of its layer: the layer, its filter's mask,
    /// its overlay on the (base) zones, its weights (built on first use).
    pub(crate) fn features(&mut self) -> Result<Arc<FeatureInputs>> {
        if let Some(f) = &self.features {
            return Ok(f.clone());
        }
        let layer = self.ind().layer.as_deref().unwrap_or_default();
        let f = Arc::new(self.ev.feature_inputs(self.i, layer, &self.base)?);
        self.features = Some(f.clone());
        Ok(f)
    }

    /// The features attributed to each zone (as the indicator's `assign`
    /// says, passing its filter), with their weights; shared by every
    /// indicator that agrees on them.
    pub(crate) fn attribution(&mut self) -> Result<Arc<Attribution>> {
        let fi = self.features()?;
        let ind = self.ind();
        let layer = ind.layer.as_deref().unwrap_or_default();
        self.ev.attribution_at(
            &fi.ov,
            fi.assign,
            fi.mask(),
            self.members.as_deref(),
            (layer, self.zl, ind.filter.as_deref()),
        )
    }

    /// Per feature, the number the kind reduces: its `column`, or its
    /// distance to `other` (see [`crate::kinds::PerFeature`]).
    pub(crate) fn values(&mut self) -> Result<Arc<Vec<Option<f64>>>> {
        let fi = self.features()?;
        let layer = self.ind().layer.as_deref().unwrap_or_default();
        self.ev.feature_values(self.i, layer, &fi.layer)
    }

    /// Column `column` of the layer as numbers (errors name key `key`).
    pub(crate) fn numeric(&mut self, key: &str, column: &str) -> Result<Vec<Option<f64>>> {
        let fi = self.features()?;
        self.ev.numeric(self.i, &fi.layer, key, column)
    }

    /// Per feature, whether it relates to a feature of `other` as the
    /// indicator's `predicate` says (default: intersects).
    pub(crate) fn flags(&mut self) -> Result<Arc<Vec<bool>>> {
        let fi = self.features()?;
        let ind = self.ind();
        let other = ind.other.as_deref().unwrap_or_default();
        let predicate = ind.predicate.unwrap_or(Predicate::Intersects);
        let layer = ind.layer.as_deref().unwrap_or_default();
        self.ev.flags(layer, &fi.layer, other, predicate)
    }

    /// The pieces of the features inside each zone (feature, measure), with
    /// each feature's measure inside all zones; at a roll-up level, the
    /// measures in member zones added up.
    pub(crate) fn pairs<'f>(
        &self,
        fi: &'f FeatureInputs,
    ) -> Result<std::borrow::Cow<'f, terrastat_core::Pairs>> {
        let pairs = fi.ov.pairs(self.ev.progress)?;
        Ok(match self.members.as_deref() {
            Some(m) => std::borrow::Cow::Owned(group_pairs(pairs, m)),
            None => std::borrow::Cow::Borrowed(pairs),
        })
    }

    /// Record a `category_share`'s categories (its columns) and those met
    /// in the features folded.
    pub(crate) fn record_categories(
        &mut self,
        names: Vec<String>,
        seen: std::collections::BTreeSet<String>,
    ) {
        let name = self.ind().name.clone();
        self.ev.categories.insert(name, (names, seen));
    }

    /// The columns computed before this indicator for this zone layer, by
    /// column name (what a ratio reads first).
    pub(crate) fn computed_columns(&self) -> HashMap<&'e str, &'e Values> {
        self.done
            .into_iter()
            .flat_map(|d| d.values().flatten())
            .map(|(n, v)| (n.as_str(), v))
            .collect()
    }

    /// The values of `name` per zone that is not an indicator: a zone column
    /// or a joined table's column (see `Evaluator::zone_values`).
    pub(crate) fn zone_values(&self, name: &str) -> Result<Vec<Option<f64>>> {
        self.ev.zone_values(self.i, self.zl, name)
    }

    /// The pass of `raster` (with `weights`) over the (base) zones, and the
    /// index of each coverage indicator's predicate in it.
    pub(crate) fn raster_pass(
        &mut self,
        raster: &str,
        weights: Option<&str>,
    ) -> Result<crate::zonal::Pass> {
        let ev = &mut *self.ev;
        ev.passes.get(
            ev.spec,
            ev.inputs,
            (raster, weights),
            &self.base,
            ev.progress,
        )
    }
}

/// The (feature, value) entries of several member zones as one zone,
/// ascending by feature: duplicates are summed (`add`) or kept once.
/// Entries of one feature are met in member order, so sums are deterministic.
fn merge_members<'a>(
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
fn group_pairs(p: &terrastat_core::Pairs, members: &[Vec<u32>]) -> terrastat_core::Pairs {
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

/// Load the inputs of a spec and evaluate it (no output written).
pub fn evaluate(spec: &Spec, progress: &dyn Progress) -> Result<(Inputs, Vec<ZoneTable>)> {
    let inputs = Inputs::load(spec, progress)?;
    check_columns(spec, &inputs)?;
    let tables = Evaluator::new(spec, &inputs, progress).run()?;
    Ok((inputs, tables))
}

/// [`evaluate`] with some layers given in memory (see [`Inputs::load_with`]).
pub fn evaluate_with(
    spec: &Spec,
    progress: &dyn Progress,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
) -> Result<(Inputs, Vec<ZoneTable>)> {
    let inputs = Inputs::load_with(spec, progress, memory)?;
    check_columns(spec, &inputs)?;
    let tables = Evaluator::new(spec, &inputs, progress).run()?;
    Ok((inputs, tables))
}

/// Evaluate with no progress reporting.
pub fn evaluate_quiet(spec: &Spec) -> Result<(Inputs, Vec<ZoneTable>)> {
    evaluate(spec, &NoProgress)
}

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
        for i in self.spec.ratio_order()? {
            if !self.applies(i, zl, &zones) {
                continue;
            }
            let cols = self.compute(i, zl, &done)?;
            done.insert(self.spec.indicators[i].get_ref().name.clone(), cols);
            if i == target {
                break;
            }
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
            let names = Arith::parse(ind.expr.as_deref().unwrap_or_default())?.names();
            for n in names {
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
        let (_, base_name, members) = self.level(target, zl)?;
        let members = members.as_deref();
        let fi = self.feature_inputs(target, &layer_name, &base_name)?;
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
            (PerFeature::Distance, _) => {
                Some(self.feature_values(target, &layer_name, &fi.layer)?)
            }
            (PerFeature::Category, _) | (_, None) => None,
            (PerFeature::Column | PerFeature::Nothing, Some(_)) => {
                Some(self.feature_values(target, &layer_name, &fi.layer)?)
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
                    layer_name.clone(),
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
        Ok(t)
    }
}
