//! Relations between two layers: which features of one intersect (or have
//! their centroid in) the other, and the distance to the nearest feature.
//!
//! `Relator` (another layer's R-tree, prepared polygons and grid, built once
//! and reused by every batch of a streamed layer) and its `flags` (feature
//! intersects / centroid in another layer) and `nearest_distances` (exact best-
//! first search on the R-tree).

use std::borrow::Borrow;

use geo::line_measures::{Distance, Euclidean};
use geo::{BoundingRect, CoordsIter, Geometry, Intersects, Rect};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::geometry::centroid;
use crate::index::{BoxIndex, Location, PreparedPolygon};
use crate::layer::{GeomKind, Layer};
use crate::progress::{Progress, CHUNK};
use crate::setgrid::{default_cells, Cell, SetGrid};

/// How a feature relates to another layer in `share_within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Predicate {
    /// The feature intersects a feature of the other layer (touching counts).
    Intersects,
    /// The feature's centroid lies in (or on the boundary of) a feature of the other layer.
    Centroid,
}

fn check(layer: &Layer, other: &Layer) -> Result<()> {
    if !layer.crs().same_as(other.crs()) {
        return Err(Error::CrsMismatch {
            path: other.source().to_path_buf(),
            layer_crs: other.crs().to_string(),
            working_crs: layer.crs().to_string(),
        });
    }
    Ok(())
}

/// For each feature of `layer`, whether it relates to some feature of `other`.
pub fn flags(
    layer: &Layer,
    other: &Layer,
    predicate: Predicate,
    progress: &dyn Progress,
) -> Result<Vec<bool>> {
    Relator::new(other, layer.len()).flags(layer, predicate, progress)
}

/// The indexes of one layer that other layers' features are related to:
/// prepared once, queried by any number of layers (the batches of a
/// streamed layer reuse the one built for the first).
#[derive(Debug)]
pub struct Relator<L: Borrow<Layer>> {
    other: L,
    index: BoxIndex,
    prepared: Option<Vec<PreparedPolygon>>,
    grid: Option<SetGrid>,
}

impl<L: Borrow<Layer>> Relator<L> {
    /// Index `other` (a `&Layer` or an `Arc<Layer>`) for about `queries`
    /// features to test (a finer grid pays off with many queries: up to 4
    /// cells per feature).
    pub fn new(other: L, queries: usize) -> Relator<L> {
        let o: &Layer = other.borrow();
        let orects: Vec<Option<Rect>> = o.geometries().iter().map(|g| g.bounding_rect()).collect();
        let index = BoxIndex::new(orects.iter().map(|r| r.as_ref()));
        let prepared: Option<Vec<PreparedPolygon>> = (o.kind() == GeomKind::Polygon).then(|| {
            o.geometries()
                .par_iter()
                .map(PreparedPolygon::from_geometry)
                .collect()
        });
        let grid = prepared
            .as_ref()
            .and_then(|p| SetGrid::new(p, default_cells(p).max(4 * queries)));
        Relator {
            other,
            index,
            prepared,
            grid,
        }
    }

    /// The indexed layer.
    pub fn other(&self) -> &Layer {
        self.other.borrow()
    }

