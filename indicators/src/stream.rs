//! Streamed runs: the largest partitioned layer is read a few partitions at
//! a time, so that peak memory follows a budget and not the data size.
//!
//! A layer streams when it is a directory of GeoParquet partitions and
//! every indicator over it reduces its features through a per-zone partial
//! (counts, sums, means, extremes, shares, interpolations: see
//! `plan.rs`), and no zone layer, `other` or `cover` needs it
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
use crate::eval::{Evaluator, QualityState, ZoneTable};
use crate::inputs::Inputs;
use crate::inputs::{check_columns, layer_read_options, to_working_crs};
use crate::kinds::Partial;
use crate::lineage::sha256_file;
use crate::lineage::InputFile;
use crate::plan::{streamable, Plan};
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

/// How [`execute`] runs a plan.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// Every zone; the streamed layer, if any, read in batches.
    Full,
    /// An incremental run: only the zones whose box meets one of these
    /// boxes, reading only the partitions they need (see
    /// [`crate::incremental`]). The other zones' values are then partial.
    Dirty(Vec<[f64; 4]>),
    /// The final step of a distributed run (see [`crate::distributed`]): the
    /// streamable indicators of `layer` finished from the combined
    /// `partials` folded elsewhere, every other indicator computed here.
    Finish {
        /// The layer folded elsewhere.
        layer: String,
        /// The combined partials.
        partials: Vec<arrow_array::RecordBatch>,
    },
}

/// Options of [`execute`].
#[derive(Debug, Clone)]
pub(crate) struct Execution {
    /// What is computed.
    pub(crate) mode: Mode,
    /// Memory budget, bytes.
    pub(crate) budget: u64,
    /// Largest batch, in features (`None`: [`MAX_BATCH_FEATURES`]; the
    /// budget may ask for smaller batches).
    pub(crate) max_batch: Option<u64>,
    /// The streamed layer's partitions, already hashed (in path order).
    pub(crate) partitions: Option<Vec<crate::lineage::Partition>>,
    /// The caller hashes the streamed layer's partitions itself (at the
    /// same time as the run) and fills in its lineage entry's `sha256`,
    /// left empty here.
    pub(crate) hash_later: bool,
    /// Categories of `category_share` indicators known from a previous run.
    pub(crate) categories: BTreeMap<String, Vec<String>>,
}

