//! `profile FILE` on profiles built here with the tool's own prost structs
//! (src/pprof.rs), gzip-compressed as spanalloc writes them: five call
//! sites with known values, an inlined frame, recursion and a call site
//! whose values are all zero; and a CPU profile in Go's shape, not
//! compressed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message as _;

use crate::common::{inspect_json, inspect_ok, num};
use crate::pprof::{Function, Line, Location, Mapping, Profile, Sample, ValueType};

/// spanalloc's sample types, in order.
pub const SAMPLE_TYPES: [(&str, &str); 6] = [
    ("alloc_objects", "count"),
    ("alloc_space", "bytes"),
    ("inuse_objects", "count"),
    ("inuse_space", "bytes"),
    ("peak_objects", "count"),
    ("peak_space", "bytes"),
];

const KIB: i64 = 1024;
const MIB: i64 = 1024 * 1024;

/// Builds a profile's tables the way a writer does: strings, functions and
/// locations get ids as they are first named.
#[derive(Default)]
pub struct Builder {
    pub profile: Profile,
}

impl Builder {
    /// An empty profile with these sample types, the first string "".
    pub fn new(types: &[(&str, &str)]) -> Self {
        let mut b = Builder::default();
        b.string("");
        for (kind, unit) in types {
            let t = ValueType {
                r#type: b.string(kind),
                unit: b.string(unit),
            };
            b.profile.sample_type.push(t);
        }
        b
    }

    /// The index of `s` in the string table, adding it if new.
    pub fn string(&mut self, s: &str) -> i64 {
        let table = &mut self.profile.string_table;
        match table.iter().position(|t| t == s.as_bytes()) {
            Some(i) => i as i64,
            None => {
                table.push(s.as_bytes().to_vec());
                table.len() as i64 - 1
            }
        }
    }

    /// The id of function `name` (in `file`), adding it if new.
    pub fn function(&mut self, name: &str, file: &str) -> u64 {
        let (name, filename) = (self.string(name), self.string(file));
        if let Some(f) = self
            .profile
            .function
            .iter()
            .find(|f| f.name == name && f.filename == filename)
        {
            return f.id;
        }
        let id = self.profile.function.len() as u64 + 1;
        self.profile.function.push(Function {
            id,
            name,
            system_name: name,
            filename,
            start_line: 1,
        });
        id
    }

    /// A new location at `address` whose lines are `frames` (name, file),
    /// innermost first: more than one when calls were inlined there.
    pub fn location(&mut self, address: u64, frames: &[(&str, &str)]) -> u64 {
        let line = frames
            .iter()
            .enumerate()
            .map(|(i, (name, file))| Line {
                function_id: self.function(name, file),
                line: 10 + i as i64,
                column: 0,
            })
            .collect();
        let id = self.profile.location.len() as u64 + 1;
        self.profile.location.push(Location {
            id,
            mapping_id: 1,
            address,
            line,
            is_folded: false,
        });
        id
    }

    /// A sample: location ids innermost first, one value per sample type.
    pub fn sample(&mut self, locations: &[u64], values: &[i64]) {
        self.profile.sample.push(Sample {
            location_id: locations.to_vec(),
            value: values.to_vec(),
            label: Vec::new(),
        });
    }

    /// The profile, encoded (not compressed).
    pub fn encode(&self) -> Vec<u8> {
        self.profile.encode_to_vec()
    }
}

