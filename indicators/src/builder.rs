//! Specs built in code: [`SpecBuilder`] (from [`Spec::builder`]) and
//! [`Indicator`], the Rust twin of a TOML spec, checked the same way.
//!
//! ```
//! use terrastat_indicators::{Indicator, Spec};
//! let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92");
//! let spec = Spec::builder("EPSG:2154")
//!     .layer("buildings", d.join("buildings.parquet"))
//!     .zones("communes", d.join("communes.parquet"), "insee")
//!     .indicator(Indicator::count("n_buildings", "buildings"))
//!     .indicator(Indicator::sum("floor_sum", "buildings", "floor_area").unit("m²"))
//!     .indicator(Indicator::quantile("height_p90", "buildings", "height", 0.9))
//!     .indicator(Indicator::count("n_old", "buildings").filter("year < 1975"))
//!     .build()?;
//! let tables = terrastat_indicators::compute(&spec)?;
//! let communes = &tables[0].batch; // an Arrow RecordBatch
//! assert_eq!(communes.num_rows(), 36);
//! assert_eq!(communes.schema().field(1).name(), "n_buildings");
//! # Ok::<(), terrastat_indicators::Error>(())
//! ```
//!
//! Errors name the key as in a file (`<builder>: indicator `x`, key `column`:
//! missing: …`); the line is 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::spec::{Assign, LayerSpec, RasterSpec, Spec, TableSpec, ZoneSpec};

/// Builds a [`Spec`] in code (see the [module docs](self)).
#[derive(Debug)]
#[must_use]
pub struct SpecBuilder {
    crs: String,
    title: Option<String>,
    base: PathBuf,
    layers: BTreeMap<String, LayerSpec>,
    rasters: BTreeMap<String, RasterSpec>,
    zones: BTreeMap<String, ZoneSpec>,
    tables: BTreeMap<String, TableSpec>,
    quality: Option<crate::quality::Thresholds>,
    indicators: Vec<toml::Table>,
    errors: Vec<Error>,
}

impl Spec {
    /// A spec built in code, with working CRS `crs` (e.g. `EPSG:2154`).
    pub fn builder(crs: impl Into<String>) -> SpecBuilder {
        SpecBuilder {
            crs: crs.into(),
            title: None,
            base: PathBuf::from("."),
            layers: BTreeMap::new(),
            rasters: BTreeMap::new(),
            zones: BTreeMap::new(),
            tables: BTreeMap::new(),
            quality: None,
            indicators: Vec::new(),
            errors: Vec::new(),
        }
    }
}

fn path_text(p: impl AsRef<Path>) -> String {
    p.as_ref().to_string_lossy().into_owned()
}

