//! The inputs of a spec, loaded: layers read, checked, hashed and brought
//! to the working CRS; zone layers built (files, grids, H3 cells after
//! their cover, roll-up levels last); rasters opened; tables joined. Each
//! input leaves a lineage entry ([`InputFile`]) with its SHA-256 and read
//! report.

use crate::error::{Error, Result};
use crate::expr::Filter;
use crate::expr::ZONE_PREFIX;
use crate::kinds::PerFeature;
use crate::lineage::{sha256_file, InputFile};
use crate::spec::Spec;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use terrastat_core::{read_layer, Crs, Layer, Progress, ReadOptions, Zones};

/// The loaded inputs of a spec.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Source layers by name, in the working CRS.
    pub layers: BTreeMap<String, Arc<Layer>>,
    /// Zone layers by name.
    pub zones: BTreeMap<String, Arc<Zones>>,
    /// Rasters by name (opened and checked; read by the zonal passes).
    pub rasters: BTreeMap<String, crate::rasters::RasterInput>,
    /// The geometries of zone layers reprojected into the working CRS, as
    /// read and in their own CRS: a raster in that CRS uses them directly.
    pub zone_sources: BTreeMap<String, (Crs, Arc<Vec<geo::Geometry>>)>,
    /// The files read.
    pub files: Vec<InputFile>,
    /// Non-spatial tables, by name.
    pub tables: BTreeMap<String, Arc<crate::tables::Table>>,
    /// Per table, per zone layer it joins: the row of each zone and the report.
    pub joins: BTreeMap<String, BTreeMap<String, Join>>,
}

/// How one table joins one zone layer: the row of each zone, and the report.
pub type Join = (Arc<Vec<Option<usize>>>, crate::tables::JoinReport);

pub(crate) fn to_working_crs(layer: Layer, working: &Crs) -> Result<Layer> {
    if layer.crs().same_as(working) {
        return Ok(layer);
    }
    #[cfg(feature = "proj")]
    {
        Ok(terrastat_core::reproject::reproject(layer, working)?)
    }
    #[cfg(not(feature = "proj"))]
    {
        Err(terrastat_core::Error::CrsMismatch {
            path: layer.source().to_path_buf(),
            layer_crs: layer.crs().to_string(),
            working_crs: working.to_string(),
        }
        .into())
    }
}

/// How layer `name` of the spec is read: its CRS override, invalid-geometry
/// policy, source layer and the columns its indicators use.
pub(crate) fn layer_read_options(spec: &Spec, name: &str) -> Result<ReadOptions> {
    let ls = spec.layers.get(name).ok_or_else(|| Error::Internal {
        what: format!("layer `{name}` is not in the spec"),
    })?;
    let centroids = if centroids_suffice(spec, name) {
        Some(Crs::parse(&spec.crs)?)
    } else {
        None
    };
    Ok(ReadOptions::default()
        .crs(parse_crs(spec, &ls.crs, &format!("layers `{name}`"))?)
        .invalid(ls.invalid.unwrap_or_default())
        .source_layer(ls.source_layer.clone())
        .columns(used_columns(spec, name))
        .centroids(centroids))
}

/// Whether the spec only ever attributes layer `name`'s features by their
/// centroid, so that it can be read as centroids
/// ([`ReadOptions::centroids`]): every indicator over it counts, sums or
/// shares its features by centroid (a `share_within` with the `centroid`
/// predicate), and no indicator or zone layer uses it as `other` or
/// `cover`. Areas, intersections and distances need the geometries.
pub(crate) fn centroids_suffice(spec: &Spec, name: &str) -> bool {
    let mut used = false;
    for s in &spec.indicators {
        let ind = s.get_ref();
        if ind.other.as_deref() == Some(name) {
            return false;
        }
        if ind.layer.as_deref() != Some(name) {
            continue;
        }
        used = true;
        if !ind.kind.imp().centroids_suffice(ind) {
            return false;
        }
    }
    used && !spec
        .zones
        .values()
        .any(|z| z.get_ref().cover.as_deref() == Some(name))
}

