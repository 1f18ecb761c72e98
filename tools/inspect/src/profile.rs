//! `profile FILE`: reads a pprof profile and ranks its functions, as
//! `go tool pprof -top` does.
//!
//! The input is a `perftools.profiles.Profile` ([`crate::pprof`]),
//! gzip-compressed as pprof writes it or not. spanalloc's heap profiles
//! (`SPANALLOC_PROFILE`) have six sample types: `alloc_objects`,
//! `alloc_space`, `inuse_objects`, `inuse_space`, `peak_objects`,
//! `peak_space`, the default being `inuse_space`; any other valid profile
//! (Go's heap or CPU profiles, ...) is read with the sample types it has.
//!
//! Reading goes in three steps:
//!
//! 1. [`decode`]: gunzip if the file starts with gzip's magic bytes, then
//!    decode the protobuf with `prost`;
//! 2. [`resolve`]: check every cross-reference (string indices, location
//!    and function ids, one value per sample type) and turn each sample's
//!    stack into a list of frames, innermost first, inlined calls expanded.
//!    A frame is a function, told apart by name and file; a location without
//!    lines (not symbolised) is a frame named by its address. A sample
//!    without locations gets the one frame `[no stack]`, so that every
//!    sample is counted somewhere. A function met only as an inlined line
//!    (never as a location's last line) is marked `inline`, as pprof marks
//!    it `(inline)`;
//! 3. [`Resolved::report`]: for the chosen sample type, each frame's *flat*
//!    value (the samples whose innermost frame it is) and *cumulative* value
//!    (the samples whose stack holds it, counted once per sample however
//!    often it recurs), sorted by flat value, then cumulative, then name.
//!
//! [`Resolved::folded`] gives the same stacks as folded lines
//! (`root;caller;callee value`) for the flame graph ([`crate::flamegraph`]).
//!
//! Anything that is not such a profile is refused with a message saying
//! what is wrong, never a panic: pprof's own reader refuses the same
//! dangling references. `drop_frames` and `keep_frames` are ignored.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::Path;

use prost::Message as _;
use serde::Serialize;

use crate::error::{read_file, Error, Kind, Result};
use crate::pprof;

/// The most bytes a compressed profile may expand to; past this it is
/// refused rather than filling memory.
pub const MAX_DECOMPRESSED: u64 = 1 << 30;

/// The frame given to samples that have no locations.
pub const NO_STACK: &str = "[no stack]";

/// The first bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Decodes a profile file's bytes: gzip-compressed or plain protobuf.
/// `path` is only used in messages.
pub fn decode(path: &str, bytes: &[u8]) -> Result<pprof::Profile> {
    let bad = |what: String| Error::bad_input(format!("{path}: not a pprof profile: {what}"));
    if bytes.is_empty() {
        return Err(bad("empty file".into()));
    }
    let mut plain = Vec::new();
    let data: &[u8] = if bytes.starts_with(&GZIP_MAGIC) {
        flate2::read::MultiGzDecoder::new(bytes)
            .take(MAX_DECOMPRESSED + 1)
            .read_to_end(&mut plain)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => bad("truncated gzip data".into()),
                _ => bad(format!("bad gzip data: {e}")),
            })?;
        if plain.len() as u64 > MAX_DECOMPRESSED {
            return Err(bad(format!(
                "decompresses to more than {}",
                crate::report::bytes(MAX_DECOMPRESSED)
            )));
        }
        &plain
    } else {
        bytes
    };
    pprof::Profile::decode(data).map_err(|e| {
        let e = e.to_string();
        // prost says "failed to decode Protobuf message: ..."; say it once.
        let e = e
            .strip_prefix("failed to decode Protobuf message: ")
            .unwrap_or(&e);
        bad(format!("invalid protobuf: {e}"))
    })
}

/// A function (or an unsymbolised address) that appears in stacks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame {
    /// The function's name; its system name if it has no other; `0x…` for
    /// an address without lines; [`NO_STACK`].
    pub name: String,
    /// Its source file, or "".
    pub file: String,
}

/// A sample type: what a value measures, and in what unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValueType {
    /// `inuse_space`, `alloc_objects`, `cpu`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `bytes`, `count`, `nanoseconds`, ...
    pub unit: String,
}