impl SpecBuilder {
    /// The title of the run (copied into the catalog).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The directory relative paths are resolved against (default: the
    /// current directory).
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base = dir.into();
        self
    }

    /// A source layer read from `path`.
    pub fn layer(self, name: impl Into<String>, path: impl AsRef<Path>) -> Self {
        let spec = LayerSpec {
            path: path_text(path),
            crs: None,
            invalid: None,
            source_layer: None,
            extent: None,
            description: None,
        };
        self.layer_spec(name, spec)
    }

    /// A source layer with every key of `[layers.<name>]`.
    pub fn layer_spec(mut self, name: impl Into<String>, spec: LayerSpec) -> Self {
        self.layers.insert(name.into(), spec);
        self
    }

    /// A zone layer of polygons read from `path`, identified by column `id`.
    pub fn zones(self, name: impl Into<String>, path: impl AsRef<Path>, id: &str) -> Self {
        let spec = ZoneSpec {
            path: Some(path_text(path)),
            id: Some(id.to_string()),
            ..ZoneSpec::default()
        };
        self.zone_spec(name, spec)
    }

    /// A zone layer with every key of `[zones.<name>]` (grids, H3 cells,
    /// roll-ups).
    pub fn zone_spec(mut self, name: impl Into<String>, spec: ZoneSpec) -> Self {
        self.zones.insert(name.into(), spec);
        self
    }

    /// A raster: band 1 of the file at `path`.
    pub fn raster(mut self, name: impl Into<String>, path: impl AsRef<Path>) -> Self {
        self.rasters.insert(
            name.into(),
            RasterSpec {
                path: path_text(path),
                band: 1,
                crs: None,
                description: None,
            },
        );
        self
    }

    /// A raster with every key of `[rasters.<name>]`.
    pub fn raster_spec(mut self, name: impl Into<String>, spec: RasterSpec) -> Self {
        self.rasters.insert(name.into(), spec);
        self
    }

    /// A table joined to zones, with every key of `[tables.<name>]`.
    pub fn table_spec(mut self, name: impl Into<String>, spec: TableSpec) -> Self {
        self.tables.insert(name.into(), spec);
        self
    }

    /// Publication thresholds for every indicator (`[quality]`).
    pub fn quality(mut self, thresholds: crate::quality::Thresholds) -> Self {
        self.quality = Some(thresholds);
        self
    }

    /// An indicator.
    pub fn indicator(mut self, indicator: Indicator) -> Self {
        self.indicators.push(indicator.keys);
        self
    }

    /// An indicator given by the keys of an `[[indicators]]` table (what
    /// the Python `Engine` passes; `use = "<template>"` expands).
    pub fn indicator_keys(mut self, keys: toml::Table) -> Self {
        self.indicators.push(keys);
        self
    }

    /// A layer, zone layer or raster given by the keys of its table
    /// (`section` is `layers`, `zones` or `rasters`).
    pub fn section_keys(mut self, section: &str, name: &str, keys: toml::Table) -> Self {
        let value = toml::Value::Table(keys);
        let fail = |m: String| Error::Spec {
            path: PathBuf::from("<builder>"),
            line: 1,
            what: format!("{section} `{name}`"),
            message: m,
        };
        let done = match section {
            "layers" => LayerSpec::deserialize(value).map(|s| {
                self.layers.insert(name.to_string(), s);
            }),
            "zones" => ZoneSpec::deserialize(value).map(|s| {
                self.zones.insert(name.to_string(), s);
            }),
            "rasters" => RasterSpec::deserialize(value).map(|s| {
                self.rasters.insert(name.to_string(), s);
            }),
            other => {
                self.errors.push(fail(format!(
                    "no section `{other}` (layers, zones, rasters)"
                )));
                return self;
            }
        };
        if let Err(e) = done {
            self.errors.push(fail(e.message().trim().to_string()));
        }
        self
    }

    /// A builder from a JSON object with a spec file's structure: `title`,
    /// `crs`, `quality`, the `layers`, `rasters`, `zones` and `tables`
    /// entries by name, and the `indicators` list (what Python's
    /// `terrastat.run(dict)` and `Engine` pass). Relative paths resolve
    /// against `base`; an unknown top-level key is an error naming it.
    ///
    /// ```
    /// use terrastat_indicators::SpecBuilder;
    /// let parts = serde_json::json!({"crs": "EPSG:2154", "layer": {}});
    /// let err = SpecBuilder::from_json(&parts, std::path::Path::new(".")).unwrap_err();
    /// assert!(err.to_string().contains("`layer`"), "{err}");
    /// ```
    pub fn from_json(parts: &serde_json::Value, base: &Path) -> Result<SpecBuilder> {
        let fail = |what: &str, m: String| Error::Spec {
            path: base.join("<builder>"),
            line: 1,
            what: what.to_string(),
            message: m,
        };
        let table = |what: &str, v: &serde_json::Value| -> Result<toml::Table> {
            toml::Table::try_from(v).map_err(|e| fail(what, e.to_string()))
        };
        const KEYS: [&str; 8] = [
            "title",
            "crs",
            "quality",
            "layers",
            "rasters",
            "zones",
            "tables",
            "indicators",
        ];
        let Some(object) = parts.as_object() else {
            return Err(fail("spec", "must be an object (a dict)".into()));
        };
        if let Some(k) = object.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(fail(
                k,
                format!("unknown key `{k}` (expected one of {})", KEYS.join(", ")),
            ));
        }
        let crs = parts
            .get("crs")
            .and_then(|c| c.as_str())
            .unwrap_or("EPSG:2154");
        let mut b = Spec::builder(crs).base_dir(base);
        if let Some(t) = parts.get("title").and_then(|t| t.as_str()) {
            b = b.title(t);
        }
        if let Some(q) = parts.get("quality") {
            let t = crate::quality::Thresholds::deserialize(q)
                .map_err(|e| fail("quality", e.to_string()))?;
            b = b.quality(t);
        }
        let tables = parts.get("tables").and_then(|s| s.as_object());
        for (name, keys) in tables.into_iter().flatten() {
            let t = TableSpec::deserialize(keys)
                .map_err(|e| fail(&format!("tables `{name}`"), e.to_string()))?;
            b = b.table_spec(name.clone(), t);
        }
        for section in ["layers", "rasters", "zones"] {
            let entries = parts.get(section).and_then(|s| s.as_object());
            for (name, keys) in entries.into_iter().flatten() {
                let t = table(&format!("{section} `{name}`"), keys)?;
                b = b.section_keys(section, name, t);
            }
        }
        let inds = parts.get("indicators").and_then(|s| s.as_array());
        for (k, keys) in inds.into_iter().flatten().enumerate() {
            b = b.indicator_keys(table(&format!("indicator #{}", k + 1), keys)?);
        }
        Ok(b)
    }

    /// The spec, checked as a spec file is (kinds, keys, references, units).
    pub fn build(mut self) -> Result<Spec> {
        if !self.errors.is_empty() {
            return Err(self.errors.remove(0));
        }
        Spec::from_parts(crate::spec::Parts {
            title: self.title,
            crs: self.crs,
            layers: self.layers,
            rasters: self.rasters,
            zones: self.zones,
            tables: self.tables,
            quality: self.quality,
            indicators: self.indicators,
            path: self.base.join("<builder>"),
        })
    }
}

