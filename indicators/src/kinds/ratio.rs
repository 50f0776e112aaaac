//! `ratio`: an expression over other indicators, zone columns and joined
//! table columns, per zone (null when an operand is null or a divisor 0).

use std::collections::HashMap;

use super::{AtOnce, Check, Evaluation, IndicatorKind, Key, Keys, Reads, Words};
use crate::error::Result;
use terrastat_core::GeomKind;
use super::{Columns, Cx, Values};
use crate::spec::IndicatorSpec;

/// The `ratio` kind.
pub(crate) struct Ratio;

impl IndicatorKind for Ratio {
    fn name(&self) -> &'static str {
        "ratio"
    }

    fn keys(&self) -> Keys {
        Keys {
            layer: Key::No,
            filter: false,
            expr: true,
            ..Keys::PIECES
        }
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn check(&self, cx: &Check<'_>) -> Result<()> {
        cx.absent(
            &cx.ind.layer,
            "layer",
            "a ratio has no layer: it reads other indicators in `expr`",
        )
    }

    fn reads(&self, _: &IndicatorSpec) -> Reads {
        Reads::NoLayer
    }

    fn centroids_suffice(&self, _: &IndicatorSpec) -> bool {
        false
    }

    fn needs_geometry(&self) -> Option<GeomKind> {
        None
    }

    fn evaluation(&self, _: &IndicatorSpec) -> Evaluation<'_> {
        Evaluation::AtOnce(self)
    }

    fn default_unit(&self, _: &IndicatorSpec) -> &'static str {
        ""
    }

    fn definition(&self, ind: &IndicatorSpec, _: &Words<'_>) -> String {
        format!(
            "`{}` per zone; null when an operand is null or a divisor is 0.",
            ind.expr.as_deref().unwrap_or("")
        )
    }
}

impl AtOnce for Ratio {
    fn compute(&self, cx: &mut dyn Cx<'_>) -> Result<Columns> {
        let Some(expr) = cx.step().expr.as_ref() else {
            return Err(cx.internal("a ratio without its parsed `expr`"));
        };
        let computed = cx.computed_columns();
        let mut named: HashMap<String, Vec<Option<f64>>> = HashMap::new();
        for n in expr.names() {
            if !computed.contains_key(n.as_str()) {
                let v = cx.zone_values(&n)?;
                named.insert(n, v);
            }
        }
        let v = (0..cx.nz())
            .map(|z| {
                expr.eval(&|n| match computed.get(n) {
                    Some(v) => v.get(z),
                    None => named.get(n).and_then(|v| v[z]),
                })
            })
            .collect();
        Ok(vec![(cx.ind().name.clone(), Values::Float(v))])
    }
}
