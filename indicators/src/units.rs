//! The fixed list of units an indicator may declare (`unit = "…"`), with
//! the spellings accepted for each.
//!
//! ```
//! use terrastat_indicators::units::canonical;
//! assert_eq!(canonical("m2"), Some("m²"));
//! assert_eq!(canonical("per km²"), Some("km⁻²"));
//! assert_eq!(canonical("furlongs"), None);
//! ```

/// Each unit: its canonical spelling, its meaning, and other accepted spellings.
pub const UNITS: &[(&str, &str, &[&str])] = &[
    ("count", "a number of features", &["n", "number"]),
    (
        "fraction",
        "a share between 0 and 1",
        &["fraction (0–1)", "fraction (0-1)", "share", "ratio", "1"],
    ),
    ("%", "a percentage", &["percent", "pct"]),
    ("m", "metres", &["metre", "metres", "meter", "meters"]),
    ("km", "kilometres", &[]),
    ("m²", "square metres", &["m2", "sq m"]),
    ("ha", "hectares", &[]),
    ("km²", "square kilometres", &["km2"]),
    (
        "km⁻²",
        "per square kilometre",
        &["per km²", "per km2", "/km²", "/km2", "km-2"],
    ),
    (
        "m²/km²",
        "square metres per square kilometre",
        &["m² per km²", "m2/km2", "m2 per km2"],
    ),
    (
        "m²/inhabitant",
        "square metres per inhabitant",
        &["m² per inhabitant", "m2/inhabitant", "m2 per inhabitant"],
    ),
    ("inhabitants", "a number of people", &["people", "persons"]),
    (
        "per 1,000 inhabitants",
        "a number per thousand inhabitants",
        &["per 1000 inhabitants", "‰ inhabitants"],
    ),
    ("dwellings", "a number of dwellings", &[]),
    ("kWh", "kilowatt-hours", &[]),
    (
        "kWh/m²/year",
        "kilowatt-hours per square metre and year",
        &["kWh/m2/year", "kWh/m²/yr"],
    ),
    ("°C", "degrees Celsius", &["degC", "celsius"]),
    ("mm", "millimetres", &[]),
    ("µg/m³", "micrograms per cubic metre", &["ug/m3", "µg/m3"]),
    ("EUR", "euros", &["€", "euro", "euros"]),
    ("EUR/inhabitant", "euros per inhabitant", &["€/inhabitant"]),
    ("year", "a calendar year or a number of years", &["years"]),
    ("days", "a number of days", &["day"]),
    (
        "pixels",
        "a number of raster pixels (weighted by coverage)",
        &[],
    ),
    ("value", "the unit of the source values", &["", "raw"]),
];

/// The canonical spelling of unit `u`, if it is in the list (case kept for
/// symbols, ignored for words).
pub fn canonical(u: &str) -> Option<&'static str> {
    let t = u.trim();
    UNITS.iter().find_map(|(c, _, aliases)| {
        (*c == t || c.eq_ignore_ascii_case(t) || aliases.iter().any(|a| a.eq_ignore_ascii_case(t)))
            .then_some(*c)
    })
}

/// The accepted units, for messages.
pub fn list() -> String {
    UNITS
        .iter()
        .map(|(c, _, _)| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for (c, _, aliases) in UNITS {
            for s in std::iter::once(c).chain(aliases.iter()) {
                assert!(seen.insert(s.to_lowercase()), "{s} twice");
                assert_eq!(canonical(s), Some(*c));
            }
        }
    }
}