    /// For each feature of `layer`, whether it relates to some feature of
    /// the indexed layer.
    pub fn flags(
        &self,
        layer: &Layer,
        predicate: Predicate,
        progress: &dyn Progress,
    ) -> Result<Vec<bool>> {
        let other: &Layer = self.other.borrow();
        check(layer, other)?;
        other.require_geometries("being the other layer of a relation")?;
        if predicate != Predicate::Centroid {
            layer.require_geometries(&format!("the predicate {predicate:?}"))?;
        }
        let (index, prepared, grid) = (&self.index, &self.prepared, &self.grid);
        let geoms = layer.geometries();
        progress.begin(
            &format!("{} within {}", layer.name(), other.name()),
            geoms.len() as u64,
        );
        let out: Vec<Vec<bool>> = geoms
            .par_chunks(CHUNK)
            .map(|chunk| {
                if progress.cancelled() {
                    return Err(Error::Cancelled);
                }
                let v = chunk
                    .iter()
                    .map(|g| match predicate {
                        Predicate::Centroid => centroid(g).is_some_and(|c| {
                            match grid.as_ref().map(|gr| gr.at(c)) {
                                Some(Cell::Empty) => return false,
                                Some(Cell::First(_) | Cell::Inside) => return true,
                                _ => {}
                            }
                            index.at_point(c).into_iter().any(|o| match prepared {
                                Some(p) => p[o as usize].locate(c) != Location::Outside,
                                None => other.geometries()[o as usize].intersects(&c),
                            })
                        }),
                        Predicate::Intersects => g.bounding_rect().is_some_and(|r| {
                            if let Some(gr) = grid {
                                if gr.empty_in(&r) {
                                    return false;
                                }
                                let inside = g.coords_iter().next().is_some_and(|c| {
                                    matches!(gr.at(c), Cell::First(_) | Cell::Inside)
                                });
                                if inside {
                                    return true;
                                }
                            }
                            index.intersecting(&r).into_iter().any(|o| match prepared {
                                Some(p) => p[o as usize].intersects(g, &r),
                                None => other.geometries()[o as usize].intersects(g),
                            })
                        }),
                    })
                    .collect();
                progress.advance(chunk.len() as u64);
                Ok(v)
            })
            .collect::<Result<_>>()?;
        progress.end();
        Ok(out.concat())
    }
}

/// For each feature of `layer`, the Euclidean distance from its geometry to
/// the nearest geometry of `other` (0 when they intersect); `None` when
/// `other` is empty. Exact: candidates are visited by increasing distance
/// of their boxes until no box can be nearer than the best found.
pub fn nearest_distances(
    layer: &Layer,
    other: &Layer,
    progress: &dyn Progress,
) -> Result<Vec<Option<f64>>> {
    check(layer, other)?;
    layer.require_geometries("a nearest distance")?;
    other.require_geometries("being the other layer of a nearest distance")?;
    let orects: Vec<Option<Rect>> = other
        .geometries()
        .iter()
        .map(|g| g.bounding_rect())
        .collect();
    let index = BoxIndex::new(orects.iter().map(|r| r.as_ref()));
    let geoms = layer.geometries();
    progress.begin(
        &format!("{}: nearest {}", layer.name(), other.name()),
        geoms.len() as u64,
    );
    let out: Vec<Vec<Option<f64>>> = geoms
        .par_chunks(CHUNK)
        .map(|chunk| {
            if progress.cancelled() {
                return Err(Error::Cancelled);
            }
            let v = chunk
                .iter()
                .map(|g| nearest(g, other.geometries(), &index))
                .collect();
            progress.advance(chunk.len() as u64);
            Ok(v)
        })
        .collect::<Result<_>>()?;
    progress.end();
    Ok(out.concat())
}

fn nearest(g: &Geometry, others: &[Geometry], index: &BoxIndex) -> Option<f64> {
    let r = g.bounding_rect()?;
    let c = [(r.min().x + r.max().x) / 2.0, (r.min().y + r.max().y) / 2.0];
    // Any point of g is within `radius` of c; so an other whose box is at
    // distance d from c is at least d - radius from g.
    let radius = (r.width() * r.width() + r.height() * r.height()).sqrt() / 2.0;
    let mut best: Option<f64> = None;
    for (entry, d2) in index.tree().nearest_neighbor_iter_with_distance_2(&c) {
        let lower = d2.sqrt() - radius;
        if let Some(b) = best {
            if lower > b {
                break;
            }
        }
        let d = Euclidean.distance(g, &others[entry.data as usize]);
        if best.is_none_or(|b| d < b) {
            best = Some(d);
            if d == 0.0 {
                break;
            }
        }
    }
    best
}

impl PreparedPolygon {
    /// Whether `g` (with bounding box `g_rect`) intersects this polygon
    /// (touching counts).
    pub fn intersects(&self, g: &Geometry, g_rect: &Rect) -> bool {
        use geo::CoordsIter;
        let Some(rect) = self.rect() else {
            return false;
        };
        if !g_rect.intersects(rect) {
            return false;
        }
        if !self.boundary_near(g_rect) {
            return g
                .coords_iter()
                .next()
                .is_some_and(|c| self.locate(c) == Location::Inside);
        }
        self.meets(g, g_rect)
    }
}
