//! Partial aggregates as Arrow tables, for runs spread over many machines
//! (the Python `terrastat.spark` module): a kernel folds one partition of a
//! layer into per-zone partials ([`partition_partials`]), the cluster sums
//! them per zone (minima and maxima for extremes), and the final step turns
//! the sums into indicators and computes everything else
//! ([`crate::run::compute_distributed`]).
//!
//! The table is long: one row per (zone layer, zone, indicator, category,
//! slot, op) with a non-zero value, `op` saying how rows of several
//! partitions combine (`sum`, `min`, `max`); a row with `zone = -1` only
//! says that a category exists. Zones are numbered as the zone layers are
//! loaded from the spec, so every partition and the final step agree.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow_array::{Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use terrastat_core::{Layer, NoProgress, Zones};

use crate::error::{Error, Result};
use crate::eval::{check_columns, to_working_crs, Evaluator, Inputs, Partial};
use crate::spec::Spec;

/// The schema of a partials table (Spark: `zones string, zone long,
/// indicator string, category string, slot int, op string, value double`).
pub fn partials_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("zones", DataType::Utf8, false),
        Field::new("zone", DataType::Int64, false),
        Field::new("indicator", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("slot", DataType::Int32, false),
        Field::new("op", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
    ]))
}

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
        let opts = crate::eval::layer_read_options(spec, &name)?;
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
    check_columns(spec, &inputs)?;
    let mut ev = Evaluator::new(spec, &inputs, &NoProgress).absent_is_empty();
    ev.accumulate_layer(layer)?;
    to_table(spec, &ev.into_partials(), &report)
}

/// The zone layer name of the rows that carry a partition's read report
/// (`indicator` = read, kept, skipped or repaired; `category` = the reason).
pub const REPORT: &str = "_report";

fn to_table(
    spec: &Spec,
    partials: &BTreeMap<(String, usize), Partial>,
    report: &terrastat_core::ReadReport,
) -> Result<RecordBatch> {
    let mut zones = Vec::new();
    let mut zone = Vec::new();
    let mut indicator = Vec::new();
    let mut category = Vec::new();
    let mut slot = Vec::new();
    let mut op = Vec::new();
    let mut value = Vec::new();
    let mut push = |zl: &str, z: i64, ind: &str, cat: &str, s: i32, o: &'static str, v: f64| {
        zones.push(zl.to_string());
        zone.push(z);
        indicator.push(ind.to_string());
        category.push(cat.to_string());
        slot.push(s);
        op.push(o);
        value.push(v);
    };
    push(REPORT, 0, "read", "", 0, "sum", report.read as f64);
    push(REPORT, 0, "kept", "", 0, "sum", report.kept as f64);
    for (why, n) in &report.skipped {
        push(REPORT, 0, "skipped", why, 0, "sum", *n as f64);
    }
    for (why, n) in &report.repaired {
        push(REPORT, 0, "repaired", why, 0, "sum", *n as f64);
    }
    for ((zl, i), p) in partials {
        let name = &spec.indicators[*i].get_ref().name;
        match p {
            Partial::Sums { slots, acc } => {
                for (k, v) in acc.iter().enumerate() {
                    if *v != 0.0 {
                        push(
                            zl,
                            (k / slots) as i64,
                            name,
                            "",
                            (k % slots) as i32,
                            "sum",
                            *v,
                        );
                    }
                }
            }
            Partial::Extreme(v) => {
                let o = if spec.indicators[*i].get_ref().kind == crate::spec::Kind::Min {
                    "min"
                } else {
                    "max"
                };
                for (z, x) in v.iter().enumerate() {
                    if let Some(x) = x {
                        push(zl, z as i64, name, "", 0, o, *x);
                    }
                }
            }
            Partial::Categories { names, total, seen } => {
                for c in seen {
                    push(zl, -1, name, c, 0, "sum", 0.0);
                }
                for (c, col) in names {
                    for (z, x) in col.iter().enumerate() {
                        if *x != 0.0 {
                            push(zl, z as i64, name, c, 0, "sum", *x);
                        }
                    }
                }
                for (z, t) in total.iter().enumerate() {
                    if *t != 0.0 {
                        push(zl, z as i64, name, "", 1, "sum", *t);
                    }
                }
            }
        }
    }
    Ok(RecordBatch::try_new(
        partials_schema(),
        vec![
            Arc::new(StringArray::from(zones)),
            Arc::new(Int64Array::from(zone)),
            Arc::new(StringArray::from(indicator)),
            Arc::new(StringArray::from(category)),
            Arc::new(Int32Array::from(slot)),
            Arc::new(StringArray::from(op)),
            Arc::new(Float64Array::from(value)),
        ],
    )?)
}

/// Partials by (zone layer, indicator index).
pub(crate) type Partials = BTreeMap<(String, usize), Partial>;

/// Partials rebuilt from a table of combined rows (see the module docs),
/// and the read report the partitions sent along.
pub(crate) fn from_table(
    spec: &Spec,
    zones: &BTreeMap<String, Arc<Zones>>,
    batches: &[RecordBatch],
) -> Result<(Partials, terrastat_core::ReadReport)> {
    let mut report = terrastat_core::ReadReport::default();
    let bad = |m: String| Error::Indicator {
        indicator: "partials".into(),
        message: m,
    };
    let index: BTreeMap<&str, usize> = spec
        .indicators
        .iter()
        .enumerate()
        .map(|(i, s)| (s.get_ref().name.as_str(), i))
        .collect();
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
        let zone = arrow_cast::cast(col("zone")?, &DataType::Int64)?;
        let zone = zone
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| bad("column `zone` is not an integer".into()))?;
        let slot = arrow_cast::cast(col("slot")?, &DataType::Int64)?;
        let slot = slot
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| bad("column `slot` is not an integer".into()))?;
        let value = arrow_cast::cast(col("value")?, &DataType::Float64)?;
        let value = value
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| bad("column `value` is not a number".into()))?;
        for r in 0..b.num_rows() {
            if zl.is_null(r) || ind.is_null(r) || value.is_null(r) {
                return Err(bad(format!("row {r} has a null")));
            }
            if zl.value(r) == REPORT {
                let n = value.value(r) as usize;
                let why = cat.value(r).to_string();
                match ind.value(r) {
                    "read" => report.read += n,
                    "kept" => report.kept += n,
                    "skipped" => *report.skipped.entry(why).or_default() += n,
                    _ => *report.repaired.entry(why).or_default() += n,
                }
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
            let p = out.entry((zl.value(r).to_string(), i)).or_insert_with(|| {
                Partial::new(spec.indicators[i].get_ref(), nz, &BTreeMap::new())
            });
            let (s, v, c) = (slot.value(r), value.value(r), cat.value(r));
            match p {
                Partial::Sums { slots, acc } if zi >= 0 && (s as usize) < *slots => {
                    acc[zi as usize * *slots + s as usize] = v;
                }
                Partial::Extreme(e) if zi >= 0 => e[zi as usize] = Some(v),
                Partial::Categories { names, total, seen } => {
                    if c.is_empty() && s == 1 && zi >= 0 {
                        total[zi as usize] = v;
                    } else if !c.is_empty() {
                        let col = names.entry(c.to_string()).or_insert_with(|| vec![0.0; nz]);
                        if zi >= 0 {
                            col[zi as usize] = v;
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
    Ok((out, report))
}
