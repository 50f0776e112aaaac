//! The declarative spec: a TOML file naming layers, zone layers and
//! indicators. See the README's "Spec reference" for every key.
//!
//! ```
//! use terrastat_indicators::spec::Spec;
//! let spec = Spec::from_str(r#"
//! crs = "EPSG:2154"
//! [layers.buildings]
//! path = "buildings.parquet"
//! [zones.communes]
//! path = "communes.parquet"
//! id = "insee"
//! [[indicators]]
//! name = "n_buildings"
//! kind = "count"
//! layer = "buildings"
//! "#, "spec.toml".as_ref())?;
//! assert_eq!(spec.indicators.len(), 1);
//! # Ok::<(), terrastat_indicators::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use terrastat_core::{InvalidPolicy, Predicate};

use crate::error::{Error, Result};
use crate::expr::{Arith, Filter};
use crate::kinds::Key;

fn default_crs() -> String {
    "EPSG:2154".into()
}

/// A whole spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Optional title of the run (copied into the catalog).
    #[serde(default)]
    pub title: Option<String>,
    /// The working CRS: all areas and distances are computed in it (default `EPSG:2154`).
    #[serde(default = "default_crs")]
    pub crs: String,
    /// Source layers, by name.
    #[serde(default)]
    pub layers: BTreeMap<String, LayerSpec>,
    /// Raster layers, by name.
    #[serde(default)]
    pub rasters: BTreeMap<String, RasterSpec>,
    /// Zone layers, by name.
    #[serde(default)]
    pub zones: BTreeMap<String, toml::Spanned<ZoneSpec>>,
    /// Publication thresholds for every indicator (see [`crate::quality`]).
    #[serde(default)]
    pub quality: Option<crate::quality::Thresholds>,
    /// Non-spatial tables joined to zones by a key, by name.
    #[serde(default)]
    pub tables: BTreeMap<String, TableSpec>,
    /// Indicators, in output order (template uses expanded).
    #[serde(skip)]
    pub indicators: Vec<toml::Spanned<IndicatorSpec>>,
    /// The `[[indicators]]` tables as written.
    #[serde(rename = "indicators", default)]
    raw_indicators: Vec<toml::Spanned<toml::Table>>,
    /// The spec file (set by the loader).
    #[serde(skip)]
    pub path: PathBuf,
    /// The spec text (set by the loader).
    #[serde(skip)]
    pub text: String,
}

fn default_band() -> usize {
    1
}

/// A raster layer: one band of a raster file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RasterSpec {
    /// The file, relative to the spec (GeoTIFF; any GDAL raster with the `gdal` feature).
    pub path: String,
    /// The band, from 1 (default 1).
    #[serde(default = "default_band")]
    pub band: usize,
    /// The raster's CRS when the file has none terrastat can name.
    #[serde(default)]
    pub crs: Option<String>,
    /// Human description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A non-spatial table (`[tables.<name>]`): CSV or Parquet, joined to
