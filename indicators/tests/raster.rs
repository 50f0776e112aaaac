//! Raster layers through the spec: results on real and hand-made rasters,
//! bad input (each error names the file and what is wrong), determinism,
//! the GDAL reader against the pure-Rust GeoTIFF reader, reprojected zones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::path::{Path, PathBuf};

use arrow_array::{Array, Float64Array};
use terrastat_core::NoProgress;
use terrastat_indicators::run::{run, RunOptions, RunOutput};
use terrastat_indicators::spec::Spec;
use terrastat_indicators::Error;

fn samples(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/samples")
        .join(p)
}

/// A north-up GeoTIFF (pure Rust, `tiff` crate): Float32 values, 1 m pixels
/// from (x0, y0), optional nodata, EPSG code `epsg`, or a rotated
/// ModelTransformation when `rotated`.
fn write_geotiff(
    path: &Path,
    (w, h): (u32, u32),
    (x0, y0, px): (f64, f64, f64),
    values: &[f32],
    nodata: Option<&str>,
    epsg: u16,
    rotated: bool,
) {
    use tiff::encoder::{colortype, TiffEncoder};
    use tiff::tags::Tag;
    let f = std::fs::File::create(path).unwrap();
    let mut enc = TiffEncoder::new(f).unwrap();
    let mut img = enc.new_image::<colortype::Gray32Float>(w, h).unwrap();
    {
        let d = img.encoder();
        if rotated {
            let m: [f64; 16] = [
                px, 0.5, 0.0, x0, 0.5, -px, 0.0, y0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0,
            ];
            d.write_tag(Tag::ModelTransformationTag, &m[..]).unwrap();
        } else {
            d.write_tag(Tag::ModelPixelScaleTag, &[px, px, 0.0][..])
                .unwrap();
            d.write_tag(Tag::ModelTiepointTag, &[0.0, 0.0, 0.0, x0, y0, 0.0][..])
                .unwrap();
        }
        // GeoKeys: version 1.1.0, 2 keys: model type projected, ProjectedCSTypeGeoKey.
        let keys: [u16; 12] = [1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, epsg];
        d.write_tag(Tag::GeoKeyDirectoryTag, &keys[..]).unwrap();
        if let Some(n) = nodata {
            d.write_tag(Tag::GdalNodata, n).unwrap();
        }
    }
    img.write_data(values).unwrap();
}

/// Two zones `A` = (0,0)–(4,4) and `B` = (4,0)–(8,4) as GeoJSON, EPSG:2154.
fn write_zones(dir: &Path, offset: f64) -> PathBuf {
    let p = dir.join("zones.geojson");
    let sq = |x0: f64, x1: f64| {
        format!(
            "[[[{x0},{o}],[{x1},{o}],[{x1},{t}],[{x0},{t}],[{x0},{o}]]]",
            o = offset,
            t = offset + 4.0
        )
    };
    let text = format!(
        r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::2154"}}}},"features":[
{{"type":"Feature","properties":{{"id":"A"}},"geometry":{{"type":"Polygon","coordinates":{}}}}},
{{"type":"Feature","properties":{{"id":"B"}},"geometry":{{"type":"Polygon","coordinates":{}}}}}]}}"#,
        sq(0.0 + offset, 4.0 + offset),
        sq(4.0 + offset, 8.0 + offset)
    );
    std::fs::write(&p, text).unwrap();
    p
}

fn spec_in(dir: &Path, text: &str) -> Result<Spec, Error> {
    let p = dir.join("spec.toml");
    std::fs::write(&p, text).unwrap();
    Spec::load(&p)
}

fn run_in(dir: &Path, text: &str) -> Result<RunOutput, Error> {
    let spec = spec_in(dir, text)?;
    run(&spec, &dir.join("out"), &RunOptions::default(), &NoProgress)
}

fn zonal_spec(raster_keys: &str, indicators: &str) -> String {
    format!(
        "crs = \"EPSG:2154\"\n[rasters.r]\npath = \"r.tif\"\n{raster_keys}\n[zones.z]\npath = \"zones.geojson\"\nid = \"id\"\n{indicators}"
    )
}

