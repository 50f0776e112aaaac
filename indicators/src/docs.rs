//! The data dictionary of a run (`terrastat docs OUTDIR`): every published
//! indicator with its labels (English and French), unit, definition, quality
//! summary, lineage and a small choropleth map per zone layer, as Markdown
//! (`DIR/docs/index.md`, maps in `DIR/docs/maps/*.svg`) and as one
//! self-contained HTML page (`DIR/docs/index.html`, maps inline, no script,
//! no external resource), so that a non-developer can review a run.
//!
//! Everything comes from the run directory: `catalog.json`, the zone
//! tables `<zones>.parquet`, and the zone geometries from
//! `<zones>.geo.parquet` when the run wrote them (`--geo`), else rebuilt
//! from the spec the catalog names (zones only; no layer is read).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use geo::{BoundingRect, Geometry};

use crate::error::{Error, Result};

/// Zone layers with more zones than this get no map (the page stays small).
pub const MAX_MAP_ZONES: usize = 20_000;

/// The sequential palette of the maps (5 classes, light to dark: ColorBrewer YlGnBu).
pub const PALETTE: [&str; 5] = ["#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494"];

/// The colour of zones without a value.
pub const NO_DATA: &str = "#d9d9d9";

/// What `write` produced.
#[derive(Debug, Clone)]
pub struct DocsOutput {
    /// The Markdown page.
    pub markdown: PathBuf,
    /// The HTML page.
    pub html: PathBuf,
    /// The map files.
    pub maps: Vec<PathBuf>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A zone layer's table and geometries.
struct ZoneData {
    batch: RecordBatch,
    geoms: Option<Vec<Geometry>>,
    why_no_map: Option<String>,
}

/// Write the data dictionary of the run in `out`.
// Long because it writes the data dictionary page top to bottom, section by
// section, in the order a reader meets them; split, the page's outline would be lost.
pub fn write(out: &Path) -> Result<DocsOutput> {
    let cat_path = out.join("catalog.json");
    let text = std::fs::read_to_string(&cat_path).map_err(io_err(&cat_path))?;
    let cat: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::Core(terrastat_core::Error::format(
            &cat_path,
            format!("not a terrastat catalog: {e}"),
        ))
    })?;
    let zone_layers: Vec<String> = cat["zones"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|z| z["name"].as_str().map(str::to_string))
        .collect();
    let mut rebuilt: Option<BTreeMap<String, Vec<Geometry>>> = None;
    let mut data = BTreeMap::new();
    for zl in &zone_layers {
        let batch = terrastat_core::io::read_table(&out.join(format!("{zl}.parquet")))?;
        let n = batch.num_rows();
        let (geoms, why) = if n > MAX_MAP_ZONES {
            (
                None,
                Some(format!("{n} zones: no map above {MAX_MAP_ZONES}")),
            )
        } else {
            let geo = out.join(format!("{zl}.geo.parquet"));
            if geo.exists() {
                let l = terrastat_core::read_layer(zl, &geo, &Default::default())?;
                (Some(l.geometries().to_vec()), None)
            } else {
                if rebuilt.is_none() {
                    rebuilt = Some(zones_from_spec(&cat)?);
                }
                match rebuilt.as_ref().and_then(|r| r.get(zl)) {
                    Some(g) if g.len() == n => (Some(g.clone()), None),
                    _ => (
                        None,
                        Some("zone geometries not found: run with --geo".into()),
                    ),
                }
            }
        };
        data.insert(
            zl.clone(),
            ZoneData {
                batch,
                geoms,
                why_no_map: why,
            },
        );
    }
    let docs = out.join("docs");
    let maps_dir = docs.join("maps");
    std::fs::create_dir_all(&maps_dir).map_err(io_err(&maps_dir))?;
    let mut staging = terrastat_core::io::Staging::default();
    let mut md = String::new();
    let mut html = String::new();
    let title = cat["title"].as_str().unwrap_or("terrastat run");
    let _ = writeln!(md, "# {title}\n");
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{}</style></head><body>\n<h1>{}</h1>\n",
        esc(title),
        CSS,
        esc(title)
    );
    // The run.
    let run = &cat["run"];
    let engine = format!(
        "{} {}",
        cat["engine"]["name"].as_str().unwrap_or("terrastat"),
        cat["engine"]["version"].as_str().unwrap_or("")
    );
    let facts = [
        ("Engine", engine),
        (
            "Spec",
            format!(
                "{} (SHA-256 {})",
                cat["spec"]["path"].as_str().unwrap_or(""),
                cat["spec"]["sha256"].as_str().unwrap_or("")
            ),
        ),
        ("Working CRS", cat["crs"].as_str().unwrap_or("").to_string()),
        (
            "Started (UTC)",
            run["started_utc"].as_str().unwrap_or("").to_string(),
        ),
        (
            "Duration",
            format!("{:.2} s", run["duration_s"].as_f64().unwrap_or(0.0)),
        ),
        ("Threads", run["threads"].to_string()),
    ];
    let _ = writeln!(md, "| Run | |\n|---|---|");
    let _ = writeln!(html, "<h2>Run</h2><table>");
    for (k, v) in &facts {
        let _ = writeln!(md, "| {k} | {} |", v.replace('|', "\\|"));
        let _ = writeln!(html, "<tr><th>{k}</th><td>{}</td></tr>", esc(v));
    }
    let _ = writeln!(
        md,
        "\n## Inputs\n\n| input | file | SHA-256 | read | kept |\n|---|---|---|---|---|"
    );
    let _ = writeln!(html, "</table><h2>Inputs</h2><table><tr><th>input</th><th>file</th><th>SHA-256</th><th>read</th><th>kept</th></tr>");
    for f in cat["inputs"].as_array().into_iter().flatten() {
        let row = [
            f["role"].as_str().unwrap_or("").to_string(),
            f["path"].as_str().unwrap_or("").to_string(),
            f["sha256"].as_str().unwrap_or("").to_string(),
            f["report"]["read"].to_string(),
            f["report"]["kept"].to_string(),
        ];
        let _ = writeln!(md, "| {} |", row.join(" | "));
        let _ = writeln!(
            html,
            "<tr>{}</tr>",
            row.iter()
                .map(|c| format!("<td>{}</td>", esc(c)))
                .collect::<String>()
        );
    }
    let _ = writeln!(html, "</table>");
    let _ = writeln!(md, "\n## Indicators\n");
    let _ = writeln!(html, "<h2>Indicators</h2>");
    let mut maps = Vec::new();
    for ind in cat["indicators"].as_array().into_iter().flatten() {
        if ind["hidden"].as_bool() == Some(true) {
            continue;
        }
        let name = ind["name"].as_str().unwrap_or("");
        let en = ind["label"]["en"].as_str().unwrap_or(name);
        let fr = ind["label"]["fr"].as_str();
        let unit = ind["unit"].as_str().unwrap_or("");
        let _ = writeln!(md, "### {en} (`{name}`)\n");
        let _ = writeln!(
            html,
            "<section id=\"{}\"><h3>{} <code>{}</code></h3>",
            esc(name),
            esc(en),
            esc(name)
        );
        let mut rows: Vec<(&str, String)> = Vec::new();
        if let Some(fr) = fr {
            rows.push(("Libellé", fr.to_string()));
        }
        rows.push(("Unit", unit.to_string()));
        rows.push((
            "Definition",
            ind["definition"].as_str().unwrap_or("").to_string(),
        ));
        if let Some(d) = ind["description"]["en"].as_str() {
            rows.push(("Description", d.to_string()));
        }
        if let Some(d) = ind["description"]["fr"].as_str() {
            rows.push(("Description (fr)", d.to_string()));
        }
        for (k, key) in [
            ("Theme", "theme"),
            ("Template", "template"),
            ("Filter", "filter"),
            ("Expression", "expr"),
        ] {
            if let Some(v) = ind[key].as_str() {
                rows.push((k, v.to_string()));
            }
        }
        let sources: Vec<String> = ind["sources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        if !sources.is_empty() {
            // Lineage: each source with its file and hash.
            let lineage: Vec<String> = sources
                .iter()
                .map(|s| {
                    let f = cat["inputs"].as_array().into_iter().flatten().find(|f| {
                        f["role"]
                            .as_str()
                            .is_some_and(|r| r.ends_with(&format!(".{s}")))
                    });
                    match f {
                        Some(f) => format!(
                            "{s}: {} (SHA-256 {})",
                            f["path"].as_str().unwrap_or(""),
                            f["sha256"].as_str().unwrap_or("")
                        ),
                        None => s.clone(),
                    }
                })
                .collect();
            rows.push(("Sources", lineage.join("; ")));
        }
        rows.push(("Spec line", ind["spec_line"].to_string()));
        if !ind["thresholds"].is_null() {
            rows.push(("Thresholds", ind["thresholds"].to_string()));
        }
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(html, "<table>");
        for (k, v) in &rows {
            let _ = writeln!(md, "| {k} | {} |", v.replace('|', "\\|"));
            let _ = writeln!(html, "<tr><th>{k}</th><td>{}</td></tr>", esc(v));
        }
        let _ = writeln!(md);
        let _ = writeln!(html, "</table>");
        // Quality and a map per zone layer.
        for (zl, cols) in ind["outputs"].as_object().into_iter().flatten() {
            let Some(col) = cols
                .as_array()
                .and_then(|c| c.first())
                .and_then(|c| c.as_str())
            else {
                continue;
            };
            let q = &ind["quality"][zl];
            let qline = if q.is_null() {
                String::from("quality: not recorded")
            } else {
                format!(
                    "{} zones, {} withheld; completeness min {}, coverage min {}; {} features",
                    q["zones"],
                    q["withheld"],
                    fmt_opt(q["completeness"]["min"].as_f64()),
                    fmt_opt(q["coverage"]["min"].as_f64()),
                    q["n_features"]
                )
            };
            let _ = writeln!(md, "**{zl}** (`{col}`): {qline}\n");
            let _ = writeln!(
                html,
                "<h4>{} <code>{}</code></h4><p class=\"q\">{}</p>",
                esc(zl),
                esc(col),
                esc(&qline)
            );
            let Some(d) = data.get(zl) else { continue };
            match (&d.geoms, values(&d.batch, col)) {
                (Some(g), Some(v)) => {
                    let svg = choropleth(g, &v, &format!("{en} ({unit}), {zl}"));
                    let file = maps_dir.join(format!("{zl}__{col}.svg"));
                    staging.text(&file, &svg)?;
                    let _ = writeln!(md, "![{en}, {zl}](maps/{zl}__{col}.svg)\n");
                    let _ = writeln!(html, "<figure>{svg}</figure>");
                    maps.push(file);
                }
                _ => {
                    let why = d
                        .why_no_map
                        .clone()
                        .unwrap_or_else(|| "no numeric values".into());
                    let _ = writeln!(md, "_No map: {why}._\n");
                    let _ = writeln!(html, "<p class=\"nomap\">No map: {}.</p>", esc(&why));
                }
            }
        }
        let _ = writeln!(html, "</section>");
    }
    let _ = writeln!(html, "</body></html>");
    let markdown = docs.join("index.md");
    let html_path = docs.join("index.html");
    staging.text(&markdown, &md)?;
    staging.text(&html_path, &html)?;
    staging.commit()?;
    Ok(DocsOutput {
        markdown,
        html: html_path,
        maps,
    })
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |x| format!("{x:.3}"))
}

