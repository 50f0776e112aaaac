//! The `terrastat` command line: `run`, `check`, `generate`, `catalog`, `docs`, `explain`.
//!
//! clap CLI (`run`, `check`, `generate`, `catalog`, `explain`, `docs`),
//! indicatif progress bar, `--timings`, join reports. The binary's allocator is
//! mimalloc, with freed memory kept (no purge) and transparent huge pages off
//! for the process (`PR_SET_THP_DISABLE` unless `MIMALLOC_ALLOW_THP` is set):
//! first touches of huge pages stalled runs on our VM. A run's output is left
//! to the OS at exit.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use terrastat_core::{read_layer, Progress, ReadOptions};
use terrastat_indicators::generate::{generate, GenerateOptions};
use terrastat_indicators::run::{run, RunOptions};
use terrastat_indicators::spec::Spec;

// Millions of small geometries: a fast allocator matters.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (not exported by
/// `libmimalloc-sys` 0.1.49).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turn transparent huge pages off for this process, unless the user chose
/// with `MIMALLOC_ALLOW_THP`. mimalloc asks for huge pages (`madvise`), and
/// with the common `defrag = madvise` setting each first touch of a 2 MiB
/// page may stall in compaction and zeroes the whole page: interleaved runs
/// of workload (a) at 10 M buildings took 4.23–4.45 s with huge pages and
/// 3.80–3.85 s without, and the worst of two 50 M runs 25.3 s against 17.1 s.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: a process flag read by the kernel at page faults; it takes
        // no pointer. Mappings mimalloc made before `main` are covered too.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

#[derive(Parser)]
#[command(
    name = "terrastat",
    version,
    about = "Territorial indicators from geodata layers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compute every indicator of a spec and write the outputs.
    Run {
        /// The spec (TOML).
        spec: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Also write the zone geometries as GeoParquet.
        #[arg(long)]
        geo: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Print the time of each stage on stderr.
        #[arg(long)]
        timings: bool,
        /// Memory budget (e.g. 8G, 512M): the largest partitioned layer is
        /// read a few partitions at a time to stay under it. Default: half
        /// the machine's memory. The outputs do not depend on it.
        #[arg(long, value_parser = terrastat_indicators::stream::parse_size)]
        memory: Option<u64>,
        /// Largest batch of the streamed layer, in features (default
        /// 1,500,000; smaller when --memory asks). The outputs do not depend on it.
        #[arg(long)]
        batch_features: Option<u64>,
        /// Recompute only the zones whose inputs changed since the run that
        /// wrote --out (from its manifest.json); the outputs equal a full run.
        #[arg(long)]
        incremental: bool,
    },
    /// List the indicator templates of the standard library, used in a spec
    /// as `[[indicators]] use = "<id>"`.
    Catalog {
        /// Output format.
        #[arg(long, value_enum, default_value_t = CatalogFormat::Text)]
        format: CatalogFormat,
        /// Only the templates matching every word (ids, labels, definitions,
        /// keywords; in English or French; case and accents ignored).
        #[arg(long)]
        search: Option<String>,
        /// Language of labels and definitions: `en` or `fr`.
        #[arg(long, default_value = "en", value_parser = ["en", "fr"])]
        lang: String,
    },
    /// Write the data dictionary of a run: OUTDIR/docs/index.md and a
    /// self-contained OUTDIR/docs/index.html, with a choropleth map per
    /// indicator and zone layer.
    Docs {
        /// The output directory of a run.
        outdir: PathBuf,
    },
    /// How one published value was computed: the features, weights and
    /// filters behind it, recomputed from the run's spec and inputs.
    Explain {
        /// The output directory of a run.
        outdir: PathBuf,
        /// The indicator.
        indicator: String,
        /// The zone's id.
        zone: String,
        /// The zone layer (default: the first one the indicator is written for that has this id).
        #[arg(long)]
        zones: Option<String>,
        /// Output format.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
        /// Features listed in text (all in JSON).
        #[arg(long, default_value_t = 20)]
        max_features: usize,
    },
    /// Validate a spec and its inputs without computing.
    Check {
        /// The spec (TOML).
        spec: PathBuf,
    },
    /// Generate synthetic buildings, vegetation and flood layers inside real communes.
    Generate {
        /// The communes (polygons with a population column).
        #[arg(long)]
        communes: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Number of buildings.
        #[arg(long, default_value_t = 10_000)]
        buildings: usize,
        /// Number of vegetation polygons.
        #[arg(long, default_value_t = 500)]
        vegetation: usize,
        /// Number of flood corridors.
        #[arg(long, default_value_t = 10)]
        flood: usize,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write the buildings as a directory partitioned by the H3 cell of
        /// this resolution containing each centroid (`buildings/h3_<r>=<cell>/`).
        #[arg(long)]
        partition_h3: Option<u8>,
        /// With --partition-h3: buildings generated and written this many at
        /// a time (memory follows the chunk, not the total).
        #[arg(long, default_value_t = 4_000_000)]
        chunk: usize,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
}

