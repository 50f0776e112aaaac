//! One pass over a raster, strip by strip, for the statistics of many zones.

use geo::MultiPolygon;
use rayon::prelude::*;

use super::{CoverageScratch, Needs, PixelPolygon, RasterSource, ZonalStats};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// Options of [`zonal`].
#[derive(Debug, Clone)]
pub struct ZonalOptions {
    /// What to accumulate beyond count and sum.
    pub needs: Needs,
    /// Memory for one strip of raster values (and of weights), in bytes:
    /// the peak memory of a pass is about this plus the zones.
    pub strip_bytes: usize,
}

impl Default for ZonalOptions {
    fn default() -> Self {
        ZonalOptions {
            needs: Needs::default(),
            strip_bytes: 64 << 20,
        }
    }
}

/// The statistics of every zone, and what the pass noticed.
#[derive(Debug, Clone)]
pub struct Zonal {
    /// One entry per zone, in zone order.
    pub stats: Vec<ZonalStats>,
    /// Zones entirely outside the raster.
    pub outside: usize,
    /// Zones partly outside the raster (statistics cover the inside part).
    pub partly_outside: usize,
    /// Zones over the raster without a single valid (not nodata) pixel.
    pub no_valid: usize,
}

/// Exact coverage-weighted statistics of `zones` (polygons in the raster's
/// CRS) over one raster band, in one pass: the raster is read in full-width
/// strips of about `strip_bytes`, and within a strip the zones it meets are
/// processed in parallel. Every zone accumulates its pixels in raster order,
/// so the result does not depend on the number of threads.
///
/// `weights` (for `weighted_mean`) must have the same grid as `raster`.
///
/// ```
/// use geo::{MultiPolygon, Rect};
/// use terrastat_core::raster::{zonal, GeoTransform, MemRaster, ZonalOptions};
/// use terrastat_core::NoProgress;
///
/// // A 2 × 2 raster of 1 m pixels from (0, 2); a zone over its left half
/// // plus half of the top-right pixel.
/// let mut r = MemRaster::new("r", GeoTransform::north_up(0.0, 2.0, 1.0, 1.0), 2, 2,
///                            vec![1.0, 2.0, 3.0, 4.0], None)?;
/// let zone = MultiPolygon(vec![geo::Polygon::new(
///     vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (1.5, 1.0), (1.5, 2.0), (0.0, 2.0), (0.0, 0.0)].into(), vec![])]);
/// let out = zonal(&mut r, None, &[zone], &ZonalOptions::default(), &NoProgress)?;
/// let s = &out.stats[0];
/// assert_eq!(s.count(), 2.5);
/// assert_eq!(s.sum(), 1.0 + 3.0 + 0.5 * 2.0);
/// # Ok::<(), terrastat_core::Error>(())
/// ```
// Long because it is the hot loop over a raster's strips of rows and the
// zones' pixel windows opened as the strips go down, kept in one body so that
// the per-strip buffers stay local.
pub fn zonal(
    raster: &mut dyn RasterSource,
    mut weights: Option<&mut dyn RasterSource>,
    zones: &[MultiPolygon],
    opts: &ZonalOptions,
    progress: &dyn Progress,
) -> Result<Zonal> {
    let info = raster.info().clone();
    if let Some(w) = weights.as_deref() {
        if !w.info().same_grid(&info) {
            return Err(Error::raster(
                &w.info().path,
                format!(
                    "the weights raster's grid ({} × {}, {:?}) differs from {}'s ({} × {}, {:?}); warp one onto the other first",
                    w.info().width,
                    w.info().height,
                    w.info().transform,
                    info.path.display(),
                    info.width,
                    info.height,
                    info.transform
                ),
            ));
        }
    }
    let needs = &opts.needs;
    let (width, height) = (info.width, info.height);
    let gt = info.transform;
    let prepared: Vec<PixelPolygon> = zones
        .par_iter()
        .map(|z| PixelPolygon::new(z, &gt))
        .collect();
    let windows: Vec<_> = prepared
        .iter()
        .map(|p| p.pixel_window(width, height))
        .collect();
    let mut out = Zonal {
        stats: vec![ZonalStats::new(needs); zones.len()],
        outside: 0,
        partly_outside: 0,
        no_valid: 0,
    };
    for (p, w) in prepared.iter().zip(&windows) {
        if p.is_empty() {
            continue;
        }
        match w {
            None => out.outside += 1,
            Some(_) => {
                // In pixel space the raster is [0, width] × [0, height].
                let b = p.bbox();
                if b[0] < 0.0 || b[1] < 0.0 || b[2] > width as f64 || b[3] > height as f64 {
                    out.partly_outside += 1;
                }
            }
        }
    }
    // Zones by first row, to open them as the strips go down.
    let mut order: Vec<usize> = (0..zones.len()).filter(|&z| windows[z].is_some()).collect();
    order.sort_by_key(|&z| windows[z].as_ref().map(|w| w.0.start));
    let first_row = order
        .first()
        .and_then(|&z| windows[z].as_ref().map(|w| w.0.start))
        .unwrap_or(height);
    let last_row = windows.iter().flatten().map(|w| w.0.end).max().unwrap_or(0);
    let bands = 1 + usize::from(weights.is_some());
    let block_rows = info.block.1.max(1);
    let budget_rows = (opts.strip_bytes / (8 * width * bands)).max(1);
    // Strips are whole rows of blocks, so that no block is decoded twice,
    // unless one row of blocks is far over the budget (a one-strip TIFF).
    let rows_per_strip = if budget_rows >= block_rows {
        budget_rows / block_rows * block_rows
    } else if block_rows * width * 8 * bands <= 4 * opts.strip_bytes {
        block_rows
    } else {
        budget_rows
    };
    // The strips that meet a zone, each with the zones it meets.
    let mut strips: Vec<(std::ops::Range<usize>, Vec<usize>)> = Vec::new();
    {
        let mut next = 0; // next zone of `order` to open
        let mut open: Vec<usize> = Vec::new();
        let mut s0 = first_row / block_rows * block_rows;
        while s0 < last_row {
            let s1 = (s0 + rows_per_strip).min(last_row);
            while next < order.len() {
                let z = order[next];
                match &windows[z] {
                    Some(w) if w.0.start < s1 => {
                        open.push(z);
                        next += 1;
                    }
                    _ => break,
                }
            }
            open.retain(|&z| windows[z].as_ref().is_some_and(|w| w.0.end > s0));
            if !open.is_empty() {
                strips.push((s0..s1, open.clone()));
            }
            s0 = s1;
        }
    }
    progress.begin(
        &format!("zonal {}", info.path.display()),
        strips.iter().map(|s| s.0.len() as u64).sum(),
    );
    let mut cur = (Vec::new(), Vec::new());
    let mut spare = (Vec::new(), Vec::new());
    if let Some((rows, _)) = strips.first() {
        read_strip(raster, reborrow(&mut weights), rows.clone(), &mut cur)?;
    }
    for (k, (rows, active)) in strips.iter().enumerate() {
        if progress.cancelled() {
            return Err(Error::Cancelled);
        }
        let (s0, s1) = (rows.start, rows.end);
        let mut work: Vec<(usize, ZonalStats)> = active
            .iter()
            .map(|&z| (z, std::mem::take(&mut out.stats[z])))
            .collect();
        let (values, wvalues) = (&cur.0, &cur.1);
        let has_weights = !wvalues.is_empty();
        let next_rows = strips.get(k + 1).map(|s| s.0.clone());
        let w = reborrow(&mut weights);
        // Read the next strip while this one is processed.
        let (read_next, ()) = rayon::join(
            || match next_rows {
                Some(r) => read_strip(&mut *raster, w, r, &mut spare),
                None => Ok(()),
            },
            || {
                work.par_iter_mut()
                    .for_each_init(CoverageScratch::default, |scratch, (z, acc)| {
                        let Some((rows, cols)) = windows[*z].clone() else {
                            return;
                        };
                        let rows = rows.start.max(s0)..rows.end.min(s1);
                        let nc = cols.len();
                        let fr = prepared[*z].coverage(rows.clone(), cols.clone(), scratch);
                        for (i, r) in rows.enumerate() {
                            let base = (r - s0) * width + cols.start;
                            let vrow = &values[base..base + nc];
                            let frow = &fr[i * nc..(i + 1) * nc];
                            if has_weights {
                                let wrow = &wvalues[base..base + nc];
                                for ((v, c), w) in vrow.iter().zip(frow).zip(wrow) {
                                    acc.add(needs, *v, *c, *w);
                                }
                            } else {
                                for (v, c) in vrow.iter().zip(frow) {
                                    acc.add(needs, *v, *c, f64::NAN);
                                }
                            }
                        }
                    })
            },
        );
        read_next?;
        for (z, acc) in work {
            out.stats[z] = acc;
        }
        std::mem::swap(&mut cur, &mut spare);
        progress.advance((s1 - s0) as u64);
    }
    progress.end();
    out.no_valid = windows
        .iter()
        .zip(&out.stats)
        .filter(|(w, s)| w.is_some() && s.count() == 0.0)
        .count();
    Ok(out)
}