fn ind(name: &str, stat: &str, extra: &str) -> String {
    format!("[[indicators]]\nname = \"{name}\"\nkind = \"zonal\"\nraster = \"r\"\nstat = \"{stat}\"\n{extra}\n")
}

fn floats<'a>(out: &'a RunOutput, zones: &str, col: &str) -> &'a Float64Array {
    let t = &out.tables.iter().find(|t| t.zones == zones).unwrap().batch;
    t.column_by_name(col)
        .unwrap_or_else(|| panic!("no column {col}"))
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
}

fn err(r: Result<RunOutput, Error>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message does not contain {p:?}:\n{msg}");
    }
}

/// An 8 × 4 raster of 1 m pixels over the two zones: value = column, with
/// nodata (-9999) in the top-right 2 × 2 corner.
fn write_raster(dir: &Path) {
    let (w, h) = (8, 4);
    let vals: Vec<f32> = (0..h)
        .flat_map(|r| (0..w).map(move |c| if r < 2 && c >= 6 { -9999.0 } else { c as f32 }))
        .collect();
    write_geotiff(
        &dir.join("r.tif"),
        (w, h),
        (0.0, 4.0, 1.0),
        &vals,
        Some("-9999"),
        2154,
        false,
    );
}

#[test]
fn statistics_of_hand_made_raster() {
    let dir = tempfile::tempdir().unwrap();
    write_raster(dir.path());
    write_zones(dir.path(), 0.0);
    let inds = [
        ind("n", "count", ""),
        ind("s", "sum", ""),
        ind("m", "mean", ""),
        ind("lo", "min", ""),
        ind("hi", "max", ""),
        ind("v", "variety", ""),
        ind("maj", "majority", ""),
        ind("c", "coverage", "where = \"value >= 2\""),
        ind("k", "coverage", "values = [0, 7]"),
    ]
    .concat();
    let out = run_in(dir.path(), &zonal_spec("", &inds)).unwrap();
    let col = |c: &str| -> Vec<Option<f64>> { floats(&out, "z", c).iter().collect() };
    // A: columns 0..4, 16 whole pixels, values 0..3 (4 each).
    assert_eq!(col("n"), [Some(16.0), Some(12.0)]);
    assert_eq!(col("s")[0], Some(4.0 * (0.0 + 1.0 + 2.0 + 3.0)));
    // B: columns 4..8 minus the 4 nodata pixels: 4,5 four times each, 6,7 twice each.
    assert_eq!(
        col("s")[1],
        Some(4.0 * 4.0 + 4.0 * 5.0 + 2.0 * 6.0 + 2.0 * 7.0)
    );
    assert_eq!(col("m")[0], Some(1.5));
    assert_eq!(col("lo"), [Some(0.0), Some(4.0)]);
    assert_eq!(col("hi"), [Some(3.0), Some(7.0)]);
    assert_eq!(col("v"), [Some(4.0), Some(4.0)]);
    // A: four values tie (4 pixels each): the largest wins, as in exactextract.
    assert_eq!(col("maj"), [Some(3.0), Some(5.0)]);
    assert_eq!(col("c"), [Some(0.5), Some(1.0)]);
    assert_eq!(col("k"), [Some(0.25), Some(2.0 / 12.0)]);
    // The catalog names the raster as a source and lineage has its hash.
    let entry = out
        .catalog
        .indicators
        .iter()
        .find(|i| i.name == "m")
        .unwrap();
    assert_eq!(entry.sources, ["r"]);
    assert!(entry.definition.contains("coverage") || entry.definition.contains("covered"));
    assert!(out
        .inputs
        .files
        .iter()
        .any(|f| f.role == "rasters.r" && f.sha256.len() == 64));
}

