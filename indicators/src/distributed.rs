//! Partial aggregates as Arrow tables, for runs spread over many machines
//! (the Python `terrastat.spark` module): a kernel folds one partition of a
//! layer into per-zone partials ([`partition_partials`]), the cluster sums
//! them per zone (minima and maxima for extremes), and the final step turns
//! the sums into indicators and computes everything else
//! ([`crate::run::compute_distributed`]).
//!
//! The table is long: one row per (zone layer, zone, indicator, category,
//! slot, op, scale) with a non-zero value, `op` saying how rows of several
//! partitions combine (`sum`, `min`, `max`); a row with `zone = -1` only
//! says that a category exists. Zones are numbered as the zone layers are
//! loaded from the spec, so every partition and the final step agree.
//!
//! Sums are exact ([`ExactSum`]) and cross the cluster exactly: a `sum` row
//! carries one base-2³² digit of a partial sum, worth `digit · 2^(32·scale)`
//! ([`ExactSum::digits`]). The cluster adds digits of equal scale as 64-bit
//! integers, which is exact in any order, and the final step rounds each sum
//! once, so a distributed run gives the single machine's values bit for bit.
//! A sum that a non-finite term decided is one row of scale [`SPECIAL`]
//! whose `value` is that infinity or NaN (IEEE addition of those does not
//! depend on the order either). Minima and maxima are in `value`; the read
//! report's counts in `digit`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow_array::{Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use terrastat_core::LOWEST_DIGIT;
use terrastat_core::{ExactSum, Layer, NoProgress, Zones};

use crate::error::{Error, Result};
use crate::eval::{Evaluator, QualityState};
use crate::inputs::{check_columns, to_working_crs, Inputs};
use crate::kinds::{keep_extreme, Partial};
use crate::spec::Spec;

/// The schema of a partials table (Spark: `zones string, zone long,
/// indicator string, category string, slot int, op string, scale int,
/// digit long, value double`).
pub fn partials_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("zones", DataType::Utf8, false),
        Field::new("zone", DataType::Int64, false),
        Field::new("indicator", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("slot", DataType::Int32, false),
        Field::new("op", DataType::Utf8, false),
        Field::new("scale", DataType::Int32, false),
        Field::new("digit", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
    ]))
}

/// The `scale` of a `sum` row whose `value` is a non-finite sum.
pub const SPECIAL: i32 = i32::MAX;

/// Zone layers loaded once per process and spec (a Spark worker serves
/// many partitions of one run).
type ZoneCache = Option<(String, BTreeMap<String, Arc<Zones>>)>;
static ZONES: Mutex<ZoneCache> = Mutex::new(None);

fn zones_of(spec: &Spec) -> Result<BTreeMap<String, Arc<Zones>>> {
    let key = format!("{}\n{}", spec.path.display(), spec.text);
    if let Ok(guard) = ZONES.lock() {
        if let Some((k, z)) = guard.as_ref() {
            if *k == key {
                return Ok(z.clone());
            }
        }
    }
    let inputs = Inputs::load_except(spec, &NoProgress, BTreeMap::new(), &|_| true)?;
    if let Ok(mut guard) = ZONES.lock() {
        *guard = Some((key, inputs.zones.clone()));
    }
    Ok(inputs.zones)
}

/// Fold the features of `layer` given in `memory` (one partition; its
/// `other` layers, as far as they meet the partition, given too) into
/// per-zone partials of every streamable indicator over `layer`.
pub fn partition_partials(
    spec: &Spec,
    layer: &str,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
) -> Result<RecordBatch> {
    let working = terrastat_core::Crs::parse(&spec.crs)?;
    let mut inputs = Inputs {
        zones: zones_of(spec)?,
        ..Default::default()
    };
    let mut report = terrastat_core::ReadReport::default();
    for (name, raw) in memory {
        if name == layer && raw.geometries.is_empty() {
            // A key with context features only.
            return Ok(RecordBatch::new_empty(partials_schema()));
        }
        let opts = crate::inputs::layer_read_options(spec, &name)?;
        let label = std::path::PathBuf::from(format!("memory:{name}"));
        // The spec's `crs` for the layer, else the table's, else the working CRS
        // (a Spark DataFrame's WKB column carries none).
        let crs = opts
            .crs
            .clone()
            .or(raw.crs.clone())
            .or(Some(working.clone()));
        let l = match Layer::from_raw_part(&name, &label, raw, crs, opts.invalid, None) {
            Ok(l) => l,
            // A partition without any feature of a context layer.
            Err(terrastat_core::Error::EmptyLayer { .. }) if name != layer => continue,
            Err(e) => return Err(e.into()),
        };
        if name == layer {
            report = l.report().clone();
        }
        inputs
            .layers
            .insert(name, Arc::new(to_working_crs(l, &working)?));
    }
    if !inputs.layers.contains_key(layer) || inputs.layers[layer].is_empty() {
        return Ok(RecordBatch::new_empty(partials_schema()));
    }
    let plan = crate::plan::Plan::new(spec)?;
    check_columns(&plan, &inputs)?;
    let mut ev = Evaluator::new(&plan, &inputs, &NoProgress).absent_is_empty();
    ev.accumulate_layer(layer)?;
    let quality = ev.take_quality();
    to_table(spec, &ev.into_partials(), &quality, &report)
}

