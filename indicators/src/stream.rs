//! Streamed runs: the largest partitioned layer is read a few partitions at
//! a time, so that peak memory follows a budget and not the data size.
//!
//! A layer streams when it is a directory of GeoParquet partitions and
//! every indicator over it reduces its features through a per-zone partial
//! (counts, sums, means, extremes, shares, interpolations: see
//! `eval::streamable`), and no zone layer, `other` or `cover` needs it
//! whole. Everything else (zones, context layers such as flood zones,
//! rasters) is loaded once and shared read-only by every batch.
//!
//! Each feature belongs to exactly one partition (the file it is stored
//! in), and each batch is overlaid on all the zones, so a feature crossing a
//! partition's border or a zone's is measured whole. Batches are consecutive
//! partitions in path order, and every zone's partial continues from where
//! the previous batch left it, features met in ascending order: the output
//! is the same bytes as a run holding the whole layer, whatever the budget
//! (tested in `tests/streaming.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use rayon::prelude::*;
use terrastat_core::{io, Crs, GeomKind, Layer, Progress, ReadReport};

use crate::error::Result;
use crate::eval::streamable;
use crate::eval::{Evaluator, ZoneTable};
use crate::inputs::{check_columns, layer_read_options, to_working_crs};
use crate::inputs::{InputFile, Inputs};
use crate::lineage::sha256_file;
use crate::spec::Spec;

/// Memory a streamed feature costs while its batch is processed (geometry,
/// attributes, overlay, attribution), in bytes: measured on the generated
/// buildings (10 M features: 4.0 GiB peak held whole), with a margin.
pub const BYTES_PER_FEATURE: u64 = 640;

/// Memory a feature costs once read, before it is checked and overlaid
/// (the next batch is read while the current one is computed).
pub const BYTES_PER_RAW_FEATURE: u64 = 256;

/// The default largest batch, in features, whatever the budget leaves room
/// for: touching fresh memory costs more than a batch's fixed work (on the
/// 10 M France run, batches of 1.4 M features took 34 s, one batch of 10 M
/// features 48 s, batches of 0.47 M 44 s).
pub const MAX_BATCH_FEATURES: u64 = 1_500_000;

/// How a streamed layer was processed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StreamReport {
    /// The streamed layer (none: everything was held in memory).
    pub layer: Option<String>,
    /// Why no layer streamed, when none did.
    pub reason: Option<String>,
    /// The memory budget, bytes.
    pub budget: u64,
    /// Resident memory once the context (zones, other layers) was loaded,
    /// bytes (with the first batch, read beside it, in a full run).
    pub context_rss: u64,
    /// Features per batch that the budget leaves room for.
    pub features_per_batch: u64,
    /// Partitions (files) of the layer.
    pub partitions: usize,
    /// Batches processed.
    pub batches: usize,
    /// Rows in the largest batch.
    pub largest_batch: usize,
    /// Partitions read (fewer than `partitions` in an incremental run).
    pub read: usize,
    /// In an incremental run, the zones recomputed, per zone layer.
    #[serde(skip)]
    pub dirty: Option<BTreeMap<String, Vec<bool>>>,
    /// Per `category_share` indicator, its categories and those met in
    /// the features read.
    #[serde(skip)]
    pub categories: BTreeMap<String, (Vec<String>, std::collections::BTreeSet<String>)>,
    /// Rows and declared bbox of each partition whose footer this run read.
    #[serde(skip)]
    pub footers: BTreeMap<PathBuf, (usize, Option<[f64; 4]>)>,
}