/// Column `col` as numbers (`None` when it is not numeric).
fn values(b: &RecordBatch, col: &str) -> Option<Vec<Option<f64>>> {
    let values = terrastat_core::numeric_values(b.column_by_name(col)?.as_ref())?;
    Some(
        values
            .into_iter()
            .map(|v| v.filter(|x| x.is_finite()))
            .collect(),
    )
}

/// The zones of the spec a catalog names, without reading any layer.
fn zones_from_spec(cat: &serde_json::Value) -> Result<BTreeMap<String, Vec<Geometry>>> {
    let Some(path) = cat["spec"]["path"].as_str() else {
        return Ok(BTreeMap::new());
    };
    let spec = crate::spec::Spec::load(Path::new(path))?;
    let inputs = crate::inputs::Inputs::load_except(
        &spec,
        &terrastat_core::NoProgress,
        Default::default(),
        &|_| true,
    )?;
    Ok(inputs
        .zones
        .iter()
        .map(|(n, z)| (n.clone(), z.geometries()))
        .collect())
}

/// Class breaks: the 20/40/60/80 % quantiles of the values.
pub fn breaks(values: &[Option<f64>]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().flatten().copied().collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return vec![];
    }
    (1..PALETTE.len())
        .map(|k| v[(k * v.len() / PALETTE.len()).min(v.len() - 1)])
        .collect()
}

