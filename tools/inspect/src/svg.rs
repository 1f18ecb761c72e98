//! `heap FILE --svg OUT.svg`: a map of the heap's pages.
//!
//! Each region is drawn as rows of [`PAGES_PER_ROW`] pages, one small square
//! per page (`<rect class="p">`), grouped per span (`<g>` with a `<title>`
//! a viewer shows on hover). A small-object span takes its size class's
//! colour (a palette that walks the hue circle by the golden angle, so
//! neighbouring classes differ), shaded by occupancy: the more of its objects
//! are handed out, the more opaque. Large objects are dark slate, free pages
//! light grey, and free pages returned to the OS pale and hatched. A legend
//! lists the classes present and the shades; the title gives the totals.
//!
//! The SVG is written by hand: every piece of text from the dump goes
//! through [`escape`], and the test suite parses the result back.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::heap::{Dump, HeapReport, SpanState};
use crate::report::bytes;

/// Pages in one row of the map.
pub const PAGES_PER_ROW: u64 = 256;
/// The most pages drawn (2 GiB of 8 KiB pages); the rest is left out, and
/// the map says so.
pub const MAX_PAGES: u64 = 1 << 18;

/// Distance between pages, in pixels.
const PITCH: u64 = 4;
/// Side of a page's square.
const CELL: u64 = 3;
const MARGIN: u64 = 10;
/// Width of one legend entry.
const LEGEND_COL: u64 = 170;
const LEGEND_ROW: u64 = 16;

const LARGE: &str = "#37474f";
const FREE: &str = "#cfd8dc";
const RELEASED_BG: &str = "#f5f7f8";
const RELEASED_LINE: &str = "#b0bec5";

/// Lowest opacity, for a span with no object handed out.
const MIN_OPACITY: f64 = 0.25;

/// The colour of size class `class`, as `#rrggbb`.
pub fn class_colour(class: u32) -> String {
    const GOLDEN_ANGLE: f64 = 137.507_764;
    let hue = (f64::from(class) * GOLDEN_ANGLE) % 360.0;
    let (r, g, b) = hsl_to_rgb(hue, 0.70, 0.45);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// HSL (hue in degrees, saturation and lightness in 0..=1) to 8-bit RGB.
fn hsl_to_rgb(h: f64, s: f64, l: f64) -> (u8, u8, u8) {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let to8 = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    (to8(r), to8(g), to8(b))
}

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The opacity that shows a span's occupancy.
fn occupancy_opacity(allocated: u64, objects: u64) -> f64 {
    let occ = if objects == 0 {
        0.0
    } else {
        (allocated as f64 / objects as f64).min(1.0)
    };
    MIN_OPACITY + (1.0 - MIN_OPACITY) * occ
}

/// What the map drew.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drawn {
    /// Page squares drawn.
    pub pages: u64,
    /// Pages left out past [`MAX_PAGES`].
    pub left_out: u64,
}