/// The zone layer name of the rows that carry a partition's read report
/// (`indicator` = read, kept, skipped or repaired; `category` = the reason).
pub const REPORT: &str = "_report";

/// The zone layer name of the rows that carry a layer's extent, for the
/// quality records (`indicator` = the layer; slots 0–3 = min x, min y,
/// max x, max y, as `min` / `max` rows).
pub const EXTENT: &str = "_extent";

/// The `op` of the rows that carry the quality counts of an indicator's
/// features per zone (`digit`; slot 0 = attributed, 1 = complete, 2 = used).
pub const COUNT: &str = "count";

/// The columns of a partials table, row by row.
#[derive(Default)]
struct Rows {
    zones: Vec<String>,
    zone: Vec<i64>,
    indicator: Vec<String>,
    category: Vec<String>,
    slot: Vec<i32>,
    op: Vec<&'static str>,
    scale: Vec<i32>,
    digit: Vec<i64>,
    value: Vec<f64>,
}

/// Where a row belongs: (zone layer, zone, indicator, category, slot).
type At<'a> = (&'a str, i64, &'a str, &'a str, i32);

impl Rows {
    fn push(&mut self, at: At, op: &'static str, scale: i32, digit: i64, value: f64) {
        let (zl, z, ind, cat, s) = at;
        self.zones.push(zl.to_string());
        self.zone.push(z);
        self.indicator.push(ind.to_string());
        self.category.push(cat.to_string());
        self.slot.push(s);
        self.op.push(op);
        self.scale.push(scale);
        self.digit.push(digit);
        self.value.push(value);
    }

    /// A sum's rows: its digits (none when it is 0), or its non-finite value.
    fn sum(&mut self, at: At, v: &ExactSum) {
        match v.digits() {
            Some(ds) => {
                for (k, d) in ds {
                    self.push(at, "sum", k, d, 0.0);
                }
            }
            None => self.push(at, "sum", SPECIAL, 0, v.value()),
        }
    }

    fn into_batch(self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            partials_schema(),
            vec![
                Arc::new(StringArray::from(self.zones)),
                Arc::new(Int64Array::from(self.zone)),
                Arc::new(StringArray::from(self.indicator)),
                Arc::new(StringArray::from(self.category)),
                Arc::new(Int32Array::from(self.slot)),
                Arc::new(StringArray::from(self.op)),
                Arc::new(Int32Array::from(self.scale)),
                Arc::new(Int64Array::from(self.digit)),
                Arc::new(Float64Array::from(self.value)),
            ],
        )?)
    }
}