/// Options of [`evaluate_streamed`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StreamOptions {
    /// Memory budget, bytes.
    pub budget: u64,
    /// Largest batch, in features (`None`: [`MAX_BATCH_FEATURES`]; the
    /// budget may ask for smaller batches).
    pub max_batch: Option<u64>,
    /// Recompute only the zones whose box meets one of these boxes, reading
    /// only the partitions they need (an incremental run; see
    /// [`crate::incremental`]). The other zones' values are then partial.
    pub dirty: Option<Vec<[f64; 4]>>,
    /// The streamed layer's partitions, already hashed (in path order).
    pub partitions: Option<Vec<crate::lineage::Partition>>,
    /// The caller hashes the streamed layer's partitions itself (at the
    /// same time as the run) and fills in its lineage entry's `sha256`,
    /// left empty here.
    pub hash_later: bool,
    /// Categories of `category_share` indicators known from a previous run.
    pub categories: BTreeMap<String, Vec<String>>,
    /// A layer whose streamable indicators were folded elsewhere, and the
    /// combined partials (see [`crate::distributed`]): only the rest is computed.
    pub distributed: Option<(String, Vec<arrow_array::RecordBatch>)>,
}

impl StreamOptions {
    /// Options with a memory budget.
    pub fn budget(budget: u64) -> Self {
        StreamOptions {
            budget,
            ..Default::default()
        }
    }
}

/// The machine's physical memory, bytes (Linux `/proc/meminfo`; 8 GiB elsewhere).
pub fn physical_memory() -> u64 {
    meminfo_kib("/proc/meminfo", "MemTotal:").map_or(8 << 30, |k| k * 1024)
}

/// This process's resident memory, bytes (Linux; `None` elsewhere).
pub fn resident_memory() -> Option<u64> {
    meminfo_kib("/proc/self/status", "VmRSS:").map(|k| k * 1024)
}

fn meminfo_kib(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The default memory budget: half the machine's physical memory.
pub fn default_budget() -> u64 {
    physical_memory() / 2
}

/// Parse a memory size: `8G`, `8GiB`, `512M`, `2.5g`, or bytes.
///
/// ```
/// use terrastat_indicators::stream::parse_size;
/// assert_eq!(parse_size("8G").unwrap(), 8 << 30);
/// assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
/// assert_eq!(parse_size("1.5k").unwrap(), 1536);
/// assert!(parse_size("lots").is_err());
/// ```
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 8G, 512M)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("`{s}`: unknown unit (use K, M, G or T)")),
    };
    if !n.is_finite() || n <= 0.0 {
        return Err(format!("`{s}` must be a positive size"));
    }
    Ok((n * mult as f64) as u64)
}

/// The layer a run streams, or why none does.
pub fn streamed_layer(
    spec: &Spec,
    memory: &BTreeMap<String, terrastat_core::RawLayer>,
) -> std::result::Result<String, String> {
    let mut candidates = Vec::new();
    for (name, ls) in &spec.layers {
        if memory.contains_key(name) {
            continue;
        }
        if !spec.resolve(&ls.path).is_dir() {
            continue;
        }
        let inds: Vec<_> = spec
            .indicators
            .iter()
            .map(|s| s.get_ref())
            .filter(|i| i.layer.as_deref() == Some(name))
            .collect();
        if inds.is_empty() {
            continue;
        }
        if let Some(i) = inds.iter().find(|i| !streamable(i)) {
            return Err(format!(
                "layer `{name}` is held whole: indicator `{}` ({:?}) needs all its features at once",
                i.name, i.kind
            ));
        }
        let needed = spec.indicators.iter().any(|s| {
            let i = s.get_ref();
            i.other.as_deref() == Some(name)
        }) || spec.zones.values().any(|z| {
            let z = z.get_ref();
            z.cover.as_deref() == Some(name) || z.extent.as_deref() == Some(name)
        });
        if needed {
            return Err(format!(
                "layer `{name}` is held whole: it is the `other`, `cover` or `extent` of another"
            ));
        }
        candidates.push(name.clone());
    }
    if candidates.len() == 1 {
        return Ok(candidates.remove(0));
    }
    // The largest directory layer streams (by rows in the footers).
    let mut best: Option<(usize, String)> = None;
    for name in candidates {
        let dir = spec.resolve(&spec.layers[&name].path);
        let rows: usize = io::dataset_files(&dir)
            .and_then(|fs| fs.par_iter().map(|f| io::parquet_rows(f)).sum())
            .unwrap_or(0);
        if best.as_ref().is_none_or(|(r, _)| rows > *r) {
            best = Some((rows, name));
        }
    }
    best.map(|(_, n)| n)
        .ok_or_else(|| "no layer is a partitioned directory".to_string())
}

