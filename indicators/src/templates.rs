//! The standard library of indicator templates: documented, parameterised
//! indicators for the platform's themes (building stock, energy, flood and
//! clay risks, vegetation, pools), used in a spec as
//!
//! ```toml
//! [[indicators]]
//! use = "buildings.share_energy_fg"
//! name = "fg_share"                          # default: the template's key
//! layer = "bdnb"                             # default: the template's layer
//! columns = { energy_class = "classe_dpe" }  # a layer with other column names
//! ```
//!
//! A template expands into one or more ordinary indicators: helpers
//! (`hidden`, named `<name>__<part>`) and the published ones, which carry the
//! template's labels (English and French), unit, theme and keywords. The
//! templates live in `indicators/templates/<theme>.toml`, compiled in.
//!
//! ```
//! use terrastat_indicators::templates::Library;
//! let lib = Library::standard();
//! let t = lib.get("buildings.share_energy_fg").unwrap();
//! assert_eq!(t.unit, "%");
//! assert!(t.label.fr.as_deref().unwrap().contains("passoires"));
//! assert!(lib.search("passoire thermique").iter().any(|t| t.id == "buildings.share_energy_fg"));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Text in English and French.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    /// English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
    /// French.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fr: Option<String>,
}

impl Texts {
    /// English text only.
    pub fn en(s: impl Into<String>) -> Texts {
        Texts {
            en: Some(s.into()),
            fr: None,
        }
    }

    /// The text in `lang` (`en` or `fr`), else the other one.
    pub fn get(&self, lang: &str) -> Option<&str> {
        let (a, b) = if lang == "fr" {
            (&self.fr, &self.en)
        } else {
            (&self.en, &self.fr)
        };
        a.as_deref().or(b.as_deref())
    }

    /// Both texts with `{key}` replaced by `vars[key]`.
    fn substitute(&self, vars: &BTreeMap<String, String>) -> Texts {
        Texts {
            en: self.en.as_deref().map(|s| substitute(s, vars)),
            fr: self.fr.as_deref().map(|s| substitute(s, vars)),
        }
    }
}

/// `"text"` (English) or `{ en = "…", fr = "…" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum TextsIn {
    One(String),
    Both(Texts),
}

impl From<TextsIn> for Texts {
    fn from(t: TextsIn) -> Texts {
        match t {
            TextsIn::One(s) => Texts::en(s),
            TextsIn::Both(t) => t,
        }
    }
}

/// Deserialize a [`Texts`] from a string or an `{en, fr}` table.
pub(crate) fn texts<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Texts>, D::Error> {
    Ok(Option::<TextsIn>::deserialize(d)?.map(Texts::from))
}

/// One template of the library.
#[derive(Debug, Clone, Serialize)]
pub struct Template {
    /// `<theme>.<key>`, what `use = "…"` names.
    pub id: String,
    /// The theme (the file it comes from).
    pub theme: String,
    /// The key within the theme (the default indicator name).
    pub key: String,
    /// Labels (with the parameters' defaults).
    pub label: Texts,
    /// Definitions in words (with the parameters' defaults).
    pub description: Texts,
    #[serde(skip)]
    raw_label: Texts,
    #[serde(skip)]
    raw_description: Texts,
    /// Unit of the published indicators (see [`crate::units`]).
    pub unit: String,
    /// Search keywords.
    pub keywords: Vec<String>,
    /// Default of the `layer` parameter.
    pub layer: Option<String>,
    /// Columns of the layer, by role, with their default names.
    pub columns: BTreeMap<String, String>,
    /// Columns of the zone layer, by role, with their default names.
    pub zone_columns: BTreeMap<String, String>,
    /// Other layers, by role, with their default names.
    pub layers: BTreeMap<String, String>,
    /// Other parameters, with their defaults.
    pub params: BTreeMap<String, String>,
    /// The indicators it expands to (`{…}` not yet replaced).
    #[serde(skip)]
    pub indicators: Vec<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateIn {
    label: Texts,
    description: Texts,
    unit: String,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    layer: Option<String>,
    #[serde(default)]
    columns: BTreeMap<String, String>,
    #[serde(default)]
    zone_columns: BTreeMap<String, String>,
    #[serde(default)]
    layers: BTreeMap<String, String>,
    #[serde(default)]
    params: BTreeMap<String, String>,
    indicators: Vec<toml::Table>,
}

/// The template files compiled in: (theme, TOML).
const FILES: [(&str, &str); 4] = [
    ("buildings", include_str!("../templates/buildings.toml")),
    ("risks", include_str!("../templates/risks.toml")),
    ("vegetation", include_str!("../templates/vegetation.toml")),
    ("pools", include_str!("../templates/pools.toml")),
];

/// A set of templates, by id.
#[derive(Debug, Clone, Default)]
pub struct Library {
    templates: BTreeMap<String, Template>,
}

impl Library {
    /// The standard library shipped with terrastat.
    pub fn standard() -> &'static Library {
        static LIB: std::sync::OnceLock<Library> = std::sync::OnceLock::new();
        LIB.get_or_init(|| {
            let mut lib = Library::default();
            for (theme, text) in FILES {
                // The files are tested (`templates_parse`): a failure here is a build defect.
                if let Ok(t) = Library::parse(theme, text) {
                    lib.templates.extend(t.templates);
                }
            }
            lib
        })
    }