impl Execution {
    /// A full run under a memory budget.
    pub(crate) fn budget(budget: u64) -> Self {
        Execution {
            mode: Mode::Full,
            budget,
            max_batch: None,
            partitions: None,
            hash_later: false,
            categories: BTreeMap::new(),
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

/// Load the inputs and run `plan` as `exec` says, streaming the largest
/// partitioned layer under the budget when one can stream (else every layer
/// is held whole). The result is the same bytes either way.
pub(crate) fn execute(
    plan: &Plan<'_>,
    progress: &dyn Progress,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
    exec: &Execution,
) -> Result<(Inputs, Vec<ZoneTable>, StreamReport)> {
    let report = StreamReport {
        budget: exec.budget,
        ..Default::default()
    };
    if let Mode::Finish { layer, partials } = &exec.mode {
        return finish_distributed(plan, progress, memory, layer, partials, report);
    }
    match streamed_layer(plan.spec(), &memory) {
        Ok(name) => stream(plan, progress, memory, exec, &name, report),
        Err(why) => whole(plan, progress, memory, exec, why, report),
    }
}

/// No layer streams (`why`): every layer is loaded whole.
fn whole(
    plan: &Plan<'_>,
    progress: &dyn Progress,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
    exec: &Execution,
    why: String,
    mut report: StreamReport,
) -> Result<(Inputs, Vec<ZoneTable>, StreamReport)> {
    let inputs = Inputs::load_with(plan.spec(), progress, memory)?;
    check_columns(plan, &inputs)?;
    let mut ev = Evaluator::new(plan, &inputs, progress);
    let tables = ev.run()?;
    report.categories = ev.categories().clone();
    report.reason = Some(why);
    if let Mode::Dirty(boxes) = &exec.mode {
        report.dirty = Some(crate::incremental::dirty_zones(&inputs.zones, boxes));
    }
    Ok((inputs, tables, report))
}

/// The streamed layer's files: where they are and how they are read.
struct Source {
    name: String,
    dir: PathBuf,
    ropts: io::ReadOptions,
}

impl Source {
    fn new(spec: &Spec, name: &str) -> Result<Source> {
        Ok(Source {
            name: name.to_string(),
            dir: spec.resolve(&spec.layers[name].path),
            ropts: layer_read_options(spec, name)?,
        })
    }

    /// The partitions, with their footers' rows and boxes: from the run's
    /// manifest state when it has them, else from the footers, read once
    /// (the reads of the files use them).
    fn scan(&self, exec: &Execution) -> Result<Vec<Known>> {
        Ok(match &exec.partitions {
            Some(parts) => parts
                .iter()
                .map(|p| Known {
                    path: self.dir.join(&p.path),
                    rows: p.rows,
                    bbox: p.bbox,
                    footer: None,
                })
                .collect(),
            None => io::read_footers(&io::dataset_files(&self.dir)?)?
                .into_iter()
                .map(|f| Known {
                    path: f.path().to_path_buf(),
                    rows: f.rows(),
                    bbox: f.bbox(),
                    footer: Some(f),
                })
                .collect(),
        })
    }

    /// Read the partitions of a batch (their footers are given up).
    fn read(&self, part: &mut [Known]) -> terrastat_core::Result<terrastat_core::RawLayer> {
        match part
            .iter_mut()
            .map(|k| k.footer.take())
            .collect::<Option<Vec<_>>>()
        {
            Some(footers) => io::read_parts(&footers, &self.ropts),
            None => io::read_files(
                &part.iter().map(|k| k.path.clone()).collect::<Vec<_>>(),
                &self.ropts,
            ),
        }
    }
}

/// The context (every input but the streamed layer), with the zones' grids
/// built here rather than by the first batch (roll-up levels are computed
/// from their base zones: no grid).
fn load_context(
    spec: &Spec,
    progress: &dyn Progress,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
    streamed: &str,
) -> Result<Inputs> {
    let context = Inputs::load_except(spec, progress, memory, &|n| n == streamed)?;
    context
        .zones
        .values()
        .filter(|z| z.h3().is_none() && z.grouping().is_none())
        .par_bridge()
        .for_each(|z| {
            z.prepare_grid();
        });
    Ok(context)
}

/// A streamed run ready to fold: the context, the partitions to read, the
/// batches, and the first batch read.
struct Opened {
    context: Inputs,
    files: Vec<Known>,
    batches: Vec<std::ops::Range<usize>>,
    first: Option<terrastat_core::Result<terrastat_core::RawLayer>>,
}

/// A full run: the footers are read, then the first batch, while the context
/// loads; the batch's memory is estimated from its files for the plan of
/// batches, then measured.
fn open_full(
    spec: &Spec,
    progress: &dyn Progress,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
    exec: &Execution,
    source: &Source,
    report: &mut StreamReport,
) -> Result<Opened> {
    let estimate = resident_memory().unwrap_or(0)
        + CONTEXT_BYTES_PER_FILE_BYTE * context_bytes(spec, &source.name);
    let base = report.clone();
    let (context, scanned) = rayon::join(
        || load_context(spec, progress, memory, &source.name),
        || {
            let mut files = source.scan(exec)?;
            let rows: Vec<usize> = files.iter().map(|k| k.rows).collect();
            let mut report = base;
            report.partitions = files.len();
            let batches = plan_batches(&mut report, exec.budget, estimate, &rows, exec.max_batch);
            let first = batches.first().map(|r| source.read(&mut files[r.clone()]));
            Ok::<_, crate::error::Error>((files, batches, first, report))
        },
    );
    let (files, batches, first, planned) = scanned?;
    *report = planned;
    if exec.partitions.is_none() {
        report.footers = files
            .iter()
            .map(|k| (k.path.clone(), (k.rows, k.bbox)))
            .collect();
    }
    report.context_rss = resident_memory().unwrap_or(0);
    Ok(Opened {
        context: context?,
        files,
        batches,
        first,
    })
}

/// An incremental run reads the partitions its dirty zones need.
fn open_dirty(
    spec: &Spec,
    progress: &dyn Progress,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
    exec: &Execution,
    source: &Source,
    boxes: &[[f64; 4]],
    report: &mut StreamReport,
) -> Result<Opened> {
    let context = load_context(spec, progress, memory, &source.name)?;
    let dirty = crate::incremental::dirty_zones(&context.zones, boxes);
    let needed = crate::incremental::needed_boxes(&context.zones, &dirty);
    report.dirty = Some(dirty);
    let all = source.scan(exec)?;
    report.partitions = all.len();
    let mut files: Vec<Known> = all
        .into_iter()
        .filter(|k| crate::incremental::partition_needed(k.bbox, &needed))
        .collect();
    let rows: Vec<usize> = files.iter().map(|k| k.rows).collect();
    let context_rss = resident_memory().unwrap_or(0);
    report.context_rss = context_rss;
    let batches = plan_batches(report, exec.budget, context_rss, &rows, exec.max_batch);
    progress.begin(
        &format!(
            "batch 1/{}: reading {} partitions of {}",
            batches.len(),
            batches.first().map_or(0, |r| r.len()),
            source.name
        ),
        0,
    );
    let first = batches.first().map(|r| source.read(&mut files[r.clone()]));
    progress.end();
    Ok(Opened {
        context,
        files,
        batches,
        first,
    })
}

/// What the batches of a streamed layer left: the per-zone partials, the
/// quality counts, the read report, and the first batch's path, schema and CRS.
struct Folded {
    partials: BTreeMap<(String, usize), Partial>,
    quality: QualityState,
    read: ReadReport,
    first: Option<(PathBuf, arrow_schema::SchemaRef, Option<Crs>)>,
}

/// A batch must look like the first (a whole read checks the same).
fn check_like_first(
    first: &mut Option<(PathBuf, arrow_schema::SchemaRef, Option<Crs>)>,
    part0: &std::path::Path,
    raw: &terrastat_core::RawLayer,
) -> Result<()> {
    let Some((f0, schema, crs)) = first else {
        *first = Some((
            part0.to_path_buf(),
            raw.attributes.schema(),
            raw.crs.clone(),
        ));
        return Ok(());
    };
    let differ = |what: &str| {
        Err(terrastat_core::Error::format(
            part0,
            format!("its {what} differ from those of {}", f0.display()),
        )
        .into())
    };
    if raw.attributes.schema().fields() != schema.fields() {
        return differ("columns");
    }
    if raw.crs != *crs {
        return Err(terrastat_core::Error::format(
            part0,
            format!("its CRS differs from that of {}", f0.display()),
        )
        .into());
    }
    Ok(())
}

/// Fold the batches in order into the partials of every streamable
/// indicator over the layer; batch k+1 is read while batch k is computed
/// (both on the rayon pool).
fn fold(
    plan: &Plan<'_>,
    progress: &dyn Progress,
    source: &Source,
    opened: &mut Opened,
    exec: &Execution,
) -> Result<Folded> {
    let name = &source.name;
    let mut folded = Folded {
        partials: BTreeMap::new(),
        quality: QualityState::default(),
        read: ReadReport::default(),
        first: None,
    };
    let mut relators = Default::default();
    let mut kind: Option<GeomKind> = None;
    let mut next = opened.first.take();
    let batches = &opened.batches;
    let files = &mut opened.files;
    let read_batch = |files: &mut [Known], k: usize| {
        batches
            .get(k)
            .map(|range| source.read(&mut files[range.clone()]))
    };
    for (k, range) in batches.iter().enumerate() {
        let bp = Batch {
            inner: progress,
            k: k + 1,
            n: batches.len(),
        };
        if progress.cancelled() {
            return Err(terrastat_core::Error::Cancelled.into());
        }
        let part0 = files[range.start].path.clone();
        bp.begin(&format!("checking {} partitions of {name}", range.len()), 0);
        let Some(raw) = next.take() else { break };
        let raw = raw?;
        check_like_first(&mut folded.first, &part0, &raw)?;
        let layer = Layer::from_raw_part(
            name,
            &source.dir,
            raw,
            source.ropts.crs.clone(),
            source.ropts.invalid,
            kind,
        )?;
        folded.read.absorb(layer.report());
        bp.end();
        if layer.is_empty() {
            next = read_batch(files, k + 1);
            continue;
        }
        kind = Some(layer.kind());
        let layer = to_working_crs(layer, plan.crs())?;
        let mut batch = opened.context.sharing();
        batch
            .layers
            .insert(name.clone(), std::sync::Arc::new(layer));
        check_columns(plan, &batch)?;
        let mut ev = Evaluator::new(plan, &batch, &bp)
            .with_partials(std::mem::take(&mut folded.partials), None)
            .with_relators(relators)
            .with_quality(std::mem::take(&mut folded.quality))
            .with_seeds(exec.categories.clone());
        let (done, prefetched) =
            rayon::join(|| ev.accumulate_layer(name), || read_batch(files, k + 1));
        done?;
        next = prefetched;
        relators = ev.relators();
        folded.quality = ev.take_quality();
        folded.partials = ev.into_partials();
    }
    Ok(folded)
}

/// A streamed run: the context loaded once, the layer `name` folded batch
/// by batch, then every indicator finished.
fn stream(
    plan: &Plan<'_>,
    progress: &dyn Progress,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
    exec: &Execution,
    name: &str,
    mut report: StreamReport,
) -> Result<(Inputs, Vec<ZoneTable>, StreamReport)> {
    let spec = plan.spec();
    let source = Source::new(spec, name)?;
    report.layer = Some(name.to_string());
    let mut opened = match &exec.mode {
        Mode::Dirty(boxes) => {
            open_dirty(spec, progress, memory, exec, &source, boxes, &mut report)?
        }
        Mode::Full | Mode::Finish { .. } => {
            open_full(spec, progress, memory, exec, &source, &mut report)?
        }
    };
    report.read = opened.files.len();
    let folded = fold(plan, progress, &source, &mut opened, exec)?;
    let dirty = matches!(exec.mode, Mode::Dirty(_));
    if folded.read.kept == 0 && !dirty {
        return Err(terrastat_core::Error::EmptyLayer {
            path: source.dir,
            detail: format!(
                " ({} rows read, all skipped: {:?})",
                folded.read.read, folded.read.skipped
            ),
        }
        .into());
    }
    // The streamed layer's lineage entry, where a whole read would put it.
    let mut context = opened.context;
    let entry = InputFile {
        role: format!("layers.{name}"),
        path: source.dir.clone(),
        sha256: match &exec.partitions {
            Some(p) => crate::lineage::directory_hash(p),
            None if exec.hash_later => String::new(),
            None => sha256_file(&source.dir)?,
        },
        crs: folded
            .first
            .and_then(|(_, _, c)| c)
            .or(source.ropts.crs.clone())
            .map(|c| c.to_string())
            .unwrap_or_default(),
        report: folded.read,
    };
    insert_lineage(&mut context.files, name, entry);
    let mut ev = Evaluator::new(plan, &context, progress)
        .with_partials(folded.partials, Some(name))
        .with_quality(folded.quality)
        .with_seeds(exec.categories.clone());
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
    plan: &Plan<'_>,
    progress: &dyn Progress,
    memory: BTreeMap<String, terrastat_core::RawLayer>,
    layer: &str,
    partials: &[arrow_array::RecordBatch],
    mut report: StreamReport,
) -> Result<(Inputs, Vec<ZoneTable>, StreamReport)> {
    let spec = plan.spec();
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
    let mut ev = Evaluator::new(plan, &context, progress)
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