/// A profile whose references have all been checked, with each sample's
/// stack as frames.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The file, as given.
    pub path: String,
    /// The sample types, in the order of each sample's values.
    pub sample_types: Vec<ValueType>,
    /// The type the profile says to show first, if it names one of them.
    pub default_sample_type: Option<usize>,
    /// What the period counts.
    pub period_type: Option<ValueType>,
    /// Events between samples.
    pub period: i64,
    /// Collection start, nanoseconds since the Unix epoch (0: unknown).
    pub time_nanos: i64,
    /// Collection length in nanoseconds (0: unknown).
    pub duration_nanos: i64,
    /// The profile's comments.
    pub comments: Vec<String>,
    /// Every frame, indexed by the stacks.
    pub frames: Vec<Frame>,
    /// Per sample: frame indices innermost first, and one value per sample
    /// type.
    pub samples: Vec<(Vec<usize>, Vec<i64>)>,
    /// Per frame: whether every line that names it was inlined into another
    /// function.
    pub inline: Vec<bool>,
    /// Locations in the profile.
    pub locations: usize,
}

/// Reads, decodes and checks a profile file.
pub fn read(path: &Path) -> Result<Resolved> {
    let bytes = read_file(path)?;
    let name = path.display().to_string();
    let profile = decode(&name, &bytes)?;
    resolve(&name, &profile)
}