    /// Parse one theme's TOML.
    pub fn parse(theme: &str, text: &str) -> std::result::Result<Library, String> {
        let raw: BTreeMap<String, TemplateIn> =
            toml::from_str(text).map_err(|e| format!("templates `{theme}`: {e}"))?;
        let templates = raw
            .into_iter()
            .map(|(key, t)| {
                let id = format!("{theme}.{key}");
                let tpl = Template {
                    id: id.clone(),
                    theme: theme.to_string(),
                    key,
                    label: t.label.substitute(&t.params),
                    description: t.description.substitute(&t.params),
                    raw_label: t.label,
                    raw_description: t.description,
                    unit: t.unit,
                    keywords: t.keywords,
                    layer: t.layer,
                    columns: t.columns,
                    zone_columns: t.zone_columns,
                    layers: t.layers,
                    params: t.params,
                    indicators: t.indicators,
                };
                (id, tpl)
            })
            .collect();
        Ok(Library { templates })
    }

    /// The template `id` (`<theme>.<key>`).
    pub fn get(&self, id: &str) -> Option<&Template> {
        self.templates.get(id)
    }

    /// Every template, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.templates.values()
    }

    /// The templates matching every word of `query` in their id, labels,
    /// descriptions, theme or keywords (case and accents ignored).
    pub fn search(&self, query: &str) -> Vec<&Template> {
        let words: Vec<String> = fold(query).split_whitespace().map(str::to_string).collect();
        self.iter()
            .filter(|t| {
                let hay = fold(&t.haystack());
                words.iter().all(|w| hay.contains(w.as_str()))
            })
            .collect()
    }
}

/// The templates as a Markdown document, one section per theme (labels
/// and definitions in `lang`, `en` or `fr`).
pub fn to_markdown(templates: &[&Template], lang: &str) -> String {
    let fr = lang == "fr";
    let mut out = String::from(if fr {
        "# Modèles d'indicateurs terrastat\n\nUtilisation : `[[indicators]] use = \"<id>\"`, avec `name`, `layer`, `columns`, `zone_columns`, `layers`, `params`.\n"
    } else {
        "# terrastat indicator templates\n\nUse: `[[indicators]] use = \"<id>\"`, with `name`, `layer`, `columns`, `zone_columns`, `layers`, `params`.\n"
    });
    let mut theme = "";
    for t in templates {
        if t.theme != theme {
            theme = &t.theme;
            out += &format!("\n## {theme}\n");
        }
        let dict = |m: &BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| format!("`{k}` = `{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out += &format!(
            "\n### `{}`: {}\n\n{}\n\n",
            t.id,
            t.label.get(lang).unwrap_or(""),
            t.description.get(lang).unwrap_or("")
        );
        let rows = [
            (if fr { "unité" } else { "unit" }, format!("`{}`", t.unit)),
            (
                if fr {
                    "libellé (autre langue)"
                } else {
                    "label (other language)"
                },
                t.label
                    .get(if fr { "en" } else { "fr" })
                    .unwrap_or("")
                    .to_string(),
            ),
            (
                if fr { "couche" } else { "layer" },
                t.layer
                    .clone()
                    .map(|l| format!("`{l}`"))
                    .unwrap_or_default(),
            ),
            (
                if fr {
                    "colonnes requises"
                } else {
                    "required columns"
                },
                dict(&t.columns),
            ),
            (
                if fr {
                    "colonnes des zones"
                } else {
                    "zone columns"
                },
                dict(&t.zone_columns),
            ),
            (
                if fr { "autres couches" } else { "other layers" },
                dict(&t.layers),
            ),
            (
                if fr { "paramètres" } else { "parameters" },
                dict(&t.params),
            ),
            (
                if fr { "mots-clés" } else { "keywords" },
                t.keywords.join(", "),
            ),
        ];
        out += "| | |\n|---|---|\n";
        for (k, v) in rows {
            if !v.is_empty() {
                out += &format!("| {k} | {} |\n", v.replace('|', "\\|"));
            }
        }
    }
    out
}

