//! # terrastat-core
//!
//! Layers, geometry, CRS, readers and writers, spatial indexes and the
//! overlay engine of [terrastat](https://example.invalid/terrastat).
//!
//! - [`Layer`]: features (a `geo` geometry plus typed Arrow attribute
//!   columns) in one CRS, with a [`ReadReport`] of what was skipped or repaired.
//! - [`io`]: GeoParquet, GeoJSON and FlatGeobuf readers (pure Rust), any OGR
//!   format with the `gdal` feature; Parquet, CSV and GeoParquet writers that
//!   write atomically.
//! - [`Zones`]: territory units (polygons with an id, or a square grid);
//!   [`h3`] zones.
//! - [`BoxIndex`]: an `rstar` R-tree of boxes, and [`PreparedPolygon`] for
//!   fast exact point location and intersection.
//! - [`Overlay`]: the (zone, feature, measure) table of one layer on one zone
//!   layer, computed once in parallel and reused by every indicator.
//! - [`relate`]: feature-to-layer predicates and nearest distances.
//! - [`raster`]: zonal statistics of rasters; `reproject` (with `proj`).
//! - Exact measures ([`covered_area`], [`union_area`], [`area_in_part`]),
//!   exact sums ([`ExactSum`]) and small geometric helpers ([`centroid`],
//!   [`union_rects`], [`clip_multipolygon_to_rect`]).
//!
//! Everything else is private: the modules are implementation, and the
//! crate root re-exports what the other crates use.
//!
//! ## Features
//!
//! | feature | what it adds | needs |
//! |---|---|---|
//! | `gdal` | any OGR vector format (Shapefile, GeoPackage, OSM PBF, CSV…) | `libgdal-dev` |
//! | `proj` | reprojection of layers into the working CRS | PROJ ≥ 9.6, built from source (`cmake`, `libsqlite3-dev`) |
//! | `testing` | the brute-force `oracle` module the tests compare the engine with (not a stable API) | |
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use terrastat_core::{Crs, Layer, Overlay, Zones, NoProgress};
//! use arrow_array::{RecordBatch, StringArray};
//! use arrow_schema::{Schema, Field, DataType};
//!
//! // One 10 × 10 zone and one building straddling its east edge.
//! let zone = geo::Geometry::Polygon(geo::Rect::new((0., 0.), (10., 10.)).to_polygon());
//! let ids = RecordBatch::try_new(
//!     Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)])),
//!     vec![Arc::new(StringArray::from(vec!["z1"]))],
//! )?;
//! let zones = Layer::new("zones", Crs::epsg(2154), vec![zone], ids)?;
//! let zones = Arc::new(Zones::from_layer("zones", &zones, "id")?);
//! let building = geo::Geometry::Polygon(geo::Rect::new((8., 2.), (12., 4.)).to_polygon());
//! let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
//! let layer = Arc::new(Layer::new("buildings", Crs::epsg(2154), vec![building], empty)?);
//! let overlay = Overlay::new(layer, zones)?;
//! let pairs = overlay.pairs(&NoProgress)?;
//! assert_eq!(pairs.zone(0).1, &[4.0]); // half of the 8 m² building
//! # Ok::<(), terrastat_core::Error>(())
//! ```

mod crs;
mod error;
mod exact;
mod geometry;
pub mod h3;
mod index;
pub mod io;
mod layer;
#[cfg(any(test, feature = "testing"))]
pub mod oracle;
mod overlay;
mod progress;
pub mod raster;
pub mod relate;
#[cfg(feature = "proj")]
pub mod reproject;
mod setgrid;
mod sum;
mod validity;
mod zones;

pub use crate::crs::Crs;
pub use crate::error::{Error, Result};
pub use crate::exact::{area_in_part, covered_area, union_area};
pub use crate::geometry::{centroid, clip_multipolygon_to_rect, union_rects};
pub use crate::index::{BoxIndex, Location, PreparedPolygon};
pub use crate::io::{read_layer, ReadOptions};
pub use crate::layer::{
    numeric_values, GeomKind, InvalidPolicy, Layer, RawLayer, ReadReport, Reduced,
};
pub use crate::overlay::{locate_zone_exact, Overlay, Pairs};
pub use crate::progress::{NoProgress, Progress};
pub use crate::relate::Predicate;
pub use crate::sum::{ExactSum, ManyTerms, LOWEST_DIGIT};
pub use crate::zones::{Grouping, ZoneKind, Zones};

/// The engine version, recorded in every catalog.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