/// Checks a decoded profile's references and expands its stacks.
pub fn resolve(path: &str, p: &pprof::Profile) -> Result<Resolved> {
    let invalid =
        |what: String| Error::bad_input(format!("{path}: not a valid pprof profile: {what}"));
    if p.sample_type.is_empty() {
        return Err(invalid("no sample types".into()));
    }
    let strings: Vec<String> = p
        .string_table
        .iter()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    match strings.first() {
        None => return Err(invalid("no string table".into())),
        Some(s) if !s.is_empty() => {
            return Err(invalid(format!(
                "the string table starts with {s:?}, not \"\""
            )))
        }
        Some(_) => {}
    }
    let string = |index: i64, what: &dyn Fn() -> String| -> Result<String> {
        usize::try_from(index)
            .ok()
            .and_then(|i| strings.get(i))
            .cloned()
            .ok_or_else(|| {
                invalid(format!(
                    "{} is string {index}, outside the string table ({} strings)",
                    what(),
                    strings.len()
                ))
            })
    };
    let value_type = |v: &pprof::ValueType, what: &str| -> Result<ValueType> {
        Ok(ValueType {
            kind: string(v.r#type, &|| format!("the type of {what}"))?,
            unit: string(v.unit, &|| format!("the unit of {what}"))?,
        })
    };

    let sample_types = p
        .sample_type
        .iter()
        .enumerate()
        .map(|(i, v)| value_type(v, &format!("sample type {i}")))
        .collect::<Result<Vec<_>>>()?;
    let default_sample_type = match p.default_sample_type {
        0 => None,
        index => {
            let name = string(index, &|| "the default sample type".into())?;
            sample_types.iter().position(|t| t.kind == name)
        }
    };
    let period_type = p
        .period_type
        .as_ref()
        .map(|v| value_type(v, "the period type"))
        .transpose()?;
    let comments = p
        .comment
        .iter()
        .map(|&c| string(c, &|| "a comment".into()))
        .collect::<Result<Vec<_>>>()?;

    let mut frames = Frames::default();

    // Functions: id → frame.
    let mut functions: HashMap<u64, usize> = HashMap::with_capacity(p.function.len());
    for f in &p.function {
        let what = || format!("function {}", f.id);
        if f.id == 0 {
            return Err(invalid("a function has id 0".into()));
        }
        let mut name = string(f.name, &|| format!("the name of {}", what()))?;
        if name.is_empty() {
            name = string(f.system_name, &|| format!("the system name of {}", what()))?;
        }
        if name.is_empty() {
            name = what();
        }
        let file = string(f.filename, &|| format!("the file of {}", what()))?;
        if functions.insert(f.id, frames.get(name, file)).is_some() {
            return Err(invalid(format!("two functions have id {}", f.id)));
        }
    }

    // Locations: id → frames, innermost first.
    let mut locations: HashMap<u64, Vec<usize>> = HashMap::with_capacity(p.location.len());
    // Frames that hold code of their own (a location's last line, or an
    // address), as opposed to having been inlined only.
    let mut outer: Vec<bool> = Vec::new();
    for l in &p.location {
        if l.id == 0 {
            return Err(invalid("a location has id 0".into()));
        }
        let stack = if l.line.is_empty() {
            let name = if l.address != 0 {
                format!("{:#x}", l.address)
            } else {
                format!("location {}", l.id)
            };
            vec![frames.get(name, String::new())]
        } else {
            l.line
                .iter()
                .map(|line| {
                    functions.get(&line.function_id).copied().ok_or_else(|| {
                        invalid(format!(
                            "location {} refers to function {}, which is not in the profile",
                            l.id, line.function_id
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?
        };
        if let Some(&f) = stack.last() {
            if outer.len() <= f {
                outer.resize(f + 1, false);
            }
            outer[f] = true;
        }
        if locations.insert(l.id, stack).is_some() {
            return Err(invalid(format!("two locations have id {}", l.id)));
        }
    }

    let mut samples = Vec::with_capacity(p.sample.len());
    for (i, s) in p.sample.iter().enumerate() {
        if s.value.len() != sample_types.len() {
            return Err(invalid(format!(
                "sample {i} has {} values for {} sample types",
                s.value.len(),
                sample_types.len()
            )));
        }
        let mut stack = Vec::new();
        for id in &s.location_id {
            let frames = locations.get(id).ok_or_else(|| {
                invalid(format!(
                    "sample {i} refers to location {id}, which is not in the profile"
                ))
            })?;
            stack.extend_from_slice(frames);
        }
        if stack.is_empty() {
            let f = frames.get(NO_STACK.into(), String::new());
            if outer.len() <= f {
                outer.resize(f + 1, false);
            }
            outer[f] = true;
            stack.push(f);
        }
        samples.push((stack, s.value.clone()));
    }

    // Functions that no location names are not in any stack; only the
    // frames of lines can be inlined ones.
    outer.resize(frames.list.len(), false);
    let inline = outer.iter().map(|&o| !o).collect();
    Ok(Resolved {
        path: path.to_string(),
        sample_types,
        default_sample_type,
        period_type,
        period: p.period,
        time_nanos: p.time_nanos,
        duration_nanos: p.duration_nanos,
        comments,
        frames: frames.list,
        samples,
        inline,
        locations: p.location.len(),
    })
}

/// The frames met so far, each once.
#[derive(Default)]
struct Frames {
    list: Vec<Frame>,
    index: HashMap<Frame, usize>,
}

impl Frames {
    /// The index of the frame (name, file), adding it if new.
    fn get(&mut self, name: String, file: String) -> usize {
        let frame = Frame { name, file };
        if let Some(&i) = self.index.get(&frame) {
            return i;
        }
        self.list.push(frame.clone());
        self.index.insert(frame, self.list.len() - 1);
        self.list.len() - 1
    }
}

/// One row of the top table.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionRow {
    /// The function (see [`Frame::name`]).
    pub name: String,
    /// Its source file, or "".
    pub file: String,
    /// Whether it was only ever met inlined into other functions.
    pub inline: bool,
    /// The value of the samples whose innermost frame it is.
    pub flat: i64,
    /// `flat` in percent of the total.
    pub flat_percent: f64,
    /// The `flat_percent` of this row and every row above it.
    pub sum_percent: f64,
    /// The value of the samples whose stack holds it.
    pub cum: i64,
    /// `cum` in percent of the total.
    pub cum_percent: f64,
}

/// A sample type with its total over all samples.
#[derive(Clone, Debug, Serialize)]
pub struct TypeTotal {
    /// What it measures.
    #[serde(flatten)]
    pub value_type: ValueType,
    /// The sum over all samples.
    pub total: i64,
}

/// Everything `profile FILE` reports.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileReport {
    /// The profile file, as given.
    pub path: String,
    /// Every sample type, with its total.
    pub sample_types: Vec<TypeTotal>,
    /// The one the profile says to show first, if any.
    pub default_sample_type: Option<String>,
    /// The one shown (`--sample`, else the default, else the last).
    pub sample_type: String,
    /// Its unit.
    pub unit: String,
    /// Its total over all samples.
    pub total: i64,
    /// What the sampling period counts.
    pub period_type: Option<ValueType>,
    /// Events between two samples.
    pub period: i64,
    /// Collection start, nanoseconds since the Unix epoch (0: unknown).
    pub time_nanos: i64,
    /// The same, as `YYYY-MM-DD hh:mm:ss UTC` (absent if unknown).
    pub time: Option<String>,
    /// Collection length in nanoseconds (0: unknown).
    pub duration_nanos: i64,
    /// The profile's comments.
    pub comments: Vec<String>,
    /// Samples in the profile.
    pub samples: usize,
    /// Locations in the profile.
    pub locations: usize,
    /// Functions with a non-zero flat or cumulative value.
    pub functions_with_values: usize,
    /// The top functions by flat value, at most `--top` of them.
    pub functions: Vec<FunctionRow>,
}

/// `part` in percent of `total` (0 when the total is 0).
fn percent(part: i64, total: i64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

impl Resolved {
    /// The index of the sample type to show: `wanted` by name, else the
    /// profile's default, else the last. An unknown name is a usage error
    /// that lists the types the profile has.
    pub fn choose(&self, wanted: Option<&str>) -> Result<usize> {
        match wanted {
            Some(name) => self
                .sample_types
                .iter()
                .position(|t| t.kind == name)
                .ok_or_else(|| {
                    let have: Vec<&str> =
                        self.sample_types.iter().map(|t| t.kind.as_str()).collect();
                    Error::new(
                        Kind::Usage,
                        format!(
                            "{}: no sample type {name:?}; the profile has {}",
                            self.path,
                            have.join(", ")
                        ),
                    )
                }),
            None => Ok(self
                .default_sample_type
                .unwrap_or(self.sample_types.len() - 1)),
        }
    }

    /// The sum of value `index` over all samples.
    pub fn total(&self, index: usize) -> i64 {
        self.samples
            .iter()
            .fold(0i64, |sum, (_, v)| sum.saturating_add(v[index]))
    }

    /// The report for sample type `index`, with the `top` functions by flat
    /// value (all of them if `top` is 0).
    pub fn report(&self, index: usize, top: usize) -> ProfileReport {
        let total = self.total(index);
        let mut flat = vec![0i64; self.frames.len()];
        let mut cum = vec![0i64; self.frames.len()];
        // The last sample (plus one) that added to each frame's `cum`, so a
        // frame that recurs in a stack is counted once.
        let mut seen = vec![0usize; self.frames.len()];
        for (n, (stack, values)) in self.samples.iter().enumerate() {
            let v = values[index];
            if let Some(&leaf) = stack.first() {
                flat[leaf] = flat[leaf].saturating_add(v);
            }
            for &f in stack {
                if seen[f] != n + 1 {
                    seen[f] = n + 1;
                    cum[f] = cum[f].saturating_add(v);
                }
            }
        }
        let mut order: Vec<usize> = (0..self.frames.len())
            .filter(|&f| flat[f] != 0 || cum[f] != 0)
            .collect();
        order.sort_by(|&a, &b| {
            flat[b]
                .unsigned_abs()
                .cmp(&flat[a].unsigned_abs())
                .then(cum[b].unsigned_abs().cmp(&cum[a].unsigned_abs()))
                .then_with(|| self.frames[a].cmp(&self.frames[b]))
        });
        let functions_with_values = order.len();
        if top > 0 {
            order.truncate(top);
        }
        let mut sum = 0.0;
        let functions = order
            .into_iter()
            .map(|f| {
                let flat_percent = percent(flat[f], total);
                sum += flat_percent;
                FunctionRow {
                    name: self.frames[f].name.clone(),
                    file: self.frames[f].file.clone(),
                    inline: self.inline[f],
                    flat: flat[f],
                    flat_percent,
                    sum_percent: sum,
                    cum: cum[f],
                    cum_percent: percent(cum[f], total),
                }
            })
            .collect();
        let chosen = &self.sample_types[index];
        ProfileReport {
            path: self.path.clone(),
            sample_types: self
                .sample_types
                .iter()
                .enumerate()
                .map(|(i, t)| TypeTotal {
                    value_type: t.clone(),
                    total: self.total(i),
                })
                .collect(),
            default_sample_type: self
                .default_sample_type
                .map(|i| self.sample_types[i].kind.clone()),
            sample_type: chosen.kind.clone(),
            unit: chosen.unit.clone(),
            total,
            period_type: self.period_type.clone(),
            period: self.period,
            time_nanos: self.time_nanos,
            time: (self.time_nanos != 0).then(|| utc_time(self.time_nanos)),
            duration_nanos: self.duration_nanos,
            comments: self.comments.clone(),
            samples: self.samples.len(),
            locations: self.locations,
            functions_with_values,
            functions,
        }
    }

    /// The stacks as folded lines for a flame graph, root first:
    /// `main;parse;alloc 4096`, one line per distinct stack with the sum of
    /// value `index`, sorted. Samples whose value is zero are left out, and
    /// so are negative ones (a flame graph cannot draw them): the second
    /// result counts those.
    pub fn folded(&self, index: usize) -> (Vec<String>, usize) {
        let mut stacks: BTreeMap<String, u64> = BTreeMap::new();
        let mut negative = 0;
        let names: Vec<String> = self.frames.iter().map(|f| folded_name(&f.name)).collect();
        for (stack, values) in &self.samples {
            let v = values[index];
            if v < 0 {
                negative += 1;
            }
            if v <= 0 {
                continue;
            }
            let line: Vec<&str> = stack.iter().rev().map(|&f| names[f].as_str()).collect();
            let sum = stacks.entry(line.join(";")).or_default();
            *sum = sum.saturating_add(v.unsigned_abs());
        }
        let lines = stacks
            .into_iter()
            .map(|(stack, v)| format!("{stack} {v}"))
            .collect();
        (lines, negative)
    }
}

/// A function name as one frame of a folded line: `;` separates frames
/// there, so one inside a name (Rust's `[u8; 8]`) becomes a full-width `；`;
/// line breaks become spaces; an empty name becomes `?`.
fn folded_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| match c {
            ';' => '；',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let s = s.trim();
    if s.is_empty() {
        "?".into()
    } else {
        s.into()
    }
}

/// A time in nanoseconds since the Unix epoch as `YYYY-MM-DD hh:mm:ss UTC`.
pub fn utc_time(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_date(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian (year, month, day) of a day counted from
/// 1970-01-01.
///
/// Counts from 0000-03-01 instead, so the leap day ends each year: a
/// 400-year era has 146,097 days, and within one the year, then the day of
/// the year, then the month (of five-month cycles of 153 days starting in
/// March) follow by division.
fn civil_date(days: i64) -> (i64, u32, u32) {
    const ERA_DAYS: i64 = 146_097;
    // Days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(ERA_DAYS);
    let day_of_era = z - era * ERA_DAYS; // 0..=146_096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // 0 = March
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::{Function, Line, Location, Profile, Sample, ValueType as Vt};

    /// A profile with two sample types (objects, bytes): `main` calls
    /// `work`, in which `helper` is inlined; `work` allocates directly too;
    /// `rec` calls itself.
    fn profile() -> Profile {
        let strings = [
            "", "objects", "count", "space", "bytes", "main", "work", "helper", "rec", "m.rs",
        ];
        let s = |x: &str| strings.iter().position(|&y| y == x).unwrap() as i64;
        let func = |id, name| Function {
            id,
            name: s(name),
            filename: s("m.rs"),
            ..Default::default()
        };
        let loc = |id, fns: &[u64]| Location {
            id,
            line: fns
                .iter()
                .map(|&function_id| Line {
                    function_id,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let sample = |locs: &[u64], objects, bytes| Sample {
            location_id: locs.to_vec(),
            value: vec![objects, bytes],
            ..Default::default()
        };
        Profile {
            sample_type: vec![
                Vt {
                    r#type: s("objects"),
                    unit: s("count"),
                },
                Vt {
                    r#type: s("space"),
                    unit: s("bytes"),
                },
            ],
            function: vec![
                func(1, "main"),
                func(2, "work"),
                func(3, "helper"),
                func(4, "rec"),
            ],
            // 10: main; 20: work (helper inlined); 21: work; 30: rec.
            location: vec![
                loc(10, &[1]),
                loc(20, &[3, 2]),
                loc(21, &[2]),
                loc(30, &[4]),
            ],
            sample: vec![
                sample(&[20, 10], 1, 100),
                sample(&[21, 10], 2, 300),
                sample(&[30, 30, 30, 10], 3, 600),
                sample(&[], 4, 0),
            ],
            string_table: strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }

    fn row<'a>(r: &'a ProfileReport, name: &str) -> &'a FunctionRow {
        r.functions.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn flat_and_cumulative() {
        let r = resolve("t", &profile()).unwrap();
        assert_eq!(r.choose(None).unwrap(), 1, "the last type by default");
        let rep = r.report(1, 0);
        assert_eq!(rep.total, 1000);
        let names: Vec<&str> = rep.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["rec", "work", "helper", "main"]);
        let rec = row(&rep, "rec");
        assert_eq!((rec.flat, rec.cum), (600, 600), "recursion counted once");
        assert_eq!((row(&rep, "work").flat, row(&rep, "work").cum), (300, 400));
        assert_eq!((row(&rep, "main").flat, row(&rep, "main").cum), (0, 1000));
        assert!((row(&rep, "helper").sum_percent - 100.0).abs() < 1e-9);
        assert!(row(&rep, "helper").inline);
        assert!(!row(&rep, "work").inline, "work holds code of its own too");

        let objects = r.report(0, 2);
        assert_eq!(objects.total, 10);
        assert_eq!(objects.functions.len(), 2);
        assert_eq!(objects.functions_with_values, 5);
        assert_eq!(objects.functions[0].name, NO_STACK);
    }

    #[test]
    fn folded_stacks() {
        let r = resolve("t", &profile()).unwrap();
        let (lines, negative) = r.folded(1);
        assert_eq!(negative, 0);
        assert_eq!(
            lines,
            [
                "main;rec;rec;rec 600",
                "main;work 300",
                "main;work;helper 100"
            ]
        );
        assert_eq!(folded_name("f<[u8; 8]>\n"), "f<[u8； 8]>");

        // A flame graph cannot draw negative values (a diff profile's).
        let mut p = profile();
        p.sample[1].value[1] = -300;
        let r = resolve("t", &p).unwrap();
        let (lines, negative) = r.folded(1);
        assert_eq!(negative, 1);
        assert_eq!(lines, ["main;rec;rec;rec 600", "main;work;helper 100"]);
        let rep = r.report(1, 0);
        assert_eq!(rep.total, 400);
        assert_eq!(row(&rep, "work").flat, -300);
    }

    #[test]
    fn dangling_references_are_refused() {
        let mut p = profile();
        p.sample[0].location_id.push(99);
        let e = resolve("f", &p).unwrap_err();
        assert!(e.message.contains("refers to location 99"), "{e}");

        let mut p = profile();
        p.location[0].line[0].function_id = 7;
        let e = resolve("f", &p).unwrap_err();
        assert!(e.message.contains("refers to function 7"), "{e}");

        let mut p = profile();
        p.function[0].name = 1000;
        let e = resolve("f", &p).unwrap_err();
        assert!(e.message.contains("outside the string table"), "{e}");

        let mut p = profile();
        p.sample[1].value.pop();
        let e = resolve("f", &p).unwrap_err();
        assert!(e.message.contains("has 1 values for 2 sample types"), "{e}");

        let mut p = profile();
        p.string_table.clear();
        assert!(resolve("f", &p).is_err());
        assert!(resolve("f", &Profile::default()).is_err());
    }

    #[test]
    fn gzip_or_not() {
        use std::io::Write as _;
        let raw = profile().encode_to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode("f", &raw).unwrap(), profile());
        assert_eq!(decode("f", &gz).unwrap(), profile());
        let e = decode("f", &gz[..gz.len() / 2]).unwrap_err();
        assert!(e.message.contains("truncated gzip"), "{e}");
        let e = decode("f", &raw[..raw.len() - 3]).unwrap_err();
        assert!(e.message.contains("invalid protobuf"), "{e}");
        assert!(decode("f", b"").unwrap_err().message.contains("empty"));
    }

    #[test]
    fn dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            utc_time(951_782_400_000_000_000 + 3_723_000_000_000),
            "2000-02-29 01:02:03 UTC"
        );
        assert_eq!(
            utc_time(1_735_689_599_999_999_999),
            "2024-12-31 23:59:59 UTC"
        );
        assert_eq!(utc_time(-1_000_000_000), "1969-12-31 23:59:59 UTC");
    }
}