#[test]
fn zones_partly_or_wholly_outside_and_nodata_windows() {
    let dir = tempfile::tempdir().unwrap();
    write_raster(dir.path());
    // Shifted by 2 m: A is half outside (left), B's top-right part is nodata.
    write_zones(dir.path(), 2.0);
    let out = run_in(
        dir.path(),
        &zonal_spec("", &[ind("n", "count", ""), ind("m", "mean", "")].concat()),
    )
    .unwrap();
    let n: Vec<_> = floats(&out, "z", "n").iter().collect();
    // A = (2,2)–(6,6): rows above the raster are outside; 2 rows × 4 columns inside.
    assert_eq!(n[0], Some(8.0));
    // B = (6,2)–(10,6): inside only columns 6..8 of rows 0..2: all nodata.
    assert_eq!(n[1], Some(0.0));
    assert!(floats(&out, "z", "m").is_null(1));
    let t = out.tables.iter().find(|t| t.zones == "z").unwrap();
    let rep = &t.rasters[0];
    assert_eq!((rep.outside, rep.partly_outside, rep.no_valid), (0, 2, 1));
    // Every zone outside the raster: an error, likely a CRS mix-up.
    write_zones(dir.path(), 1000.0);
    let msg = err(run_in(dir.path(), &zonal_spec("", &ind("n", "count", ""))));
    assert_contains(
        &msg,
        &["no zone of `z` meets raster", "r.tif", "check the CRSs"],
    );
}

#[test]
fn bad_rasters_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_zones(dir.path(), 0.0);
    let one = ind("n", "count", "");
    // Missing file.
    let msg = err(run_in(dir.path(), &zonal_spec("", &one)));
    assert_contains(&msg, &["r.tif", "raster file not found"]);
    // Not a raster.
    std::fs::write(dir.path().join("r.tif"), b"this is not a TIFF").unwrap();
    let msg = err(run_in(dir.path(), &zonal_spec("", &one)));
    assert_contains(&msg, &["r.tif"]);
    // Missing band.
    write_raster(dir.path());
    let msg = err(run_in(dir.path(), &zonal_spec("band = 3", &one)));
    assert_contains(&msg, &["r.tif", "no band 3", "1 band(s)"]);
    // Rotated geotransform.
    write_geotiff(
        &dir.path().join("r.tif"),
        (8, 4),
        (0.0, 4.0, 1.0),
        &[0.0; 32],
        None,
        2154,
        true,
    );
    let msg = err(run_in(dir.path(), &zonal_spec("", &one)));
    assert_contains(&msg, &["r.tif", "rotated", "gdalwarp"]);
    // No CRS in the file: say how to give one; with `crs`, it runs.
    write_geotiff(
        &dir.path().join("r.tif"),
        (8, 4),
        (0.0, 4.0, 1.0),
        &[1.0; 32],
        None,
        32767,
        false,
    );
    let msg = err(run_in(dir.path(), &zonal_spec("", &one)));
    assert_contains(&msg, &["no CRS", "crs = ", "[rasters.r]"]);
    let out = run_in(dir.path(), &zonal_spec("crs = \"EPSG:2154\"", &one)).unwrap();
    assert_eq!(floats(&out, "z", "n").value(0), 16.0);
}

