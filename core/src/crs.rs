//! Coordinate reference systems: identification, comparison and (with the
//! `proj` feature) reprojection into the working CRS.
//!
//! `Crs` (authority + code), parsing of `EPSG:n`, URNs, URIs, PROJJSON ids.

use std::fmt;

use crate::error::{Error, Result};

/// Full PROJJSON definitions of common CRSs (see [`Crs::to_projjson`]).
const KNOWN_PROJJSON: &str = include_str!("known_crs.json");

/// A coordinate reference system, identified by authority and code.
///
/// terrastat compares CRSs by identifier only. `OGC:CRS84` (longitude,
/// latitude) and `EPSG:4326` are kept apart as identifiers but
/// [`Crs::same_as`] treats them as the same datum; coordinates are always
/// stored x = longitude, y = latitude for geographic CRSs (GeoJSON,
/// GeoParquet and PROJ's normalised order).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Crs {
    authority: String,
    code: String,
}

impl Crs {
    /// Parse a CRS identifier: `EPSG:2154`, `epsg:2154`, `2154`,
    /// `urn:ogc:def:crs:EPSG::2154`, `OGC:CRS84`, `urn:ogc:def:crs:OGC:1.3:CRS84`,
    /// or an `http(s)://www.opengis.net/def/crs/EPSG/0/2154` URI.
    ///
    /// ```
    /// use terrastat_core::Crs;
    /// let crs = Crs::parse("urn:ogc:def:crs:EPSG::2154")?;
    /// assert_eq!(crs.to_string(), "EPSG:2154");
    /// assert!(Crs::parse("OGC:CRS84")?.same_as(&Crs::epsg(4326)));
    /// # Ok::<(), terrastat_core::Error>(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        let t = s.trim();
        let bad = || {
            Error::Crs(format!(
                "cannot understand CRS `{s}` (expected e.g. `EPSG:2154`)"
            ))
        };
        if t.is_empty() {
            return Err(bad());
        }
        if t.chars().all(|c| c.is_ascii_digit()) {
            return Ok(Self::epsg(t.parse().map_err(|_| bad())?));
        }
        let lower = t.to_ascii_lowercase();
        if lower.ends_with("crs84") {
            return Ok(Self::crs84());
        }
        if let Some(rest) = lower.strip_prefix("urn:ogc:def:crs:") {
            // urn:ogc:def:crs:EPSG:[version]:2154
            let parts: Vec<&str> = rest.split(':').collect();
            if parts.len() >= 2 {
                return Self::from_parts(parts[0], parts[parts.len() - 1]).ok_or_else(bad);
            }
            return Err(bad());
        }
        if lower.starts_with("http://www.opengis.net/def/crs/")
            || lower.starts_with("https://www.opengis.net/def/crs/")
        {
            let parts: Vec<&str> = lower.trim_end_matches('/').split('/').collect();
            if parts.len() >= 3 {
                return Self::from_parts(parts[parts.len() - 3], parts[parts.len() - 1])
                    .ok_or_else(bad);
            }
            return Err(bad());
        }
        if let Some((auth, code)) = t.split_once(':') {
            return Self::from_parts(auth, code).ok_or_else(bad);
        }
        Err(bad())
    }

    fn from_parts(auth: &str, code: &str) -> Option<Self> {
        let auth = auth.trim().to_ascii_uppercase();
        let code = code.trim().to_ascii_uppercase();
        if auth.is_empty() || code.is_empty() {
            return None;
        }
        if auth == "OGC" && code == "CRS84" {
            return Some(Self::crs84());
        }
        if auth == "EPSG" && !code.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(Self {
            authority: auth,
            code,
        })
    }

    /// An EPSG code.
    pub fn epsg(code: u32) -> Self {
        Self {
            authority: "EPSG".into(),
            code: code.to_string(),
        }
    }

    /// `OGC:CRS84`, WGS 84 in longitude, latitude order.
    pub fn crs84() -> Self {
        Self {
            authority: "OGC".into(),
            code: "CRS84".into(),
        }
    }

    /// Read the identifier of a PROJJSON object (`{"id": {"authority": "EPSG", "code": 2154}}`).
    /// Returns `None` when it has no identifier.
    pub fn from_projjson(v: &serde_json::Value) -> Option<Self> {
        let id = v.get("id").or_else(|| {
            v.get("ids")
                .and_then(|ids| ids.as_array())
                .and_then(|a| a.first())
        })?;
        let auth = id.get("authority")?.as_str()?;
        let code = match id.get("code")? {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            _ => return None,
        };
        Self::from_parts(auth, &code)
    }

    /// The PROJJSON of this CRS, as written into GeoParquet metadata: the
    /// full definition for the CRSs terrastat ships (EPSG 2154, 4326, 3857,
    /// 3035, 3067, 27572, 2169, 5070, UTM 30–32 N, 31985 and the French
    /// overseas CRSs, generated with pyproj from the EPSG database), from
    /// GDAL's copy of the EPSG database with the `gdal` feature, otherwise
    /// a minimal object naming the CRS by its identifier.
    pub fn to_projjson(&self) -> serde_json::Value {
        if let Some(code) = self.epsg_code() {
            #[cfg(feature = "gdal")]
            if !KNOWN_PROJJSON.contains(&format!("\"{code}\":")) {
                let full = gdal::spatial_ref::SpatialRef::from_epsg(code)
                    .and_then(|s| s.to_projjson())
                    .ok()
                    .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok());
                if let Some(v) = full {
                    return v;
                }
            }
            let known: Option<serde_json::Value> =
                serde_json::from_str::<serde_json::Value>(KNOWN_PROJJSON)
                    .ok()
                    .and_then(|v| v.get(code.to_string()).cloned());
            if let Some(v) = known {
                return v;
            }
        }
        let code: serde_json::Value = match self.code.parse::<u64>() {
            Ok(n) => n.into(),
            Err(_) => self.code.clone().into(),
        };
        serde_json::json!({
            "$schema": "https://proj.org/schemas/v0.7/projjson.schema.json",
            "type": if self.is_geographic() { "GeographicCRS" } else { "ProjectedCRS" },
            "name": self.to_string(),
            "id": { "authority": self.authority, "code": code }
        })
    }

    /// The EPSG code, if this is an EPSG CRS (`OGC:CRS84` maps to 4326).
    pub fn epsg_code(&self) -> Option<u32> {
        if self.authority == "OGC" && self.code == "CRS84" {
            return Some(4326);
        }
        if self.authority == "EPSG" {
            return self.code.parse().ok();
        }
        None
    }

    /// Whether two identifiers denote the same CRS (EPSG:4326 and OGC:CRS84
    /// are the same here, since terrastat stores geographic coordinates in
    /// longitude, latitude order whatever the authority's axis order).
    pub fn same_as(&self, other: &Crs) -> bool {
        self == other || (self.epsg_code().is_some() && self.epsg_code() == other.epsg_code())
    }

    /// Whether this is a geographic (degrees) CRS that terrastat knows of.
    pub fn is_geographic(&self) -> bool {
        matches!(
            self.epsg_code(),
            Some(4326 | 4258 | 4171 | 4269 | 4283 | 4019)
        )
    }
}

