//! Helpers shared by the integration tests of streamed, incremental and
//! faulty runs over generated, H3-partitioned data.
#![allow(dead_code)] // each test file uses some of them

use std::path::{Path, PathBuf};

use terrastat_core::{read_layer, ReadOptions};
use terrastat_indicators::generate::{generate, GenerateOptions};

/// The 36 communes of the Hauts-de-Seine sample.
pub fn communes_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92/communes.parquet")
}

/// Generated buildings partitioned by res-7 H3 cells (dozens of
/// partitions) over the sample communes, with vegetation and flood, in
/// `dir/gen` (returned).
pub fn partitioned(
    dir: &Path,
    buildings: usize,
    vegetation: usize,
    flood: usize,
    seed: u64,
) -> PathBuf {
    let communes = read_layer("communes", &communes_path(), &ReadOptions::default()).unwrap();
    let gen = dir.join("gen");
    let opts = GenerateOptions::default()
        .buildings(buildings)
        .vegetation(vegetation)
        .flood(flood)
        .seed(seed)
        .partition_h3(Some(7));
    generate(&communes, &opts, &gen).unwrap();
    gen
}

/// The `.parquet` and `.csv` outputs of a run directory, by name, with their bytes.
pub fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet" || x == "csv"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The lineage entry of input `role` of a run (`layers.b`, `zones.z`).
pub fn input<'a>(
    out: &'a terrastat_indicators::run::RunOutput,
    role: &str,
) -> &'a terrastat_indicators::lineage::InputFile {
    out.inputs
        .files
        .iter()
        .find(|f| f.role == role)
        .unwrap_or_else(|| panic!("no input `{role}`"))
}

/// The read report of input `role` of a run.
pub fn report<'a>(
    out: &'a terrastat_indicators::run::RunOutput,
    role: &str,
) -> &'a terrastat_core::ReadReport {
    &input(out, role).report
}
