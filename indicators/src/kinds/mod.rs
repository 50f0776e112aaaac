//! Indicator kinds: one file each.
//!
//! A kind says, through [`IndicatorKind`], everything the engine needs to
//! know about it, and the engine knows nothing else about it:
//!
//! - its keys ([`Keys`]: which of `layer`, `column`, `weight`, `assign`,
//!   `other`… it takes or needs) and the checks of its own keys
//!   ([`IndicatorKind::check`]);
//! - what it reads of its layer ([`IndicatorKind::reads`]: features
//!   attributed to zones, or the pieces of features inside zones; a column,
//!   categories or distances per feature) and whether centroids suffice;
//! - how it is evaluated ([`IndicatorKind::evaluation`]): either it
//!   [`Accumulate`]s batches of features into a per-zone [`Partial`] state
//!   (`state`, `update`, `evaluate`; states of batches, partitions and
//!   Spark tasks merge through [`Partial`], in any order, to the same bits),
//!   or it is computed [`AtOnce`] from every feature (medians, union areas,
//!   ratios, raster passes);
//! - how it describes itself in the catalog (unit, definition).
//!
//! This is the shape of DataFusion's `Accumulator` (`update_batch` /
//! `state` / `merge_batch` / `evaluate`): partial and final aggregation are
//! modes of the executor, not flags inside a kind.
//!
//! To add a kind: write `kinds/<kind>.rs` with a unit struct named like the
//! variant implementing [`IndicatorKind`], and add one line to the
//! [`kinds!`] list below. Every method of the trait is required, and every
//! match on [`Kind`] is exhaustive: a kind that forgets a piece does not
//! compile.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use terrastat_core::{Pairs, Progress, Zones};

use crate::error::{Error, Result};
use crate::spec::{Assign, IndicatorSpec, Spec};

mod state;
pub(crate) use state::{keep_extreme, Attribution, Columns, FeatureInputs, Partial, Values};
use terrastat_core::GeomKind;

/// Declares the kinds: their modules, the [`Kind`] enum (TOML name in
/// `snake_case`) and the dispatch from a [`Kind`] to its implementation.
macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident => $module:ident ),* $(,)?) => {
        $( mod $module; )*

        /// The kinds of indicator. See the README for their exact semantics,
        /// and `indicators/src/kinds/<kind>.rs` for each one's code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Kind {
            $( $(#[$doc])* $variant, )*
        }

        impl Kind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The implementation of this kind.
            pub(crate) fn imp(self) -> &'static dyn IndicatorKind {
                match self {
                    $( Kind::$variant => &$module::$variant, )*
                }
            }
        }
    };
}

kinds! {
    /// Number of features.
    Count => count,
    /// Sum of a column.
    Sum => sum,
    /// (Weighted) mean of a column.
    Mean => mean,
    /// Minimum of a column.
    Min => min,
    /// Maximum of a column.
    Max => max,
    /// (Weighted) median of a column.
    Median => median,
    /// Areal interpolation of a count-like column.
    Extensive => extensive,
    /// Area-weighted mean of a rate-like column.
    Intensive => intensive,
    /// Share of the zone covered by the union of the layer.
    Coverage => coverage,
    /// Area in m² (of the zone, or of the layer's union inside it).
    Area => area,
    /// Share of features related to another layer.
    ShareWithin => share_within,
    /// Count or sum per km².
    Density => density,
    /// Share of each category of a column.
    CategoryShare => category_share,
    /// Statistic of the distance from features to another layer.
    NearestDistance => nearest_distance,
    /// Expression over other indicators.
    Ratio => ratio,
    /// Statistic of a raster's pixels, weighted by their exact coverage fractions.
    Zonal => zonal,
    /// Length of a line layer inside the zone.
    Length => length,
    /// Weighted quantile of a column.
    Quantile => quantile,
}

impl Kind {
    /// Whether the kind attributes each feature to zones as `assign` says
    /// (counts, sums, statistics, shares and distances of features).
    pub fn takes_assign(self) -> bool {
        self.imp().keys().assign
    }

    /// The kind's name as written in a spec (`share_within`).
    pub fn name(self) -> &'static str {
        self.imp().name()
    }
}

/// Whether a kind takes a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// The key does not apply.
    No,
    /// The key may be given.
    Optional,
    /// The key must be given.
    Required,
}

impl Key {
    pub(crate) fn taken(self) -> bool {
        self != Key::No
    }
}