/// The weights source for one read (shortening the trait object's lifetime).
fn reborrow<'b>(w: &'b mut Option<&mut dyn RasterSource>) -> Option<&'b mut dyn RasterSource> {
    match w {
        Some(w) => Some(&mut **w),
        None => None,
    }
}

/// Read rows `rows` of the raster (and of the weights) into `buf`.
fn read_strip(
    raster: &mut dyn RasterSource,
    weights: Option<&mut dyn RasterSource>,
    rows: std::ops::Range<usize>,
    buf: &mut (Vec<f64>, Vec<f64>),
) -> Result<()> {
    raster.read_rows(rows.clone(), &mut buf.0)?;
    match weights {
        Some(w) => w.read_rows(rows, &mut buf.1),
        None => {
            buf.1.clear();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::{GeoTransform, MemRaster};
    use crate::NoProgress;
    use geo::{Polygon, Rect};
    use proptest::prelude::*;

    /// Brute force: every pixel of the raster against every zone, clipping
    /// the zone to the pixel square; one thread, no strips.
    fn brute(
        values: &[f64],
        weights: &[f64],
        w: usize,
        h: usize,
        gt: &GeoTransform,
        zone: &MultiPolygon,
        needs: &Needs,
    ) -> ZonalStats {
        let mut s = ZonalStats::new(needs);
        for r in 0..h {
            for c in 0..w {
                let corners = [(c, r + 1), (c + 1, r + 1), (c + 1, r), (c, r)].map(|(c, r)| {
                    gt.to_world(geo::Coord {
                        x: c as f64,
                        y: r as f64,
                    })
                });
                let mut sq = corners.to_vec();
                if crate::geometry::signed_area(&sq) < 0.0 {
                    sq.reverse();
                }
                let f = crate::exact::area_in_part(&zone.0, &sq) / gt.pixel_area();
                s.add(needs, values[r * w + c], f, weights[r * w + c]);
            }
        }
        s
    }

    fn needs() -> Needs {
        Needs {
            minmax: true,
            variance: true,
            histogram: true,
            ..Needs::default()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Strips of any height, any number of threads: the same statistics
        /// as the brute force, within rounding.
        #[test]
        fn agrees_with_brute_force(
            seed_vals in prop::collection::vec(prop_oneof![Just(f64::NAN), (0u8..5).prop_map(|v| v as f64)], 48),
            boxes in prop::collection::vec((-1.0..7.0f64, -1.0..9.0f64, 0.1..4.0f64, 0.1..4.0f64), 1..6),
            strip_rows in 1usize..9,
            wvals in prop::collection::vec(prop_oneof![Just(f64::NAN), 0.0..3.0f64], 48),
        ) {
            let (w, h) = (6usize, 8usize);
            let gt = GeoTransform::north_up(0.0, 8.0, 1.0, 1.0);
            let zones: Vec<MultiPolygon> = boxes.iter().map(|(x, y, dx, dy)| {
                // A triangle and a box: non-rectangular zones.
                let tri = Polygon::new(vec![(*x, *y), (x + dx, *y), (*x, y + dy), (*x, *y)].into(), vec![]);
                let bx = Rect::new((x + 0.3, y - 1.0), (x + dx * 0.5, y - 0.2)).to_polygon();
                MultiPolygon(vec![tri, bx])
            }).collect();
            let mut r = MemRaster::new("t", gt, w, h, seed_vals.clone(), None).unwrap();
            let mut wr = MemRaster::new("w", gt, w, h, wvals.clone(), None).unwrap();
            let opts = ZonalOptions { needs: needs(), strip_bytes: strip_rows * w * 8 };
            let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
            let fast = zonal(&mut r, Some(&mut wr), &zones, &opts, &NoProgress).unwrap();
            let single = one.install(|| zonal(&mut r, Some(&mut wr), &zones, &opts, &NoProgress)).unwrap();
            for (z, zone) in zones.iter().enumerate() {
                let b = brute(&seed_vals, &wvals, w, h, &gt, zone, &needs());
                let f = &fast.stats[z];
                prop_assert!((f.count() - b.count()).abs() < 1e-12);
                prop_assert!((f.sum() - b.sum()).abs() < 1e-11);
                prop_assert_eq!(f.min(), b.min());
                prop_assert_eq!(f.max(), b.max());
                prop_assert_eq!(f.variety(), b.variety());
                match (f.weighted_mean(), b.weighted_mean()) {
                    (Some(x), Some(y)) => prop_assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0)),
                    (x, y) => prop_assert_eq!(x, y),
                }
                // Bit-identical whatever the thread count.
                let s = &single.stats[z];
                prop_assert_eq!(f.count().to_bits(), s.count().to_bits());
                prop_assert_eq!(f.sum().to_bits(), s.sum().to_bits());
                prop_assert_eq!(f.stdev().map(f64::to_bits), s.stdev().map(f64::to_bits));
            }
        }
    }

    #[test]
    fn outside_and_nodata_zones_are_reported() {
        let gt = GeoTransform::north_up(0.0, 2.0, 1.0, 1.0);
        let mut r =
            MemRaster::new("t", gt, 2, 2, vec![f64::NAN, 1.0, f64::NAN, 2.0], None).unwrap();
        let zones = vec![
            MultiPolygon(vec![Rect::new((10.0, 10.0), (11.0, 11.0)).to_polygon()]),
            MultiPolygon(vec![Rect::new((0.1, 0.1), (0.9, 1.9)).to_polygon()]),
            MultiPolygon(vec![Rect::new((1.5, 0.5), (3.0, 1.5)).to_polygon()]),
        ];
        let out = zonal(&mut r, None, &zones, &ZonalOptions::default(), &NoProgress).unwrap();
        assert_eq!((out.outside, out.no_valid, out.partly_outside), (1, 1, 1));
        assert_eq!(out.stats[0].mean(), None);
        assert_eq!(out.stats[1].count(), 0.0);
        assert_eq!(out.stats[1].mean(), None);
        assert_eq!(out.stats[2].count(), 0.5);
        assert_eq!(out.stats[2].mean(), Some(1.5));
    }
}
