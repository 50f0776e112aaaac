//! Every reader returns the same features for the same data, with its CRS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use geo::{Area, Geometry};
use terrastat_core::{read_layer, Crs, ReadOptions};

fn path(p: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn total_area(g: &[Geometry]) -> f64 {
    g.iter().map(|g| g.unsigned_area()).sum()
}

#[test]
fn geoparquet_and_flatgeobuf_agree() {
    let pq = read_layer(
        "c",
        &path("../data/samples/idf92/communes.parquet"),
        &ReadOptions::default(),
    )
    .unwrap();
    let fgb = read_layer(
        "c",
        &path("../data/samples/idf92/communes.fgb"),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(pq.len(), 36);
    assert_eq!(fgb.len(), 36);
    assert_eq!(pq.crs(), &Crs::epsg(2154));
    assert_eq!(fgb.crs(), &Crs::epsg(2154));
    let mut a = pq.string_column("insee").unwrap();
    let mut b = fgb.string_column("insee").unwrap();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(a.iter().all(|s| s.as_ref().unwrap().starts_with("92")));
    assert!((total_area(pq.geometries()) - total_area(fgb.geometries())).abs() < 1e-3);
    // Types survive: population is an integer column in both.
    assert_eq!(
        pq.column("population").unwrap().data_type(),
        &arrow_schema::DataType::Int64
    );
    assert!(fgb.column("population").unwrap().data_type().is_integer());
}

#[test]
fn geojson_with_legacy_crs_and_geoparquet_agree() {
    let gj = read_layer(
        "l",
        &path("../data/samples/kotka/landuse.geojson"),
        &ReadOptions::default(),
    )
    .unwrap();
    let pq = read_layer(
        "l",
        &path("../data/samples/kotka/landuse.parquet"),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(gj.crs(), &Crs::epsg(3067));
    assert_eq!(gj.len(), pq.len());
    // Row order differs between the files; the counts do not.
    let (a, b) = (gj.report(), pq.report());
    assert_eq!(
        (a.read, a.kept, &a.skipped, &a.repaired),
        (b.read, b.kept, &b.skipped, &b.repaired)
    );
    let rel = (total_area(gj.geometries()) - total_area(pq.geometries())).abs()
        / total_area(pq.geometries());
    assert!(rel < 1e-9, "{rel}");
}

#[test]
fn geoarrow_native_encodings() {
    let wkb = read_layer(
        "c",
        &path("../data/samples/idf92/communes.parquet"),
        &ReadOptions::default(),
    )
    .unwrap();
    let native = read_layer(
        "c",
        &path("tests/fixtures/communes5_geoarrow.parquet"),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(native.len(), 5);
    assert_eq!(native.crs(), &Crs::epsg(2154));
    for (a, b) in native.geometries().iter().zip(wkb.geometries()) {
        assert_eq!(a.unsigned_area(), b.unsigned_area());
    }
    let pts = read_layer(
        "p",
        &path("tests/fixtures/centroids5_geoarrow.parquet"),
        &ReadOptions::default(),
    )
    .unwrap();
    assert!(pts
        .geometries()
        .iter()
        .all(|g| matches!(g, Geometry::Point(_))));
    assert_eq!(pts.kind(), terrastat_core::GeomKind::Point);
}

#[test]
fn kotka_buildings_report_repairs_and_skips() {
    let b = read_layer(
        "b",
        &path("../data/samples/kotka/buildings.fgb"),
        &ReadOptions::default(),
    )
    .unwrap();
    let r = b.report();
    assert_eq!(r.read, 2215);
    assert_eq!(r.kept + r.skipped_total(), r.read);
    assert!(r.repaired_total() > 0 && r.skipped_total() > 0, "{r:?}");
    assert!(!r.examples.is_empty());
}

#[cfg(feature = "gdal")]
#[test]
fn ogr_reads_what_the_pure_rust_readers_read() {
    // GDAL may write sidecar files: read from a temporary copy.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("landuse.geojson");
    std::fs::copy(path("../data/samples/kotka/landuse.geojson"), &copy).unwrap();
    let ogr = terrastat_core::io::read_ogr(&copy, None).unwrap();
    let ogr = terrastat_core::Layer::from_raw("l", &copy, ogr, None, Default::default()).unwrap();
    let pure = read_layer("l", &copy, &ReadOptions::default()).unwrap();
    assert_eq!(ogr.len(), pure.len());
    assert_eq!(ogr.crs(), &Crs::epsg(3067));
}

/// A file of several row groups (decoded in parallel, one worker per group)
/// reads back in row order, whole; a column projection keeps exactly the
/// requested attributes, and a projection naming a column the file lacks
/// reads every column (so the caller's error can list them).
#[test]
fn row_groups_are_read_in_order_and_projected() {
    use arrow_array::{Array, Float64Array, Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;
    use terrastat_core::io::{with_geometry_column, write_parquet, ROW_GROUP_ROWS};

    let n = 2 * ROW_GROUP_ROWS + 123;
    let geoms: Vec<Geometry> = (0..n)
        .map(|i| Geometry::Point(geo::point!(x: i as f64, y: -(i as f64))))
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("v", DataType::Float64, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| i as f64 / 2.0),
            )),
        ],
    )
    .unwrap();
    let (batch, meta) = with_geometry_column(&batch, "geometry", &Crs::epsg(2154), &geoms).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pts.parquet");
    write_parquet(&file, &batch, &[("geo".into(), meta)]).unwrap();
    let groups = parquet::file::reader::FileReader::metadata(
        &parquet::file::serialized_reader::SerializedFileReader::new(
            std::fs::File::open(&file).unwrap(),
        )
        .unwrap(),
    )
    .num_row_groups();
    assert_eq!(groups, 3);

    let all = read_layer("p", &file, &ReadOptions::default()).unwrap();
    assert_eq!(all.geometries(), &geoms[..]);
    assert_eq!(all.attributes().num_columns(), 2);
    let ids = all.numeric_column("id").unwrap();
    assert!(ids.iter().enumerate().all(|(i, v)| *v == Some(i as f64)));

    let only_v = read_layer(
        "p",
        &file,
        &ReadOptions::default().columns(Some(vec!["v".into()])),
    )
    .unwrap();
    assert_eq!(only_v.geometries(), &geoms[..]);
    let schema = only_v.attributes().schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["v"]);
    let v = only_v
        .attributes()
        .column(0)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert_eq!(v.value(n - 1), (n - 1) as f64 / 2.0);
    assert_eq!(v.len(), n);

    let missing = read_layer(
        "p",
        &file,
        &ReadOptions::default().columns(Some(vec!["v".into(), "nope".into()])),
    )
    .unwrap();
    assert_eq!(missing.attributes().num_columns(), 2);
}

