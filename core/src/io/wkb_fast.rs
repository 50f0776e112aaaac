//! A direct decoder for the plain 2D WKB geometries that make up almost all
//! real layers (points, line strings, polygons and their multi forms, ISO or
//! EWKB type codes without Z/M/SRID). It reads each ring straight into a
//! vector of the right capacity. Anything else (Z/M, SRID, collections,
//! malformed input) returns `None`, and the caller falls back to the `wkb`
//! crate, which reports the error.

use geo::{Coord, Geometry, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    le: bool,
}

impl Cursor<'_> {
    fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.buf.get(self.pos..self.pos + 4)?.try_into().ok()?;
        self.pos += 4;
        Some(if self.le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }
    fn f64(&mut self) -> Option<f64> {
        let b: [u8; 8] = self.buf.get(self.pos..self.pos + 8)?.try_into().ok()?;
        self.pos += 8;
        Some(if self.le {
            f64::from_le_bytes(b)
        } else {
            f64::from_be_bytes(b)
        })
    }
    fn coord(&mut self) -> Option<Coord> {
        Some(Coord {
            x: self.f64()?,
            y: self.f64()?,
        })
    }
    /// A count, checked against the bytes left (each item takes at least
    /// `min_size` bytes), so a corrupt count cannot trigger a huge allocation.
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.checked_mul(min_size)? <= self.buf.len() - self.pos).then_some(n)
    }
    /// Byte order and type code of a (sub-)geometry header.
    fn header(&mut self) -> Option<u32> {
        self.le = match *self.buf.get(self.pos)? {
            0 => false,
            1 => true,
            _ => return None,
        };
        self.pos += 1;
        self.u32()
    }
    fn line(&mut self) -> Option<LineString> {
        let n = self.count(16)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.coord()?);
        }
        Some(LineString(v))
    }
    fn polygon(&mut self) -> Option<Polygon> {
        let n = self.count(4)?;
        if n == 0 {
            return Some(Polygon::new(LineString(vec![]), vec![]));
        }
        let exterior = self.line()?;
        let mut interiors = Vec::with_capacity(n - 1);
        for _ in 1..n {
            interiors.push(self.line()?);
        }
        Some(Polygon::new(exterior, interiors))
    }
    /// The members of a multi-geometry, each with its own header of type `ty`.
    fn members<T>(&mut self, ty: u32, read: impl Fn(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let n = self.count(5)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            if self.header()? != ty {
                return None;
            }
            v.push(read(self)?);
        }
        Some(v)
    }
}

/// Decode `buf` if it is a plain 2D WKB geometry (see the module docs).
/// An empty point (NaN coordinates) is left to the fallback.
pub(crate) fn decode(buf: &[u8]) -> Option<Geometry> {
    let mut c = Cursor {
        buf,
        pos: 0,
        le: true,
    };
    let g = match c.header()? {
        1 => {
            let p = c.coord()?;
            if p.x.is_nan() && p.y.is_nan() {
                return None;
            }
            Geometry::Point(Point(p))
        }
        2 => Geometry::LineString(c.line()?),
        3 => Geometry::Polygon(c.polygon()?),
        4 => Geometry::MultiPoint(MultiPoint(c.members(1, |c| c.coord().map(Point))?)),
        5 => Geometry::MultiLineString(MultiLineString(c.members(2, Cursor::line)?)),
        6 => Geometry::MultiPolygon(MultiPolygon(c.members(3, Cursor::polygon)?)),
        _ => return None,
    };
    // Trailing bytes mean the input is not what it claims: let the fallback judge.
    (c.pos == buf.len()).then_some(g)
}