/// Formats of `terrastat catalog`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum CatalogFormat {
    /// One line per template: id, unit, label.
    Text,
    /// Every field, as a JSON array.
    Json,
    /// A Markdown document, one section per theme.
    Markdown,
}

/// A progress bar on stderr (hidden when stderr is not a terminal or `--quiet`),
/// optionally printing each stage's duration.
struct Bar(
    ProgressBar,
    Option<std::sync::Mutex<(String, std::time::Instant)>>,
);

impl Bar {
    fn new(quiet: bool, timings: bool) -> Bar {
        let pb = ProgressBar::with_draw_target(
            None,
            if quiet {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg:40} [{bar:30}] {human_pos}/{human_len} {elapsed_precise} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Bar(
            pb,
            timings.then(|| std::sync::Mutex::new((String::new(), std::time::Instant::now()))),
        )
    }
}

impl Progress for Bar {
    fn begin(&self, stage: &str, total: u64) {
        if let Some(t) = &self.1 {
            if let Ok(mut t) = t.lock() {
                *t = (stage.to_string(), std::time::Instant::now());
            }
        }
        self.0.reset();
        self.0.set_length(total);
        self.0.set_message(stage.to_string());
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn end(&self) {
        if let Some(t) = &self.1 {
            if let Ok(t) = t.lock() {
                self.0
                    .suspend(|| eprintln!("  {:>8.3} s  {}", t.1.elapsed().as_secs_f64(), t.0));
            }
        }
        self.0.tick();
    }
}

fn threads(n: Option<usize>) -> anyhow::Result<()> {
    if let Some(n) = n {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("cannot set the thread count")?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn report_inputs(inputs: &terrastat_indicators::inputs::Inputs) {
    for f in &inputs.files {
        if let Some(r) = f
            .role
            .strip_prefix("rasters.")
            .and_then(|n| inputs.rasters.get(n))
        {
            let i = &r.info;
            eprintln!(
                "  {:<22} {} × {} pixels, band {} ({}), {}",
                f.role,
                i.width,
                i.height,
                i.band,
                i.data_type,
                i.crs
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "no CRS".into())
            );
            continue;
        }
        let r = &f.report;
        let mut line = format!("  {:<22} {:>9} read, {:>9} kept", f.role, r.read, r.kept);
        if r.skipped_total() > 0 {
            line += &format!(", {} skipped {:?}", r.skipped_total(), r.skipped);
        }
        if r.repaired_total() > 0 {
            line += &format!(", {} repaired {:?}", r.repaired_total(), r.repaired);
        }
        if r.centroids > 0 {
            line += " (as centroids: only attributed by centroid)";
        }
        eprintln!("{line}");
    }
    for (t, joins) in &inputs.joins {
        for (_, report) in joins.values() {
            eprintln!("  tables.{t:<15} {report}");
        }
    }
}

// Long because it is the dispatch of the subcommands, one short arm each.
fn real_main() -> anyhow::Result<()> {
    // Keep freed memory for reuse instead of returning it to the OS: a
    // streamed run frees and reallocates its batches' buffers, and zeroing
    // fresh pages cost 13 % of a 10 M-building run (40.2 s instead of 44.5 s).
    // SAFETY: sets an allocator option; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    no_huge_pages();
    let cli = Cli::parse();
    match cli.command {
        Command::Explain {
            outdir,
            indicator,
            zone,
            zones,
            format,
            max_features,
        } => {
            let e = terrastat_indicators::explain::explain(
                &outdir,
                &indicator,
                &zone,
                zones.as_deref(),
            )?;
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                print!("{}", e.to_text(max_features));
            }
        }
        Command::Docs { outdir } => {
            let d = terrastat_indicators::docs::write(&outdir)?;
            eprintln!(
                "wrote {} and {} ({} maps)",
                d.markdown.display(),
                d.html.display(),
                d.maps.len()
            );
        }
        Command::Catalog {
            format,
            search,
            lang,
        } => {
            use terrastat_indicators::templates::{to_markdown, to_text, Library};
            let lib = Library::standard();
            let found = match &search {
                Some(q) => lib.search(q),
                None => lib.iter().collect(),
            };
            if found.is_empty() {
                anyhow::bail!(
                    "no template matches `{}`",
                    search.as_deref().unwrap_or_default()
                );
            }
            match format {
                CatalogFormat::Text => print!("{}", to_text(&found, &lang)),
                CatalogFormat::Markdown => print!("{}", to_markdown(&found, &lang)),
                CatalogFormat::Json => println!("{}", serde_json::to_string_pretty(&found)?),
            }
        }
        Command::Run {
            spec,
            out,
            threads: n,
            geo,
            quiet,
            timings,
            memory,
            batch_features,
            incremental,
        } => {
            threads(n)?;
            let spec = Spec::load(&spec)?;
            let bar = Bar::new(quiet, timings);
            let t0 = std::time::Instant::now();
            let opts = RunOptions::default()
                .geo(geo)
                .memory(memory)
                .batch_features(batch_features)
                .incremental(incremental);
            let result = run(&spec, &out, &opts, &bar);
            bar.0.finish_and_clear();
            let result = result?;
            if !quiet {
                eprintln!("inputs:");
                report_inputs(&result.inputs);
                let st = &result.stream;
                match (&st.layer, &st.reason) {
                    (Some(l), _) => eprintln!(
                        "streamed {l}: {} partitions in {} batches (largest {} features; budget {:.1} GiB, {:.2} GiB held before streaming)",
                        st.partitions,
                        st.batches,
                        st.largest_batch,
                        st.budget as f64 / (1u64 << 30) as f64,
                        st.context_rss as f64 / (1u64 << 30) as f64
                    ),
                    (None, Some(why)) if timings => eprintln!("not streamed: {why}"),
                    _ => {}
                }
                if let Some(r) = &result.incremental {
                    match &r.reason {
                        Some(why) => eprintln!("incremental: full run ({why})"),
                        None => {
                            let zones: Vec<String> = r
                                .zones
                                .iter()
                                .map(|(n, (d, t))| format!("{n} {d}/{t}"))
                                .collect();
                            eprintln!(
                                "incremental: {} partitions changed, added or removed; {} of {} read; zones recomputed: {}",
                                r.changed.len(),
                                r.read,
                                st.partitions,
                                zones.join(", ")
                            );
                            for c in r.changed.iter().take(10) {
                                eprintln!("  changed: {c}");
                            }
                        }
                    }
                }
                for t in &result.tables {
                    eprintln!(
                        "zones {:<16} {:>7} zones × {} columns",
                        t.zones,
                        t.batch.num_rows(),
                        t.batch.num_columns() - 1
                    );
                    for p in t.rasters.iter().filter(|p| p.zones == t.zones) {
                        let mut notes = Vec::new();
                        if p.outside > 0 {
                            notes.push(format!("{} outside the raster (null)", p.outside));
                        }
                        if p.partly_outside > 0 {
                            notes.push(format!(
                                "{} partly outside (statistics of the inside part)",
                                p.partly_outside
                            ));
                        }
                        if p.no_valid > 0 {
                            notes.push(format!("{} without a valid pixel (null)", p.no_valid));
                        }
                        let name = match &p.weights {
                            Some(w) => format!("{} (weights {w})", p.raster),
                            None => p.raster.clone(),
                        };
                        if !notes.is_empty() {
                            eprintln!("  raster {name}: zones {}", notes.join(", "));
                        }
                    }
                }
                eprintln!(
                    "wrote {} files to {} in {:.2} s",
                    result.files.len(),
                    out.display(),
                    t0.elapsed().as_secs_f64()
                );
            }
            // The process ends here: the zones' indexes and the tables are
            // left to the OS rather than freed piece by piece (0.05 s of a
            // 1 s run over the French communes).
            std::mem::forget(result);
        }
        Command::Check { spec } => {
            let spec = Spec::load(&spec)?;
            // Open every input and dry-run every indicator on empty work: the
            // cheapest complete check is a real evaluation of the inputs' schema.
            let inputs =
                terrastat_indicators::inputs::Inputs::load(&spec, &terrastat_core::NoProgress)?;
            terrastat_indicators::inputs::check_columns(
                &terrastat_indicators::Plan::new(&spec)?,
                &inputs,
            )?;
            eprintln!(
                "{}: OK ({} layers, {} zone layers, {} indicators)",
                spec.path.display(),
                inputs.layers.len(),
                inputs.zones.len(),
                spec.indicators.len()
            );
            report_inputs(&inputs);
        }
        Command::Generate {
            communes,
            out,
            buildings,
            vegetation,
            flood,
            seed,
            partition_h3,
            chunk,
            threads: n,
        } => {
            threads(n)?;
            let layer = read_layer("communes", &communes, &ReadOptions::default())?;
            let opts = GenerateOptions::default()
                .buildings(buildings)
                .vegetation(vegetation)
                .flood(flood)
                .seed(seed)
                .partition_h3(partition_h3)
                .chunk(chunk);
            let t0 = std::time::Instant::now();
            let s = generate(&layer, &opts, &out)?;
            eprintln!(
                "generated {} buildings, {} vegetation polygons, {} flood corridors in {:.2} s → {}",
                s.buildings, s.vegetation, s.flood, t0.elapsed().as_secs_f64(), out.display()
            );
        }
    }
    Ok(())
}