/// Compresses `data` with gzip, as pprof's writers do.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A spanalloc heap profile. Values per sample type, in the order of
/// [`SAMPLE_TYPES`]; stacks innermost first:
///
/// | stack | alloc objects / space | in use | peak |
/// |---|---|---|---|
/// | `Vec::push` inlined in `parse_config`, `main` | 10 / 8 MiB | 2 / 8 KiB | 4 / 16 KiB |
/// | `load_cache`, `main` | 4 / 4 MiB | 4 / 4 MiB | 4 / 4 MiB |
/// | `build_tree` ×3 (recursion), `main` | 100 / 2 MiB | 50 / 1 MiB | 100 / 2 MiB |
/// | `build_tree`, `main` | 20 / 1 MiB | 10 / 256 KiB | 20 / 1 MiB |
/// | `parse_config`, `main` | 1 / 512 KiB | 1 / 512 KiB | 1 / 512 KiB |
/// | `unused`, `main` | 0 everywhere | | |
pub fn heap_profile() -> Builder {
    let mut b = Builder::new(&SAMPLE_TYPES);
    let path = b.string("/usr/bin/app");
    b.profile.mapping.push(Mapping {
        id: 1,
        memory_start: 0x40_0000,
        memory_limit: 0x80_0000,
        filename: path,
        has_functions: true,
        has_filenames: true,
        has_line_numbers: true,
        has_inline_frames: true,
        ..Default::default()
    });
    let main = b.location(0x40_1000, &[("main", "src/main.rs")]);
    let push = b.location(
        0x40_2000,
        &[
            ("alloc::vec::Vec<T,A>::push", "alloc/src/vec/mod.rs"),
            ("app::parse_config", "src/config.rs"),
        ],
    );
    let cache = b.location(0x40_3000, &[("app::load_cache", "src/cache.rs")]);
    let tree = b.location(0x40_4000, &[("app::build_tree", "src/tree.rs")]);
    let config = b.location(0x40_5000, &[("app::parse_config", "src/config.rs")]);
    let unused = b.location(0x40_6000, &[("app::unused", "src/unused.rs")]);
    b.sample(&[push, main], &[10, 8 * MIB, 2, 8 * KIB, 4, 16 * KIB]);
    b.sample(&[cache, main], &[4, 4 * MIB, 4, 4 * MIB, 4, 4 * MIB]);
    b.sample(
        &[tree, tree, tree, main],
        &[100, 2 * MIB, 50, MIB, 100, 2 * MIB],
    );
    b.sample(&[tree, main], &[20, MIB, 10, 256 * KIB, 20, MIB]);
    b.sample(&[config, main], &[1, 512 * KIB, 1, 512 * KIB, 1, 512 * KIB]);
    b.sample(&[unused, main], &[0; 6]);
    b.profile.default_sample_type = b.string("inuse_space");
    b.profile.period_type = Some(ValueType {
        r#type: b.string("space"),
        unit: b.string("bytes"),
    });
    b.profile.period = 512 * KIB;
    // 2025-01-02 03:04:05 UTC, for one and a half seconds.
    b.profile.time_nanos = 1_735_787_045_000_000_000;
    b.profile.duration_nanos = 1_500_000_000;
    b
}

/// In-use bytes: the total, and per function (flat, cum).
const INUSE_TOTAL: i64 = 8 * KIB + 4 * MIB + MIB + 256 * KIB + 512 * KIB;
const INUSE: [(&str, i64, i64); 5] = [
    ("app::load_cache", 4 * MIB, 4 * MIB),
    // Recursion: the three-deep stack counts once.
    ("app::build_tree", MIB + 256 * KIB, MIB + 256 * KIB),
    // Its own sample plus the one where Vec::push is inlined into it.
    ("app::parse_config", 512 * KIB, 512 * KIB + 8 * KIB),
    ("alloc::vec::Vec<T,A>::push", 8 * KIB, 8 * KIB),
    ("main", 0, INUSE_TOTAL),
];

/// Writes `data` to `name` in `dir`.
pub fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, data).unwrap();
    f
}

/// The heap profile, gzip-compressed, in `dir`.
pub fn heap_profile_file(dir: &Path) -> PathBuf {
    write(dir, "heap.pb.gz", &gzip(&heap_profile().encode()))
}