/// The keys a kind takes, beyond those of every indicator (`name`, `kind`,
/// `zones`, `unit`, `label`, `description`, `theme`, `keywords`, `hidden`,
/// `quality`). The spec checks presence and absence from this; the values
/// of the kind's own keys are checked by [`IndicatorKind::check`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keys {
    /// `layer`: the source layer.
    pub layer: Key,
    /// `column`: the attribute column.
    pub column: Key,
    /// `weight`: a weight column.
    pub weight: bool,
    /// `assign`: how features are attributed to zones (and so, a filter may
    /// read the zone's columns).
    pub assign: bool,
    /// `other`: the second layer (required when taken).
    pub other: bool,
    /// `filter`: a filter on the layer's features.
    pub filter: bool,
    /// `allocate_total`.
    pub allocate_total: bool,
    /// `predicate`: how features relate to `other`.
    pub predicate: bool,
    /// `stat`: the statistic.
    pub stat: bool,
    /// `expr`: an expression over indicators (required when taken).
    pub expr: bool,
    /// `raster`, `weights`, `where`, `values`: a raster statistic.
    pub raster: bool,
}

impl Keys {
    /// The keys of a kind that reduces a layer's features attributed to
    /// zones (counts, statistics, shares): `layer`, `assign`, `filter`.
    pub(crate) const FEATURES: Keys = Keys {
        layer: Key::Required,
        column: Key::No,
        weight: false,
        assign: true,
        other: false,
        filter: true,
        allocate_total: false,
        predicate: false,
        stat: false,
        expr: false,
        raster: false,
    };
    /// The keys of a kind measuring the pieces of a layer's features inside
    /// zones: `layer`, `filter`.
    pub(crate) const PIECES: Keys = Keys {
        assign: false,
        ..Keys::FEATURES
    };
}

/// What a kind reads of its layer, per feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PerFeature {
    /// Nothing but the feature itself (counts, shares, areas).
    Nothing,
    /// The numbers of its `column`.
    Column,
    /// The text of its `column` (categories).
    Category,
    /// Its distance to the nearest feature of `other`.
    Distance,
}

/// How a kind meets its layer's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reads {
    /// No layer (ratios, rasters, zone areas).
    NoLayer,
    /// Features attributed to zones as `assign` says, with what it reads of each.
    Features(Assign, PerFeature),
    /// The measure of each feature's piece inside each zone (areas, lengths).
    Pieces(PerFeature),
}

impl Reads {
    /// What the kind reads of each feature.
    pub(crate) fn per_feature(self) -> PerFeature {
        match self {
            Reads::NoLayer => PerFeature::Nothing,
            Reads::Features(_, p) | Reads::Pieces(p) => p,
        }
    }
}

/// How a kind is evaluated.
pub(crate) enum Evaluation<'k> {
    /// Batch by batch, through a per-zone [`Partial`] state (streamable).
    Accumulate(&'k dyn Accumulate),
    /// From every feature at once.
    AtOnce(&'k dyn AtOnce),
}

/// What the catalog's definition of an indicator is written from: the
/// phrases every kind shares.
pub(crate) struct Words<'a> {
    /// The layer's name (`?` when none).
    pub layer: &'a str,
    /// The column's name (`?` when none).
    pub column: &'a str,
    /// The other layer's name (`?` when none).
    pub other: &'a str,
    /// How features are attributed (`features whose centroid lies in the zone…`).
    pub assign: &'a str,
    /// `, among features where `…`` or nothing.
    pub filter: &'a str,
    /// `, weighted by `…`` or nothing.
    pub weight: &'a str,
}

/// The checks of one indicator's kind-specific keys, with the spec to look
/// names up in and to locate errors.
pub(crate) struct Check<'a> {
    /// The spec.
    pub spec: &'a Spec,
    /// The indicator's index in the spec.
    pub i: usize,
    /// The indicator.
    pub ind: &'a IndicatorSpec,
}

impl Check<'_> {
    /// The error for key `key` of this indicator.
    pub(crate) fn error(&self, key: &str, message: impl Into<String>) -> crate::Error {
        self.spec.indicator_error(self.i, key, message)
    }

    /// An error unless `value` is absent: `key` does not apply to this kind.
    pub(crate) fn absent<T>(&self, value: &Option<T>, key: &str, message: &str) -> Result<()> {
        match value {
            Some(_) => Err(self.error(key, message)),
            None => Ok(()),
        }
    }
}

/// One kind of indicator. Implemented by a unit struct in `kinds/<kind>.rs`.
pub(crate) trait IndicatorKind: Sync {
    /// The kind's name as written in a spec.
    fn name(&self) -> &'static str;

    /// The keys it takes.
    fn keys(&self) -> Keys;