/// A partition of the streamed layer.
struct Known {
    path: PathBuf,
    rows: usize,
    bbox: Option<[f64; 4]>,
    /// Its footer, when this run read it (not when the rows and boxes came
    /// from the manifest state).
    footer: Option<io::Footer>,
}

/// The progress of one batch: its stages named `batch k/n: <stage>`.
struct Batch<'a> {
    inner: &'a dyn Progress,
    k: usize,
    n: usize,
}

impl Progress for Batch<'_> {
    fn begin(&self, stage: &str, total: u64) {
        self.inner
            .begin(&format!("batch {}/{}: {stage}", self.k, self.n), total);
    }
    fn advance(&self, n: u64) {
        self.inner.advance(n);
    }
    fn end(&self) {
        self.inner.end();
    }
    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

/// Memory the context (zones, other layers, rasters) takes per byte of its
/// files, for planning the batches before it is loaded (measured: the
/// 17 MB French communes take about 240 MB prepared, with their grid).
const CONTEXT_BYTES_PER_FILE_BYTE: u64 = 16;

/// Bytes on disk of the inputs a streamed run loads whole (all but `streamed`).
fn context_bytes(spec: &Spec, streamed: &str) -> u64 {
    let size = |p: &str| {
        let path = spec.resolve(p);
        let files = if path.is_dir() {
            io::dataset_files(&path).unwrap_or_default()
        } else {
            vec![path]
        };
        files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum::<u64>()
    };
    let layers = spec
        .layers
        .iter()
        .filter(|(n, _)| n.as_str() != streamed)
        .map(|(_, l)| size(&l.path));
    let zones = spec
        .zones
        .values()
        .filter_map(|z| z.get_ref().path.as_deref().map(size));
    let rasters = spec.rasters.values().map(|r| size(&r.path));
    layers.chain(zones).chain(rasters).sum()
}

/// The batches of a streamed layer of `rows` per partition, when the
/// context holds `context` bytes of the `budget`.
fn plan_batches(
    report: &mut StreamReport,
    budget: u64,
    context: u64,
    rows: &[usize],
    max_batch: Option<u64>,
) -> Vec<std::ops::Range<usize>> {
    let room = budget.saturating_sub(context);
    // A batch is computed while the next one is read.
    report.features_per_batch = (room / (BYTES_PER_FEATURE + BYTES_PER_RAW_FEATURE))
        .min(max_batch.unwrap_or(MAX_BATCH_FEATURES))
        .max(1);
    let plan = batches(rows, report.features_per_batch);
    report.batches = plan.len();
    report.largest_batch = plan
        .iter()
        .map(|r| rows[r.clone()].iter().sum::<usize>())
        .max()
        .unwrap_or(0);
    plan
}

/// Consecutive partitions in path order, each batch holding at most
/// `per_batch` rows (a larger partition alone).
fn batches(rows: &[usize], per_batch: u64) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut acc = 0u64;
    for (k, r) in rows.iter().enumerate() {
        let r = *r as u64;
        if k > start && acc + r > per_batch {
            out.push(start..k);
            start = k;
            acc = 0;
        }
        acc += r;
    }
    if start < rows.len() {
        out.push(start..rows.len());
    }
    out
}

