//! A whole run: evaluate a spec and write its outputs atomically.
//!
//! `run`: the present state (input and partition hashes: first, with
//! `--incremental`, to plan; else on a thread beside the evaluation, filling in
//! the streamed layer's lineage hash after it) and, with `--incremental`, the
//! plan; evaluate (streamed); merge recomputed rows; stage
//! `<zones>.parquet/.csv[/.geo.parquet]`, the catalog and the manifest, then
//! rename them all (`core::io::Staging`).

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use terrastat_core::io::{with_geometry_column, Staging};
use terrastat_core::Progress;

use crate::catalog;
use crate::error::{Error, Result};
use crate::eval::ZoneTable;
use crate::incremental::{IncrementalReport, Manifest, Scope};
use crate::inputs::Inputs;
use crate::lineage::sha256_file;
use crate::lineage::InputFile;
use crate::plan::Plan;
use crate::spec::Spec;
use crate::stream::{Execution, Mode};

/// Options of [`run`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// Also write zone geometries as GeoParquet (`<zones>.geo.parquet`).
    pub geo: bool,
    /// Memory budget in bytes for a streamed run (default: half the
    /// machine's memory; see [`crate::stream`]).
    pub memory: Option<u64>,
    /// Recompute only what changed since the run that wrote the output
    /// directory (see [`crate::incremental`]).
    pub incremental: bool,
    /// Largest batch of a streamed layer, in features (`None`:
    /// [`crate::stream::MAX_BATCH_FEATURES`]). The outputs do not depend on it.
    pub batch_features: Option<u64>,
}

impl RunOptions {
    /// Set `geo`.
    #[must_use]
    pub fn geo(mut self, geo: bool) -> Self {
        self.geo = geo;
        self
    }

    /// Set `incremental`.
    #[must_use]
    pub fn incremental(mut self, yes: bool) -> Self {
        self.incremental = yes;
        self
    }

    /// Set the largest batch of a streamed layer, in features.
    #[must_use]
    pub fn batch_features(mut self, n: Option<u64>) -> Self {
        self.batch_features = n;
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
    /// What an incremental run recomputed (with [`RunOptions::incremental`]).
    pub incremental: Option<IncrementalReport>,
}

/// Evaluate `spec` and write `DIR/<zones>.parquet`, `DIR/<zones>.csv`
/// (and `<zones>.geo.parquet` with `geo`) and `DIR/catalog.json`.
///
/// An output never overwrites an input: an output directory where an
/// output file would replace an input file, or inside a dataset directory
/// read as an input, is refused before anything is read
/// ([`ErrorKind::Option`](crate::ErrorKind::Option), naming the input).
pub fn run(
    spec: &Spec,
    out: &Path,
    opts: &RunOptions,
    progress: &dyn Progress,
) -> Result<RunOutput> {
    check_out_dir(spec, out)?;
    execute(spec, Some(out), opts, progress, Default::default(), None)
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
        None,
    )
}

/// [`compute`] with some layers and zone layers given in memory, by name
/// (see [`crate::inputs::Inputs::load_with`]).
pub fn compute_with(
    spec: &Spec,
    progress: &dyn Progress,
    memory: std::collections::BTreeMap<String, terrastat_core::RawLayer>,
) -> Result<RunOutput> {
    execute(spec, None, &RunOptions::default(), progress, memory, None)
}

