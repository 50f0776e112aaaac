//! Incremental runs: a manifest of what produced an output directory, and
//! the plan of what a new run must recompute.
//!
//! Every run writes `DIR/manifest.json` last, after its outputs: the engine
//! version, a hash of each part of the spec (global keys, each layer, zone
//! layer, raster and indicator table, whatever its formatting), the SHA-256
//! of every input file, of each partition of the streamed layer with its
//! declared bounding box, and of every output. `terrastat run --incremental`
//! compares the present state with it:
//!
//! - nothing changed: the outputs are up to date and only the zones' rows
//!   are rewritten from the previous outputs (no partition is read);
//! - only partitions of the streamed layer changed (edited, added, removed):
//!   the zones whose box meets a changed partition's box (old or new) are
//!   dirty, and so are the roll-up groups holding them; the partitions
//!   meeting a dirty zone, or a member of a dirty group, are read, the dirty
//!   rows recomputed and the other rows kept from the previous outputs;
//! - anything else (engine version, spec, another input, an output that
//!   differs from the manifest, e.g. after an interrupted run): a full run,
//!   and the reason is reported.
//!
//! A dirty zone's value is a fold over the features attributed to it, in
//! partition order; every partition that can hold such a feature meets the
//! zone's box, so the fold over the partitions read is the fold of a full
//! run: the outputs are the same bytes (tested in `tests/incremental.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;

use crate::lineage::Partition;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::spec::Spec;

/// What produced an output directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The engine version.
    pub engine: String,
    /// Hash of each part of the spec (`crs`, `layers.x`, `zones.x`,
    /// `rasters.x`, `indicators.<name>`, `options`).
    pub spec: BTreeMap<String, String>,
    /// SHA-256 of each input read whole, by role (`zones.communes`…).
    pub inputs: BTreeMap<String, String>,
    /// The streamed layer, if any.
    pub streamed: Option<String>,
    /// Its partitions, in path order.
    pub partitions: Vec<Partition>,
    /// SHA-256 of each output file, by file name.
    pub outputs: BTreeMap<String, String>,
    /// The categories (output columns) of each `category_share` indicator.
    #[serde(default)]
    pub categories: BTreeMap<String, Vec<String>>,
}

/// The manifest's file name in an output directory.
pub const MANIFEST: &str = "manifest.json";

fn hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The hash of each part of a spec (see [`Manifest::spec`]), from its TOML
/// values (comments and layout do not count), plus the run's `options`.
pub fn spec_parts(spec: &Spec, options: &str) -> Result<BTreeMap<String, String>> {
    let table: toml::Table = toml::from_str(&spec.text).map_err(|e| Error::Spec {
        path: spec.path.clone(),
        line: 1,
        what: "spec".into(),
        message: e.to_string(),
    })?;
    let json = |v: &toml::Value| hex(serde_json::to_string(v).unwrap_or_default().as_bytes());
    let mut parts = BTreeMap::new();
    for (k, v) in &table {
        match (k.as_str(), v) {
            ("indicators", toml::Value::Array(items)) => {
                for (n, item) in items.iter().enumerate() {
                    let name = item
                        .get("name")
                        .and_then(|x| x.as_str())
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("#{n}"));
                    parts.insert(format!("indicators.{name}"), json(item));
                }
            }
            ("layers" | "zones" | "rasters" | "tables", toml::Value::Table(t)) => {
                for (name, item) in t {
                    parts.insert(format!("{k}.{name}"), json(item));
                }
            }
            _ => {
                parts.insert(k.clone(), json(v));
            }
        }
    }
    parts.insert("options".into(), hex(options.as_bytes()));
    Ok(parts)
}