/// An indicator built in code: one constructor per kind, with its required
/// keys, and a method per optional key.
#[derive(Debug, Clone)]
#[must_use]
pub struct Indicator {
    keys: toml::Table,
}

impl Indicator {
    fn new(name: &str, kind: &str) -> Self {
        let mut keys = toml::Table::new();
        keys.insert("name".into(), name.into());
        keys.insert("kind".into(), kind.into());
        Indicator { keys }
    }

    fn on(name: &str, kind: &str, layer: &str) -> Self {
        Indicator::new(name, kind).key("layer", layer)
    }

    /// Set any key of the indicator's table.
    pub fn key(mut self, key: &str, value: impl Into<toml::Value>) -> Self {
        self.keys.insert(key.into(), value.into());
        self
    }

    /// Number of features of `layer`.
    pub fn count(name: &str, layer: &str) -> Self {
        Indicator::on(name, "count", layer)
    }
    /// Σ `column` over the features of `layer`.
    pub fn sum(name: &str, layer: &str, column: &str) -> Self {
        Indicator::on(name, "sum", layer).key("column", column)
    }
    /// Mean of `column`.
    pub fn mean(name: &str, layer: &str, column: &str) -> Self {
        Indicator::on(name, "mean", layer).key("column", column)
    }
    /// Minimum of `column`.
    pub fn min(name: &str, layer: &str, column: &str) -> Self {
        Indicator::on(name, "min", layer).key("column", column)
    }
    /// Maximum of `column`.
    pub fn max(name: &str, layer: &str, column: &str) -> Self {
        Indicator::on(name, "max", layer).key("column", column)
    }
    /// Median of `column`.
    pub fn median(name: &str, layer: &str, column: &str) -> Self {
        Indicator::on(name, "median", layer).key("column", column)
    }
    /// The `q`-quantile of `column` (`q` from 0 to 1).
    pub fn quantile(name: &str, layer: &str, column: &str, q: f64) -> Self {
        Indicator::on(name, "quantile", layer)
            .key("column", column)
            .key("q", q)
    }
    /// Areal interpolation of the count-like `column` of `layer`.
    pub fn extensive(name: &str, layer: &str, column: &str) -> Self {
        Indicator::on(name, "extensive", layer).key("column", column)
    }
    /// Area-weighted mean of the rate-like `column` of `layer`.
    pub fn intensive(name: &str, layer: &str, column: &str) -> Self {
        Indicator::on(name, "intensive", layer).key("column", column)
    }
    /// Share of the zone covered by `layer`'s polygons.
    pub fn coverage(name: &str, layer: &str) -> Self {
        Indicator::on(name, "coverage", layer)
    }
    /// Area of the zone in m².
    pub fn area(name: &str) -> Self {
        Indicator::new(name, "area")
    }
    /// Length of `layer`'s lines inside the zone, in m.
    pub fn length(name: &str, layer: &str) -> Self {
        Indicator::on(name, "length", layer)
    }
    /// Share of `layer`'s features related to a feature of `other`.
    pub fn share_within(name: &str, layer: &str, other: &str) -> Self {
        Indicator::on(name, "share_within", layer).key("other", other)
    }
    /// Number of `layer`'s features per km².
    pub fn density(name: &str, layer: &str) -> Self {
        Indicator::on(name, "density", layer)
    }
    /// Share of each value of `column`.
    pub fn category_share(name: &str, layer: &str, column: &str) -> Self {
        Indicator::on(name, "category_share", layer).key("column", column)
    }
    /// Mean distance from `layer`'s features to the nearest of `other`.
    pub fn nearest_distance(name: &str, layer: &str, other: &str) -> Self {
        Indicator::on(name, "nearest_distance", layer).key("other", other)
    }
    /// An expression over other indicators, zone columns and tables.
    pub fn ratio(name: &str, expr: &str) -> Self {
        Indicator::new(name, "ratio").key("expr", expr)
    }
    /// A statistic (`mean`, `sum`, `frac`…) of `raster`'s pixels.
    pub fn zonal(name: &str, raster: &str, stat: &str) -> Self {
        Indicator::new(name, "zonal")
            .key("raster", raster)
            .key("stat", stat)
    }