/// Draws the heap map of `d` (summed up in `r`) as an SVG document.
pub fn render(d: &Dump, r: &HeapReport) -> (String, Drawn) {
    let ps = d.page_size;
    let map_width = PAGES_PER_ROW * PITCH;
    let width = map_width + 2 * MARGIN;
    let mut drawn = Drawn::default();

    let small_classes: BTreeSet<u32> = d
        .spans
        .iter()
        .filter(|s| s.state == SpanState::Small)
        .map(|s| s.class)
        .collect();

    // Legend: the classes present, then the other kinds of page, then the
    // occupancy shades.
    let per_row = (map_width / LEGEND_COL).max(1);
    let mut legend = String::new();
    let mut items: Vec<(String, String)> = small_classes
        .iter()
        .map(|&c| {
            let size = r
                .classes
                .iter()
                .find(|s| s.class == c)
                .map_or(0, |s| s.object_size);
            (
                format!("fill=\"{}\"", class_colour(c)),
                format!("class {c}: {size} B"),
            )
        })
        .collect();
    items.push((format!("fill=\"{LARGE}\""), "large object".into()));
    items.push((format!("fill=\"{FREE}\""), "free".into()));
    items.push((
        "fill=\"url(#released)\" stroke=\"#90a4ae\" stroke-width=\"0.5\"".into(),
        "free, returned to the OS".into(),
    ));
    for pct in [0u64, 25, 50, 75, 100] {
        items.push((
            format!(
                "fill=\"#555555\" fill-opacity=\"{:.2}\"",
                occupancy_opacity(pct, 100)
            ),
            format!("{pct}% of objects in use"),
        ));
    }
    let legend_top = 58;
    for (i, (paint, label)) in items.iter().enumerate() {
        let i = i as u64;
        let x = MARGIN + (i % per_row) * LEGEND_COL;
        let y = legend_top + (i / per_row) * LEGEND_ROW;
        let _ = writeln!(
            legend,
            "<g class=\"item\"><rect x=\"{x}\" y=\"{y}\" width=\"10\" height=\"10\" {paint}/>\
             <text x=\"{}\" y=\"{}\">{}</text></g>",
            x + 14,
            y + 9,
            escape(label)
        );
    }
    let legend_rows = (items.len() as u64).div_ceil(per_row);
    let mut y = legend_top + legend_rows * LEGEND_ROW + 10;

    // The map, region by region.
    let mut body = String::new();
    let mut regions = d.regions.clone();
    regions.sort_by_key(|r| r.base);
    for (n, reg) in regions.iter().enumerate() {
        let pages = reg.bytes / ps;
        let _ = writeln!(
            body,
            "<text class=\"region\" x=\"{MARGIN}\" y=\"{}\">region {}: {:#x}, {} ({} pages)</text>",
            y + 12,
            n + 1,
            reg.base,
            bytes(reg.bytes),
            pages
        );
        y += 18;
        let top = y;
        let _ = writeln!(
            body,
            "<g class=\"region-map\" data-base=\"{:#x}\">",
            reg.base
        );
        let end = reg.base.saturating_add(reg.bytes);
        for s in d
            .spans
            .iter()
            .filter(|s| s.start >= reg.base && s.start < end)
        {
            let first = (s.start - reg.base) / ps;
            let count = s.pages.min(pages.saturating_sub(first));
            let (paint, title) = match s.state {
                SpanState::Small => (
                    format!(
                        "fill=\"{}\" fill-opacity=\"{:.2}\"",
                        class_colour(s.class),
                        occupancy_opacity(s.allocated, s.objects)
                    ),
                    format!(
                        "class {} ({} B): {} of {} objects in use, {} pages at {:#x}",
                        s.class, s.object_size, s.allocated, s.objects, s.pages, s.start
                    ),
                ),
                SpanState::Large => (
                    format!("fill=\"{LARGE}\""),
                    format!("large object: {}, at {:#x}", bytes(s.pages * ps), s.start),
                ),
                SpanState::Free if s.released => (
                    "fill=\"url(#released)\"".to_string(),
                    format!(
                        "free, returned to the OS: {} pages at {:#x}",
                        s.pages, s.start
                    ),
                ),
                SpanState::Free => (
                    format!("fill=\"{FREE}\""),
                    format!("free: {} pages at {:#x}", s.pages, s.start),
                ),
            };
            let room = MAX_PAGES - drawn.pages;
            let draw = count.min(room);
            drawn.left_out += count - draw;
            if draw == 0 {
                continue;
            }
            let _ = write!(body, "<g {paint}><title>{}</title>", escape(&title));
            for p in first..first + draw {
                let _ = write!(
                    body,
                    "<rect class=\"p\" x=\"{}\" y=\"{}\" width=\"{CELL}\" height=\"{CELL}\"/>",
                    MARGIN + (p % PAGES_PER_ROW) * PITCH,
                    top + (p / PAGES_PER_ROW) * PITCH
                );
            }
            body.push_str("</g>\n");
            drawn.pages += draw;
        }
        body.push_str("</g>\n");
        y = top + pages.div_ceil(PAGES_PER_ROW) * PITCH + 10;
    }
    if drawn.left_out > 0 {
        let _ = writeln!(
            body,
            "<text class=\"note\" x=\"{MARGIN}\" y=\"{}\">{} more pages not drawn (the map stops at {} pages)</text>",
            y + 12,
            drawn.left_out,
            MAX_PAGES
        );
        y += 20;
    }
    let height = y + MARGIN;

    let t = &r.totals;
    let free = t.free.bytes + t.released.bytes;
    let title = format!("spanalloc heap: {}", r.path);
    let subtitle = format!(
        "{} regions, {} mapped; in use {} (small {}, large {}); free {} ({} of it returned to the OS); {} B pages, {} pages a row",
        t.regions,
        bytes(t.mapped_bytes),
        bytes(t.inuse_bytes),
        bytes(t.small.bytes),
        bytes(t.large.bytes),
        bytes(free),
        // A span is hatched only if all its pages are released; the
        // counters also know the partly released ones.
        bytes(t.released.bytes.max(r.stats.released_bytes).min(free)),
        ps,
        PAGES_PER_ROW
    );
    let mut out = String::with_capacity(body.len() + legend.len() + 2048);
    let _ = write!(
        out,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">
<title>{}</title>
<defs>
<pattern id="released" width="4" height="4" patternUnits="userSpaceOnUse">
<rect width="4" height="4" fill="{RELEASED_BG}"/><path d="M0,4 L4,0" stroke="{RELEASED_LINE}" stroke-width="0.7"/>
</pattern>
<style>text {{ font-size: 11px; fill: #263238; }} text.title {{ font-size: 16px; font-weight: bold; }} text.region {{ font-size: 11px; font-weight: bold; }}</style>
</defs>
<rect width="100%" height="100%" fill="#ffffff"/>
<text class="title" x="{MARGIN}" y="24">{}</text>
<text class="subtitle" x="{MARGIN}" y="44">{}</text>
<g id="legend">
{}</g>
{}</svg>
"##,
        escape(&title),
        escape(&title),
        escape(&subtitle),
        legend,
        body
    );
    (out, drawn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::{analyse, parse_dump, tests::DUMP};

    #[test]
    fn colours_differ_between_neighbouring_classes() {
        let all: BTreeSet<String> = (1..=67).map(class_colour).collect();
        assert_eq!(all.len(), 67);
        assert_ne!(class_colour(1), class_colour(2));
        assert_eq!(hsl_to_rgb(0.0, 1.0, 0.5), (255, 0, 0));
        assert_eq!(hsl_to_rgb(120.0, 1.0, 0.5), (0, 255, 0));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;?");
    }

    #[test]
    fn draws_every_page_once() {
        let d = parse_dump("a&b.json", DUMP.as_bytes()).unwrap();
        let r = analyse("a&b.json", &d);
        let (svg, drawn) = render(&d, &r);
        assert_eq!(
            drawn,
            Drawn {
                pages: 8,
                left_out: 0
            }
        );
        assert_eq!(svg.matches("<rect class=\"p\"").count(), 8);
        assert!(svg.contains("a&amp;b.json"));
        assert!(svg.contains("class 1: 8 B"));
    }
}