/// Load the inputs and evaluate the spec, streaming its largest partitioned
/// layer under `budget` bytes when one can stream (else as
/// [`crate::eval::evaluate_with`]). The result is the same bytes either way.
pub fn evaluate_streamed(
    spec: &Spec,
    progress: &dyn Progress,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
    opts: &StreamOptions,
) -> Result<(Inputs, Vec<ZoneTable>, StreamReport)> {
    let budget = opts.budget;
    let mut report = StreamReport {
        budget,
        ..Default::default()
    };
    let name = match streamed_layer(spec, &memory) {
        _ if opts.distributed.is_some() => String::new(),
        Ok(n) => n,
        Err(why) => {
            let inputs = Inputs::load_with(spec, progress, memory)?;
            check_columns(spec, &inputs)?;
            let mut ev = Evaluator::new(spec, &inputs, progress);
            let tables = ev.run()?;
            report.categories = ev.categories().clone();
            report.reason = Some(why);
            report.dirty = opts
                .dirty
                .as_ref()
                .map(|b| crate::incremental::dirty_zones(&inputs.zones, b));
            return Ok((inputs, tables, report));
        }
    };
    if let Some((layer, batches)) = &opts.distributed {
        return finish_distributed(spec, progress, memory, layer, batches, report);
    }
    let dir = spec.resolve(&spec.layers[&name].path);
    // The partitions, with their footers' rows and boxes: from the run's
    // manifest state when it has them, else from the footers, read once
    // (the reads of the files use them).
    let scan = || -> Result<Vec<Known>> {
        Ok(match &opts.partitions {
            Some(parts) => parts
                .iter()
                .map(|p| Known {
                    path: dir.join(&p.path),
                    rows: p.rows,
                    bbox: p.bbox,
                    footer: None,
                })
                .collect(),
            None => io::read_footers(&io::dataset_files(&dir)?)?
                .into_iter()
                .map(|f| Known {
                    path: f.path().to_path_buf(),
                    rows: f.rows(),
                    bbox: f.bbox(),
                    footer: Some(f),
                })
                .collect(),
        })
    };
    report.layer = Some(name.clone());
    let ropts = layer_read_options(spec, &name)?;
    let working = Crs::parse(&spec.crs)?;
    let load_context = |memory| {
        let context = Inputs::load_except(spec, progress, memory, &|n| n == name)?;
        // The zones' grids, built here rather than by the first batch
        // (roll-up levels are computed from their base zones: no grid).
        context
            .zones
            .values()
            .filter(|z| z.h3().is_none() && z.grouping().is_none())
            .par_bridge()
            .for_each(|z| {
                z.prepare_grid();
            });
        Ok::<_, crate::error::Error>(context)
    };
    // A batch's footers are given up once it is read.
    let read_part = |part: &mut [Known]| match part
        .iter_mut()
        .map(|k| k.footer.take())
        .collect::<Option<Vec<_>>>()
    {
        Some(footers) => io::read_parts(&footers, &ropts),
        None => io::read_files(
            &part.iter().map(|k| k.path.clone()).collect::<Vec<_>>(),
            &ropts,
        ),
    };
    let (mut context, mut files, plan, mut next) = match &opts.dirty {
        None => {
            // The footers are read, then the first batch, while the context
            // loads: the batch's memory is estimated from its files for
            // the plan, then measured.
            let estimate = resident_memory().unwrap_or(0)
                + CONTEXT_BYTES_PER_FILE_BYTE * context_bytes(spec, &name);
            let (context, scanned) = rayon::join(
                || load_context(memory),
                || {
                    let mut files = scan()?;
                    let rows: Vec<usize> = files.iter().map(|k| k.rows).collect();
                    let mut report = report.clone();
                    report.partitions = files.len();
                    let plan = plan_batches(&mut report, budget, estimate, &rows, opts.max_batch);
                    let first = plan.first().map(|r| read_part(&mut files[r.clone()]));
                    Ok::<_, crate::error::Error>((files, plan, first, report))
                },
            );
            let (files, plan, first, planned) = scanned?;
            report = planned;
            if opts.partitions.is_none() {
                report.footers = files
                    .iter()
                    .map(|k| (k.path.clone(), (k.rows, k.bbox)))
                    .collect();
            }
            report.context_rss = resident_memory().unwrap_or(0);
            (context?, files, plan, first)
        }
        Some(boxes) => {
            // An incremental run reads the partitions its dirty zones need.
            let context = load_context(memory)?;
            let dirty = crate::incremental::dirty_zones(&context.zones, boxes);
            let needed = crate::incremental::needed_boxes(&context.zones, &dirty);
            report.dirty = Some(dirty);
            let all = scan()?;
            report.partitions = all.len();
            let mut files: Vec<Known> = all
                .into_iter()
                .filter(|k| crate::incremental::partition_needed(k.bbox, &needed))
                .collect();
            let rows: Vec<usize> = files.iter().map(|k| k.rows).collect();
            let context_rss = resident_memory().unwrap_or(0);
            report.context_rss = context_rss;
            let plan = plan_batches(&mut report, budget, context_rss, &rows, opts.max_batch);
            progress.begin(
                &format!(
                    "batch 1/{}: reading {} partitions of {name}",
                    plan.len(),
                    plan.first().map_or(0, |r| r.len())
                ),
                0,
            );
            let first = plan.first().map(|r| read_part(&mut files[r.clone()]));
            progress.end();
            (context, files, plan, first)
        }
    };
    report.read = files.len();
    let mut partials = BTreeMap::new();
    let mut relators = Default::default();
    let mut quality = crate::eval::QualityState::default();
    let mut read = ReadReport::default();
    let mut kind: Option<GeomKind> = None;
    let mut first: Option<(PathBuf, arrow_schema::SchemaRef, Option<Crs>)> = None;
    // Batch k+1 is read while batch k is computed (both on the rayon pool).
    let read_batch = |files: &mut [Known],
                      k: usize|
     -> Option<terrastat_core::Result<terrastat_core::RawLayer>> {
        plan.get(k)
            .map(|range| read_part(&mut files[range.clone()]))
    };
    for (k, range) in plan.iter().enumerate() {
        let bp = Batch {
            inner: progress,
            k: k + 1,
            n: plan.len(),
        };
        if progress.cancelled() {
            return Err(terrastat_core::Error::Cancelled.into());
        }
        let part0 = files[range.start].path.clone();
        bp.begin(&format!("checking {} partitions of {name}", range.len()), 0);
        let Some(raw) = next.take() else { break };
        let raw = raw?;
        // Every batch must look like the first (a whole read checks the same).
        match &first {
            None => first = Some((part0.clone(), raw.attributes.schema(), raw.crs.clone())),
            Some((f0, schema, crs)) => {
                if raw.attributes.schema().fields() != schema.fields() {
                    return Err(terrastat_core::Error::format(
                        &part0,
                        format!("its columns differ from those of {}", f0.display()),
                    )
                    .into());
                }
                if raw.crs != *crs {
                    return Err(terrastat_core::Error::format(
                        &part0,
                        format!("its CRS differs from that of {}", f0.display()),
                    )
                    .into());
                }
            }
        }
        let layer = Layer::from_raw_part(&name, &dir, raw, ropts.crs.clone(), ropts.invalid, kind)?;
        read.absorb(layer.report());
        bp.end();
        if layer.is_empty() {
            next = read_batch(&mut files, k + 1);
            continue;
        }
        kind = Some(layer.kind());
        let layer = to_working_crs(layer, &working)?;
        let mut batch = context.sharing();
        batch
            .layers
            .insert(name.clone(), std::sync::Arc::new(layer));
        check_columns(spec, &batch)?;
        let mut ev = Evaluator::new(spec, &batch, &bp)
            .with_partials(partials, None)
            .with_relators(relators)
            .with_quality(quality)
            .with_seeds(opts.categories.clone());
        let (done, prefetched) = rayon::join(
            || ev.accumulate_layer(&name),
            || read_batch(&mut files, k + 1),
        );
        done?;
        next = prefetched;
        relators = ev.relators();
        quality = ev.take_quality();
        partials = ev.into_partials();
    }
    if read.kept == 0 && opts.dirty.is_none() {
        return Err(terrastat_core::Error::EmptyLayer {
            path: dir,
            detail: format!(
                " ({} rows read, all skipped: {:?})",
                read.read, read.skipped
            ),
        }
        .into());
    }
    // The streamed layer's lineage entry, where a whole read would put it.
    let entry = InputFile {
        role: format!("layers.{name}"),
        path: dir.clone(),
        sha256: match &opts.partitions {
            Some(p) => crate::lineage::directory_hash(p),
            None if opts.hash_later => String::new(),
            None => sha256_file(&dir)?,
        },
        crs: first
            .and_then(|(_, _, c)| c)
            .or(ropts.crs.clone())
            .map(|c| c.to_string())
            .unwrap_or_default(),
        report: read,
    };
    insert_lineage(&mut context.files, &name, entry);
    let mut ev = Evaluator::new(spec, &context, progress)
        .with_partials(partials, Some(&name))
        .with_quality(quality)
        .with_seeds(opts.categories.clone());
    let tables = ev.run()?;
    report.categories = ev.categories().clone();
    Ok((context, tables, report))
}