#[test]
fn spec_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    write_raster(dir.path());
    write_zones(dir.path(), 0.0);
    let cases: Vec<(String, &[&str])> = vec![
        (
            "[[indicators]]\nname = \"x\"\nkind = \"zonal\"\nstat = \"mean\"\n".into(),
            &["indicator `x`, key `raster`", "missing"],
        ),
        (
            "[[indicators]]\nname = \"x\"\nkind = \"zonal\"\nraster = \"nope\"\nstat = \"mean\"\n".into(),
            &["key `raster`", "no raster `nope`", "rasters: r"],
        ),
        (ind("x", "median", ""), &["key `stat`", "`median` is not a zonal statistic"]),
        (
            "[[indicators]]\nname = \"x\"\nkind = \"zonal\"\nraster = \"r\"\n".into(),
            &["key `stat`", "missing"],
        ),
        (ind("x", "weighted_mean", ""), &["key `weights`", "needs `weights"]),
        (ind("x", "mean", "weights = \"r\""), &["key `weights`", "weighted_mean"]),
        (ind("x", "coverage", ""), &["key `where`", "needs `where"]),
        (ind("x", "mean", "where = \"value > 1\""), &["key `where`", "coverage"]),
        (ind("x", "coverage", "where = \"ndvi > 1\""), &["key `where`", "`ndvi`", "reads `value` only"]),
        (ind("x", "coverage", "where = \"value > 1\"\nvalues = [1]"), &["key `values`", "not both"]),
        (
            "[[indicators]]\nname = \"x\"\nkind = \"zonal\"\nraster = \"r\"\nstat = \"mean\"\nlayer = \"r\"\n".into(),
            &["key `layer`", "reads a `raster`, not a layer"],
        ),
    ];
    for (inds, parts) in cases {
        let msg = err(run_in(dir.path(), &zonal_spec("", &inds)));
        assert_contains(&msg, parts);
        assert_contains(&msg, &["spec.toml:"]);
    }
    let msg = err(run_in(
        dir.path(),
        &zonal_spec("band = 0", &ind("x", "mean", "")),
    ));
    assert_contains(&msg, &["rasters `r`", "from 1"]);
}

#[test]
fn weights_on_another_grid_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_raster(dir.path());
    write_zones(dir.path(), 0.0);
    write_geotiff(
        &dir.path().join("w.tif"),
        (4, 4),
        (0.0, 4.0, 2.0),
        &[1.0; 16],
        None,
        2154,
        false,
    );
    let text = zonal_spec(
        "[rasters.w]\npath = \"w.tif\"",
        &ind("x", "weighted_mean", "weights = \"w\""),
    );
    let msg = err(run_in(dir.path(), &text));
    assert_contains(&msg, &["w.tif", "grid", "r.tif", "warp"]);
}

#[test]
fn same_bytes_whatever_the_thread_count() {
    for sample in ["idf92", "olinda", "pr", "lux"] {
        let spec = Spec::load(&samples(&format!("{sample}/indicators.toml"))).unwrap();
        // The output files (Parquet and CSV), byte for byte.
        let go = |threads: usize| {
            let dir = tempfile::tempdir().unwrap();
            let out = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| run(&spec, dir.path(), &RunOptions::default(), &NoProgress))
                .unwrap();
            let mut files: Vec<(PathBuf, Vec<u8>)> = out
                .files
                .iter()
                .filter(|f| f.extension().is_some_and(|e| e == "parquet" || e == "csv"))
                .map(|f| (f.file_name().unwrap().into(), std::fs::read(f).unwrap()))
                .collect();
            files.sort();
            assert!(files.len() >= 2, "{sample}: {files:?}");
            files
        };
        assert_eq!(go(1), go(2), "{sample}");
    }
}