/// zones by a key (see [`crate::tables`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The file, relative to the spec.
    pub path: String,
    /// The key column of the table.
    pub key: String,
    /// The zone layers it joins (default: those whose id column, or
    /// roll-up column, is `key`).
    #[serde(default)]
    pub zones: Option<ZonesSel>,
    /// The zone column matched with `key` (default: the zone layer's id).
    #[serde(default)]
    pub zone_key: Option<String>,
    /// Numeric columns that add up (counts, amounts): at a roll-up level of
    /// the zones the table joins, ratios read their sum over members.
    #[serde(default)]
    pub additive: Option<Vec<String>>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A source layer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// The file, relative to the spec.
    pub path: String,
    /// The CRS to assume when the file has none (or to override it).
    #[serde(default)]
    pub crs: Option<String>,
    /// What to do with invalid polygons: `repair` (default), `skip`, `error`, `off`.
    #[serde(default)]
    pub invalid: Option<InvalidPolicy>,
    /// For multi-layer files read through GDAL: the layer name.
    #[serde(default)]
    pub source_layer: Option<String>,
    /// Where the source is meant to be complete: a zone layer or polygon
    /// layer of the spec (for the quality's coverage; default: the
    /// bounding box of the features).
    #[serde(default)]
    pub extent: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A zone layer: polygons from a file, or a square grid.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSpec {
    /// The polygon file, relative to the spec.
    #[serde(default)]
    pub path: Option<String>,
    /// The id column (required with `path`).
    #[serde(default)]
    pub id: Option<String>,
    /// The CRS to assume when the file has none.
    #[serde(default)]
    pub crs: Option<String>,
    /// What to do with invalid polygons.
    #[serde(default)]
    pub invalid: Option<InvalidPolicy>,
    /// A square grid with this cell size (working CRS units).
    #[serde(default)]
    pub grid: Option<f64>,
    /// The zone layer or layer whose extent (and cells) the grid covers.
    #[serde(default)]
    pub extent: Option<String>,
    /// A grid's extent as `[xmin, ymin, xmax, ymax]`.
    #[serde(default)]
    pub bbox: Option<[f64; 4]>,
    /// H3 zones of this resolution (0–15).
    #[serde(default)]
    pub h3: Option<u8>,
    /// H3 zones: the zone layer or polygon layer whose area the cells cover.
    #[serde(default)]
    pub cover: Option<String>,
    /// H3 zones: how cells are chosen (`centroid`, `contains`, `intersects`,
    /// `covers`; default `covers`).
    #[serde(default)]
    pub mode: Option<terrastat_core::h3::CellMode>,
    /// H3 zones rolled up from the finer H3 zone layer named here.
    #[serde(default)]
    pub from: Option<String>,
    /// Columns of these zones to roll indicators up to (one output
    /// `<zones>_by_<column>` each).
    #[serde(default)]
    pub rollup: Option<Vec<String>>,
    /// Numeric columns of these zones that add up (e.g. `population`): at a
    /// roll-up level, ratio expressions read them as the sum over members.
    #[serde(default)]
    pub additive: Option<Vec<String>>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

pub use crate::kinds::Kind;

/// How features are attributed to zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Assign {
    /// Once, to the zone containing the feature's centroid.
    #[default]
    Centroid,
    /// To every zone the feature intersects (touching counts), with weight 1.
    Intersects,
    /// To every zone, with weight measure(f ∩ z) / measure(f).
    AreaWeighted,
}

/// The statistic of `nearest_distance` (`mean`, `median`, `max`) and of
/// `zonal` (all but `median`; see [`terrastat_core::raster::ZonalStats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stat {
    /// Mean.
    #[default]
    Mean,
    /// Median.
    Median,
    /// Maximum.
    Max,
    /// Σ coverage of valid pixels.
    Count,
    /// Σ coverage · value.
    Sum,
    /// Minimum.
    Min,
    /// Coverage-weighted population standard deviation.
    Stdev,
    /// The value with the largest coverage.
    Majority,
    /// The value with the smallest coverage.
    Minority,
    /// The number of distinct values.
    Variety,
    /// The share of each value (one column per value).
    Frac,
    /// Mean weighted by coverage and a weights raster.
    WeightedMean,
    /// The share of the zone where the value satisfies `where` or is in `values`.
    Coverage,
}

/// `zones = "communes"` or `zones = ["communes", "grid"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ZonesSel {
    /// One zone layer.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// The parts of a spec built in code (see [`crate::builder`]).
pub(crate) struct Parts {
    pub title: Option<String>,
    pub crs: String,
    pub layers: BTreeMap<String, LayerSpec>,
    pub rasters: BTreeMap<String, RasterSpec>,
    pub zones: BTreeMap<String, ZoneSpec>,
    pub tables: BTreeMap<String, TableSpec>,
    pub quality: Option<crate::quality::Thresholds>,
    pub indicators: Vec<toml::Table>,
    pub path: PathBuf,
}