    /// Its own keys, which no other kind takes (`q` of `quantile`): set
    /// aside in [`IndicatorSpec::params`] and checked by [`Self::check`].
    fn params(&self) -> &'static [&'static str];

    /// Checks of its own keys (`stat`, `predicate`, `expr`, `raster`…),
    /// including that the keys of other kinds are absent.
    fn check(&self, cx: &Check<'_>) -> Result<()>;

    /// What it reads of its layer.
    fn reads(&self, ind: &IndicatorSpec) -> Reads;

    /// Whether the features' centroids are all it needs of their shapes
    /// (then a layer only read by such indicators is read as centroids).
    fn centroids_suffice(&self, ind: &IndicatorSpec) -> bool;

    /// The geometries its layer must hold, if it cares.
    fn needs_geometry(&self) -> Option<GeomKind>;

    /// How it is evaluated.
    fn evaluation(&self, ind: &IndicatorSpec) -> Evaluation<'_>;

    /// Its unit when the spec gives none (`""`: none).
    fn default_unit(&self, ind: &IndicatorSpec) -> &'static str;

    /// Its definition in words, for the catalog.
    fn definition(&self, ind: &IndicatorSpec, w: &Words<'_>) -> String;
}

/// What a kind sees of the executor while it evaluates one indicator for
/// one zone layer: the indicator, the zones, and the shared work (overlays,
/// attributions, filter masks, relations, distances, raster passes), built
/// once by the executor for every indicator that needs it. Kinds know the
/// executor through this trait only.
pub(crate) trait Cx<'a> {
    /// The indicator.
    fn ind(&self) -> &'a IndicatorSpec;
    /// The spec.
    fn spec(&self) -> &'a Spec;
    /// The indicator's index in the spec.
    fn index(&self) -> usize;
    /// The indicator's step in the plan: its `filter`, `expr` and `where`, parsed.
    fn step(&self) -> &'a crate::plan::Step;
    /// The zones.
    fn zones(&self) -> &Zones;
    /// The number of zones.
    fn nz(&self) -> usize;
    /// At a roll-up level, the base zones of each zone.
    fn members(&self) -> Option<&[Vec<u32>]>;
    /// Where progress is reported.
    fn progress(&self) -> &'a dyn Progress;
    /// The error for key `key` of the indicator.
    fn error(&self, key: &str, message: String) -> Error;
    /// An internal invariant broken while evaluating the indicator.
    fn internal(&self, what: &str) -> Error;
    /// What the indicator reads of its layer: the layer, its filter's mask,
    /// its overlay on the (base) zones, its weights.
    fn features(&mut self) -> Result<Arc<FeatureInputs>>;
    /// The features attributed to each zone (as `assign` says, passing the
    /// filter), with their weights.
    fn attribution(&mut self) -> Result<Arc<Attribution>>;
    /// Per feature, the number the kind reduces: its `column`, or its
    /// distance to `other` (see [`PerFeature`]).
    fn values(&mut self) -> Result<Arc<Vec<Option<f64>>>>;
    /// Column `column` of the layer as numbers (errors name key `key`).
    fn numeric(&mut self, key: &str, column: &str) -> Result<Vec<Option<f64>>>;
    /// Per feature, whether it relates to a feature of `other` as the
    /// indicator's `predicate` says (default: intersects).
    fn flags(&mut self) -> Result<Arc<Vec<bool>>>;
    /// The pieces of the features inside each zone (feature, measure), with
    /// each feature's measure inside all zones; at a roll-up level, the
    /// measures in member zones added up.
    fn pairs<'f>(&self, fi: &'f FeatureInputs) -> Result<Cow<'f, Pairs>>;
    /// Record a `category_share`'s categories (its columns) and those met.
    fn record_categories(&mut self, names: Vec<String>, seen: std::collections::BTreeSet<String>);
    /// The columns computed before this indicator for this zone layer, by
    /// column name (what a ratio reads first).
    fn computed_columns(&self) -> HashMap<&str, &Values>;
    /// The values per zone of `name`, a zone column or a joined table's column.
    fn zone_values(&self, name: &str) -> Result<Vec<Option<f64>>>;
    /// The pass of `raster` (with `weights`) over the (base) zones.
    fn raster_pass(&mut self, raster: &str, weights: Option<&str>) -> Result<crate::zonal::Pass>;
}

/// A kind evaluated batch by batch (see [`Evaluation::Accumulate`]).
pub(crate) trait Accumulate: Sync {
    /// The empty per-zone state for `nz` zones (`seeds`: categories known
    /// before any feature, by indicator name).
    fn state(
        &self,
        ind: &IndicatorSpec,
        nz: usize,
        seeds: &BTreeMap<String, Vec<String>>,
    ) -> Partial;

    /// Fold the features of the layer as loaded now into `state`: every
    /// zone's state continues from where the previous batch left it.
    fn update(&self, cx: &mut dyn Cx<'_>, state: &mut Partial) -> Result<()>;

    /// The output columns, from the state of every feature folded.
    fn evaluate(&self, cx: &mut dyn Cx<'_>, state: Partial) -> Result<Columns>;
}

/// A kind evaluated from every feature at once (see [`Evaluation::AtOnce`]).
pub(crate) trait AtOnce: Sync {
    /// The output columns.
    fn compute(&self, cx: &mut dyn Cx<'_>) -> Result<Columns>;
}

pub(crate) use zonal::check_keys as zonal_keys;

/// The state of counts and sums: `slots` exact sums per zone.
pub(crate) fn sums(slots: usize, nz: usize) -> Partial {
    Partial::Sums {
        slots,
        acc: vec![terrastat_core::ExactSum::new(); nz * slots],
    }
}
