//! `geo`'s validity against terrastat's own on a polygon layer:
//! `cargo run --release -p terrastat-core --features testing --example validity_check -- FILE.parquet`.
use geo::Validation;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: validity_check FILE.parquet")?;
    let raw = terrastat_core::io::read_geoparquet(std::path::Path::new(&path))?;
    let (mut n, mut invalid, mut differ) = (0, 0, 0);
    let (mut t_geo, mut t_ours) = (0.0, 0.0);
    for g in raw.geometries.into_iter().flatten() {
        let mp = match g {
            geo::Geometry::Polygon(p) => geo::MultiPolygon(vec![p]),
            geo::Geometry::MultiPolygon(mp) => mp,
            _ => continue,
        };
        let t = std::time::Instant::now();
        let a = mp.is_valid();
        t_geo += t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let b = terrastat_core::oracle::multi_polygon_is_valid(&mp);
        t_ours += t.elapsed().as_secs_f64();
        n += 1;
        invalid += usize::from(!a);
        differ += usize::from(a != b);
    }
    println!("{n} features, {invalid} invalid, {differ} differ; geo {t_geo:.3} s, terrastat {t_ours:.3} s");
    if differ > 0 {
        return Err("the two validity checks differ".into());
    }
    Ok(())
}
