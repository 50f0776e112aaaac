//! `terrastat docs`: the Markdown and HTML data dictionary of a run, its
//! maps, and the page opened in headless Chromium (Debian's `chromium`):
//! no console error, and the screenshot shows the maps' colours.
//!
//! Without Chromium the browser part says SKIPPED, unless
//! `TERRASTAT_REQUIRE_CHROMIUM` is set (CI installs it and sets it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::path::{Path, PathBuf};

use terrastat_core::NoProgress;
use terrastat_indicators::docs::{write, PALETTE};
use terrastat_indicators::run::{run, RunOptions};
use terrastat_indicators::spec::Spec;

fn sample_run(geo: bool) -> (tempfile::TempDir, terrastat_indicators::run::RunOutput) {
    let spec = Spec::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92/catalog.toml"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &spec,
        dir.path(),
        &RunOptions::default().geo(geo),
        &NoProgress,
    )
    .unwrap();
    (dir, out)
}

#[test]
fn the_dictionary_lists_every_published_indicator_with_a_map() {
    let (dir, out) = sample_run(false);
    let d = write(dir.path()).unwrap();
    let md = std::fs::read_to_string(&d.markdown).unwrap();
    let html = std::fs::read_to_string(&d.html).unwrap();
    let published: Vec<_> = out
        .catalog
        .indicators
        .iter()
        .filter(|i| !i.hidden)
        .collect();
    assert_eq!(published.len(), 23);
    for i in &published {
        let en = i.label.en.as_deref().unwrap();
        assert!(
            md.contains(&format!("### {en} (`{}`)", i.name)),
            "{}",
            i.name
        );
        assert!(
            html.contains(&format!("<section id=\"{}\">", i.name)),
            "{}",
            i.name
        );
        assert!(md.contains(&format!("| Unit | {} |", i.unit)), "{}", i.name);
    }
    assert!(
        !md.contains("(`share_fg__fg`)"),
        "helpers are not documented as published indicators"
    );
    assert!(md.contains("| Expression | share_fg__fg / share_fg__known * 100 |"));
    // French labels, lineage with hashes, quality summaries.
    assert!(md.contains("| Libellé | Part des passoires thermiques (étiquettes F et G) |"));
    assert!(md.contains("| tables.elus | ") && md.contains("elus_municipaux.csv | 3796e1936a07"));
    assert!(md.contains("36 zones, 0 withheld"));
    // One map per published indicator and zone layer (zones rebuilt from the spec),
    // one path per zone, no script, no external resource.
    assert_eq!(d.maps.len(), 2 * published.len());
    assert_eq!(html.matches("<svg").count(), d.maps.len());
    let commune_map =
        std::fs::read_to_string(dir.path().join("docs/maps/communes__share_fg.svg")).unwrap();
    assert_eq!(commune_map.matches("<path").count(), 36);
    assert!(
        !html.contains("<script") && !html.contains("http://") && !html.contains("https://")
            || !html.contains("src=")
    );
    // The same maps from the zones the run wrote (--geo).
    let (dir2, _) = sample_run(true);
    write(dir2.path()).unwrap();
    assert_eq!(
        std::fs::read(dir2.path().join("docs/maps/communes__share_fg.svg")).unwrap(),
        commune_map.into_bytes()
    );
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            std::env::split_paths(&path)
                .map(|d| d.join(b))
                .find(|p| p.is_file())
        })
}

#[test]
fn the_html_page_opens_in_headless_chromium_with_its_maps() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("TERRASTAT_REQUIRE_CHROMIUM").is_none(),
            "chromium is required here but not found"
        );
        eprintln!("SKIPPED: no chromium in PATH");
        return;
    };
    let (dir, _) = sample_run(false);
    let d = write(dir.path()).unwrap();
    let shot = dir.path().join("shot.png");
    let profile = dir.path().join("profile");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1100,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", d.html.display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {log}");
    for bad in [
        ":CONSOLE(",
        "Uncaught",
        "Failed to load resource",
        "net::ERR_",
    ] {
        assert!(!log.contains(bad), "the page logged `{bad}`:\n{log}");
    }
    // The screenshot holds the first maps: count the palette's pixels.
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let rgb = |hex: &str| {
        let v = u32::from_str_radix(&hex[1..], 16).unwrap();
        [(v >> 16) as u8, (v >> 8) as u8, v as u8]
    };
    let palette: Vec<[u8; 3]> = PALETTE.iter().map(|c| rgb(c)).collect();
    let mut per_class = vec![0usize; palette.len()];
    for p in buf[..info.buffer_size()].chunks(px) {
        if let Some(k) = palette.iter().position(|c| c[..] == p[..3]) {
            per_class[k] += 1;
        }
    }
    assert!(
        per_class.iter().all(|n| *n > 200),
        "every class of the first map is visible: {per_class:?}"
    );
}