impl Manifest {
    /// The manifest of `dir`, if it has a readable one.
    pub fn read(dir: &Path) -> Option<Manifest> {
        let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// What an incremental run must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Everything, for this reason.
    Full(String),
    /// Recompute the zones meeting these boxes (changed partitions, old and
    /// new); empty: nothing changed.
    Dirty {
        /// Boxes of the changed partitions (`[xmin, ymin, xmax, ymax]`).
        boxes: Vec<[f64; 4]>,
        /// Paths of the changed, added and removed partitions.
        changed: Vec<String>,
    },
}

/// Compare the previous manifest of `out` with the present state.
pub fn scope(out: &Path, prev: Option<&Manifest>, now: &Manifest) -> Scope {
    let Some(prev) = prev else {
        return Scope::Full("no previous manifest".into());
    };
    if prev.engine != now.engine {
        return Scope::Full(format!(
            "engine version changed ({} → {})",
            prev.engine, now.engine
        ));
    }
    if let Some(k) = differing_key(&prev.spec, &now.spec) {
        return Scope::Full(format!("spec `{k}` changed"));
    }
    if let Some(k) = differing_key(&prev.inputs, &now.inputs) {
        return Scope::Full(format!("input `{k}` changed"));
    }
    if prev.streamed != now.streamed {
        return Scope::Full("the streamed layer changed".into());
    }
    // The outputs must be those the manifest describes.
    for (name, sha) in &prev.outputs {
        let ok = crate::lineage::sha256_file(&out.join(name)).is_ok_and(|s| &s == sha);
        if !ok {
            return Scope::Full(format!(
                "output {name} is not the one the manifest describes (edited, or an interrupted run)"
            ));
        }
    }
    let old: BTreeMap<&str, &Partition> = prev
        .partitions
        .iter()
        .map(|p| (p.path.as_str(), p))
        .collect();
    let new: BTreeMap<&str, &Partition> = now
        .partitions
        .iter()
        .map(|p| (p.path.as_str(), p))
        .collect();
    let mut boxes = Vec::new();
    let mut changed = Vec::new();
    for path in old
        .keys()
        .chain(new.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (a, b) = (old.get(path), new.get(path));
        if a.map(|p| &p.sha256) == b.map(|p| &p.sha256) {
            continue;
        }
        for p in a.iter().chain(b.iter()) {
            match p.bbox {
                Some(bb) => boxes.push(bb),
                None => {
                    return Scope::Full(format!("partition {path} declares no bbox"));
                }
            }
        }
        changed.push(path.to_string());
    }
    Scope::Dirty { boxes, changed }
}

fn differing_key(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Option<String> {
    a.keys()
        .chain(b.keys())
        .find(|k| a.get(*k) != b.get(*k))
        .cloned()
}

/// What an incremental run did, for the run report and the catalog.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IncrementalReport {
    /// `full` or `dirty`.
    pub mode: String,
    /// Why the run was full.
    pub reason: Option<String>,
    /// Partitions changed, added or removed.
    pub changed: Vec<String>,
    /// Partitions read.
    pub read: usize,
    /// Zones recomputed per zone layer, and how many it has.
    pub zones: BTreeMap<String, (usize, usize)>,
}

/// Rows of `fresh` where `dirty`, of `previous` elsewhere: the previous
/// outputs of a zone layer updated with the recomputed rows. `None` when
/// the previous table does not have the same schema (a new category column…).
pub(crate) fn merge_rows(
    previous: &arrow_array::RecordBatch,
    fresh: &arrow_array::RecordBatch,
    dirty: &[bool],
) -> Result<Option<arrow_array::RecordBatch>> {
    if previous.schema().fields() != fresh.schema().fields()
        || previous.num_rows() != fresh.num_rows()
        || dirty.len() != fresh.num_rows()
    {
        return Ok(None);
    }
    let mask = arrow_array::BooleanArray::from(dirty.to_vec());
    let columns = fresh
        .columns()
        .iter()
        .zip(previous.columns())
        .map(|(f, p)| arrow_select::zip::zip(&mask, f, p))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Some(arrow_array::RecordBatch::try_new(
        fresh.schema(),
        columns,
    )?))
}

/// Read a zone layer's previous output table (`DIR/<zones>.parquet`).
pub(crate) fn read_previous(path: &Path) -> Option<arrow_array::RecordBatch> {
    terrastat_core::io::read_table(path).ok()
}

/// The zones to recompute, per zone layer (roll-up levels included): those
/// whose box meets one of `boxes`, and the roll-up groups holding one.
pub(crate) fn dirty_zones(
    zones: &BTreeMap<String, std::sync::Arc<terrastat_core::Zones>>,
    boxes: &[[f64; 4]],
) -> BTreeMap<String, Vec<bool>> {
    let meets = |r: Option<geo::Rect>| {
        r.is_none_or(|r| {
            boxes.iter().any(|b| {
                r.min().x <= b[2] && b[0] <= r.max().x && r.min().y <= b[3] && b[1] <= r.max().y
            })
        })
    };
    let mut out: BTreeMap<String, Vec<bool>> = zones
        .iter()
        .filter(|(_, z)| z.grouping().is_none())
        .map(|(n, z)| {
            let m = z
                .prepared()
                .par_iter()
                .map(|p| meets(p.rect().copied()))
                .collect();
            (n.clone(), m)
        })
        .collect();
    for (n, z) in zones {
        if let Some(g) = z.grouping() {
            let m = match out.get(&g.base) {
                Some(base) => g
                    .members
                    .iter()
                    .map(|ms| {
                        ms.iter()
                            .any(|m| base.get(*m as usize).copied().unwrap_or(true))
                    })
                    .collect(),
                None => vec![true; z.len()],
            };
            out.insert(n.clone(), m);
        }
    }
    out
}

/// The boxes of the base zones a dirty run must see every feature of: the
/// dirty zones and every member of a dirty roll-up group.
pub(crate) fn needed_boxes(
    zones: &BTreeMap<String, std::sync::Arc<terrastat_core::Zones>>,
    dirty: &BTreeMap<String, Vec<bool>>,
) -> Vec<Option<geo::Rect>> {
    let mut needed: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
    for (n, z) in zones {
        let Some(d) = dirty.get(n) else { continue };
        match z.grouping() {
            None => {
                let e = needed
                    .entry(n.as_str())
                    .or_insert_with(|| vec![false; z.len()]);
                for (k, x) in d.iter().enumerate() {
                    e[k] |= *x;
                }
            }
            Some(g) => {
                let Some(base) = zones.get(&g.base) else {
                    continue;
                };
                let e = needed
                    .entry(g.base.as_str())
                    .or_insert_with(|| vec![false; base.len()]);
                for (k, ms) in g.members.iter().enumerate() {
                    if d[k] {
                        for m in ms {
                            if let Some(x) = e.get_mut(*m as usize) {
                                *x = true;
                            }
                        }
                    }
                }
            }
        }
    }
    needed
        .into_iter()
        .flat_map(|(n, m)| {
            let z = &zones[n];
            m.into_iter()
                .enumerate()
                .filter(|(_, x)| *x)
                .map(|(k, _)| z.prepared()[k].rect().copied())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether a partition with declared box `bbox` may hold a feature of a
/// zone with one of `needed` boxes (`None` boxes: unknown, so yes).
pub(crate) fn partition_needed(bbox: Option<[f64; 4]>, needed: &[Option<geo::Rect>]) -> bool {
    let Some(b) = bbox else { return true };
    needed.iter().any(|r| {
        r.is_none_or(|r| {
            r.min().x <= b[2] && b[0] <= r.max().x && r.min().y <= b[3] && b[1] <= r.max().y
        })
    })
}