/// Bounding-box reads: the features whose box meets the query, exactly as a
/// full read filtered afterwards (the oracle), in file order with their
/// attributes; with a bbox covering column (written by terrastat), the row
/// groups that cannot meet the box are not read; without one, all are read
/// and the result is the same. Other formats filter after reading.
#[test]
fn bbox_reads_prune_row_groups_and_equal_a_filtered_full_read() {
    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use geo::BoundingRect;
    use std::sync::Arc;
    use terrastat_core::io::{
        row_groups_meeting, with_geometry_and_bbox_columns, with_geometry_column, write_parquet,
        ROW_GROUP_ROWS,
    };

    // Squares along a line, sorted by x: row group k covers x in [k, k+1) · ROW_GROUP_ROWS.
    let n = 3 * ROW_GROUP_ROWS + 17;
    let geoms: Vec<Geometry> = (0..n)
        .map(|i| {
            let x = i as f64;
            let y = (i % 97) as f64;
            Geometry::Polygon(geo::Rect::new((x, y), (x + 0.5, y + 0.5)).to_polygon())
        })
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from_iter_values(0..n as i64))],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let covered = dir.path().join("covered.parquet");
    let plain = dir.path().join("plain.parquet");
    let (b, meta) =
        with_geometry_and_bbox_columns(&batch, "geometry", &Crs::epsg(2154), &geoms).unwrap();
    write_parquet(&covered, &b, &[("geo".into(), meta)]).unwrap();
    let (b, meta) = with_geometry_column(&batch, "geometry", &Crs::epsg(2154), &geoms).unwrap();
    write_parquet(&plain, &b, &[("geo".into(), meta)]).unwrap();

    let r = ROW_GROUP_ROWS as f64;
    let queries = [
        geo::Rect::new((r * 1.2, 10.0), (r * 1.3, 40.0)), // inside group 1
        geo::Rect::new((r * 0.99, 0.0), (r * 1.01, 200.0)), // across groups 0 and 1
        geo::Rect::new((r + 0.5, 0.0), (r + 0.5, 100.0)), // touching a box edge only
        geo::Rect::new((-10.0, -10.0), (-5.0, -5.0)),     // nothing
        geo::Rect::new((-1e9, -1e9), (1e9, 1e9)),         // everything
    ];
    for q in queries {
        let oracle: Vec<usize> = (0..n)
            .filter(|i| {
                let b = geoms[*i].bounding_rect().unwrap();
                b.min().x <= q.max().x
                    && b.max().x >= q.min().x
                    && b.min().y <= q.max().y
                    && b.max().y >= q.min().y
            })
            .collect();
        for file in [&covered, &plain] {
            let opts = ReadOptions::default().bbox(Some(q));
            if oracle.is_empty() {
                // Nothing meets the box: an empty read, which a layer refuses.
                let raw = terrastat_core::io::read_raw(file, &opts).unwrap();
                assert_eq!((raw.geometries.len(), raw.attributes.num_rows()), (0, 0));
                assert!(read_layer("b", file, &opts).is_err());
                continue;
            }
            let got = read_layer("b", file, &opts).unwrap();
            let ids: Vec<usize> = got
                .numeric_column("id")
                .unwrap()
                .into_iter()
                .map(|v| v.unwrap() as usize)
                .collect();
            assert_eq!(ids, oracle, "{q:?} in {file:?}");
            let want: Vec<Geometry> = oracle.iter().map(|i| geoms[*i].clone()).collect();
            assert_eq!(got.geometries(), &want[..]);
            // The covering column is not an attribute.
            assert_eq!(got.attributes().num_columns(), 1);
        }
        let (groups, total) = row_groups_meeting(&covered, q).unwrap();
        assert_eq!(total, 4);
        let needed: std::collections::BTreeSet<usize> =
            oracle.iter().map(|i| i / ROW_GROUP_ROWS).collect();
        // Every group holding a match is read, and no group is read that
        // its statistics exclude (here: exactly the groups with matches,
        // since each group's x range is tight).
        assert_eq!(
            groups
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            needed,
            "{q:?}"
        );
        assert_eq!(row_groups_meeting(&plain, q).unwrap().0.len(), 4);
    }
    // Other formats: the same filter after reading.
    let fgb = path("../data/samples/idf92/communes.fgb");
    let all = read_layer("c", &fgb, &ReadOptions::default()).unwrap();
    let q = geo::Rect::new((645_000.0, 6_855_000.0), (648_000.0, 6_858_000.0));
    let some = read_layer("c", &fgb, &ReadOptions::default().bbox(Some(q))).unwrap();
    let expect = all
        .geometries()
        .iter()
        .filter(|g| {
            let b = g.bounding_rect().unwrap();
            b.min().x <= q.max().x
                && b.max().x >= q.min().x
                && b.min().y <= q.max().y
                && b.max().y >= q.min().y
        })
        .count();
    assert!(expect > 0 && expect < all.len());
    assert_eq!(some.len(), expect);
}