fn parse_crs(spec: &Spec, s: &Option<String>, what: &str) -> Result<Option<Crs>> {
    s.as_deref()
        .map(|c| {
            Crs::parse(c).map_err(|e| Error::Spec {
                path: spec.path.clone(),
                line: 1,
                what: format!("{what}, key `crs`"),
                message: e.to_string(),
            })
        })
        .transpose()
}

impl Inputs {
    /// The same inputs, shared (layers, zones and rasters by reference
    /// count; no file records): a streamed run adds one batch of its
    /// streamed layer to this for each batch.
    pub(crate) fn sharing(&self) -> Inputs {
        Inputs {
            layers: self.layers.clone(),
            zones: self.zones.clone(),
            rasters: self.rasters.clone(),
            zone_sources: self.zone_sources.clone(),
            files: Vec::new(),
            tables: self.tables.clone(),
            joins: self.joins.clone(),
        }
    }

    /// Read the spec's tables and join them to their zone layers.
    fn load_tables(&mut self, spec: &Spec) -> Result<()> {
        for (name, ts) in &spec.tables {
            let path = spec.resolve(&ts.path);
            let t = crate::tables::read(name, &path, &ts.key)?;
            let what = format!("tables `{name}`");
            let targets: Vec<String> = match &ts.zones {
                Some(crate::spec::ZonesSel::One(z)) => vec![z.clone()],
                Some(crate::spec::ZonesSel::Many(v)) => v.clone(),
                None => self
                    .zones
                    .iter()
                    .filter(|(_, z)| z.id_column() == ts.key)
                    .map(|(n, _)| n.clone())
                    .collect(),
            };
            if targets.is_empty() {
                return Err(Error::Spec {
                    path: spec.path.clone(),
                    line: spec.key_line(&format!("tables.{name}"), "key"),
                    what,
                    message: format!(
                        "no zone layer has the id (or roll-up) column `{}`: name the zone layers with `zones = [...]` and their column with `zone_key`",
                        ts.key
                    ),
                });
            }
            for zl in targets {
                let Some(z) = self.zones.get(&zl) else {
                    return Err(Error::Spec {
                        path: spec.path.clone(),
                        line: spec.key_line(&format!("tables.{name}"), "zones"),
                        what,
                        message: format!("`{zl}` is no zone layer of this spec"),
                    });
                };
                let col_name = ts.zone_key.clone().unwrap_or(z.id_column().to_string());
                let col = if col_name == z.id_column() {
                    z.ids()?.clone()
                } else {
                    z.attributes()
                        .column_by_name(&col_name)
                        .cloned()
                        .ok_or_else(|| Error::Spec {
                            path: spec.path.clone(),
                            line: spec.key_line(&format!("tables.{name}"), "zone_key"),
                            what: what.clone(),
                            message: format!("zones `{zl}` have no column `{col_name}`"),
                        })?
                };
                let keys = crate::tables::zone_keys(&col)?;
                let (rows, report) = t.join(&zl, &col_name, &keys);
                self.joins
                    .entry(name.clone())
                    .or_default()
                    .insert(zl, (Arc::new(rows), report));
            }
            let report = terrastat_core::ReadReport {
                read: t.keys.len(),
                kept: t.keys.len(),
                ..Default::default()
            };
            self.files.push(InputFile {
                role: format!("tables.{name}"),
                sha256: sha256_file(&path)?,
                path,
                crs: String::new(),
                report,
            });
            self.tables.insert(name.clone(), Arc::new(t));
        }
        Ok(())
    }

    /// Read every layer and zone layer the spec uses, reproject them to the
    /// working CRS (with `proj`) or fail on a CRS mismatch (without it).
    pub fn load(spec: &Spec, progress: &dyn Progress) -> Result<Inputs> {
        Self::load_with(spec, progress, BTreeMap::new())
    }

    /// [`Self::load`], with some layers and zone layers given in memory
    /// (by name; e.g. Arrow tables from Python) instead of read from their
    /// `path`. They are checked like files (`Layer::from_raw`) and recorded
    /// in the lineage as `memory:<name>`.
    pub fn load_with(
        spec: &Spec,
        progress: &dyn Progress,
        memory: BTreeMap<String, terrastat_core::RawLayer>,
    ) -> Result<Inputs> {
        Self::load_except(spec, progress, memory, &|_| false)
    }

