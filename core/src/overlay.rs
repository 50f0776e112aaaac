//! The overlay engine: for one (layer, zones) pair, the sparse table of
//! (zone, feature, measure of feature ∩ zone) and the centroid zone of every
//! feature, computed once and reused by every indicator on that pair.
//!
//! Everything here is parallel (rayon) and deterministic: results are
//! collected in feature order and grouped by zone in zone order, so they do
//! not depend on the number of threads.

use std::sync::{Arc, OnceLock};

use geo::{Area, BoundingRect, Coord, Geometry, Rect};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::geometry::{centroid, clip_multipolygon_to_rect, grow, measure, union_rects};
use crate::index::{BoxIndex, Location};
use crate::layer::{GeomKind, Layer};
use crate::progress::{Progress, CHUNK};
use crate::setgrid::Cell;
use crate::zones::Zones;

/// The sparse overlay table, grouped by zone: for zone `z`, the features in
/// `features[offsets[z]..offsets[z + 1]]` (ascending), with the measure of
/// their part inside the zone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pairs {
    /// Start of each zone's run, plus one final entry.
    pub offsets: Vec<usize>,
    /// Feature indexes.
    pub features: Vec<u32>,
    /// Measure of feature ∩ zone (area, length or point count); 0 when they only touch.
    pub measures: Vec<f64>,
    /// For each feature, Σ over zones of measure(feature ∩ zone).
    pub totals: Vec<f64>,
}

impl Pairs {
    /// The features of zone `z` and their measures.
    pub fn zone(&self, z: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.offsets[z], self.offsets[z + 1]);
        (&self.features[a..b], &self.measures[a..b])
    }
}

/// The overlay of one layer on one zone layer.
#[derive(Debug)]
pub struct Overlay {
    layer: Arc<Layer>,
    zones: Arc<Zones>,
    /// Bounding box and measure of each feature (computed on first use).
    geometry_facts: OnceLock<(Vec<Option<Rect>>, Vec<f64>)>,
    centroid_zone: OnceLock<Vec<Option<u32>>>,
    pairs: OnceLock<Pairs>,
    feature_index: OnceLock<BoxIndex>,
}

/// The zone of a point: the first zone (in zone order) that contains it
/// strictly; if none, the first whose boundary it lies on; so a point on a
/// boundary shared by two zones goes to exactly one of them. For H3 zones,
/// the zone of H3's own cell of the point (O(1)).
pub(crate) fn locate_zone(zones: &Zones, c: Coord) -> Option<u32> {
    if let Some(h) = zones.h3() {
        return h.zone_of(c);
    }
    if let Some(g) = zones.set_grid() {
        match g.at(c) {
            Cell::Empty => return None,
            Cell::First(z) => return Some(z),
            // The cell's own candidates, without the R-tree.
            Cell::Inside | Cell::Unknown => {
                if let Some(near) = g.near(c) {
                    return first_containing(zones, near.iter().copied(), c);
                }
            }
        }
    }
    locate_zone_exact(zones, c)
}

/// The zone of point `c`: the first zone (in zone order) that contains it
/// strictly; if none, the first whose boundary it lies on. What the overlay
/// computes for a centroid, by the zones' R-tree alone (no grid, no H3
/// shortcut): the oracle of the fast paths.
pub fn locate_zone_exact(zones: &Zones, c: Coord) -> Option<u32> {
    first_containing(zones, zones.index().at_point(c), c)
}

/// The first of `candidates` (in set order) with `c` inside, else the first
/// with `c` on its boundary.
fn first_containing(
    zones: &Zones,
    candidates: impl IntoIterator<Item = u32>,
    c: Coord,
) -> Option<u32> {
    let mut boundary = None;
    for z in candidates {
        match zones.prepared()[z as usize].locate(c) {
            Location::Inside => return Some(z),
            Location::Boundary if boundary.is_none() => boundary = Some(z),
            _ => {}
        }
    }
    boundary
}