    /// Only the features where `filter` is true (`year < 1975`).
    pub fn filter(self, filter: &str) -> Self {
        self.key("filter", filter)
    }
    /// Weight each feature by this column.
    pub fn weight(self, column: &str) -> Self {
        self.key("weight", column)
    }
    /// How features are attributed to zones.
    pub fn assign(self, assign: Assign) -> Self {
        let v = match assign {
            Assign::Centroid => "centroid",
            Assign::Intersects => "intersects",
            Assign::AreaWeighted => "area_weighted",
        };
        self.key("assign", v)
    }
    /// The column (e.g. of a `density`).
    pub fn column(self, column: &str) -> Self {
        self.key("column", column)
    }
    /// The unit (`m²`, `%`, `count`…).
    pub fn unit(self, unit: &str) -> Self {
        self.key("unit", unit)
    }
    /// The label (English).
    pub fn label(self, label: &str) -> Self {
        self.key("label", label)
    }
    /// Computed for ratios to read, not written.
    pub fn hidden(self) -> Self {
        self.key("hidden", true)
    }
    /// The zone layers it is computed for (default: all).
    pub fn for_zones(self, zones: &[&str]) -> Self {
        let v: Vec<toml::Value> = zones.iter().map(|z| (*z).into()).collect();
        self.key("zones", v)
    }
}