fn class_of(x: f64, breaks: &[f64]) -> usize {
    breaks.iter().filter(|b| x > **b).count()
}

/// A choropleth of `values` over `geoms` (working CRS, north up), 5
/// quantile classes, a legend, and a `<title>` per zone.
pub fn choropleth(geoms: &[Geometry], values: &[Option<f64>], title: &str) -> String {
    // The map fits a 360 × 360 box, the legend on its right.
    const SIDE: f64 = 360.0;
    const LEGEND: f64 = 120.0;
    let mut ext: Option<geo::Rect> = None;
    for g in geoms {
        ext = terrastat_core::union_rects(ext, g.bounding_rect());
    }
    let Some(e) = ext else {
        return String::new();
    };
    let scale = SIDE / e.width().max(e.height()).max(1e-9);
    let w = (e.width() * scale).max(1.0);
    let h = (e.height() * scale).max(130.0);
    let br = breaks(values);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {:.0}\" width=\"{}\" height=\"{:.0}\" role=\"img\"><title>{}</title>",
        w + LEGEND,
        h,
        w + LEGEND,
        h,
        esc(title)
    );
    for (g, v) in geoms.iter().zip(values) {
        let fill = match v {
            Some(x) => PALETTE[class_of(*x, &br).min(PALETTE.len() - 1)],
            None => NO_DATA,
        };
        let mut d = String::new();
        let mut ring = |r: &geo::LineString| {
            let mut last = (f64::NAN, f64::NAN);
            for (k, c) in r.0.iter().enumerate() {
                let p = (
                    ((c.x - e.min().x) * scale * 10.0).round() / 10.0,
                    ((e.max().y - c.y) * scale * 10.0).round() / 10.0,
                );
                if p == last {
                    continue;
                }
                let _ = write!(d, "{}{} {}", if k == 0 { "M" } else { "L" }, p.0, p.1);
                last = p;
            }
            d.push('Z');
        };
        let polys: Vec<&geo::Polygon> = match g {
            Geometry::Polygon(p) => vec![p],
            Geometry::MultiPolygon(m) => m.0.iter().collect(),
            _ => vec![],
        };
        for p in polys {
            ring(p.exterior());
            for i in p.interiors() {
                ring(i);
            }
        }
        let label = v.map_or("no value".into(), |x| format!("{x:.4}"));
        let _ = write!(
            s,
            "<path d=\"{d}\" fill=\"{fill}\" fill-rule=\"evenodd\" stroke=\"#ffffff\" stroke-width=\"0.5\"><title>{label}</title></path>"
        );
    }
    // Legend: one box per class with its range, and the no-value colour.
    let mut lo = values
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    for (k, c) in PALETTE.iter().enumerate() {
        let hi = br.get(k).copied().unwrap_or_else(|| {
            values
                .iter()
                .flatten()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max)
        });
        let y = 10.0 + 18.0 * k as f64;
        let _ = write!(
            s,
            "<rect x=\"{}\" y=\"{y}\" width=\"14\" height=\"14\" fill=\"{c}\" stroke=\"#888\" stroke-width=\"0.5\"/><text x=\"{}\" y=\"{}\" font-size=\"10\" font-family=\"sans-serif\">{} – {}</text>",
            w + 8.0,
            w + 26.0,
            y + 11.0,
            short(lo),
            short(hi)
        );
        lo = hi;
    }
    let y = 10.0 + 18.0 * PALETTE.len() as f64;
    let _ = write!(
        s,
        "<rect x=\"{}\" y=\"{y}\" width=\"14\" height=\"14\" fill=\"{NO_DATA}\" stroke=\"#888\" stroke-width=\"0.5\"/><text x=\"{}\" y=\"{}\" font-size=\"10\" font-family=\"sans-serif\">no value</text></svg>",
        w + 8.0,
        w + 26.0,
        y + 11.0
    );
    s
}

fn short(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let a = x.abs();
    if a >= 1e5 || (a > 0.0 && a < 1e-2) {
        format!("{x:.2e}")
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

const CSS: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;font-size:14px}\
th{background:#f4f4f4}section{border-top:2px solid #ddd;margin-top:2em}code{background:#f4f4f4;padding:0 3px}\
figure{margin:.5em 0}.q{color:#555}.nomap{color:#999;font-style:italic}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaks_and_classes() {
        let v: Vec<Option<f64>> = (1..=10).map(|x| Some(x as f64)).chain([None]).collect();
        let b = breaks(&v);
        assert_eq!(b, [3.0, 5.0, 7.0, 9.0]);
        assert_eq!(class_of(1.0, &b), 0);
        assert_eq!(class_of(10.0, &b), 4);
        let sq = Geometry::Polygon(geo::Rect::new((0.0, 0.0), (10.0, 5.0)).to_polygon());
        let svg = choropleth(&[sq.clone(), sq], &[Some(1.0), None], "t <&>");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<title>t &lt;&amp;&gt;</title>"));
        assert!(svg.contains(PALETTE[0]) && svg.contains(NO_DATA));
        assert_eq!(svg.matches("<path").count(), 2);
    }
}