/// If `buf` is a plain 2D WKB polygon of one ring, or a multi-polygon of
/// one such polygon (a building footprint), its ring's coordinates into
/// `ring` (cleared first, then reused: no allocation once it is large
/// enough) and whether it is the multi-polygon; `None` for anything else.
pub(crate) fn one_ring(buf: &[u8], ring: &mut Vec<Coord>) -> Option<bool> {
    let mut c = Cursor {
        buf,
        pos: 0,
        le: true,
    };
    let multi = match c.header()? {
        3 => false,
        6 => {
            if c.count(5)? != 1 || c.header()? != 3 {
                return None;
            }
            true
        }
        _ => return None,
    };
    if c.count(4)? != 1 {
        return None;
    }
    let n = c.count(16)?;
    ring.clear();
    ring.reserve(n);
    for _ in 0..n {
        ring.push(c.coord()?);
    }
    (c.pos == buf.len()).then_some(multi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(buf: &[u8]) -> Option<Geometry> {
        use geo_traits::to_geo::ToGeoGeometry;
        wkb::reader::read_wkb(buf).ok()?.try_to_geometry()
    }

    /// Bit-exact geometry equality: `NaN` coordinates (which corrupt bytes
    /// can produce) compare equal to themselves, unlike with `==`.
    fn same(a: &Option<Geometry>, b: &Option<Geometry>) -> bool {
        use geo::CoordsIter;
        let bits = |g: &Geometry| -> Vec<u64> {
            g.coords_iter()
                .flat_map(|c| [c.x.to_bits(), c.y.to_bits()])
                .collect()
        };
        match (a, b) {
            (Some(a), Some(b)) => format!("{a:?}") == format!("{b:?}") && bits(a) == bits(b),
            (None, None) => true,
            _ => false,
        }
    }

    fn encode(g: &Geometry, endianness: wkb::Endianness) -> Vec<u8> {
        let mut buf = Vec::new();
        let opts = wkb::writer::WriteOptions { endianness };
        wkb::writer::write_geometry(&mut buf, g, &opts).expect("encodable");
        buf
    }

    fn coord() -> impl Strategy<Value = Coord> {
        (-1e6..1e6f64, -1e6..1e6f64).prop_map(|(x, y)| Coord { x, y })
    }
    fn line() -> impl Strategy<Value = LineString> {
        prop::collection::vec(coord(), 0..8).prop_map(LineString)
    }
    fn polygon() -> impl Strategy<Value = Polygon> {
        // WKB cannot hold holes without an exterior ring.
        (line(), prop::collection::vec(line(), 0..3)).prop_map(|(e, i)| {
            let i = if e.0.is_empty() { vec![] } else { i };
            Polygon::new(e, i)
        })
    }
    fn geometry() -> impl Strategy<Value = Geometry> {
        prop_oneof![
            coord().prop_map(|c| Geometry::Point(Point(c))),
            line().prop_map(Geometry::LineString),
            polygon().prop_map(Geometry::Polygon),
            prop::collection::vec(coord().prop_map(Point), 0..5)
                .prop_map(|v| Geometry::MultiPoint(MultiPoint(v))),
            prop::collection::vec(line(), 0..4)
                .prop_map(|v| Geometry::MultiLineString(MultiLineString(v))),
            prop::collection::vec(polygon(), 0..4)
                .prop_map(|v| Geometry::MultiPolygon(MultiPolygon(v))),
        ]
    }

    proptest! {
        /// The fast path decodes exactly what the `wkb` crate decodes, in both byte orders.
        #[test]
        fn agrees_with_the_wkb_crate(g in geometry(), big in any::<bool>()) {
            let e = if big { wkb::Endianness::BigEndian } else { wkb::Endianness::LittleEndian };
            let buf = encode(&g, e);
            let fast = decode(&buf);
            prop_assert!(fast.is_some());
            prop_assert_eq!(fast, reference(&buf));
        }

        /// `one_ring` reads the one ring of exactly the polygons (and
        /// multi-polygons of one polygon) that have one, as `decode` does.
        #[test]
        fn one_ring_agrees_with_decode(g in geometry(), big in any::<bool>(), cut in 0usize..300, extra in any::<bool>()) {
            let e = if big { wkb::Endianness::BigEndian } else { wkb::Endianness::LittleEndian };
            let mut buf = encode(&g, e);
            if cut < buf.len() && cut % 3 == 0 {
                buf.truncate(cut);
            }
            if extra {
                buf.push(0);
            }
            let mut ring = vec![Coord { x: 9.0, y: 9.0 }];
            // An empty ring and no ring decode alike; callers treat both as empty.
            let got = one_ring(&buf, &mut ring).filter(|_| !ring.is_empty());
            let expected = match decode(&buf) {
                Some(Geometry::Polygon(p)) if p.interiors().is_empty() && !p.exterior().0.is_empty() => Some((false, p)),
                Some(Geometry::MultiPolygon(mp)) if mp.0.len() == 1 && mp.0[0].interiors().is_empty() && !mp.0[0].exterior().0.is_empty() => Some((true, mp.0[0].clone())),
                _ => None,
            };
            match (got, expected) {
                (Some(multi), Some((m, p))) => {
                    prop_assert_eq!(multi, m);
                    // `decode` builds the polygon, which closes its ring.
                    prop_assert_eq!(Polygon::new(LineString(ring), vec![]), p);
                }
                (None, None) => {}
                (got, expected) => prop_assert!(false, "one_ring {:?}, decode {:?}", got, expected),
            }
        }

        /// Truncated or corrupted input never panics, and is never decoded
        /// into something the reference would not produce.
        #[test]
        fn corrupt_input_is_refused_or_agrees(g in geometry(), cut in 0usize..200, flip in 0usize..200, byte in any::<u8>()) {
            let mut buf = encode(&g, wkb::Endianness::LittleEndian);
            if !buf.is_empty() {
                let i = flip % buf.len();
                buf[i] = byte;
            }
            buf.truncate(cut.min(buf.len()));
            if let Some(fast) = decode(&buf) {
                let (fast, slow) = (Some(fast), reference(&buf));
                prop_assert!(same(&fast, &slow), "fast {:?} != reference {:?}", fast, slow);
            }
        }
    }
}