fn to_table(
    spec: &Spec,
    partials: &BTreeMap<(String, usize), Partial>,
    quality: &QualityState,
    report: &terrastat_core::ReadReport,
) -> Result<RecordBatch> {
    let mut rows = Rows::default();
    for ((zl, i), c) in &quality.counts {
        let name = &spec.indicators[*i].get_ref().name;
        for (slot, n) in [&c.attributed, &c.complete, &c.used]
            .into_iter()
            .enumerate()
        {
            for (z, n) in n.iter().enumerate() {
                if *n > 0 {
                    rows.push(
                        (zl, z as i64, name, "", slot as i32),
                        COUNT,
                        0,
                        *n as i64,
                        0.0,
                    );
                }
            }
        }
    }
    for (layer, r) in &quality.extents {
        if let Some(r) = r {
            let (lo, hi) = (r.min(), r.max());
            for (slot, op, v) in [
                (0, "min", lo.x),
                (1, "min", lo.y),
                (2, "max", hi.x),
                (3, "max", hi.y),
            ] {
                rows.push((EXTENT, 0, layer, "", slot), op, 0, 0, v);
            }
        }
    }
    let mut count = |ind: &str, why: &str, n: usize| {
        rows.push((REPORT, 0, ind, why, 0), "sum", 0, n as i64, 0.0);
    };
    count("read", "", report.read);
    count("kept", "", report.kept);
    for (why, n) in &report.skipped {
        count("skipped", why, *n);
    }
    for (why, n) in &report.repaired {
        count("repaired", why, *n);
    }
    for ((zl, i), p) in partials {
        let name = &spec.indicators[*i].get_ref().name;
        match p {
            Partial::Sums { slots, acc } => {
                for (k, v) in acc.iter().enumerate() {
                    let at = (
                        zl.as_str(),
                        (k / slots) as i64,
                        name.as_str(),
                        "",
                        (k % slots) as i32,
                    );
                    rows.sum(at, v);
                }
            }
            Partial::Extreme { max, acc } => {
                let o = if *max { "max" } else { "min" };
                for (z, x) in acc.iter().enumerate() {
                    if let Some(x) = x {
                        rows.push((zl, z as i64, name, "", 0), o, 0, 0, *x);
                    }
                }
            }
            Partial::Categories { names, total, seen } => {
                for c in seen {
                    rows.push((zl, -1, name, c, 0), "sum", 0, 0, 0.0);
                }
                for (c, col) in names {
                    for (z, x) in col.iter().enumerate() {
                        rows.sum((zl, z as i64, name, c, 0), x);
                    }
                }
                for (z, t) in total.iter().enumerate() {
                    rows.sum((zl, z as i64, name, "", 1), t);
                }
            }
        }
    }
    rows.into_batch()
}

/// Partials by (zone layer, indicator index).
pub(crate) type Partials = BTreeMap<(String, usize), Partial>;