/// Statistics of the Luxembourg cantons computed by PROJ-reprojected zones
/// (a working CRS other than the raster's) equal those on the cantons as
/// read, when the zone file is in the raster's CRS (no round trip).
#[cfg(feature = "proj")]
#[test]
fn zones_in_another_working_crs_use_their_own_geometry() {
    let text = std::fs::read_to_string(samples("lux/indicators.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for f in ["elev.tif", "cantons.geojson"] {
        std::fs::copy(samples(&format!("lux/{f}")), dir.path().join(f)).unwrap();
    }
    let direct = run_in(dir.path(), &text).unwrap();
    let via = run_in(
        dir.path(),
        &text.replace("crs = \"EPSG:4326\"", "crs = \"EPSG:2169\""),
    )
    .unwrap();
    for c in ["elev_sum", "elev_mean", "elev_stdev", "above_400m"] {
        assert_eq!(
            floats(&direct, "cantons", c),
            floats(&via, "cantons", c),
            "{c}"
        );
    }
}

/// A raster in another CRS than the zones: the zones are reprojected onto
/// the raster's grid with PROJ (never the raster resampled), so results
/// equal those on the zones as read to within PROJ's round trip.
#[cfg(feature = "proj")]
#[test]
fn zones_are_reprojected_to_the_raster_crs() {
    use terrastat_core::io::{with_geometry_column, write_parquet};
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(samples("lux/elev.tif"), dir.path().join("elev.tif")).unwrap();
    // The cantons in LUREF (EPSG:2169), written by terrastat's reprojection.
    let opts = terrastat_core::ReadOptions::default();
    let c = terrastat_core::read_layer("c", &samples("lux/cantons.geojson"), &opts).unwrap();
    let c = terrastat_core::reproject::reproject(c, &terrastat_core::Crs::epsg(2169)).unwrap();
    let (b, meta) =
        with_geometry_column(c.attributes(), "geometry", c.crs(), c.geometries()).unwrap();
    write_parquet(
        &dir.path().join("cantons.parquet"),
        &b,
        &[("geo".into(), meta)],
    )
    .unwrap();
    let text = std::fs::read_to_string(samples("lux/indicators.toml"))
        .unwrap()
        .replace("crs = \"EPSG:4326\"", "crs = \"EPSG:2169\"")
        .replace("cantons.geojson", "cantons.parquet");
    let via = run_in(dir.path(), &text).unwrap();
    let direct = run(
        &Spec::load(&samples("lux/indicators.toml")).unwrap(),
        &dir.path().join("direct"),
        &RunOptions::default(),
        &NoProgress,
    )
    .unwrap();
    for col in ["elev_pixels", "elev_mean"] {
        let (a, b) = (
            floats(&direct, "cantons", col),
            floats(&via, "cantons", col),
        );
        for z in 0..a.len() {
            let (x, y) = (a.value(z), b.value(z));
            assert!((x - y).abs() <= 1e-6 * x.abs(), "{col}[{z}]: {x} vs {y}");
        }
    }
}

/// The GDAL reader and the pure-Rust GeoTIFF reader give the same values,
/// on every band of the sample rasters and on GeoTIFFs written by GDAL
/// with every layout (strips, tiles, pixel or band interleaving,
/// compression, data types, nodata, scale and offset).
#[cfg(feature = "gdal")]
#[test]
fn gdal_and_pure_rust_readers_agree() {
    use gdal::raster::Buffer;
    use gdal::DriverManager;
    use terrastat_core::raster::{open, open_geotiff};
    let check = |path: &Path, band: usize| {
        let mut a = open(path, band, None).unwrap();
        let mut b = open_geotiff(path, band).unwrap();
        let (ia, ib) = (a.info().clone(), b.info().clone());
        assert_eq!(
            (ia.width, ia.height, ia.transform),
            (ib.width, ib.height, ib.transform),
            "{path:?}"
        );
        assert_eq!(ia.crs, ib.crs, "{path:?}");
        assert_eq!((ia.scale, ia.offset), (ib.scale, ib.offset), "{path:?}");
        let h = ia.height;
        for rows in [0..h, 0..1.min(h), h / 3..h / 2 + 1, h - 1..h] {
            let (mut va, mut vb) = (Vec::new(), Vec::new());
            a.read_rows(rows.clone(), &mut va).unwrap();
            b.read_rows(rows.clone(), &mut vb).unwrap();
            assert_eq!(va.len(), vb.len());
            for (x, y) in va.iter().zip(&vb) {
                assert!(
                    x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
                    "{path:?} band {band} rows {rows:?}: {x} vs {y}"
                );
            }
        }
    };
    for (f, bands) in [
        ("lux/elev.tif", 1),
        ("olinda/ndvi.tif", 1),
        ("olinda/l7_b34.tif", 2),
        ("pr/landcover.tif", 1),
        ("idf92/canopy.tif", 1),
    ] {
        for b in 1..=bands {
            check(&samples(f), b);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let (w, h) = (37usize, 23usize);
    let layouts: &[&[(&str, &str)]] = &[
        &[],
        &[("TILED", "YES"), ("BLOCKXSIZE", "16"), ("BLOCKYSIZE", "16")],
        &[
            ("INTERLEAVE", "BAND"),
            ("COMPRESS", "DEFLATE"),
            ("PREDICTOR", "2"),
        ],
        &[
            ("INTERLEAVE", "PIXEL"),
            ("COMPRESS", "LZW"),
            ("BLOCKYSIZE", "5"),
        ],
        &[
            ("TILED", "YES"),
            ("BLOCKXSIZE", "32"),
            ("BLOCKYSIZE", "32"),
            ("INTERLEAVE", "BAND"),
        ],
    ];
    for (k, layout) in layouts.iter().enumerate() {
        let opts =
            gdal::cpl::CslStringList::from_iter(layout.iter().map(|(a, b)| format!("{a}={b}")));
        let path = dir.path().join(format!("t{k}.tif"));
        macro_rules! make {
            ($t:ty, $name:expr) => {{
                let p = path.with_file_name(format!("t{k}_{}.tif", $name));
                let mut ds = driver
                    .create_with_band_type_with_options::<$t, _>(&p, w, h, 3, &opts)
                    .unwrap();
                ds.set_geo_transform(&[600000.0, 10.0, 0.0, 6800000.0, 0.0, -10.0])
                    .unwrap();
                ds.set_spatial_ref(&gdal::spatial_ref::SpatialRef::from_epsg(2154).unwrap())
                    .unwrap();
                for b in 1..=3usize {
                    let mut band = ds.rasterband(b).unwrap();
                    let data: Vec<$t> =
                        (0..w * h).map(|i| ((i * 7 + b * 13) % 100) as $t).collect();
                    let mut buf = Buffer::new((w, h), data);
                    band.write((0, 0), (w, h), &mut buf).unwrap();
                    band.set_no_data_value(Some(42.0)).unwrap();
                    if b == 2 {
                        band.set_scale(0.5).unwrap();
                        band.set_offset(-3.0).unwrap();
                    }
                }
                drop(ds);
                for b in 1..=3 {
                    check(&p, b);
                }
            }};
        }
        make!(u8, "u8");
        make!(i16, "i16");
        make!(u16, "u16");
        make!(i32, "i32");
        make!(f32, "f32");
        make!(f64, "f64");
    }
}

/// Per feature: the 16,000 sample buildings as zones over the 20 m canopy
/// raster. Σ coverage × pixel area is each building's area (exactly, up to
/// rounding) wherever its pixels are valid; buildings touching nodata pixels
/// (outside the communes) get less, never more.
#[test]
fn per_building_statistics_measure_each_footprint() {
    use geo::Area;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "crs = \"EPSG:2154\"\n[rasters.canopy]\npath = \"{}\"\n[zones.buildings]\npath = \"{}\"\nid = \"id\"\n{}{}",
        samples("idf92/canopy.tif").display(),
        samples("idf92/buildings.parquet").display(),
        "[[indicators]]\nname = \"n\"\nkind = \"zonal\"\nraster = \"canopy\"\nstat = \"count\"\n",
        "[[indicators]]\nname = \"m\"\nkind = \"zonal\"\nraster = \"canopy\"\nstat = \"mean\"\n",
    );
    let out = run_in(dir.path(), &text).unwrap();
    let layer = terrastat_core::read_layer(
        "b",
        &samples("idf92/buildings.parquet"),
        &terrastat_core::ReadOptions::default(),
    )
    .unwrap();
    let n = floats(&out, "buildings", "n");
    assert_eq!(n.len(), 16_000);
    let mut exact = 0;
    for (i, g) in layer.geometries().iter().enumerate() {
        let (area, covered) = (g.unsigned_area(), n.value(i) * 400.0);
        assert!(
            covered <= area * (1.0 + 1e-9),
            "building {i}: {covered} > {area}"
        );
        if (covered - area).abs() <= 1e-9 * area {
            exact += 1;
        }
    }
    assert!(exact >= 15_900, "only {exact} buildings measured exactly");
}
