//! A small reader of pprof profiles (gzip-compressed `profile.proto`) for
//! the tests: enough of the format to check what spanalloc writes, decoded
//! independently of the encoder.

use std::collections::HashMap;
use std::io::Read;

/// A decoded profile: sample types, and per sample its stack of function
/// names (innermost first, inlined frames expanded) and values.
#[derive(Debug, Default)]
pub struct Profile {
    pub sample_types: Vec<(String, String)>,
    pub samples: Vec<(Vec<String>, Vec<i64>)>,
    pub period: i64,
    pub default_sample_type: String,
}

impl Profile {
    /// Index of a sample type by name.
    pub fn index(&self, name: &str) -> usize {
        self.sample_types
            .iter()
            .position(|(t, _)| t == name)
            .unwrap_or_else(|| panic!("no sample type {name} in {:?}", self.sample_types))
    }

    /// Sum of sample type `name` over samples whose stack has a function
    /// whose name contains `func`.
    pub fn total_for(&self, name: &str, func: &str) -> i64 {
        let i = self.index(name);
        self.samples
            .iter()
            .filter(|(stack, _)| stack.iter().any(|f| f.contains(func)))
            .map(|(_, v)| v[i])
            .sum()
    }
}

/// One field of a protobuf message.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return v;
        }
        shift += 7;
        assert!(shift < 64, "varint too long");
    }
}

/// The fields of a message, in order: (field number, value).
fn fields(buf: &[u8]) -> Vec<(u64, Field<'_>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos);
        let (num, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((num, Field::Varint(varint(buf, &mut pos)))),
            2 => {
                let len = varint(buf, &mut pos) as usize;
                out.push((num, Field::Bytes(&buf[pos..pos + len])));
                pos += len;
            }
            1 => pos += 8,
            5 => pos += 4,
            w => panic!("unexpected wire type {w}"),
        }
    }
    out
}

/// A repeated integer field, packed or not.
fn push_ints(into: &mut Vec<u64>, f: &Field<'_>) {
    match f {
        Field::Varint(v) => into.push(*v),
        Field::Bytes(b) => {
            let mut pos = 0;
            while pos < b.len() {
                into.push(varint(b, &mut pos));
            }
        }
    }
}

fn int(f: &Field<'_>) -> u64 {
    match f {
        Field::Varint(v) => *v,
        Field::Bytes(_) => panic!("expected an integer"),
    }
}

fn bytes<'a>(f: &Field<'a>) -> &'a [u8] {
    match f {
        Field::Bytes(b) => b,
        Field::Varint(_) => panic!("expected bytes"),
    }
}

/// Decodes a gzip-compressed pprof profile; panics on anything malformed.
pub fn decode(gz: &[u8]) -> Profile {
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "not gzip");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut raw)
        .expect("gunzip");
    let mut strings: Vec<String> = Vec::new();
    let mut sample_types_raw = Vec::new();
    let mut samples_raw: Vec<(Vec<u64>, Vec<u64>)> = Vec::new();
    let mut locations: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut functions: HashMap<u64, u64> = HashMap::new();
    let mut p = Profile::default();
    let mut default_type = 0;
    for (num, f) in fields(&raw) {
        match num {
            1 => {
                let (mut t, mut u) = (0, 0);
                for (n, g) in fields(bytes(&f)) {
                    match n {
                        1 => t = int(&g),
                        2 => u = int(&g),
                        _ => {}
                    }
                }
                sample_types_raw.push((t, u));
            }
            2 => {
                let (mut locs, mut vals) = (Vec::new(), Vec::new());
                for (n, g) in fields(bytes(&f)) {
                    match n {
                        1 => push_ints(&mut locs, &g),
                        2 => push_ints(&mut vals, &g),
                        _ => {}
                    }
                }
                samples_raw.push((locs, vals));
            }
            4 => {
                let (mut id, mut funcs) = (0, Vec::new());
                for (n, g) in fields(bytes(&f)) {
                    match n {
                        1 => id = int(&g),
                        4 => {
                            for (m, h) in fields(bytes(&g)) {
                                if m == 1 {
                                    funcs.push(int(&h));
                                }
                            }
                        }
                        _ => {}
                    }
                }
                locations.insert(id, funcs);
            }
            5 => {
                let (mut id, mut name) = (0, 0);
                for (n, g) in fields(bytes(&f)) {
                    match n {
                        1 => id = int(&g),
                        2 => name = int(&g),
                        _ => {}
                    }
                }
                functions.insert(id, name);
            }
            6 => strings.push(String::from_utf8(bytes(&f).to_vec()).expect("UTF-8 string")),
            12 => p.period = int(&f) as i64,
            14 => default_type = int(&f),
            _ => {}
        }
    }
    assert_eq!(strings.first().map(String::as_str), Some(""), "string 0");
    let s = |i: u64| strings[i as usize].clone();
    p.sample_types = sample_types_raw
        .into_iter()
        .map(|(t, u)| (s(t), s(u)))
        .collect();
    p.default_sample_type = s(default_type);
    for (locs, vals) in samples_raw {
        assert_eq!(vals.len(), p.sample_types.len(), "values per sample");
        let mut stack = Vec::new();
        for l in locs {
            let funcs = locations.get(&l).expect("sample names a known location");
            for f in funcs {
                let name = functions.get(f).expect("line names a known function");
                stack.push(s(*name));
            }
        }
        p.samples
            .push((stack, vals.into_iter().map(|v| v as i64).collect()));
    }
    p
}