fn check_cancel(p: &dyn Progress) -> Result<()> {
    if p.cancelled() {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

impl Overlay {
    /// Prepare the overlay of `layer` on `zones` (nothing heavy is computed yet).
    pub fn new(layer: Arc<Layer>, zones: Arc<Zones>) -> Result<Overlay> {
        if !layer.crs().same_as(zones.crs()) {
            return Err(Error::CrsMismatch {
                path: layer.source().to_path_buf(),
                layer_crs: layer.crs().to_string(),
                working_crs: zones.crs().to_string(),
            });
        }
        Ok(Overlay {
            layer,
            zones,
            geometry_facts: OnceLock::new(),
            centroid_zone: OnceLock::new(),
            pairs: OnceLock::new(),
            feature_index: OnceLock::new(),
        })
    }

    /// The layer.
    pub fn layer(&self) -> &Layer {
        &self.layer
    }
    /// The zones.
    pub fn zones(&self) -> &Zones {
        &self.zones
    }
    /// The measure of each feature (area, length, or number of points); an
    /// error for a layer read for its centroids only.
    pub fn feature_measures(&self) -> Result<&[f64]> {
        self.layer.require_geometries("measuring its features")?;
        Ok(&self.facts().1)
    }

    fn facts(&self) -> &(Vec<Option<Rect>>, Vec<f64>) {
        self.geometry_facts.get_or_init(|| {
            self.layer
                .geometries()
                .par_iter()
                .map(|g| (g.bounding_rect(), measure(g)))
                .unzip()
        })
    }
    /// The bounding box of each feature.
    pub fn feature_rects(&self) -> &[Option<Rect>] {
        &self.facts().0
    }

    /// An R-tree of the features' boxes (built on first use).
    pub fn feature_index(&self) -> &BoxIndex {
        self.feature_index
            .get_or_init(|| BoxIndex::new(self.facts().0.iter().map(|r| r.as_ref())))
    }

    /// For each feature, the zone its centroid lies in: the first zone (in
    /// zone order) containing it strictly, else the first whose boundary it
    /// lies on ([`locate_zone_exact`], with faster paths to the same answer).
    pub fn centroid_zones(&self, progress: &dyn Progress) -> Result<&[Option<u32>]> {
        if let Some(v) = self.centroid_zone.get() {
            return Ok(v);
        }
        let geoms = self.layer.geometries();
        progress.begin(
            &format!("{} → {}: centroids", self.layer.name(), self.zones.name()),
            geoms.len() as u64,
        );
        let chunks: Vec<Vec<Option<u32>>> = geoms
            .par_chunks(CHUNK)
            .map(|chunk| {
                check_cancel(progress)?;
                let out = chunk
                    .iter()
                    .map(|g| centroid(g).and_then(|c| locate_zone(&self.zones, c)))
                    .collect();
                progress.advance(chunk.len() as u64);
                Ok(out)
            })
            .collect::<Result<_>>()?;
        progress.end();
        Ok(self.centroid_zone.get_or_init(|| chunks.concat()))
    }

    /// The sparse (zone, feature, measure) table.
    pub fn pairs(&self, progress: &dyn Progress) -> Result<&Pairs> {
        if let Some(p) = self.pairs.get() {
            return Ok(p);
        }
        self.layer.require_geometries("an intersection overlay")?;
        let geoms = self.layer.geometries();
        let zones = &self.zones;
        let (rects, measures) = self.facts();
        progress.begin(
            &format!("{} → {}: intersections", self.layer.name(), zones.name()),
            geoms.len() as u64,
        );
        // Features wholly inside one zone, inside no other and away from
        // every boundary (most of them), are resolved by the zones' grid;
        // the others go through the R-tree and the exact pieces.
        let grid = if zones.h3().is_none() {
            zones.set_grid()
        } else {
            None
        };
        let idx: Vec<usize> = (0..geoms.len()).collect();
        let chunks: Vec<Vec<(u32, u32, f64)>> = idx
            .par_chunks(CHUNK)
            .map(|chunk| {
                check_cancel(progress)?;
                let mut out: Vec<(u32, u32, f64)> =
                    Vec::with_capacity(chunk.len() + chunk.len() / 8);
                for &i in chunk {
                    let Some(rect) = &rects[i] else { continue };
                    if let Some(z) = grid.and_then(|g| g.sole_in(rect)) {
                        out.push((i as u32, z, measures[i]));
                        continue;
                    }
                    for z in zones.index().intersecting(rect) {
                        if let Some(p) =
                            zones.prepared()[z as usize].piece(&geoms[i], rect, measures[i])
                        {
                            out.push((i as u32, z, p.measure));
                        }
                    }
                }
                progress.advance(chunk.len() as u64);
                Ok(out)
            })
            .collect::<Result<Vec<_>>>()?;
        progress.end();
        Ok(self
            .pairs
            .get_or_init(|| transpose(&chunks, geoms.len(), zones.len())))
    }

    /// For each zone, the area of the union of the layer's polygons inside
    /// it (overlapping features counted once), among the features where
    /// `mask` is true (all when `None`). Polygon layers only.
    pub fn covered_areas(
        &self,
        mask: Option<&[bool]>,
        progress: &dyn Progress,
    ) -> Result<Vec<f64>> {
        if self.layer.kind() != GeomKind::Polygon {
            return Err(Error::GeometryType {
                layer: format!(
                    "layer `{}` ({})",
                    self.layer.name(),
                    self.layer.source().display()
                ),
                message: "coverage needs a polygon layer".into(),
            });
        }
        self.layer.require_geometries("coverage")?;
        let index = self.feature_index();
        let geoms = self.layer.geometries();
        let rects = self.feature_rects();
        progress.begin(
            &format!("{} → {}: coverage", self.layer.name(), self.zones.name()),
            self.zones.len() as u64,
        );
        let areas: Vec<f64> = self
            .zones
            .prepared()
            .par_iter()
            .map(|zone| {
                check_cancel(progress)?;
                let Some(zr) = zone.rect() else {
                    return Ok(0.0);
                };
                let a = covered_in_zone(zone, zr, index, geoms, rects, mask);
                progress.advance(1);
                Ok(a)
            })
            .collect::<Result<_>>()?;
        progress.end();
        Ok(areas)
    }
}

/// area(∪ features ∩ zone), exactly: features inside the zone whose boxes
/// meet no other candidate's count their own area; the others go, with the
/// zone clipped to a box around them, through the exact sweep
/// ([`crate::exact::covered_area`]). No boolean operation, no snapping.
fn covered_in_zone(
    zone: &crate::index::PreparedPolygon,
    zr: &Rect,
    index: &BoxIndex,
    geoms: &[Geometry],
    rects: &[Option<Rect>],
    mask: Option<&[bool]>,
) -> f64 {
    use geo::CoordsIter;
    let cands: Vec<usize> = index
        .intersecting(zr)
        .into_iter()
        .map(|f| f as usize)
        .filter(|f| mask.is_none_or(|m| m[*f]))
        .collect();
    // Drop features outside the zone; note those wholly inside.
    let mut kept: Vec<(usize, bool)> = Vec::with_capacity(cands.len());
    for f in cands {
        let Some(r) = rects[f].as_ref() else { continue };
        if zone.boundary_near(r) {
            kept.push((f, false));
        } else if geoms[f]
            .coords_iter()
            .next()
            .is_some_and(|c| zone.locate(c) == Location::Inside)
        {
            kept.push((f, true));
        }
    }
    let local = BoxIndex::new(kept.iter().map(|(f, _)| rects[*f].as_ref()));
    let mut alone = 0.0;
    let mut swept: Vec<&geo::Polygon> = Vec::new();
    let mut bbox: Option<Rect> = None;
    for (f, inside) in &kept {
        let r = rects[*f].as_ref();
        let lonely = r.is_some_and(|r| local.intersecting(r).len() <= 1);
        if *inside && lonely {
            alone += geoms[*f].unsigned_area();
            continue;
        }
        bbox = union_rects(bbox, r.copied());
        match &geoms[*f] {
            Geometry::Polygon(p) => swept.push(p),
            Geometry::MultiPolygon(mp) => swept.extend(mp.0.iter()),
            _ => {}
        }
    }
    let Some(b) = bbox else {
        return alone;
    };
    // The zone near the swept features only: a margin keeps the clip's cut
    // points away from them.
    let around = grow(&b, 1.0 + b.width().max(b.height()));
    let z = clip_multipolygon_to_rect(zone.geometry(), &around);
    let zp: Vec<&geo::Polygon> = z.0.iter().collect();
    alone + crate::exact::covered_area(Some(&zp), &swept)
}

/// Turn (feature, zone, measure) triples, in feature order, into the
/// per-zone table.
fn transpose(chunks: &[Vec<(u32, u32, f64)>], n_features: usize, n_zones: usize) -> Pairs {
    let mut counts = vec![0usize; n_zones + 1];
    for (_, z, _) in chunks.iter().flatten() {
        counts[*z as usize + 1] += 1;
    }
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    let offsets = counts.clone();
    let total = offsets[n_zones];
    let mut features = vec![0u32; total];
    let mut measures = vec![0f64; total];
    let mut next = counts;
    let mut totals = vec![0.0; n_features];
    for &(f, z, m) in chunks.iter().flatten() {
        let slot = &mut next[z as usize];
        features[*slot] = f;
        measures[*slot] = m;
        *slot += 1;
        totals[f as usize] += m;
    }
    Pairs {
        offsets,
        features,
        measures,
        totals,
    }
}