/// One `[[indicators]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorSpec {
    /// Output column name.
    pub name: String,
    /// The kind.
    pub kind: Kind,
    /// The source layer.
    #[serde(default)]
    pub layer: Option<String>,
    /// Zone layers (default: all).
    #[serde(default)]
    pub zones: Option<ZonesSel>,
    /// Unit, from the fixed list of [`crate::units`] (e.g. `m²`, `%`,
    /// `count`; other spellings like `m2` are normalised).
    #[serde(default)]
    pub unit: Option<String>,
    /// Label, `"…"` (English) or `{ en = "…", fr = "…" }`.
    #[serde(default, deserialize_with = "crate::templates::texts")]
    pub label: Option<crate::templates::Texts>,
    /// Description, `"…"` (English) or `{ en = "…", fr = "…" }`.
    #[serde(default, deserialize_with = "crate::templates::texts")]
    pub description: Option<crate::templates::Texts>,
    /// Theme (e.g. `buildings`, `risks`), for the catalog.
    #[serde(default)]
    pub theme: Option<String>,
    /// Search keywords, for the catalog.
    #[serde(default)]
    pub keywords: Option<Vec<String>>,
    /// Computed (for ratios to read) but not written.
    #[serde(default)]
    pub hidden: Option<bool>,
    /// Publication thresholds of this indicator, over those of `[quality]`.
    #[serde(default)]
    pub quality: Option<crate::quality::Thresholds>,
    /// The template this indicator comes from (set when `use` is expanded).
    #[serde(skip)]
    pub template: Option<String>,
    /// Attribution of features to zones.
    #[serde(default)]
    pub assign: Option<Assign>,
    /// `extensive` only: share each feature's whole value among the zones it touches.
    #[serde(default)]
    pub allocate_total: Option<bool>,
    /// The attribute column.
    #[serde(default)]
    pub column: Option<String>,
    /// A weight column.
    #[serde(default)]
    pub weight: Option<String>,
    /// A filter on attributes.
    #[serde(default)]
    pub filter: Option<String>,
    /// The second layer of `share_within` and `nearest_distance`.
    #[serde(default)]
    pub other: Option<String>,
    /// `intersects` or `centroid`, for `share_within`.
    #[serde(default)]
    pub predicate: Option<Predicate>,
    /// `mean`, `median` or `max`, for `nearest_distance`.
    #[serde(default)]
    pub stat: Option<Stat>,
    /// The expression of a `ratio`.
    #[serde(default)]
    pub expr: Option<String>,
    /// The raster of a `zonal` indicator.
    #[serde(default)]
    pub raster: Option<String>,
    /// The weights raster of `stat = "weighted_mean"`.
    #[serde(default)]
    pub weights: Option<String>,
    /// The predicate of `stat = "coverage"` on the pixel `value`, e.g. `value > 0.5`.
    #[serde(default, rename = "where")]
    pub where_: Option<String>,
    /// The values of `stat = "coverage"`, e.g. `[41, 42, 43]`.
    #[serde(default)]
    pub values: Option<Vec<f64>>,
    /// The keys of the indicator's own kind that no other kind takes (such
    /// as `q` of `quantile`), as written: each kind lists them
    /// (`IndicatorKind::params`) and checks their values.
    #[serde(skip)]
    pub params: BTreeMap<String, toml::Value>,
}