/// Remove the temporaries (`.<file>.<pid>.tmp`) that killed runs left in
/// `out`: those of processes that no longer exist (Linux; elsewhere none
/// are removed).
fn remove_stale_temporaries(out: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(out) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
            continue;
        };
        let Some(pid) = rest.rsplit('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The inputs of `spec` by role (`layers.<name>`, `zones.<name>`,
/// `rasters.<name>`, `tables.<name>`, `spec`), as resolved paths.
fn input_paths(spec: &Spec) -> Vec<(String, PathBuf)> {
    let mut v = vec![("spec".to_string(), spec.path.clone())];
    v.extend(
        spec.layers
            .iter()
            .map(|(n, l)| (format!("layers.{n}"), spec.resolve(&l.path))),
    );
    v.extend(spec.zones.iter().filter_map(|(n, z)| {
        let p = z.get_ref().path.as_deref()?;
        Some((format!("zones.{n}"), spec.resolve(p)))
    }));
    v.extend(
        spec.rasters
            .iter()
            .map(|(n, r)| (format!("rasters.{n}"), spec.resolve(&r.path))),
    );
    v.extend(
        spec.tables
            .iter()
            .map(|(n, t)| (format!("tables.{n}"), spec.resolve(&t.path))),
    );
    v
}

/// The names of the files a run of `spec` may write in its output directory.
fn output_names(spec: &Spec) -> Vec<String> {
    let mut zones: Vec<String> = Vec::new();
    for (name, z) in &spec.zones {
        zones.push(name.clone());
        for col in z.get_ref().rollup.iter().flatten() {
            zones.push(format!("{name}_by_{col}"));
        }
    }
    let mut names: Vec<String> = zones
        .iter()
        .flat_map(|z| {
            ["parquet", "csv", "quality.parquet", "geo.parquet"].map(|ext| format!("{z}.{ext}"))
        })
        .collect();
    names.push("catalog.json".into());
    names.push(crate::incremental::MANIFEST.into());
    names
}

/// `path` made absolute with its symbolic links resolved, as far as it exists
/// (the rest of its components appended as written).
fn canonical(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            return rest.iter().rev().fold(c, |p, r| p.join(r));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

/// Refuse an output directory that would overwrite an input: an output file
/// (`<zones>.parquet`, `catalog.json`…) that is an input file, or an output
/// directory inside a dataset directory read as an input. Paths are
/// compared canonical (symbolic links and `..` resolved).
fn check_out_dir(spec: &Spec, out: &Path) -> Result<()> {
    let dir = canonical(out);
    let names = output_names(spec);
    for (role, path) in input_paths(spec) {
        let input = canonical(&path);
        let clash = if input.is_dir() {
            dir.starts_with(&input).then(|| {
                format!(
                    "is inside the directory of input `{role}` ({}): its outputs would be read as part of that dataset",
                    input.display()
                )
            })
        } else {
            let written = input
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|n| input.parent() == Some(dir.as_path()) && names.iter().any(|o| o == n));
            written.map(|n| {
                format!(
                    "would overwrite input `{role}` ({}) with the output `{n}`",
                    input.display()
                )
            })
        };
        if let Some(message) = clash {
            return Err(Error::Option {
                option: "--out".into(),
                message: format!("{}: {message}; write the outputs elsewhere", out.display()),
            });
        }
    }
    Ok(())
}

/// The present state of a spec's inputs, as a manifest without outputs.
fn present_state(
    spec: &Spec,
    opts: &RunOptions,
    memory: &std::collections::BTreeMap<String, terrastat_core::RawLayer>,
    footers: bool,
) -> Result<Manifest> {
    let streamed = crate::stream::streamed_layer(spec, memory).ok();
    let mut inputs = std::collections::BTreeMap::new();
    let paths = spec
        .layers
        .iter()
        .filter(|(n, _)| Some(*n) != streamed.as_ref())
        .map(|(n, l)| (format!("layers.{n}"), Some(&l.path)))
        .chain(
            spec.zones
                .iter()
                .map(|(n, z)| (format!("zones.{n}"), z.get_ref().path.as_ref())),
        )
        .chain(
            spec.rasters
                .iter()
                .map(|(n, r)| (format!("rasters.{n}"), Some(&r.path))),
        );
    for (role, path) in paths {
        if let Some(p) = path {
            let sha = sha256_file(&spec.resolve(p)).unwrap_or_else(|e| format!("unreadable: {e}"));
            inputs.insert(role, sha);
        }
    }
    let partitions = match &streamed {
        Some(n) => crate::lineage::partitions_with(&spec.resolve(&spec.layers[n].path), footers)?,
        None => Vec::new(),
    };
    Ok(Manifest {
        engine: terrastat_core::VERSION.to_string(),
        spec: crate::incremental::spec_parts(spec, &format!("geo={}", opts.geo))?,
        inputs,
        streamed,
        partitions,
        outputs: Default::default(),
        categories: Default::default(),
    })
}

/// The final step of a distributed run (see [`crate::distributed`]): the
/// streamable indicators of `layer` finished from combined `partials`,
/// every other indicator computed here from the other layers (given in
/// `memory` or read from their paths).
pub fn compute_distributed(
    spec: &Spec,
    progress: &dyn Progress,
    memory: std::collections::BTreeMap<String, terrastat_core::RawLayer>,
    layer: &str,
    partials: Vec<arrow_array::RecordBatch>,
) -> Result<RunOutput> {
    execute(
        spec,
        None,
        &RunOptions::default(),
        progress,
        memory,
        Some((layer.to_string(), partials)),
    )
}

fn execute(
    spec: &Spec,
    out: Option<&Path>,
    opts: &RunOptions,
    progress: &dyn Progress,
    memory: std::collections::BTreeMap<String, terrastat_core::RawLayer>,
    distributed: Option<(String, Vec<arrow_array::RecordBatch>)>,
) -> Result<RunOutput> {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let plan = Plan::new(spec)?;
    let mut exec = Execution::budget(opts.memory.unwrap_or_else(crate::stream::default_budget));
    exec.max_batch = opts.batch_features;
    if let Some((layer, partials)) = distributed {
        exec.mode = Mode::Finish { layer, partials };
    }
    // Runs writing files keep a manifest; an incremental run plans from it
    // first, a full run hashes its inputs while it computes.
    exec.hash_later = out.is_some() && memory.is_empty() && !opts.incremental;
    let mut state = match out {
        Some(_) if memory.is_empty() && !exec.hash_later => {
            progress.begin("hashing the inputs", 0);
            let s = present_state(spec, opts, &memory, true)?;
            progress.end();
            Some(s)
        }
        _ => None,
    };
    let scope = match (&state, out) {
        (Some(now), Some(out)) if opts.incremental => {
            crate::incremental::scope(out, Manifest::read(out).as_ref(), now)
        }
        _ => Scope::Full("not incremental".into()),
    };
    exec.partitions = state.as_ref().map(|s| s.partitions.clone());
    let mut incremental = opts.incremental.then(IncrementalReport::default);
    if let (Scope::Dirty { boxes, changed }, Some(r)) = (&scope, incremental.as_mut()) {
        exec.mode = Mode::Dirty(boxes.clone());
        exec.categories = out
            .and_then(Manifest::read)
            .map(|m| m.categories)
            .unwrap_or_default();
        r.mode = "dirty".into();
        r.changed = changed.clone();
    }
    let mut evaluated = if matches!(exec.mode, Mode::Dirty(_)) {
        crate::stream::execute(&plan, progress, Default::default(), &exec)?
    } else if exec.hash_later {
        let (evaluated, now) = execute_hashing(&plan, opts, progress, memory, &exec)?;
        state = Some(now);
        evaluated
    } else {
        crate::stream::execute(&plan, progress, memory, &exec)?
    };
    if let Some(out) = out {
        merge_dirty(
            &plan,
            out,
            progress,
            &scope,
            &mut exec,
            &mut evaluated,
            &mut incremental,
        )?;
    }
    if let (Scope::Full(why), Some(r)) = (&scope, incremental.as_mut()) {
        r.mode = "full".into();
        r.reason = Some(why.clone());
        r.read = evaluated.2.read;
    }
    let (inputs, tables, stream) = evaluated;
    let run_meta = serde_json::json!({
        "started_utc": humantime::format_rfc3339_seconds(started).to_string(),
        "duration_s": t0.elapsed().as_secs_f64(),
        "threads": rayon::current_num_threads(),
        "options": {
            "geo": opts.geo,
            "memory": opts.memory,
            "batch_features": opts.batch_features,
            "incremental": opts.incremental,
        },
        "stream": stream,
        "incremental": incremental,
        "rasters": tables.iter().flat_map(|t| t.rasters.iter()).collect::<Vec<_>>(),
        "features": inputs.files.iter().map(|f| serde_json::json!({
            "input": f.role, "read": f.report.read, "kept": f.report.kept,
            "skipped": f.report.skipped, "repaired": f.report.repaired,
            "read_as_centroids": f.report.centroids,
        })).collect::<Vec<_>>(),
    });
    let written = write_outputs(
        spec, out, opts, progress, &inputs, &tables, &stream, run_meta, state,
    )?;
    Ok(RunOutput {
        inputs,
        tables,
        files: written.0,
        catalog: written.1,
        stream,
        incremental,
    })
}

/// What [`crate::stream::execute`] returns.
type Evaluated = (Inputs, Vec<ZoneTable>, crate::stream::StreamReport);

/// A full run writing files: the inputs are hashed (for the manifest and
/// the lineage) on another thread, on the same pool, filling the gaps of the
/// run's own work; the partitions' rows and boxes come from the footers the
/// run reads.
fn execute_hashing(
    plan: &Plan<'_>,
    opts: &RunOptions,
    progress: &dyn Progress,
    memory: std::collections::BTreeMap<String, terrastat_core::RawLayer>,
    exec: &Execution,
) -> Result<(Evaluated, Manifest)> {
    let spec = plan.spec();
    let (evaluated, hashed) = std::thread::scope(|s| {
        let hashing = s.spawn(|| present_state(spec, opts, &Default::default(), false));
        let evaluated = crate::stream::execute(plan, progress, memory, exec);
        (evaluated, hashing.join())
    });
    let mut evaluated = evaluated?;
    let mut now = hashed.map_err(|_| Error::Internal {
        what: "hashing the inputs failed (the hashing thread panicked)".into(),
    })??;
    if let Some(n) = &now.streamed {
        let dir = spec.resolve(&spec.layers[n].path);
        let read = &evaluated.2.footers;
        for p in &mut now.partitions {
            let path = dir.join(&p.path);
            (p.rows, p.bbox) = match read.get(&path) {
                Some(facts) => *facts,
                None => terrastat_core::io::footer_facts(&path)?,
            };
        }
    }
    if let Some(name) = &evaluated.2.layer {
        let role = format!("layers.{name}");
        let unhashed = |f: &&mut InputFile| f.role == role && f.sha256.is_empty();
        for f in evaluated.0.files.iter_mut().filter(unhashed) {
            f.sha256 = crate::lineage::directory_hash(&now.partitions);
        }
    }
    Ok((evaluated, now))
}

/// An incremental run over dirty zones: their rows recomputed, the others
/// taken from the previous outputs in `out`. When that cannot be done (a
/// previous table of another shape, a category gone with a changed
/// partition), everything is computed again.
fn merge_dirty(
    plan: &Plan<'_>,
    out: &Path,
    progress: &dyn Progress,
    scope: &Scope,
    exec: &mut Execution,
    evaluated: &mut Evaluated,
    incremental: &mut Option<IncrementalReport>,
) -> Result<()> {
    let Some(dirty) = evaluated.2.dirty.take() else {
        return Ok(());
    };
    // A category met in the previous run but in none of the partitions read
    // may have gone with a changed partition: only a full run can tell.
    let vanished = match scope {
        Scope::Dirty { changed, .. } if !changed.is_empty() => evaluated
            .2
            .categories
            .values()
            .any(|(names, seen)| names.iter().any(|n| !seen.contains(n))),
        _ => false,
    };
    let tables = &mut evaluated.1;
    let mut merged = Vec::new();
    for t in tables.iter().filter(|_| !vanished) {
        let d = dirty.get(&t.zones).cloned().unwrap_or_default();
        match merge_table(out, t, &d)? {
            Some(bq) => merged.push(bq),
            None => {
                merged.clear();
                break;
            }
        }
        if let Some(r) = incremental.as_mut() {
            r.zones
                .insert(t.zones.clone(), (d.iter().filter(|x| **x).count(), d.len()));
        }
    }
    if !vanished && merged.len() == tables.len() {
        for (t, (b, q)) in tables.iter_mut().zip(merged) {
            t.batch = b;
            t.quality = q;
        }
        if let Some(r) = incremental.as_mut() {
            r.read = evaluated.2.read;
        }
        return Ok(());
    }
    // A previous table of another shape (a new category…): all again.
    exec.mode = Mode::Full;
    exec.categories.clear();
    *evaluated = crate::stream::execute(plan, progress, Default::default(), exec)?;
    *incremental = Some(IncrementalReport {
        mode: "full".into(),
        reason: Some(if vanished {
            "a category of the previous run is in no partition read".into()
        } else {
            "a previous output has other columns".into()
        }),
        read: evaluated.2.read,
        ..Default::default()
    });
    Ok(())
}

/// Table `t` and its quality table with the rows of the zones not in
/// `dirty` taken from the previous outputs in `out` (`None`: a previous
/// output is missing or of another shape).
fn merge_table(
    out: &Path,
    t: &ZoneTable,
    dirty: &[bool],
) -> Result<Option<(arrow_array::RecordBatch, arrow_array::RecordBatch)>> {
    let prev = crate::incremental::read_previous(&out.join(format!("{}.parquet", t.zones)));
    // Quality rows: one per zone and indicator, zone-major.
    let per_zone = t.quality.num_rows().checked_div(dirty.len()).unwrap_or(0);
    let dq: Vec<bool> = dirty
        .iter()
        .flat_map(|x| std::iter::repeat_n(*x, per_zone))
        .collect();
    let prev_q =
        crate::incremental::read_previous(&out.join(format!("{}.quality.parquet", t.zones)));
    let q = prev_q.map(|p| crate::incremental::merge_rows(&p, &t.quality, &dq));
    match (
        prev.map(|p| crate::incremental::merge_rows(&p, &t.batch, dirty)),
        q,
    ) {
        (Some(Ok(Some(b))), Some(Ok(Some(q)))) => Ok(Some((b, q))),
        (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e),
        _ => Ok(None),
    }
}

/// Stage every output (`<zones>.parquet`, `.csv`, `.quality.parquet`,
/// `.geo.parquet` with `geo`), the catalog and the manifest, then rename
/// them all, the manifest last: a failure or a kill leaves the previous
/// outputs as they were. Without `out`, only the catalog is built.
#[allow(clippy::too_many_arguments)] // the parts of a run, gathered by `execute`
fn write_outputs(
    spec: &Spec,
    out: Option<&Path>,
    opts: &RunOptions,
    progress: &dyn Progress,
    inputs: &Inputs,
    tables: &[ZoneTable],
    stream: &crate::stream::StreamReport,
    run_meta: serde_json::Value,
    state: Option<Manifest>,
) -> Result<(Vec<PathBuf>, catalog::Catalog)> {
    if let Some(out) = out {
        std::fs::create_dir_all(out).map_err(|source| Error::Io {
            path: out.to_path_buf(),
            source,
        })?;
        remove_stale_temporaries(out);
        progress.begin("writing the outputs", 0);
    }
    let mut staging = Staging::default();
    let mut files = Vec::new();
    let mut zones_meta = Vec::new();
    for t in tables {
        let zones = &inputs.zones[&t.zones];
        let outs = match out {
            Some(out) => stage_table(&mut staging, out, opts, t, zones)?,
            None => Vec::new(),
        };
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
    let cat = catalog::build(spec, &spec_sha, &inputs.files, tables, run_meta, zones_meta);
    let Some(out) = out else {
        return Ok((files, cat));
    };
    let cat_path = out.join("catalog.json");
    let text = serde_json::to_string_pretty(&cat).map_err(|source| Error::Serialize {
        what: "catalog.json".into(),
        source,
    })?;
    staging.text(&cat_path, &text)?;
    files.push(cat_path);
    if let Some(mut m) = state {
        m.categories = stream
            .categories
            .iter()
            .map(|(k, (names, _))| (k.clone(), names.clone()))
            .collect();
        for (tmp, target) in staging.pending() {
            if let Some(name) = target.file_name().and_then(|n| n.to_str()) {
                if name != "catalog.json" {
                    m.outputs.insert(name.to_string(), sha256_file(tmp)?);
                }
            }
        }
        let path = out.join(crate::incremental::MANIFEST);
        let text = serde_json::to_string_pretty(&m).map_err(|source| Error::Serialize {
            what: crate::incremental::MANIFEST.into(),
            source,
        })?;
        staging.text(&path, &text)?;
        files.push(path);
    }
    staging.commit()?;
    progress.end();
    Ok((files, cat))
}

/// Stage the files of one zone table in `out`; their paths.
fn stage_table(
    staging: &mut Staging,
    out: &Path,
    opts: &RunOptions,
    t: &ZoneTable,
    zones: &terrastat_core::Zones,
) -> Result<Vec<PathBuf>> {
    let pq = out.join(format!("{}.parquet", t.zones));
    staging.parquet(
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
    staging.csv(&csv, &t.batch)?;
    let quality = out.join(format!("{}.quality.parquet", t.zones));
    staging.parquet(&quality, &t.quality, &[])?;
    let mut outs = vec![pq, csv, quality];
    if opts.geo {
        let geo = out.join(format!("{}.geo.parquet", t.zones));
        let (batch, meta) =
            with_geometry_column(&t.batch, "geometry", zones.crs(), &zones.geometries())?;
        staging.parquet(&geo, &batch, &[("geo".into(), meta)])?;
        outs.push(geo);
    }
    Ok(outs)
}