    /// [`Self::load_with`], leaving out the layers `skip` says (the streamed
    /// layer of a streamed run, read a few partitions at a time).
    // Long because it loads every input kind (layers, zones, roll-ups, rasters,
    // tables) in one parallel scope so that they overlap; each arm is short.
    pub(crate) fn load_except(
        spec: &Spec,
        progress: &dyn Progress,
        mut memory: BTreeMap<String, terrastat_core::RawLayer>,
        skip: &dyn Fn(&str) -> bool,
    ) -> Result<Inputs> {
        let working = Crs::parse(&spec.crs)?;
        let mut inputs = Inputs::default();
        inputs.rasters = crate::rasters::load_rasters(spec, &mut inputs.files)?;
        let used: std::collections::BTreeSet<&str> = spec
            .indicators
            .iter()
            .flat_map(|i| {
                let i = i.get_ref();
                i.layer.iter().chain(i.other.iter()).map(String::as_str)
            })
            .chain(spec.zones.values().flat_map(|z| {
                let z = z.get_ref();
                z.extent.as_deref().into_iter().chain(z.cover.as_deref())
            }))
            .chain(spec.layers.values().filter_map(|l| l.extent.as_deref()))
            .collect();
        for (name, ls) in &spec.layers {
            if !used.contains(name.as_str()) || skip(name) {
                continue;
            }
            let path = spec.resolve(&ls.path);
            progress.begin(&format!("reading {name}"), 0);
            let opts = layer_read_options(spec, name)?;
            let layer = obtain(
                &format!("layers.{name}"),
                name,
                path,
                &opts,
                &mut memory,
                &mut inputs.files,
            )?;
            let layer = to_working_crs(layer, &working)?;
            inputs.layers.insert(name.clone(), Arc::new(layer));
            progress.end();
        }
        // Polygon zones first, then grids (which may cover them), then H3
        // zones (which may cover either, or other H3 zones).
        let mut grids = Vec::new();
        let mut hexes = Vec::new();
        for (name, zs) in &spec.zones {
            let zs = zs.get_ref();
            if zs.h3.is_some() {
                hexes.push(name);
                continue;
            }
            let Some(p) = &zs.path else {
                grids.push(name);
                continue;
            };
            let path = spec.resolve(p);
            progress.begin(&format!("reading zones {name}"), 0);
            let opts = ReadOptions::default()
                .crs(parse_crs(spec, &zs.crs, &format!("zones `{name}`"))?)
                .invalid(zs.invalid.unwrap_or_default());
            let layer = obtain(
                &format!("zones.{name}"),
                name,
                path,
                &opts,
                &mut memory,
                &mut inputs.files,
            )?;
            if !layer.crs().same_as(&working) {
                inputs.zone_sources.insert(
                    name.clone(),
                    (layer.crs().clone(), Arc::new(layer.geometries().to_vec())),
                );
            }
            let layer = to_working_crs(layer, &working)?;
            let id = zs.id.as_deref().unwrap_or("id");
            inputs
                .zones
                .insert(name.clone(), Arc::new(Zones::from_layer(name, &layer, id)?));
            progress.end();
        }
        for name in grids {
            let zs = spec.zones[name].get_ref();
            let cell = zs.grid.unwrap_or(1000.0);
            let (extent, cover) = match (&zs.bbox, &zs.extent) {
                (Some(b), _) => (geo::Rect::new((b[0], b[1]), (b[2], b[3])), None),
                (None, Some(e)) => {
                    if let Some(z) = inputs.zones.get(e) {
                        (
                            z.bounding_rect().ok_or_else(|| Error::Input {
                                input: format!("zones `{name}`"),
                                message: format!("the extent `{e}` has no feature"),
                            })?,
                            Some(z.clone()),
                        )
                    } else if let Some(l) = inputs.layers.get(e) {
                        (
                            l.bounding_rect().ok_or_else(|| Error::Input {
                                input: format!("zones `{name}`"),
                                message: format!("the extent `{e}` has no feature"),
                            })?,
                            None,
                        )
                    } else if let Some(r) = inputs.rasters.get(e) {
                        let poly = crate::rasters::extent_in(r, e, &working)?;
                        (
                            geo::BoundingRect::bounding_rect(&poly).ok_or_else(|| {
                                Error::Input {
                                    input: format!("zones `{name}`"),
                                    message: format!("the extent `{e}` is empty"),
                                }
                            })?,
                            None,
                        )
                    } else {
                        return Err(Error::Spec {
                            path: spec.path.clone(),
                            line: 1,
                            what: format!("zones `{name}`"),
                            message: format!("extent `{e}` is not loaded"),
                        });
                    }
                }
                _ => unreachable_extent(spec, name)?,
            };
            let z = Zones::grid(name, working.clone(), extent, cell, cover.as_deref())?;
            inputs.zones.insert(name.clone(), Arc::new(z));
        }
        // H3 zones, each once its cover is built.
        while !hexes.is_empty() {
            let ready = hexes.iter().position(|n| {
                let z = spec.zones[*n].get_ref();
                let c = z.cover.as_deref().or(z.from.as_deref());
                c.is_none_or(|c| {
                    inputs.zones.contains_key(c)
                        || inputs.layers.contains_key(c)
                        || inputs.rasters.contains_key(c)
                })
            });
            let Some(i) = ready else {
                return Err(Error::Spec {
                    path: spec.path.clone(),
                    line: 1,
                    what: format!("zones `{}`", hexes[0]),
                    message: "H3 zones cover each other in a cycle".into(),
                });
            };
            let name = hexes.remove(i);
            let zs = spec.zones[name].get_ref();
            progress.begin(&format!("H3 cells {name}"), 0);
            if let Some(from) = &zs.from {
                let z = Zones::h3_rollup(name, &inputs.zones[from], zs.h3.unwrap_or(0))?;
                inputs.zones.insert(name.clone(), Arc::new(z));
                progress.end();
                continue;
            }
            let covers: Vec<terrastat_core::PreparedPolygon> = match (&zs.cover, &zs.bbox) {
                (_, Some(b)) => vec![terrastat_core::PreparedPolygon::new(geo::MultiPolygon(
                    vec![geo::Rect::new((b[0], b[1]), (b[2], b[3])).to_polygon()],
                ))],
                (Some(c), None) => {
                    if let Some(z) = inputs.zones.get(c) {
                        z.prepared().to_vec()
                    } else if let Some(r) = inputs.rasters.get(c) {
                        vec![terrastat_core::PreparedPolygon::new(
                            crate::rasters::extent_in(r, c, &working)?,
                        )]
                    } else if let Some(l) = inputs.layers.get(c) {
                        if l.kind() != terrastat_core::GeomKind::Polygon {
                            return Err(Error::Spec {
                                path: spec.path.clone(),
                                line: spec.key_line(&format!("zones.{name}"), "cover"),
                                what: format!("zones `{name}`"),
                                message: format!(
                                    "`cover = \"{c}\"` must be polygons; `{c}` has {:?} geometries",
                                    l.kind()
                                ),
                            });
                        }
                        l.geometries()
                            .par_iter()
                            .map(terrastat_core::PreparedPolygon::from_geometry)
                            .collect()
                    } else {
                        return Err(Error::Spec {
                            path: spec.path.clone(),
                            line: 1,
                            what: format!("zones `{name}`"),
                            message: format!("cover `{c}` is not loaded"),
                        });
                    }
                }
                (None, None) => vec![],
            };
            let z = Zones::h3_cells(
                name,
                working.clone(),
                &covers,
                zs.h3.unwrap_or(9),
                zs.mode.unwrap_or_default(),
            )?;
            inputs.zones.insert(name.clone(), Arc::new(z));
            progress.end();
        }
        // Roll-up levels of any zone layer.
        for (name, zs) in &spec.zones {
            for col in zs.get_ref().rollup.iter().flatten() {
                let out = format!("{name}_by_{col}");
                let z = Zones::rollup(&out, &inputs.zones[name], col).map_err(|e| Error::Spec {
                    path: spec.path.clone(),
                    line: spec.key_line(&format!("zones.{name}"), "rollup"),
                    what: format!("zones `{name}`, key `rollup`"),
                    message: e.to_string(),
                })?;
                inputs.zones.insert(out, Arc::new(z));
            }
        }
        inputs.load_tables(spec)?;
        Ok(inputs)
    }
}