fn pct(part: i64, total: i64) -> f64 {
    part as f64 * 100.0 / total as f64
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn top_functions_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let f = heap_profile_file(dir.path());
    let r = inspect_json(&["profile", f.to_str().unwrap()]);
    assert_eq!(r["sample_type"], "inuse_space", "the profile's default");
    assert_eq!(r["default_sample_type"], "inuse_space");
    assert_eq!(r["unit"], "bytes");
    assert_eq!(num(&r["total"]), INUSE_TOTAL as u64);
    assert_eq!(num(&r["samples"]), 6);
    assert_eq!(num(&r["period"]), 512 * 1024);
    assert_eq!(r["period_type"]["type"], "space");
    assert_eq!(r["time"], "2025-01-02 03:04:05 UTC");
    assert_eq!(num(&r["duration_nanos"]), 1_500_000_000);
    let types: Vec<(&str, &str)> = r["sample_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["type"].as_str().unwrap(), t["unit"].as_str().unwrap()))
        .collect();
    assert_eq!(types, SAMPLE_TYPES);
    let totals: Vec<u64> = r["sample_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| num(&t["total"]))
        .collect();
    assert_eq!(
        totals,
        [
            135,
            (15 * MIB + 512 * KIB) as u64,
            67,
            INUSE_TOTAL as u64,
            129,
            (7 * MIB + 528 * KIB) as u64
        ]
    );

    // The zero-valued call site's function is not listed.
    let rows = r["functions"].as_array().unwrap();
    assert_eq!(num(&r["functions_with_values"]), 5);
    assert_eq!(rows.len(), INUSE.len());
    let mut sum = 0.0;
    for (row, (name, flat, cum)) in rows.iter().zip(INUSE) {
        assert_eq!(row["name"], name, "{row}");
        assert_eq!(num(&row["flat"]), flat as u64, "{name}");
        assert_eq!(num(&row["cum"]), cum as u64, "{name}");
        sum += pct(flat, INUSE_TOTAL);
        assert!(close(
            row["flat_percent"].as_f64().unwrap(),
            pct(flat, INUSE_TOTAL)
        ));
        assert!(close(
            row["cum_percent"].as_f64().unwrap(),
            pct(cum, INUSE_TOTAL)
        ));
        assert!(close(row["sum_percent"].as_f64().unwrap(), sum));
    }
    assert!(close(sum, 100.0));
    assert_eq!(rows[0]["file"], "src/cache.rs");
    let inline: Vec<bool> = rows
        .iter()
        .map(|r| r["inline"].as_bool().unwrap())
        .collect();
    assert_eq!(inline, [false, false, false, true, false]);
}

#[test]
fn text_table() {
    let dir = tempfile::tempdir().unwrap();
    let f = heap_profile_file(dir.path());
    let out = inspect_ok(&["profile", f.to_str().unwrap()]).stdout;
    for want in [
        "6 samples",
        "period 512.0 KiB (space/bytes)",
        "time 2025-01-02 03:04:05 UTC",
        "duration 1.50 s",
        "total inuse_space: 5.8 MiB",
        "flat%",
        "cum%",
    ] {
        assert!(out.contains(want), "no {want:?} in\n{out}");
    }
    assert!(!out.contains("app::unused"), "{out}");
    // The sample-type table marks the default, shown type.
    let line = out
        .lines()
        .find(|l| l.starts_with("inuse_space"))
        .expect("a row for inuse_space");
    assert!(line.ends_with("5.8 MiB  default, shown"), "{line:?}");
    let line = out
        .lines()
        .find(|l| l.starts_with("alloc_objects"))
        .unwrap();
    assert!(
        line.trim_end().ends_with(" 135"),
        "counts are plain: {line:?}"
    );

    // The table: flat, flat%, sum%, cum, cum%, name; in flat order.
    let header = out.lines().position(|l| l.contains("flat%")).unwrap();
    let rows: Vec<&str> = out.lines().skip(header + 1).collect();
    assert_eq!(rows.len(), 5, "{out}");
    let want = [
        [
            "4.0 MiB",
            "69.47%",
            "69.47%",
            "4.0 MiB",
            "69.47%",
            "app::load_cache",
        ],
        [
            "1.2 MiB",
            "21.71%",
            "91.18%",
            "1.2 MiB",
            "21.71%",
            "app::build_tree",
        ],
        [
            "512.0 KiB",
            "8.68%",
            "99.86%",
            "520.0 KiB",
            "8.82%",
            "app::parse_config",
        ],
        [
            "8.0 KiB",
            "0.14%",
            "100.00%",
            "8.0 KiB",
            "0.14%",
            // Met only inlined (into parse_config): pprof marks it so too.
            "alloc::vec::Vec<T,A>::push (inline)",
        ],
        ["0 B", "0.00%", "100.00%", "5.8 MiB", "100.00%", "main"],
    ];
    for (row, w) in rows.iter().zip(want) {
        // Values are two words ("4.0 MiB"), names may hold spaces.
        let c: Vec<&str> = row.split_whitespace().collect();
        let got = [
            format!("{} {}", c[0], c[1]),
            c[2].to_string(),
            c[3].to_string(),
            format!("{} {}", c[4], c[5]),
            c[6].to_string(),
            c[7..].join(" "),
        ];
        assert_eq!(got, w, "{row}");
    }
}

#[test]
fn other_sample_types() {
    let dir = tempfile::tempdir().unwrap();
    let f = heap_profile_file(dir.path());
    let f = f.to_str().unwrap();
    let names = |r: &serde_json::Value| -> Vec<String> {
        r["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };

    // By bytes allocated, the inlined Vec::push comes first.
    let r = inspect_json(&["profile", f, "--sample", "alloc_space"]);
    assert_eq!(r["sample_type"], "alloc_space");
    assert_eq!(num(&r["total"]), (15 * MIB + 512 * KIB) as u64);
    assert_eq!(
        names(&r),
        [
            "alloc::vec::Vec<T,A>::push",
            "app::load_cache",
            "app::build_tree",
            "app::parse_config",
            "main"
        ]
    );
    let config = &r["functions"][3];
    assert_eq!(
        (num(&config["flat"]), num(&config["cum"])),
        ((512 * KIB) as u64, (8 * MIB + 512 * KIB) as u64)
    );

    // Objects in use: counts, build_tree first (50 + 10).
    let r = inspect_json(&["profile", f, "--sample", "inuse_objects"]);
    assert_eq!(r["unit"], "count");
    assert_eq!(num(&r["total"]), 67);
    assert_eq!(r["functions"][0]["name"], "app::build_tree");
    assert_eq!(num(&r["functions"][0]["flat"]), 60);
    let out = inspect_ok(&["profile", f, "--sample", "inuse_objects"]).stdout;
    assert!(out.contains("total inuse_objects: 67\n"), "{out}");
    let line = out
        .lines()
        .find(|l| l.ends_with("app::build_tree"))
        .unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        &cols[..5],
        ["60", "89.55%", "89.55%", "60", "89.55%"],
        "{line}"
    );

    // --top.
    let r = inspect_json(&["profile", f, "--sample", "peak_space", "--top", "2"]);
    assert_eq!(r["functions"].as_array().unwrap().len(), 2);
    assert_eq!(num(&r["functions_with_values"]), 5);
    assert_eq!(names(&r), ["app::load_cache", "app::build_tree"]);
    let out = inspect_ok(&["profile", f, "--top", "2"]).stdout;
    assert!(out.contains("showing the top 2 of 5 functions"), "{out}");

    // No default in the profile: the last type, peak_space.
    let mut b = heap_profile();
    b.profile.default_sample_type = 0;
    let g = write(dir.path(), "nodefault.pb.gz", &gzip(&b.encode()));
    let r = inspect_json(&["profile", g.to_str().unwrap()]);
    assert_eq!(r["sample_type"], "peak_space");
    assert_eq!(r["default_sample_type"], serde_json::Value::Null);
}

/// A CPU profile shaped as Go writes one (samples/count, cpu/nanoseconds,
/// no default type), not compressed, with an unsymbolised location, a
/// sample without locations and a file name that is not UTF-8.
#[test]
fn a_go_cpu_profile() {
    let mut b = Builder::new(&[("samples", "count"), ("cpu", "nanoseconds")]);
    let main = b.location(0x1000, &[("main.main", "main.go")]);
    let hot = b.location(0x2000, &[("main.hot", "main.go")]);
    let raw = b.profile.location.len() as u64 + 1;
    b.profile.location.push(Location {
        id: raw,
        address: 0x7f00_dead_beef,
        ..Default::default()
    });
    b.sample(&[hot, main], &[30, 300_000_000]);
    b.sample(&[raw, main], &[5, 50_000_000]);
    b.sample(&[], &[1, 10_000_000]);
    b.profile.period_type = Some(ValueType {
        r#type: b.string("cpu"),
        unit: b.string("nanoseconds"),
    });
    b.profile.period = 10_000_000;
    let latin1 = b.profile.function[1].filename as usize;
    b.profile.string_table[latin1] = b"caf\xe9.go".to_vec();
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "cpu.pb", &b.encode());
    let f = f.to_str().unwrap();
    let r = inspect_json(&["profile", f]);
    assert_eq!(r["sample_type"], "cpu");
    assert_eq!(num(&r["total"]), 360_000_000);
    let rows: Vec<(&str, u64)> = r["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), num(&f["flat"])))
        .collect();
    assert_eq!(
        rows,
        [
            ("main.hot", 300_000_000),
            ("0x7f00deadbeef", 50_000_000),
            ("[no stack]", 10_000_000),
            ("main.main", 0)
        ]
    );
    assert_eq!(r["functions"][0]["file"], "caf\u{fffd}.go");
    let out = inspect_ok(&["profile", f]).stdout;
    assert!(out.contains("total cpu: 360.00 ms"), "{out}");
    assert!(out.contains("period 10.00 ms (cpu/nanoseconds)"), "{out}");
    let line = out.lines().find(|l| l.ends_with("main.hot")).unwrap();
    assert!(line.contains("300.00 ms"), "{line}");
}

/// The `<g>` frames of an inferno flame graph: (title, rect width in
/// percent), after checking that the document is well-formed SVG whose
/// title is `title`.
fn flame_frames(path: &Path, title: &str) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(path).expect("the flame graph was written");
    let doc = roxmltree::Document::parse_with_options(
        &text,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    assert!(texts.contains(&title), "no title {title:?} in {texts:?}");
    let frames = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("frames"))
        .expect("a frames group");
    frames
        .children()
        .filter(|n| n.has_tag_name("g"))
        .map(|g| {
            let title = g
                .children()
                .find(|n| n.has_tag_name("title"))
                .and_then(|t| t.text())
                .expect("a frame's title")
                .to_string();
            let rect = g.children().find(|n| n.has_tag_name("rect")).unwrap();
            let width = rect.attribute("width").unwrap();
            let width: f64 = width.trim_end_matches('%').parse().unwrap();
            (title, width)
        })
        .collect()
}

#[test]
fn flame_graph() {
    let dir = tempfile::tempdir().unwrap();
    let f = heap_profile_file(dir.path());
    let out = dir.path().join("flame.svg");
    let run = inspect_ok(&[
        "profile",
        f.to_str().unwrap(),
        "--flamegraph",
        out.to_str().unwrap(),
    ]);
    // Five stacks: the zero-valued one is left out.
    assert!(
        run.stdout
            .contains(&format!("flame graph: {} (5 stacks)", out.display())),
        "{}",
        run.stdout
    );
    let frames = flame_frames(&out, "inuse_space: 5.8 MiB");
    let find = |prefix: &str| -> Vec<&(String, f64)> {
        frames
            .iter()
            .filter(|(t, _)| t.starts_with(&format!("{prefix} (")))
            .collect()
    };
    // The root frame is the whole graph.
    let all = find("all");
    assert_eq!(all.len(), 1, "{frames:?}");
    assert!(all[0].0.contains("6,037,504 bytes"), "{all:?}");
    // One frame per depth: main, then build_tree three deep.
    assert_eq!(find("main").len(), 1);
    let tree = find("app::build_tree");
    assert_eq!(tree.len(), 3, "{frames:?}");
    assert!(tree.iter().any(|(t, _)| t.contains("1,310,720 bytes")));
    assert_eq!(
        tree.iter()
            .filter(|(t, _)| t.contains("1,048,576 bytes"))
            .count(),
        2
    );
    for (name, _, _) in INUSE {
        assert!(!find(name).is_empty(), "no frame for {name}: {frames:?}");
    }
    assert!(
        find("app::unused").is_empty(),
        "zero-valued frames are left out"
    );
    // Widths follow the values: load_cache is 69.47% of the graph.
    let cache = find("app::load_cache")[0];
    assert!(
        (cache.1 - pct(4 * MIB, INUSE_TOTAL)).abs() < 0.01,
        "{cache:?}"
    );
    // Vec::push is drawn above parse_config, into which it was inlined;
    // parse_config's two stacks make one frame.
    assert!(find("alloc::vec::Vec<T,A>::push")[0]
        .0
        .contains("8,192 bytes"));
    let config = find("app::parse_config");
    assert_eq!(config.len(), 1, "{config:?}");
    assert!(config[0].0.contains("532,480 bytes"), "{config:?}");

    // Objects: the count name says so; JSON and the graph together.
    let r = inspect_json(&[
        "profile",
        f.to_str().unwrap(),
        "--sample",
        "alloc_objects",
        "--flamegraph",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r["sample_type"], "alloc_objects");
    let frames = flame_frames(&out, "alloc_objects: 135");
    let tree: Vec<_> = frames
        .iter()
        .filter(|(t, _)| t.starts_with("app::build_tree ("))
        .collect();
    assert!(
        tree.iter().any(|(t, _)| t.contains("(120 objects, ")),
        "{tree:?}"
    );
}

/// The same functions, order and percentages as `go tool pprof -top`, where
/// Go is installed (and a note saying it was skipped where it is not).
#[test]
fn agrees_with_go_tool_pprof() {
    let dir = tempfile::tempdir().unwrap();
    let f = heap_profile_file(dir.path());
    let f = f.to_str().unwrap();
    for sample in ["inuse_space", "alloc_space", "inuse_objects", "peak_space"] {
        let out = Command::new("go")
            .args([
                "tool",
                "pprof",
                "-top",
                "-symbolize=none",
                "-nodefraction=0",
            ])
            .arg(format!("-sample_index={sample}"))
            .arg(f)
            .output();
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                eprintln!("agrees_with_go_tool_pprof: skipped, cannot run go: {e}");
                return;
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "go tool pprof failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // pprof: flat flat% sum% cum cum% name, each value one word.
        let header = text.lines().position(|l| l.contains("flat%")).unwrap();
        let percent = |s: &str| -> f64 { s.trim_end_matches('%').parse().unwrap() };
        let theirs: Vec<(String, [f64; 3])> = text
            .lines()
            .skip(header + 1)
            .map(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                (
                    c[5..].join(" "),
                    [percent(c[1]), percent(c[2]), percent(c[4])],
                )
            })
            .collect();
        let r = inspect_json(&["profile", f, "--sample", sample, "--top", "0"]);
        let ours: Vec<(String, [f64; 3])> = r["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let mut name = row["name"].as_str().unwrap().to_string();
                if row["inline"].as_bool().unwrap() {
                    name.push_str(" (inline)");
                }
                let p = |k: &str| row[k].as_f64().unwrap();
                (
                    name,
                    [p("flat_percent"), p("sum_percent"), p("cum_percent")],
                )
            })
            .collect();
        assert_eq!(ours.len(), theirs.len(), "{sample}: {ours:?}\n{text}");
        for (o, t) in ours.iter().zip(&theirs) {
            assert_eq!(o.0, t.0, "{sample}:\n{text}");
            for (a, b) in o.1.iter().zip(t.1) {
                // pprof rounds to two decimals and drops trailing zeros.
                assert!(
                    (a - b).abs() < 0.006,
                    "{sample} {}: {a} vs {b}\n{text}",
                    o.0
                );
            }
        }
    }
}