impl IndicatorSpec {
    /// The zone layers this indicator is computed for.
    pub fn zone_names<'a>(
        &'a self,
        all: &'a BTreeMap<String, toml::Spanned<ZoneSpec>>,
    ) -> Vec<&'a str> {
        match &self.zones {
            None => all.keys().map(String::as_str).collect(),
            Some(ZonesSel::One(z)) => vec![z.as_str()],
            Some(ZonesSel::Many(v)) => v.iter().map(String::as_str).collect(),
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

impl Spec {
    /// Read and check a spec file (syntax and cross-references; inputs are not opened).
    pub fn load(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_str(&text, path)
    }

    /// A spec from its parts (see [`crate::builder`]), checked as a file is.
    pub(crate) fn from_parts(p: Parts) -> Result<Spec> {
        let mut spec = Spec {
            title: p.title,
            crs: p.crs,
            layers: p.layers,
            rasters: p.rasters,
            zones: p
                .zones
                .into_iter()
                .map(|(n, z)| (n, toml::Spanned::new(0..0, z)))
                .collect(),
            quality: p.quality,
            tables: p.tables,
            indicators: Vec::new(),
            raw_indicators: p
                .indicators
                .into_iter()
                .map(|t| toml::Spanned::new(0..0, t))
                .collect(),
            path: p.path,
            text: String::new(),
        };
        spec.expand_indicators()?;
        spec.validate()?;
        Ok(spec)
    }

    /// Parse and check a spec given as text; `path` is used for messages and
    /// to resolve relative paths.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, path: &Path) -> Result<Spec> {
        let mut spec: Spec = toml::from_str(text).map_err(|e| Error::SpecSyntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        spec.path = path.to_path_buf();
        spec.text = text.to_string();
        spec.expand_indicators()?;
        spec.validate()?;
        Ok(spec)
    }

    /// Turn the `[[indicators]]` tables into indicators: `use = "…"`
    /// entries expand into their template's indicators (spanned where the
    /// entry is); units are normalised to the fixed list.
    fn expand_indicators(&mut self) -> Result<()> {
        let lib = crate::templates::Library::standard();
        let mut out = Vec::new();
        for raw in std::mem::take(&mut self.raw_indicators) {
            let span = raw.span();
            let line = line_of(&self.text, span.start);
            let table = raw.into_inner();
            let what = |t: &toml::Table, n: usize| match t.get("name").and_then(|v| v.as_str()) {
                Some(name) => format!("indicator `{name}`"),
                None => format!("indicator #{}", n + 1),
            };
            let (tables, template) = match table.get("use") {
                None => (vec![table.clone()], None),
                Some(toml::Value::String(id)) => {
                    let Some(t) = lib.get(id) else {
                        let near: Vec<String> = lib
                            .iter()
                            .filter(|t| id.split('.').any(|p| !p.is_empty() && t.id.contains(p)))
                            .map(|t| t.id.clone())
                            .take(8)
                            .collect();
                        return Err(self.fail(
                            line,
                            what(&table, out.len()),
                            format!(
                                "no template `{id}`{} (`terrastat catalog` lists them)",
                                if near.is_empty() {
                                    String::new()
                                } else {
                                    format!("; did you mean one of {}?", near.join(", "))
                                }
                            ),
                        ));
                    };
                    let expanded = t
                        .expand(&table)
                        .map_err(|m| self.fail(line, what(&table, out.len()), m))?;
                    (expanded, Some(id.clone()))
                }
                Some(v) => {
                    return Err(self.fail(
                        line,
                        what(&table, out.len()),
                        format!(
                            "`use` must be a template id (a string), not {}",
                            v.type_str()
                        ),
                    ))
                }
            };
            for mut t in tables {
                let w = what(&t, out.len());
                // The kind's own keys are set aside before the common keys
                // are read (any other key is unknown).
                let own: &[&str] = match t.get("kind").cloned().map(Kind::deserialize) {
                    Some(Ok(k)) => k.imp().params(),
                    _ => &[],
                };
                let params: BTreeMap<String, toml::Value> = own
                    .iter()
                    .filter_map(|k| t.remove(*k).map(|v| (k.to_string(), v)))
                    .collect();
                let mut ind: IndicatorSpec =
                    toml::Value::Table(t)
                        .try_into()
                        .map_err(|e: toml::de::Error| {
                            let m = e.message().trim().to_string();
                            // The line of the key or value the message quotes, in this table.
                            let (at, key) = self.locate_in_table(line, &m);
                            let what = match key {
                                Some(k) => format!("{w}, key `{k}`"),
                                None => w.clone(),
                            };
                            self.fail(at, what, m)
                        })?;
                if let Some(u) = &ind.unit {
                    let c = crate::units::canonical(u).ok_or_else(|| {
                        self.fail(
                            line,
                            format!("{w}, key `unit`"),
                            format!("unknown unit `{u}` (units: {})", crate::units::list()),
                        )
                    })?;
                    ind.unit = Some(c.to_string());
                }
                ind.template = template.clone();
                ind.params = params;
                out.push(toml::Spanned::new(span.clone(), ind));
            }
        }
        self.indicators = out;
        Ok(())
    }

    /// In the table starting at line `header`, the line (and key) of the
    /// first name quoted in `message` (`unknown field `colum``, `unknown
    /// variant `cuont``): the key itself, or the key whose value it is.
    fn locate_in_table(&self, header: usize, message: &str) -> (usize, Option<String>) {
        let quoted = message.split('`').nth(1).unwrap_or_default();
        if quoted.is_empty() {
            return (header, None);
        }
        for (i, l) in self.text.lines().enumerate().skip(header) {
            let t = l.trim_start();
            if t.starts_with('[') {
                break;
            }
            let Some((k, v)) = t.split_once('=') else {
                continue;
            };
            let k = k.trim().trim_matches('"');
            if k == quoted
                || v.contains(&format!("\"{quoted}\""))
                || v.contains(&format!("'{quoted}'"))
            {
                return (i + 1, Some(k.to_string()));
            }
        }
        (header, None)
    }

    /// Resolve a path of the spec relative to the spec file's directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    /// Indicator indexes by name.
    pub(crate) fn indicator_indexes(&self) -> BTreeMap<&str, usize> {
        self.indicators
            .iter()
            .enumerate()
            .map(|(i, s)| (s.get_ref().name.as_str(), i))
            .collect()
    }

    /// The 1-based line where the i-th indicator starts.
    pub fn indicator_line(&self, i: usize) -> usize {
        line_of(&self.text, self.indicators[i].span().start)
    }

    /// Check that zones `name` take their extent from exactly one of a
    /// reference (`key = "<layer or zones>"`, not themselves; errors at
    /// `lines.1`) or a valid `bbox` (errors at `lines.0`).
    fn check_extent(
        &self,
        name: &str,
        lines: (usize, usize),
        what: &str,
        (key, reference): (&str, Option<&str>),
        bbox: Option<&[f64; 4]>,
        (itself, exactly_one): (&str, &str),
    ) -> Result<()> {
        let (line, ref_line) = lines;
        match (reference, bbox) {
            (Some(r), None) => {
                if !self.layers.contains_key(r)
                    && !self.zones.contains_key(r)
                    && !self.rasters.contains_key(r)
                {
                    return Err(self.fail(
                        ref_line,
                        what.to_string(),
                        format!("`{key} = \"{r}\"` names no layer, zone layer or raster"),
                    ));
                }
                if r == name {
                    return Err(self.fail(line, what.to_string(), itself));
                }
                Ok(())
            }
            (None, Some(b)) if b[0] < b[2] && b[1] < b[3] => Ok(()),
            (None, Some(_)) => Err(self.fail(
                line,
                what.to_string(),
                "`bbox` must be [xmin, ymin, xmax, ymax] with min < max",
            )),
            _ => Err(self.fail(line, what.to_string(), exactly_one)),
        }
    }

    /// The line of `key` in the table `[header]` (the header's line if the
    /// key is not found; 1 if neither is).
    pub fn key_line(&self, header: &str, key: &str) -> usize {
        let lines: Vec<&str> = self.text.lines().collect();
        let Some(h) = lines.iter().position(|l| l.trim() == format!("[{header}]")) else {
            return 1;
        };
        for (i, l) in lines.iter().enumerate().skip(h + 1) {
            let t = l.trim_start();
            if t.starts_with('[') {
                break;
            }
            if t.strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with('='))
            {
                return i + 1;
            }
        }
        h + 1
    }

    fn fail(&self, line: usize, what: String, message: impl Into<String>) -> Error {
        Error::Spec {
            path: self.path.clone(),
            line,
            what,
            message: message.into(),
        }
    }

    /// The error for indicator `i`, key `key`.
    pub fn indicator_error(&self, i: usize, key: &str, message: impl Into<String>) -> Error {
        let name = &self.indicators[i].get_ref().name;
        let what = if key.is_empty() {
            format!("indicator `{name}`")
        } else {
            format!("indicator `{name}`, key `{key}`")
        };
        self.fail(self.indicator_line(i), what, message)
    }

    /// Check the whole spec: sources, zone layers, indicators.
    fn validate(&self) -> Result<()> {
        self.validate_sources()?;
        self.validate_zones()?;
        self.validate_indicators()
    }

    /// The working CRS, the layers' and rasters' keys.
    fn validate_sources(&self) -> Result<()> {
        terrastat_core::Crs::parse(&self.crs)
            .map_err(|e| self.fail(1, "key `crs`".into(), e.to_string()))?;
        let crs_of = self
            .layers
            .iter()
            .map(|(n, l)| (("layers", n), l.crs.as_ref()))
            .chain(
                self.zones
                    .iter()
                    .map(|(n, z)| (("zones", n), z.get_ref().crs.as_ref())),
            );
        for ((table, name), crs) in crs_of {
            if let Some(c) = crs {
                terrastat_core::Crs::parse(c).map_err(|e| {
                    let line = self.key_line(&format!("{table}.{name}"), "crs");
                    self.fail(line, format!("{table} `{name}`, key `crs`"), e.to_string())
                })?;
            }
        }
        for (name, l) in &self.layers {
            if let Some(e) = &l.extent {
                if !self.layers.contains_key(e) && !self.zones.contains_key(e) || e == name {
                    return Err(self.fail(
                        self.key_line(&format!("layers.{name}"), "extent"),
                        format!("layers `{name}`, key `extent`"),
                        format!("`{e}` names no other layer or zone layer of this spec"),
                    ));
                }
            }
        }
        for (name, r) in &self.rasters {
            let what = format!("rasters `{name}`");
            if let Some(c) = &r.crs {
                terrastat_core::Crs::parse(c).map_err(|err| {
                    self.fail(
                        self.key_line(&format!("rasters.{name}"), "crs"),
                        what.clone(),
                        err.to_string(),
                    )
                })?;
            }
            if r.band == 0 {
                return Err(self.fail(
                    self.key_line(&format!("rasters.{name}"), "band"),
                    what,
                    "bands are numbered from 1",
                ));
            }
            if self.layers.contains_key(name) || self.zones.contains_key(name) {
                return Err(self.fail(
                    self.key_line(&format!("rasters.{name}"), "path"),
                    what,
                    "a raster cannot share its name with a layer or zone layer",
                ));
            }
        }
        Ok(())
    }

    /// Each zone layer: exactly one of a file, a grid or H3 cells, with the
    /// keys that kind of zones takes.
    // Long because it checks every kind of zone layer (file, H3, roll-up, tables
    // joined), each a short block, with the errors in the order users fix them.
    fn validate_zones(&self) -> Result<()> {
        for (name, z) in &self.zones {
            let line = line_of(&self.text, z.span().start);
            let what = format!("zones `{name}`");
            let z = z.get_ref();
            for col in z.rollup.iter().flatten() {
                let out = format!("{name}_by_{col}");
                if col.is_empty() || self.zones.contains_key(&out) {
                    let line = self.key_line(&format!("zones.{name}"), "rollup");
                    return Err(self.fail(
                        line,
                        what,
                        format!("`rollup` column `{col}` would make the zone layer `{out}`, which is empty or already declared"),
                    ));
                }
            }
            if let Some(res) = z.h3 {
                if z.path.is_some() || z.grid.is_some() || z.extent.is_some() {
                    return Err(self.fail(
                        line,
                        what,
                        "H3 zones take `cover` or `bbox`, not `path`, `grid` or `extent`",
                    ));
                }
                if res > 15 {
                    let line = self.key_line(&format!("zones.{name}"), "h3");
                    return Err(self.fail(
                        line,
                        what,
                        format!("`h3 = {res}`: H3 resolutions go from 0 to 15"),
                    ));
                }
                if let Some(f) = &z.from {
                    let line = self.key_line(&format!("zones.{name}"), "from");
                    if z.cover.is_some() || z.bbox.is_some() || z.mode.is_some() {
                        return Err(self.fail(
                            line,
                            what,
                            "H3 zones with `from` take their cells from it: no `cover`, `bbox` or `mode`",
                        ));
                    }
                    match self.zones.get(f).map(|b| b.get_ref().h3) {
                        Some(Some(fine)) if fine > res => {}
                        Some(Some(fine)) => {
                            return Err(self.fail(
                                line,
                                what,
                                format!(
                                    "`from = \"{f}\"` has resolution {fine}, not finer than {res}"
                                ),
                            ))
                        }
                        _ => {
                            return Err(self.fail(
                                line,
                                what,
                                format!("`from = \"{f}\"` names no H3 zone layer"),
                            ))
                        }
                    }
                    continue;
                }
                let ref_line = self.key_line(&format!("zones.{name}"), "cover");
                self.check_extent(
                    name,
                    (line, ref_line),
                    &what,
                    ("cover", z.cover.as_deref()),
                    z.bbox.as_ref(),
                    (
                        "H3 zones cannot cover themselves",
                        "H3 zones need exactly one of `cover` or `bbox`",
                    ),
                )?;
                continue;
            }
            if z.cover.is_some() || z.mode.is_some() || z.from.is_some() {
                return Err(self.fail(
                    line,
                    what,
                    "`cover`, `mode` and `from` are keys of H3 zones (`h3 = <resolution>`)",
                ));
            }
            match (&z.path, z.grid) {
                (Some(_), None) => {
                    if z.id.is_none() {
                        return Err(self.fail(line, what, "a zone file needs `id = \"<column>\"`"));
                    }
                }
                (None, Some(cell)) => {
                    if cell.is_nan() || cell <= 0.0 {
                        return Err(self.fail(line, what, "`grid` must be a positive cell size"));
                    }
                    self.check_extent(
                        name,
                        (line, line),
                        &what,
                        ("extent", z.extent.as_deref()),
                        z.bbox.as_ref(),
                        (
                            "a grid cannot cover itself",
                            "a grid needs exactly one of `extent` or `bbox`",
                        ),
                    )?;
                }
                _ => {
                    return Err(self.fail(
                        line,
                        what,
                        "give one of `path` (with `id`), `grid` or `h3`",
                    ))
                }
            }
        }
        if self.zones.is_empty() {
            return Err(self.fail(
                1,
                "spec".into(),
                "no zone layer: add a `[zones.<name>]` table",
            ));
        }
        Ok(())
    }

    /// The key columns of the output tables of zone layer `name` and of its
    /// roll-up levels: its id (`id`, `cell` for a grid, `h3` and `h3_str`
    /// for H3 cells), each roll-up column; and `geometry` (`--geo`).
    fn key_columns(&self, name: &str) -> Vec<String> {
        let mut keys = vec!["geometry".to_string()];
        let Some(z) = self.zones.get(name).map(|z| z.get_ref()) else {
            return keys;
        };
        if z.h3.is_some() {
            keys.extend(["h3".to_string(), "h3_str".to_string()]);
        } else if z.grid.is_some() {
            keys.push("cell".into());
        } else {
            keys.push(z.id.clone().unwrap_or_else(|| "id".into()));
        }
        keys.extend(z.rollup.iter().flatten().cloned());
        keys
    }

    /// A published indicator's column must not take the name of a key
    /// column of its tables: readers (pyarrow, pandas, GeoPandas) refuse a
    /// table with two columns of one name.
    fn check_column_name(&self, i: usize, ind: &IndicatorSpec) -> Result<()> {
        for z in ind.zone_names(&self.zones) {
            if let Some(k) = self.key_columns(z).iter().find(|k| **k == ind.name) {
                return Err(self.indicator_error(
                    i,
                    "name",
                    format!(
                        "`{k}` is a key column of the outputs of zones `{z}`: name the indicator otherwise"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The indicators: unique names, their keys, the names ratios read.
    fn validate_indicators(&self) -> Result<()> {
        let mut names = std::collections::BTreeMap::new();
        for (i, ind) in self.indicators.iter().enumerate() {
            let ind = ind.get_ref();
            if let Some(prev) = names.insert(ind.name.clone(), i) {
                return Err(self.indicator_error(
                    i,
                    "name",
                    format!(
                        "duplicate name (first at line {})",
                        self.indicator_line(prev)
                    ),
                ));
            }
            if ind.name.is_empty() || !ind.name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(self.indicator_error(i, "name", "names are letters, digits and `_`"));
            }
            if ind.hidden != Some(true) {
                self.check_column_name(i, ind)?;
            }
            self.validate_indicator(i, ind)?;
        }
        // Ratios: known names, no cycle.
        for (i, ind) in self.indicators.iter().enumerate() {
            let ind = ind.get_ref();
            if let Some(e) = &ind.expr {
                let arith =
                    Arith::parse(e).map_err(|e| self.indicator_error(i, "expr", e.to_string()))?;
                for n in arith.names() {
                    if names.contains_key(&n) {
                        continue;
                    }
                    // `<table>.<column>`, or a zone column (checked with the zones).
                    if let Some((t, _)) = n.split_once('.') {
                        if !self.tables.contains_key(t) {
                            return Err(self.indicator_error(
                                i,
                                "expr",
                                format!("`{n}` names no indicator, and `{t}` is no table of this spec (`[tables.{t}]`)"),
                            ));
                        }
                    }
                }
            }
        }
        // Parsed and ordered as a run will (a cycle of ratios is an error).
        crate::plan::Plan::new(self).map(|_| ())
    }

    /// Check indicator `i`'s keys: those its kind takes and needs (from
    /// [`crate::kinds::Keys`]), then the kind's own checks.
    // Long because it checks every key an indicator may carry against its kind;
    // it goes when each kind's spec becomes its own typed struct (issue 17, item 1).
    fn validate_indicator(&self, i: usize, ind: &IndicatorSpec) -> Result<()> {
        let kind = ind.kind.imp();
        let keys = kind.keys();
        let takers = |taken: fn(&crate::kinds::Keys) -> bool| {
            let names: Vec<&str> = Kind::ALL
                .iter()
                .filter(|k| taken(&k.imp().keys()))
                .map(|k| k.name())
                .collect();
            match names.split_last() {
                Some((last, [])) => last.to_string(),
                Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                None => String::new(),
            }
        };
        // A filter reading the zone's columns is evaluated per feature and
        // zone, in the attribution: only for the kinds that attribute features.
        if let Some(f) = &ind.filter {
            let zone_cols = Filter::parse(f)
                .map(|p| {
                    p.columns()
                        .iter()
                        .any(|c| c.starts_with(crate::expr::ZONE_PREFIX))
                })
                .unwrap_or(false);
            if zone_cols && !keys.assign && keys.filter {
                return Err(self.indicator_error(
                    i,
                    "filter",
                    "`zone.<column>` in a filter works with the kinds that attribute features (count, sum, mean, min, max, median, density, share_within, category_share, nearest_distance), not with extensive, intensive, coverage or area",
                ));
            }
        }
        let e = |key: &str, msg: &str| Err(self.indicator_error(i, key, msg.to_string()));
        if keys.layer == Key::Required && ind.layer.is_none() {
            return e("layer", "missing: this kind needs a source layer");
        }
        let check = crate::kinds::Check { spec: self, i, ind };
        kind.check(&check)?;
        if !keys.raster {
            crate::kinds::zonal_keys(&check, false)?;
        }
        if let Some(l) = &ind.layer {
            if !self.layers.contains_key(l) {
                return Err(self.indicator_error(
                    i,
                    "layer",
                    format!(
                        "no layer `{l}` (layers: {})",
                        self.layers.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        if ind.assign.is_some() && !keys.assign {
            return e("assign", "does not apply to this kind");
        }
        if keys.column == Key::Required && ind.column.is_none() {
            return e("column", "missing: this kind needs an attribute column");
        }
        if ind.column.is_some() && !keys.column.taken() {
            return e("column", "does not apply to this kind");
        }
        if ind.weight.is_some() && !keys.weight {
            let only: Vec<&str> = Kind::ALL
                .iter()
                .filter(|k| k.imp().keys().weight)
                .map(|k| k.name())
                .collect();
            return Err(self.indicator_error(
                i,
                "weight",
                format!("does not apply to this kind (only {})", only.join(", ")),
            ));
        }
        if ind.allocate_total.is_some() && !keys.allocate_total {
            return e("allocate_total", "applies to `extensive` only");
        }
        if keys.other {
            match &ind.other {
                None => return e("other", "missing: this kind needs the other layer"),
                Some(o) if !self.layers.contains_key(o) => {
                    return Err(self.indicator_error(i, "other", format!("no layer `{o}`")))
                }
                _ => {}
            }
        } else if ind.other.is_some() {
            return Err(self.indicator_error(
                i,
                "other",
                format!("applies to {} only", takers(|k| k.other)),
            ));
        }
        if ind.predicate.is_some() && !keys.predicate {
            return Err(self.indicator_error(
                i,
                "predicate",
                format!("applies to {} only", takers(|k| k.predicate)),
            ));
        }
        if ind.stat.is_some() && !keys.stat {
            return Err(self.indicator_error(
                i,
                "stat",
                format!("applies to {} only", takers(|k| k.stat)),
            ));
        }
        if keys.expr && ind.expr.is_none() {
            return Err(self.indicator_error(
                i,
                "expr",
                format!("missing: a {} needs an expression", kind.name()),
            ));
        }
        if !keys.expr && ind.expr.is_some() {
            return Err(self.indicator_error(
                i,
                "expr",
                format!("applies to {} only", takers(|k| k.expr)),
            ));
        }
        if let Some(f) = &ind.filter {
            if !keys.filter {
                return Err(self.indicator_error(
                    i,
                    "filter",
                    format!("a {} has no filter", kind.name()),
                ));
            }
            Filter::parse(f).map_err(|err| self.indicator_error(i, "filter", err.to_string()))?;
        }
        for z in ind.zone_names(&self.zones) {
            if !self.zones.contains_key(z) {
                return Err(self.indicator_error(i, "zones", format!("no zone layer `{z}`")));
            }
        }
        Ok(())
    }
}