/// A directory of GeoParquet files (a partitioned dataset) reads as one
/// layer, files in path order; a bbox read of it equals the bbox read of
/// the whole file; files that differ in columns or CRS are errors naming them.
#[test]
fn partitioned_directories_read_as_one_layer() {
    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;
    use terrastat_core::io::{with_geometry_and_bbox_columns, write_parquet};

    let n = 1000;
    let geoms: Vec<Geometry> = (0..n)
        .map(|i| Geometry::Point(geo::point!(x: i as f64, y: (i % 7) as f64)))
        .collect();
    let batch = |rows: std::ops::Range<usize>, name: &str| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from_iter_values(
                rows.map(|i| i as i64),
            ))],
        )
        .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.parquet");
    let (b, m) =
        with_geometry_and_bbox_columns(&batch(0..n, "id"), "geometry", &Crs::epsg(2154), &geoms)
            .unwrap();
    write_parquet(&whole, &b, &[("geo".into(), m)]).unwrap();
    let parts = dir.path().join("parts");
    for (k, r) in [0..250, 250..600, 600..1000].into_iter().enumerate() {
        let d = parts.join(format!("h3_5={k}"));
        std::fs::create_dir_all(&d).unwrap();
        let (b, m) = with_geometry_and_bbox_columns(
            &batch(r.clone(), "id"),
            "geometry",
            &Crs::epsg(2154),
            &geoms[r],
        )
        .unwrap();
        write_parquet(&d.join("part-0.parquet"), &b, &[("geo".into(), m)]).unwrap();
    }
    let a = read_layer("w", &whole, &ReadOptions::default()).unwrap();
    let b = read_layer("p", &parts, &ReadOptions::default()).unwrap();
    assert_eq!(a.geometries(), b.geometries());
    assert_eq!(a.attributes().columns(), b.attributes().columns());
    assert_eq!(b.crs(), &Crs::epsg(2154));
    let q = geo::Rect::new((240.0, 2.0), (610.0, 3.0));
    let opts = ReadOptions::default().bbox(Some(q));
    let (a, b) = (
        read_layer("w", &whole, &opts).unwrap(),
        read_layer("p", &parts, &opts).unwrap(),
    );
    assert_eq!(a.geometries(), b.geometries());
    assert_eq!(a.attributes().columns(), b.attributes().columns());
    assert!(a.len() > 50 && a.len() < 200, "{}", a.len());
    // No attribute column at all (a projection to none).
    let none = ReadOptions::default().columns(Some(vec![]));
    let b = read_layer("p", &parts, &none).unwrap();
    assert_eq!((b.len(), b.attributes().num_columns()), (n, 0));
    // A file with other columns, then with another CRS: errors naming it.
    let odd = parts.join("h3_5=9");
    std::fs::create_dir_all(&odd).unwrap();
    let (b2, m2) = with_geometry_and_bbox_columns(
        &batch(0..1, "other"),
        "geometry",
        &Crs::epsg(2154),
        &geoms[..1],
    )
    .unwrap();
    write_parquet(&odd.join("part-0.parquet"), &b2, &[("geo".into(), m2)]).unwrap();
    let e = read_layer("p", &parts, &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("h3_5=9") && e.contains("columns differ"), "{e}");
    let (b3, m3) = with_geometry_and_bbox_columns(
        &batch(0..1, "id"),
        "geometry",
        &Crs::epsg(3035),
        &geoms[..1],
    )
    .unwrap();
    write_parquet(&odd.join("part-0.parquet"), &b3, &[("geo".into(), m3)]).unwrap();
    let e = read_layer("p", &parts, &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("h3_5=9") && e.contains("EPSG:3035") && e.contains("EPSG:2154"),
        "{e}"
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = read_layer("e", &empty, &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("found none") && e.contains(".parquet"), "{e}");
}