/// The templates as plain text, one line each (id, unit, label).
pub fn to_text(templates: &[&Template], lang: &str) -> String {
    let w = templates.iter().map(|t| t.id.len()).max().unwrap_or(0);
    let u = templates
        .iter()
        .map(|t| t.unit.chars().count())
        .max()
        .unwrap_or(0);
    templates
        .iter()
        .map(|t| {
            let pad = u - t.unit.chars().count();
            format!(
                "{:<w$}  {}{}  {}\n",
                t.id,
                t.unit,
                " ".repeat(pad),
                t.label.get(lang).unwrap_or("")
            )
        })
        .collect()
}

impl Template {
    fn haystack(&self) -> String {
        let mut parts = vec![self.id.clone(), self.theme.clone()];
        parts.extend(self.label.en.clone());
        parts.extend(self.label.fr.clone());
        parts.extend(self.description.en.clone());
        parts.extend(self.description.fr.clone());
        parts.extend(self.keywords.clone());
        parts.join(" ")
    }

    /// The columns a layer needs for this template (their default names).
    pub fn required_columns(&self) -> Vec<String> {
        self.columns.values().cloned().collect()
    }

    /// Expand for one `use` entry: `params` holds the entry's keys (`name`,
    /// `layer`, `zones`, `columns`, `zone_columns`, `layers`, `params`).
    /// Returns the indicator tables, the published ones carrying label,
    /// description, unit, theme and keywords.
    pub(crate) fn expand(
        &self,
        entry: &toml::Table,
    ) -> std::result::Result<Vec<toml::Table>, String> {
        const KEYS: [&str; 8] = [
            "use",
            "name",
            "layer",
            "zones",
            "columns",
            "zone_columns",
            "layers",
            "params",
        ];
        if let Some(k) = entry.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "`{k}` is not a key of a template use (keys: {})",
                KEYS.join(", ")
            ));
        }
        let text = |k: &str| -> std::result::Result<Option<String>, String> {
            match entry.get(k) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(format!("`{k}` must be a string, not {}", v.type_str())),
            }
        };
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert("name".into(), text("name")?.unwrap_or(self.key.clone()));
        if let Some(l) = text("layer")?.or(self.layer.clone()) {
            vars.insert("layer".into(), l);
        }
        for (group, defaults) in [
            ("columns", &self.columns),
            ("zone_columns", &self.zone_columns),
            ("layers", &self.layers),
            ("params", &self.params),
        ] {
            let given = match entry.get(group) {
                None => toml::Table::new(),
                Some(toml::Value::Table(t)) => t.clone(),
                Some(v) => return Err(format!("`{group}` must be a table, not {}", v.type_str())),
            };
            for (k, v) in &given {
                if !defaults.contains_key(k) {
                    let known: Vec<&str> = defaults.keys().map(String::as_str).collect();
                    return Err(format!(
                        "`{group}.{k}`: `{}` has no such parameter ({})",
                        self.id,
                        if known.is_empty() {
                            format!("it takes no `{group}`")
                        } else {
                            format!("known: {}", known.join(", "))
                        }
                    ));
                }
                let v = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    other => {
                        return Err(format!(
                            "`{group}.{k}` must be a string or a number, not {}",
                            other.type_str()
                        ))
                    }
                };
                vars.insert(k.clone(), v);
            }
            for (k, v) in defaults {
                vars.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let label = self.raw_label.substitute(&vars);
        let description = self.raw_description.substitute(&vars);
        let mut out = Vec::with_capacity(self.indicators.len());
        for t in &self.indicators {
            let mut t = substitute_table(t, &vars);
            let hidden = matches!(t.get("hidden"), Some(toml::Value::Boolean(true)));
            if let Some(z) = entry.get("zones") {
                t.insert("zones".into(), z.clone());
            }
            if !hidden {
                t.insert("label".into(), texts_value(&label));
                t.insert("description".into(), texts_value(&description));
                t.insert("unit".into(), toml::Value::String(self.unit.clone()));
                t.insert("theme".into(), toml::Value::String(self.theme.clone()));
                t.insert(
                    "keywords".into(),
                    toml::Value::Array(
                        self.keywords
                            .iter()
                            .map(|k| toml::Value::String(k.clone()))
                            .collect(),
                    ),
                );
            }
            out.push(t);
        }
        Ok(out)
    }
}