/// Put the lineage entry of layer `name`, read apart from the others, where
/// a whole read would have put it (layers by name, before the zones).
fn insert_lineage(files: &mut Vec<InputFile>, name: &str, entry: InputFile) {
    let at = files
        .iter()
        .position(|f| {
            f.role.starts_with("zones.") || f.role.strip_prefix("layers.").is_some_and(|n| n > name)
        })
        .unwrap_or(files.len());
    files.insert(at, entry);
}

/// The final step of a distributed run: everything but `layer`'s
/// streamable indicators computed here, those finished from `partials`.
fn finish_distributed(
    spec: &Spec,
    progress: &dyn Progress,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
    layer: &str,
    partials: &[arrow_array::RecordBatch],
    mut report: StreamReport,
) -> Result<(Inputs, Vec<ZoneTable>, StreamReport)> {
    let mut context = Inputs::load_except(spec, progress, memory, &|n| n == layer)?;
    let (partials, read, quality) = crate::distributed::from_table(spec, &context.zones, partials)?;
    insert_lineage(
        &mut context.files,
        layer,
        InputFile {
            role: format!("layers.{layer}"),
            path: PathBuf::from(format!("distributed:{layer}")),
            sha256: "distributed".into(),
            crs: spec.crs.clone(),
            report: read,
        },
    );
    let mut ev = Evaluator::new(spec, &context, progress)
        .with_partials(partials, Some(layer))
        .with_quality(quality);
    let tables = ev.run()?;
    report.layer = Some(layer.to_string());
    report.categories = ev.categories().clone();
    Ok((context, tables, report))
}

/// The indicators over `layer` that need all its features at once (not
/// streamable: medians, quantiles, union areas), as (name, kind): they keep a
/// layer from streaming, and cannot be spread over a cluster.
pub fn at_once(spec: &Spec, layer: &str) -> Vec<(String, &'static str)> {
    spec.indicators
        .iter()
        .map(|s| s.get_ref())
        .filter(|i| i.layer.as_deref() == Some(layer) && !streamable(i))
        .map(|i| (i.name.clone(), i.kind.name()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_follow_the_budget() {
        assert_eq!(batches(&[3, 3, 3], 6), vec![0..2, 2..3]);
        assert_eq!(batches(&[10, 1, 1], 5), vec![0..1, 1..3]);
        assert_eq!(batches(&[1, 1], 1), vec![0..1, 1..2]);
        assert_eq!(batches(&[], 5), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(batches(&[2, 2, 2], 100), vec![0..3]);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size(" 100 "), Ok(100));
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("3X").is_err());
        assert!(physical_memory() > 0);
    }
}