impl fmt::Display for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.authority, self.code)
    }
}

impl std::str::FromStr for Crs {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        for s in [
            "EPSG:2154",
            "epsg:2154",
            "2154",
            "urn:ogc:def:crs:EPSG::2154",
            "urn:ogc:def:crs:EPSG:6.3:2154",
            "http://www.opengis.net/def/crs/EPSG/0/2154",
        ] {
            assert_eq!(Crs::parse(s).unwrap(), Crs::epsg(2154), "{s}");
        }
        assert_eq!(
            Crs::parse("urn:ogc:def:crs:OGC:1.3:CRS84").unwrap(),
            Crs::crs84()
        );
        assert!(Crs::parse("").is_err());
        assert!(Crs::parse("EPSG:abc").is_err());
        assert!(Crs::parse("lambert").is_err());
    }

    #[test]
    fn projjson_round_trip() {
        let c = Crs::epsg(3067);
        assert_eq!(Crs::from_projjson(&c.to_projjson()), Some(c));
        assert_eq!(Crs::from_projjson(&serde_json::json!({"name": "x"})), None);
    }

    #[test]
    fn crs84_is_4326() {
        assert!(Crs::crs84().same_as(&Crs::epsg(4326)));
        assert!(!Crs::epsg(2154).same_as(&Crs::epsg(4326)));
    }
}
