//! The executor's side of [`crate::kinds::Cx`]: what a kind sees while it
//! evaluates one indicator for one zone layer.

use super::attribution::group_pairs;
use super::*;

/// The executor's side of [`crate::kinds::Cx`]: one indicator, one zone
/// layer, and the evaluator's caches.
pub(super) struct KindCx<'e, 'a> {
    ev: &'e mut Evaluator<'a>,
    i: usize,
    zl: &'e str,
    zones: Arc<Zones>,
    base: String,
    members: Option<Members>,
    features: Option<Arc<FeatureInputs>>,
    done: Option<&'e Done>,
}

impl<'e, 'a> KindCx<'e, 'a> {
    pub(super) fn new(
        ev: &'e mut Evaluator<'a>,
        i: usize,
        zl: &'e str,
        done: Option<&'e Done>,
    ) -> Result<Self> {
        let (zones, base, members) = ev.level(i, zl)?;
        Ok(KindCx {
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
}

impl<'a> Cx<'a> for KindCx<'_, 'a> {
    /// The indicator.
    fn ind(&self) -> &'a IndicatorSpec {
        let spec: &'a Spec = self.ev.spec;
        spec.indicators[self.i].get_ref()
    }

    /// The spec.
    fn spec(&self) -> &'a Spec {
        self.ev.spec
    }

    /// The indicator's index in the spec.
    fn index(&self) -> usize {
        self.i
    }

    fn step(&self) -> &'a crate::plan::Step {
        let plan: &'a Plan<'a> = self.ev.plan;
        plan.step(self.i)
    }

    /// The zones.
    fn zones(&self) -> &Zones {
        &self.zones
    }

    /// The number of zones.
    fn nz(&self) -> usize {
        self.zones.len()
    }

    /// At a roll-up level, the base zones of each zone.
    fn members(&self) -> Option<&[Vec<u32>]> {
        self.members.as_deref()
    }

    /// Where progress is reported.
    fn progress(&self) -> &'a dyn Progress {
        self.ev.progress
    }

    /// The error for key `key` of the indicator.
    fn error(&self, key: &str, message: String) -> Error {
        self.ev.spec.indicator_error(self.i, key, message)
    }

    /// An internal invariant broken while evaluating the indicator.
    fn internal(&self, what: &str) -> Error {
        Error::Internal {
            what: format!("indicator `{}`: {what}", self.ind().name),
        }
    }

    /// What the indicator reads of its layer: the layer, its filter's mask,
    /// its overlay on the (base) zones, its weights (built on first use).
    fn features(&mut self) -> Result<Arc<FeatureInputs>> {
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
    fn attribution(&mut self) -> Result<Arc<Attribution>> {
        let fi = self.features()?;
        let ind = self.ind();
        let layer = ind.layer.as_deref().unwrap_or_default();
        self.ev.attribution_at(
            &fi.ov,
            fi.assign,
            fi.mask(),
            self.members.as_deref(),
            (layer, self.zl, ind.filter.is_some().then_some(self.i)),
        )
    }

    /// Per feature, the number the kind reduces: its `column`, or its
    /// distance to `other` (see [`crate::kinds::PerFeature`]).
    fn values(&mut self) -> Result<Arc<Vec<Option<f64>>>> {
        let fi = self.features()?;
        let layer = self.ind().layer.as_deref().unwrap_or_default();
        self.ev.feature_values(self.i, layer, &fi.layer)
    }

    /// Column `column` of the layer as numbers (errors name key `key`).
    fn numeric(&mut self, key: &str, column: &str) -> Result<Vec<Option<f64>>> {
        let fi = self.features()?;
        self.ev.numeric(self.i, &fi.layer, key, column)
    }

    /// Per feature, whether it relates to a feature of `other` as the
    /// indicator's `predicate` says (default: intersects).
    fn flags(&mut self) -> Result<Arc<Vec<bool>>> {
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
    fn pairs<'f>(
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
    fn record_categories(&mut self, names: Vec<String>, seen: std::collections::BTreeSet<String>) {
        let name = self.ind().name.clone();
        self.ev.categories.insert(name, (names, seen));
    }

    /// The columns computed before this indicator for this zone layer, by
    /// column name (what a ratio reads first).
    fn computed_columns(&self) -> HashMap<&str, &Values> {
        self.done
            .into_iter()
            .flat_map(|d| d.values().flatten())
            .map(|(n, v)| (n.as_str(), v))
            .collect()
    }

    /// The values of `name` per zone that is not an indicator: a zone column
    /// or a joined table's column (see `Evaluator::zone_values`).
    fn zone_values(&self, name: &str) -> Result<Vec<Option<f64>>> {
        self.ev.zone_values(self.i, self.zl, name)
    }

    /// The pass of `raster` (with `weights`) over the (base) zones, and the
    /// index of each coverage indicator's predicate in it.
    fn raster_pass(&mut self, raster: &str, weights: Option<&str>) -> Result<crate::zonal::Pass> {
        let ev = &mut *self.ev;
        ev.passes.get(
            ev.plan,
            ev.inputs,
            (raster, weights),
            &self.base,
            ev.progress,
        )
    }
}
