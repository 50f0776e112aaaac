//! A whole run: evaluate a spec and write its outputs atomically.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use terrastat_core::io::{with_geometry_column, write_atomic, write_csv, write_parquet};
use terrastat_core::Progress;

use crate::catalog;
use crate::error::{Error, Result};
use crate::eval::{sha256_file, Inputs, ZoneTable};
use crate::spec::Spec;

/// Options of [`run`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// Also write zone geometries as GeoParquet (`<zones>.geo.parquet`).
    pub geo: bool,
    /// Memory budget in bytes for a streamed run (default: half the
    /// machine's memory; see [`crate::stream`]).
    pub memory: Option<u64>,
}

impl RunOptions {
    /// Set `geo`.
    #[must_use]
    pub fn geo(mut self, geo: bool) -> Self {
        self.geo = geo;
        self
    }

    /// Set the memory budget, bytes.
    #[must_use]
    pub fn memory(mut self, bytes: Option<u64>) -> Self {
        self.memory = bytes;
        self
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// The loaded inputs (with read reports).
    pub inputs: Inputs,
    /// One table per zone layer.
    pub tables: Vec<ZoneTable>,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// The catalog written.
    pub catalog: catalog::Catalog,
    /// How the largest partitioned layer was streamed (or why it was not).
    pub stream: crate::stream::StreamReport,
}

/// Evaluate `spec` and write `DIR/<zones>.parquet`, `DIR/<zones>.csv`
/// (and `<zones>.geo.parquet` with `geo`) and `DIR/catalog.json`.
pub fn run(
    spec: &Spec,
    out: &Path,
    opts: &RunOptions,
    progress: &dyn Progress,
) -> Result<RunOutput> {
    execute(spec, Some(out), opts, progress, Default::default())
}

/// Evaluate `spec` and build its catalog without writing anything (the
/// tables and catalog stay in memory: for the Python bindings).
pub fn compute(spec: &Spec, progress: &dyn Progress) -> Result<RunOutput> {
    execute(
        spec,
        None,
        &RunOptions::default(),
        progress,
        Default::default(),
    )
}

/// [`compute`] with some layers and zone layers given in memory, by name
/// (see [`crate::eval::Inputs::load_with`]).
pub fn compute_with(
    spec: &Spec,
    progress: &dyn Progress,
    memory: std::collections::BTreeMap<String, terrastat_core::RawLayer>,
) -> Result<RunOutput> {
    execute(spec, None, &RunOptions::default(), progress, memory)
}

fn execute(
    spec: &Spec,
    out: Option<&Path>,
    opts: &RunOptions,
    progress: &dyn Progress,
    memory: std::collections::BTreeMap<String, terrastat_core::RawLayer>,
) -> Result<RunOutput> {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let budget = opts.memory.unwrap_or_else(crate::stream::default_budget);
    let (inputs, tables, stream) =
        crate::stream::evaluate_streamed(spec, progress, memory, budget)?;
    if let Some(out) = out {
        std::fs::create_dir_all(out).map_err(|source| Error::Io {
            path: out.to_path_buf(),
            source,
        })?;
    }
    let mut files = Vec::new();
    let mut zones_meta = Vec::new();
    for t in &tables {
        let zones = &inputs.zones[&t.zones];
        let Some(out) = out else {
            zones_meta.push(serde_json::json!({
                "name": t.zones,
                "kind": zones.kind(),
                "id": zones.id_column(),
                "count": zones.len(),
                "outputs": [],
            }));
            continue;
        };
        let pq = out.join(format!("{}.parquet", t.zones));
        write_parquet(
            &pq,
            &t.batch,
            &[(
                "terrastat".into(),
                format!(
                    "{{\"zones\": \"{}\", \"version\": \"{}\"}}",
                    t.zones,
                    terrastat_core::VERSION
                ),
            )],
        )?;
        let csv = out.join(format!("{}.csv", t.zones));
        write_csv(&csv, &t.batch)?;
        let mut outs = vec![pq.clone(), csv.clone()];
        if opts.geo {
            let geo = out.join(format!("{}.geo.parquet", t.zones));
            let (batch, meta) =
                with_geometry_column(&t.batch, "geometry", zones.crs(), &zones.geometries())?;
            write_parquet(&geo, &batch, &[("geo".into(), meta)])?;
            outs.push(geo);
        }
        zones_meta.push(serde_json::json!({
            "name": t.zones,
            "kind": zones.kind(),
            "id": zones.id_column(),
            "count": zones.len(),
            "outputs": outs,
        }));
        files.extend(outs);
    }
    let spec_sha = sha256_file(&spec.path).unwrap_or_else(|_| {
        use sha2::{Digest, Sha256};
        format!("{:x}", Sha256::digest(spec.text.as_bytes()))
    });
    let run_meta = serde_json::json!({
        "started_utc": humantime::format_rfc3339_seconds(started).to_string(),
        "duration_s": t0.elapsed().as_secs_f64(),
        "threads": rayon::current_num_threads(),
        "stream": stream,
        "rasters": tables.iter().flat_map(|t| t.rasters.iter()).collect::<Vec<_>>(),
        "features": inputs.files.iter().map(|f| serde_json::json!({
            "input": f.role, "read": f.report.read, "kept": f.report.kept,
            "skipped": f.report.skipped, "repaired": f.report.repaired,
        })).collect::<Vec<_>>(),
    });
    let cat = catalog::build(
        spec,
        &spec_sha,
        &inputs.files,
        &tables,
        run_meta,
        zones_meta,
    );
    let Some(out) = out else {
        return Ok(RunOutput {
            inputs,
            tables,
            files,
            catalog: cat,
            stream,
        });
    };
    let cat_path = out.join("catalog.json");
    let text = serde_json::to_string_pretty(&cat).map_err(|e| Error::Indicator {
        indicator: "catalog".into(),
        message: e.to_string(),
    })?;
    write_atomic(&cat_path, |f| {
        use std::io::Write;
        f.write_all(text.as_bytes())
            .map_err(|e| terrastat_core::Error::Io {
                path: cat_path.clone(),
                source: e,
            })
    })?;
    files.push(cat_path);
    Ok(RunOutput {
        inputs,
        tables,
        files,
        catalog: cat,
        stream,
    })
}