/// Layer `name`: from `memory` when given there (recorded as
/// `memory:<name>`), else read from `path` (recorded with its SHA-256); its
/// lineage entry goes to `files` under `role`.
fn obtain(
    role: &str,
    name: &str,
    path: PathBuf,
    opts: &ReadOptions,
    memory: &mut BTreeMap<String, terrastat_core::RawLayer>,
    files: &mut Vec<InputFile>,
) -> Result<Layer> {
    let (layer, path, sha256) = match memory.remove(name) {
        Some(raw) => {
            let label = PathBuf::from(format!("memory:{name}"));
            let l = Layer::from_raw(name, &label, raw, opts.crs.clone(), opts.invalid)?;
            (l, label, "in-memory".to_string())
        }
        None => {
            let l = read_layer(name, &path, opts)?;
            let sha = sha256_file(&path)?;
            (l, path, sha)
        }
    };
    files.push(InputFile {
        role: role.to_string(),
        sha256,
        path,
        crs: layer.crs().to_string(),
        report: layer.report().clone(),
    });
    Ok(layer)
}

fn unreachable_extent(spec: &Spec, name: &str) -> Result<(geo::Rect, Option<Arc<Zones>>)> {
    Err(Error::Spec {
        path: spec.path.clone(),
        line: 1,
        what: format!("zones `{name}`"),
        message: "a grid needs `extent` or `bbox`".into(),
    })
}

