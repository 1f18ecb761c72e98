//! `profile FILE --flamegraph OUT.svg`: a flame graph of one sample type.
//!
//! The stacks come from [`crate::profile::Resolved::folded`] (root first,
//! one line per distinct stack, zero-valued samples left out) and are drawn
//! by the `inferno` crate: each frame is as wide as the value of the samples
//! whose stacks pass through it, callers below callees. Hovering a frame
//! shows its name, value (in bytes, objects, ...) and share; clicking zooms.
//! Colours use inferno's memory palette, chosen by a hash of the name so a
//! function keeps its colour from one graph to the next.

use inferno::flamegraph::{self, color, Options};

use crate::error::{Error, Result};
use crate::profile::ValueType;

/// What the graph's tooltips call the unit of `t`: "bytes", "objects",
/// "nanoseconds", ...
pub fn count_name(t: &ValueType) -> String {
    match t.unit.as_str() {
        "count" if t.kind.contains("objects") || t.kind.contains("alloc") => "objects".into(),
        "count" => "samples".into(),
        "" => "units".into(),
        unit => unit.into(),
    }
}

/// Draws `folded` stacks (see `Resolved::folded`) as an SVG flame graph.
/// `title` heads it and `subtitle` goes under the title. Nothing to draw
/// (no stack with a positive value) is an error that names `what`.
pub fn render(
    folded: &[String],
    t: &ValueType,
    title: String,
    subtitle: String,
    what: &str,
) -> Result<Vec<u8>> {
    if folded.is_empty() {
        return Err(Error::bad_input(format!(
            "cannot draw a flame graph: {what}"
        )));
    }
    let mut options = Options::default();
    options.title = title;
    options.subtitle = Some(subtitle);
    options.count_name = count_name(t);
    options.colors = color::Palette::Basic(color::BasicPalette::Mem);
    options.hash = true;
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, folded.iter().map(String::as_str), &mut svg)
        .map_err(|e| Error::bad_input(format!("cannot draw a flame graph: {e}")))?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vt(kind: &str, unit: &str) -> ValueType {
        ValueType {
            kind: kind.into(),
            unit: unit.into(),
        }
    }

    #[test]
    fn units_for_people() {
        assert_eq!(count_name(&vt("inuse_space", "bytes")), "bytes");
        assert_eq!(count_name(&vt("alloc_objects", "count")), "objects");
        assert_eq!(count_name(&vt("samples", "count")), "samples");
        assert_eq!(count_name(&vt("cpu", "nanoseconds")), "nanoseconds");
    }

    #[test]
    fn draws_frames() {
        let lines = ["main;work 300".to_string(), "main;rec;rec 600".to_string()];
        let svg = render(&lines, &vt("space", "bytes"), "T".into(), "S".into(), "x").unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("<svg"));
        assert!(svg.contains("work (300 bytes"), "{svg}");
        let e = render(
            &[],
            &vt("space", "bytes"),
            "T".into(),
            "S".into(),
            "all zero",
        )
        .unwrap_err();
        assert!(e.message.contains("all zero"));
    }
}