/// Many partitions of uneven sizes, under names whose byte order and path
/// order could differ (`a`, `a-b`, `a.b`, `a/b`, nested levels): the files
/// come in path order (as `Path` compares them), and reading them from
/// their footers, from their paths or as one directory gives the rows of
/// the whole file in that order.
#[test]
fn many_partitions_read_in_path_order_from_footers_or_paths() {
    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;
    use terrastat_core::io::{
        dataset_files, read_files, read_footers, read_parts, with_geometry_and_bbox_columns,
        write_parquet,
    };

    let names = [
        "a", "a-b", "a.b", "a/b", "a/b-c", "a/b/c", "a0", "b", "b/a", "b/a.x", "b-a", "z9", "z10",
    ];
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("parts");
    let mut expected = Vec::new();
    let mut start = 0usize;
    for (k, name) in names.iter().enumerate() {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in 0..3 {
            // 0 to 60 rows, some files empty.
            let n = (k * 7 + f * 13) % 61;
            let geoms: Vec<Geometry> = (start..start + n)
                .map(|i| Geometry::Point(geo::point!(x: i as f64, y: (i % 5) as f64)))
                .collect();
            let batch = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
                vec![Arc::new(Int64Array::from_iter_values(
                    (start..start + n).map(|i| i as i64),
                ))],
            )
            .unwrap();
            let (b, m) =
                with_geometry_and_bbox_columns(&batch, "geometry", &Crs::epsg(2154), &geoms)
                    .unwrap();
            let path = d.join(format!("part-{f}.parquet"));
            write_parquet(&path, &b, &[("geo".into(), m)]).unwrap();
            expected.push(path);
            start += n;
        }
    }
    expected.sort();
    let files = dataset_files(&root).unwrap();
    assert_eq!(files, expected);
    let footers = read_footers(&files).unwrap();
    assert_eq!(
        footers.iter().map(|f| f.path()).collect::<Vec<_>>(),
        files.iter().map(|f| f.as_path()).collect::<Vec<_>>()
    );
    let opts = ReadOptions::default();
    let (a, b) = (
        read_parts(&footers, &opts).unwrap(),
        read_files(&files, &opts).unwrap(),
    );
    assert_eq!(a.geometries, b.geometries);
    assert_eq!(a.attributes, b.attributes);
    assert_eq!(a.geometries.len(), start);
    // The ids follow the files' order.
    let ids = a
        .attributes
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    let rows: usize = footers.iter().map(|f| f.rows()).sum();
    assert_eq!(rows, start);
    let mut at = 0;
    for f in &footers {
        let one = read_files(&[f.path().to_path_buf()], &opts).unwrap();
        let own = one.attributes.column(0);
        assert_eq!(
            own.as_ref(),
            &ids.slice(at, f.rows()) as &dyn arrow_array::Array
        );
        assert_eq!(one.geometries[..], a.geometries[at..at + f.rows()]);
        at += f.rows();
    }
}