/// The attribute columns of layer `name` that some indicator reads (as
/// `column`, `weight` or in a `filter`); `None` (read all) when a filter does
/// not parse, so that the later check reports it against the full layer.
fn used_columns(spec: &Spec, name: &str) -> Option<Vec<String>> {
    let mut cols = std::collections::BTreeSet::new();
    for ind in spec.indicators.iter().map(|s| s.get_ref()) {
        if ind.layer.as_deref() != Some(name) {
            continue;
        }
        cols.extend(ind.column.iter().cloned());
        cols.extend(ind.weight.iter().cloned());
        if let Some(f) = &ind.filter {
            cols.extend(Filter::parse(f).ok()?.columns());
        }
    }
    Some(cols.into_iter().collect())
}

/// Check that every column an indicator of `plan` reads exists in its layer
/// with a fitting type, and that every filter's columns exist (no computation).
pub fn check_columns(plan: &crate::plan::Plan<'_>, inputs: &Inputs) -> Result<()> {
    let spec = plan.spec();
    for (i, s) in spec.indicators.iter().enumerate() {
        let ind = s.get_ref();
        let Some(ln) = &ind.layer else { continue };
        let Some(layer) = inputs.layers.get(ln) else {
            continue;
        };
        let kind = ind.kind.imp();
        if let Some(c) = &ind.column {
            if kind.reads(ind).per_feature() == PerFeature::Category {
                layer
                    .string_column(c)
                    .map_err(|e| spec.indicator_error(i, "column", e.to_string()))?;
            } else {
                layer
                    .numeric_column(c)
                    .map_err(|e| spec.indicator_error(i, "column", e.to_string()))?;
            }
        }
        if let Some(w) = &ind.weight {
            layer
                .numeric_column(w)
                .map_err(|e| spec.indicator_error(i, "weight", e.to_string()))?;
        }
        if let Some(f) = &plan.step(i).filter {
            for c in f.columns() {
                if c.starts_with(ZONE_PREFIX) {
                    continue; // a zone column: checked against the zones
                }
                layer
                    .column(&c)
                    .map_err(|e| spec.indicator_error(i, "filter", e.to_string()))?;
            }
        }
        match kind.needs_geometry() {
            Some(g) if layer.kind() != g => {
                return Err(spec.indicator_error(
                    i,
                    "layer",
                    format!(
                        "`{}` needs a {} layer; `{ln}` has {:?} geometries",
                        kind.name(),
                        format!("{g:?}").to_lowercase(),
                        layer.kind()
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