fn texts_value(t: &Texts) -> toml::Value {
    let mut m = toml::Table::new();
    if let Some(e) = &t.en {
        m.insert("en".into(), toml::Value::String(e.clone()));
    }
    if let Some(f) = &t.fr {
        m.insert("fr".into(), toml::Value::String(f.clone()));
    }
    toml::Value::Table(m)
}

fn substitute_table(t: &toml::Table, vars: &BTreeMap<String, String>) -> toml::Table {
    t.iter()
        .map(|(k, v)| (k.clone(), substitute_value(v, vars)))
        .collect()
}

fn substitute_value(v: &toml::Value, vars: &BTreeMap<String, String>) -> toml::Value {
    match v {
        toml::Value::String(s) => toml::Value::String(substitute(s, vars)),
        toml::Value::Array(a) => {
            toml::Value::Array(a.iter().map(|x| substitute_value(x, vars)).collect())
        }
        toml::Value::Table(t) => toml::Value::Table(substitute_table(t, vars)),
        other => other.clone(),
    }
}

/// Replace every `{key}` of `vars` in `s` (other braces are left as they are).
fn substitute(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find('}').map(|j| (&after[..j], j)) {
            Some((key, j)) if vars.contains_key(key) => {
                out.push_str(&vars[key]);
                rest = &after[j + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Lower case without accents, for searching (`é` → `e`).
pub fn fold(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        let mut n = 0;
        for (theme, text) in FILES {
            let lib = Library::parse(theme, text).unwrap_or_else(|e| panic!("{e}"));
            n += lib.templates.len();
            for t in lib.iter() {
                assert!(t.label.en.is_some() && t.label.fr.is_some(), "{}", t.id);
                assert!(
                    t.description.en.is_some() && t.description.fr.is_some(),
                    "{}",
                    t.id
                );
                assert!(
                    crate::units::canonical(&t.unit).is_some(),
                    "{}: unit {}",
                    t.id,
                    t.unit
                );
                assert!(!t.indicators.is_empty(), "{}", t.id);
            }
        }
        assert_eq!(Library::standard().iter().count(), n);
        assert!(n >= 15, "{n} templates");
    }

    #[test]
    fn substitution_and_search() {
        let vars: BTreeMap<String, String> =
            [("a".to_string(), "x".to_string())].into_iter().collect();
        assert_eq!(substitute("{a} {b} {", &vars), "x {b} {");
        assert_eq!(fold("Passoires THERMIQUES é"), "passoires thermiques e");
        let lib = Library::standard();
        let ids = |q: &str| {
            lib.search(q)
                .iter()
                .map(|t| t.id.clone())
                .collect::<Vec<_>>()
        };
        assert!(ids("inondation").contains(&"risks.share_buildings_flood".to_string()));
        assert!(ids("INONDATION population").contains(&"risks.population_in_flood".to_string()));
        assert!(!ids("inondation").contains(&"pools.density".to_string()));
        assert!(ids("argile").contains(&"risks.share_buildings_clay".to_string()));
    }

    #[test]
    fn expansion_checks_parameters() {
        let lib = Library::standard();
        let t = lib.get("buildings.share_energy_fg").unwrap();
        let entry: toml::Table = toml::from_str(
            "use = 'buildings.share_energy_fg'\nlayer = 'bdnb'\ncolumns = { energy_class = 'classe_dpe' }",
        )
        .unwrap();
        let out = t.expand(&entry).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0]["name"].as_str(), Some("share_energy_fg__fg"));
        assert_eq!(out[0]["layer"].as_str(), Some("bdnb"));
        assert_eq!(
            out[0]["filter"].as_str(),
            Some("`classe_dpe` in ['F', 'G']")
        );
        assert_eq!(out[2]["unit"].as_str(), Some("%"));
        assert!(out[2].get("label").is_some() && out[0].get("label").is_none());
        for (bad, says) in [
            (
                "columns = { energy = 'x' }",
                "no such parameter (known: energy_class)",
            ),
            ("params = { x = 1 }", "it takes no `params`"),
            ("colour = 'red'", "`colour` is not a key of a template use"),
            ("name = 3", "`name` must be a string"),
        ] {
            let e: toml::Table = toml::from_str(bad).unwrap();
            let err = t.expand(&e).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
