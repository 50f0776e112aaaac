//! The vocabulary between the kinds and the executor: what a kind reads
//! (features attributed to zones, [`FeatureInputs`]), the state it folds
//! batches into ([`Partial`]) and what it outputs ([`Values`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array};
use terrastat_core::{ExactSum, Layer, Overlay};

use super::Evaluation;
use crate::error::{Error, Result};
use crate::spec::{Assign, IndicatorSpec};

fn no_sums() -> Error {
    Error::Internal {
        what: "a sum without its state".into(),
    }
}

/// Features attributed to each zone, with their weights (CSR by zone).
pub(crate) struct Attribution {
    /// Where each zone's entries start (`zones + 1` offsets).
    pub(crate) offsets: Vec<usize>,
    /// The features, ascending within each zone.
    pub(crate) features: Vec<u32>,
    /// Their weights.
    pub(crate) weights: Vec<f64>,
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

impl Values {
    /// The values as an Arrow array.
    pub(crate) fn to_array(&self) -> ArrayRef {
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
    pub(crate) fn withhold(self, withheld: &[Option<String>]) -> Values {
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
    pub(crate) fn sums_mut(&mut self) -> Result<&mut [ExactSum]> {
        match self {
            Partial::Sums { acc, .. } => Ok(acc),
            _ => Err(no_sums()),
        }
    }

    /// The sums of a count-like state, taken.
    pub(crate) fn into_sums(self) -> Result<Vec<ExactSum>> {
        match self {
            Partial::Sums { acc, .. } => Ok(acc),
            _ => Err(no_sums()),
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

/// What an indicator reads of its layer (see `Evaluator::feature_inputs`).
pub(crate) struct FeatureInputs {
    /// The layer.
    pub(crate) layer: Arc<Layer>,
    pub(crate) mask: Option<Arc<Vec<bool>>>,
    /// Its overlay on the (base) zones.
    pub(crate) ov: Arc<Overlay>,
    pub(crate) assign: Assign,
    /// The `weight` column, if any.
    pub(crate) weights: Option<Vec<Option<f64>>>,
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