/// Partials rebuilt from a table of combined rows (see the module docs),
/// and the read report the partitions sent along.
// Long because it decodes every row kind of the partials table (sums,
// extremes, counts, categories, read reports, extents) in one pass over its rows.
pub(crate) fn from_table(
    spec: &Spec,
    zones: &BTreeMap<String, Arc<Zones>>,
    batches: &[RecordBatch],
) -> Result<(Partials, terrastat_core::ReadReport, QualityState)> {
    let mut report = terrastat_core::ReadReport::default();
    let mut quality = QualityState::default();
    let mut extents: BTreeMap<String, [f64; 4]> = BTreeMap::new();
    let bad = |m: String| Error::Partials { message: m };
    let index = spec.indicator_indexes();
    let mut out: BTreeMap<(String, usize), Partial> = BTreeMap::new();
    for b in batches {
        let col = |n: &str| {
            b.column_by_name(n)
                .ok_or_else(|| bad(format!("the partials table has no column `{n}`")))
        };
        let string = |n: &str| -> Result<StringArray> {
            let c = arrow_cast::cast(col(n)?, &DataType::Utf8)?;
            c.as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .ok_or_else(|| bad(format!("column `{n}` is not text")))
        };
        let zl = string("zones")?;
        let ind = string("indicator")?;
        let cat = string("category")?;
        let op = string("op")?;
        let int = |n: &str| -> Result<Int64Array> {
            let c = arrow_cast::cast(col(n)?, &DataType::Int64)?;
            c.as_any()
                .downcast_ref::<Int64Array>()
                .cloned()
                .ok_or_else(|| bad(format!("column `{n}` is not an integer")))
        };
        let zone = int("zone")?;
        let slot = int("slot")?;
        let scale = int("scale")?;
        let digit = int("digit")?;
        let value = arrow_cast::cast(col("value")?, &DataType::Float64)?;
        let value = value
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| bad("column `value` is not a number".into()))?;
        for r in 0..b.num_rows() {
            if zl.is_null(r)
                || ind.is_null(r)
                || value.is_null(r)
                || digit.is_null(r)
                || scale.is_null(r)
            {
                return Err(bad(format!("row {r} has a null")));
            }
            if zl.value(r) == REPORT {
                let n = digit.value(r).max(0) as usize;
                let why = cat.value(r).to_string();
                match ind.value(r) {
                    "read" => report.read += n,
                    "kept" => report.kept += n,
                    "skipped" => *report.skipped.entry(why).or_default() += n,
                    _ => *report.repaired.entry(why).or_default() += n,
                }
                continue;
            }
            if zl.value(r) == EXTENT {
                let e = extents.entry(ind.value(r).to_string()).or_insert([
                    f64::INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NEG_INFINITY,
                ]);
                let (s, v) = (slot.value(r), value.value(r));
                let k = usize::try_from(s)
                    .ok()
                    .filter(|k| *k < 4)
                    .ok_or_else(|| bad(format!("row {r}: extent slot {s} is not 0 to 3")))?;
                e[k] = if k < 2 { e[k].min(v) } else { e[k].max(v) };
                continue;
            }
            let Some(&i) = index.get(ind.value(r)) else {
                return Err(bad(format!("unknown indicator `{}`", ind.value(r))));
            };
            let Some(z) = zones.get(zl.value(r)) else {
                return Err(bad(format!("unknown zone layer `{}`", zl.value(r))));
            };
            let nz = z.len();
            let zi = zone.value(r);
            if zi >= nz as i64 || zi < -1 {
                return Err(bad(format!(
                    "zone {zi} is not one of the {nz} zones of `{}`",
                    zl.value(r)
                )));
            }
            if op.value(r) == COUNT {
                let c = quality
                    .counts
                    .entry((zl.value(r).to_string(), i))
                    .or_insert_with(|| crate::quality::Counts::new(nz));
                let n = match slot.value(r) {
                    0 => &mut c.attributed,
                    1 => &mut c.complete,
                    2 => &mut c.used,
                    s => return Err(bad(format!("row {r}: count slot {s} is not 0 to 2"))),
                };
                if zi >= 0 {
                    n[zi as usize] += digit.value(r).max(0) as u64;
                }
                continue;
            }
            let p = match out.entry((zl.value(r).to_string(), i)) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(Partial::new(
                    spec.indicators[i].get_ref(),
                    nz,
                    &BTreeMap::new(),
                )?),
            };
            let (s, v, c) = (slot.value(r), value.value(r), cat.value(r));
            let (k, d) = (scale.value(r), digit.value(r));
            if k != SPECIAL as i64 && !(LOWEST_DIGIT as i64..=31).contains(&k) {
                return Err(bad(format!(
                    "row {r}: scale {k} is neither {SPECIAL} nor {LOWEST_DIGIT} to 31"
                )));
            }
            // Rows of one sum add up, whether the cluster combined them or not.
            let add = |acc: &mut ExactSum| {
                if k == SPECIAL as i64 {
                    acc.add(v);
                } else {
                    acc.add_digit(k as i32, d);
                }
            };
            match p {
                Partial::Sums { slots, acc } if zi >= 0 && (s as usize) < *slots => {
                    add(&mut acc[zi as usize * *slots + s as usize]);
                }
                Partial::Extreme { acc, .. } if zi >= 0 => {
                    keep_extreme(&mut acc[zi as usize], v, op.value(r) == "max");
                }
                Partial::Categories { names, total, seen } => {
                    if c.is_empty() && s == 1 && zi >= 0 {
                        add(&mut total[zi as usize]);
                    } else if !c.is_empty() {
                        let col = names
                            .entry(c.to_string())
                            .or_insert_with(|| vec![ExactSum::new(); nz]);
                        if zi >= 0 {
                            add(&mut col[zi as usize]);
                        }
                        seen.insert(c.to_string());
                    }
                }
                _ => {
                    return Err(bad(format!(
                        "row {r} (slot {s}, op {}) does not fit indicator `{}`",
                        op.value(r),
                        ind.value(r)
                    )))
                }
            }
        }
    }
    for (layer, [x0, y0, x1, y1]) in extents {
        let known = x0 <= x1 && y0 <= y1;
        let r = known
            .then(|| geo::Rect::new(geo::coord! { x: x0, y: y0 }, geo::coord! { x: x1, y: y1 }));
        quality.extents.insert(layer, r);
    }
    Ok((out, report, quality))
}
