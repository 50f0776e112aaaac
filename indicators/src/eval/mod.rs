//! Evaluation: load the inputs of a spec, build overlays once per
//! (layer, zones) pair, compute every indicator per zone in parallel.
//!
//! Determinism: every per-zone value is computed by one thread, reading the
//! zone's features in ascending feature order; per-feature totals are summed
//! in zone order. Results are therefore the same bytes whatever the thread count.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use rayon::prelude::*;
use terrastat_core::{relate, Layer, NoProgress, Overlay, Predicate, Progress, Zones};

use crate::error::{Error, Result};
use crate::expr::{Arith, Literal, ZONE_PREFIX};
use crate::inputs::{check_columns, Inputs};
use crate::kinds::{
    Attribution, Columns, Cx, Evaluation, FeatureInputs, Partial, PerFeature, Reads, Values,
};
use crate::plan::Plan;
use crate::spec::{Assign, IndicatorSpec, Kind, Spec};

mod attribution;
mod cx;
mod records;
mod shared;
mod trace;

use cx::KindCx;
pub(crate) use records::QualityState;
pub use trace::{Trace, TracedFeature};

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

/// The columns computed so far for a zone layer, by indicator name.
type Done = BTreeMap<String, Columns>;

type Key2 = (String, String);

/// For each zone of a roll-up level, its base zones.
type Members = Vec<Vec<u32>>;

/// Evaluation state: caches of overlays, masks, flags and distances, shared
/// by all indicators of a run.
pub struct Evaluator<'a> {
    plan: &'a Plan<'a>,
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
    /// A new evaluator of `plan` over loaded inputs.
    pub fn new(plan: &'a Plan<'a>, inputs: &'a Inputs, progress: &'a dyn Progress) -> Self {
        Evaluator {
            plan,
            spec: plan.spec(),
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
                    && self.plan.streamable(i)
                    && self.applies(i, &zl, &zones)
                {
                    self.accumulate(i, &zl)?;
                }
            }
        }
        Ok(())
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
                let mut cx = KindCx::new(self, i, zl, Some(done))?;
                acc.evaluate(&mut cx, partial)
            }
            Evaluation::Accumulate(_) => Err(Error::Internal {
                what: format!("streamable indicator `{}` without a layer", ind.name),
            }),
            Evaluation::AtOnce(at_once) => {
                self.count_quality(i, zl)?;
                let mut cx = KindCx::new(self, i, zl, Some(done))?;
                if ind.layer.is_some() {
                    cx.features()?;
                }
                at_once.compute(&mut cx)
            }
        }
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
        let mut cx = KindCx::new(self, i, zl, None)?;
        cx.features()?;
        acc.update(&mut cx, &mut partial)?;
        self.partials.insert(key, partial);
        Ok(())
    }

    /// Evaluate every indicator for every zone layer.
    pub fn run(&mut self) -> Result<Vec<ZoneTable>> {
        let plan = self.plan;
        let order = plan.order();
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
            for &i in order {
                if !self.applies(i, &zl, &zones) {
                    continue;
                }
                let cols = self.compute(i, &zl, &done)?;
                done.insert(self.spec.indicators[i].get_ref().name.clone(), cols);
            }
            let records = self.quality_records(&zl, &zones, order, &done)?;
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
            // Column names, for the collisions a spec cannot show (a
            // category column `x_A` of `x` beside an indicator `x_A`).
            let mut taken: BTreeMap<String, Option<String>> = zones
                .key_columns()
                .into_iter()
                .map(|k| (k.to_string(), None))
                .collect();
            for (i, ind) in self.spec.indicators.iter().enumerate() {
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
                        if let Some(by) = taken.insert(n.clone(), Some(ind.name.clone())) {
                            let owner = match by {
                                Some(other) => format!("a column of indicator `{other}`"),
                                None => format!("a key column of zones `{zl}`"),
                            };
                            return Err(self.spec.indicator_error(
                                i,
                                "name",
                                format!("its output column `{n}` is also {owner}: rename one"),
                            ));
                        }
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

/// Load the inputs of a spec and evaluate it (no output written).
pub fn evaluate(spec: &Spec, progress: &dyn Progress) -> Result<(Inputs, Vec<ZoneTable>)> {
    let inputs = Inputs::load(spec, progress)?;
    let plan = Plan::new(spec)?;
    check_columns(&plan, &inputs)?;
    let tables = Evaluator::new(&plan, &inputs, progress).run()?;
    Ok((inputs, tables))
}

/// [`evaluate`] with some layers given in memory (see [`Inputs::load_with`]).
pub fn evaluate_with(
    spec: &Spec,
    progress: &dyn Progress,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
) -> Result<(Inputs, Vec<ZoneTable>)> {
    let inputs = Inputs::load_with(spec, progress, memory)?;
    let plan = Plan::new(spec)?;
    check_columns(&plan, &inputs)?;
    let tables = Evaluator::new(&plan, &inputs, progress).run()?;
    Ok((inputs, tables))
}

/// Evaluate with no progress reporting.
pub fn evaluate_quiet(spec: &Spec) -> Result<(Inputs, Vec<ZoneTable>)> {
    evaluate(spec, &NoProgress)
}
