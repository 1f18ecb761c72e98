//! Writing a heap profile in pprof's format. See lib.rs for the overview;
//! `symbolize` names the frames.
//!
//! The format is the protocol buffer `perftools.profiles.Profile` (pprof's
//! `proto/profile.proto`), gzip-compressed, which `go tool pprof` and
//! `pprof` read. The encoder is written by hand: the format needs only
//! varints and length-delimited fields (the wire format's types 0 and 2), and
//! the core crate stays free of a protobuf library.
//!
//! A profile is a set of tables that refer to each other by id:
//!
//! ```text
//!  sample ──location_id──▶ location ──mapping_id──▶ mapping (an executable region)
//!  (values, one per           │ address
//!   SAMPLE_TYPES entry)       └ line* ──function_id──▶ function (name, file)
//! ```
//!
//! and every string is an index into one string table whose entry 0 is "".
//! A location has several lines when calls were inlined at its address,
//! innermost first, the last being the function that holds the code.
//!
//! The profile is complete when written: functions, files and lines are
//! filled in, and each mapping whose addresses were all named says so
//! (`has_functions` and the like) so that pprof does not look for the
//! binaries again; a mapping with an address nobody could name says it is
//! not symbolised, and pprof tries its own tools on it.

use std::collections::HashMap;
use std::io::Write;

use super::symbolize::Symbolizer;
use super::{SiteSample, NUM_VALUES, SAMPLE_TYPES};

/// The sample type pprof shows first.
const DEFAULT_SAMPLE_TYPE: &str = "inuse_space";

/// What the sampling period counts: one sample per `period` bytes.
const PERIOD_TYPE: (&str, &str) = ("space", "bytes");

/// Encodes the call sites `sites` as a gzip-compressed pprof profile.
///
/// `period` is the mean number of bytes allocated between two samples,
/// `time_nanos` the time the profile covers from (nanoseconds since the Unix
/// epoch) and `duration_nanos` how long it covers. Each site's stack is
/// symbolised (zero addresses, which unwinders put at the end, are left
/// out), its allocator frames are trimmed, and sites whose trimmed stacks are
/// the same are added up into one sample.
///
/// This runs in the profiled process and allocates through the global
/// allocator; the caller makes sure the profiler does not sample its thread
/// meanwhile. It never panics on its input: empty stacks give samples
/// without locations, and addresses that nothing names give locations
/// without lines.
pub(crate) fn encode(
    sites: &[SiteSample<'_>],
    period: i64,
    time_nanos: i64,
    duration_nanos: i64,
) -> Vec<u8> {
    let mut symbolizer = Symbolizer::new();
    let header = Header {
        period,
        time_nanos,
        duration_nanos,
    };
    gzip(&encode_raw(sites, &mut symbolizer, &header))
}

/// The profile's fields that are not tables.
struct Header {
    period: i64,
    time_nanos: i64,
    duration_nanos: i64,
}

/// Encodes the profile without compressing it.
fn encode_raw(sites: &[SiteSample<'_>], symbolizer: &mut Symbolizer, header: &Header) -> Vec<u8> {
    let mut tables = Tables::new(symbolizer);
    for site in sites {
        tables.add_site(symbolizer, site);
    }
    tables.encode(header)
}

/// Compresses `data` with gzip. Should the encoder fail (it cannot, writing
/// to memory) the data is returned as it is: pprof reads uncompressed
/// profiles too.
fn gzip(data: &[u8]) -> Vec<u8> {
    let out = Vec::with_capacity(data.len() / 4 + 64);
    let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    if encoder.write_all(data).is_ok() {
        if let Ok(compressed) = encoder.finish() {
            return compressed;
        }
    }
    data.to_vec()
}

// ---------------------------------------------------------------------------
// The profile's tables.

/// A row of the mapping table: one executable region of the process.
struct MappingRow {
    start: u64,
    limit: u64,
    offset: u64,
    /// String-table index of the file's path.
    filename: i64,
    /// Whether every location in the region was named by its object's debug
    /// information or symbol table.
    symbolized: bool,
}

/// A row of the location table.
struct LocationRow {
    /// Index into the mapping table plus one, or 0 when the address is in no
    /// known region.
    mapping_id: u64,
    address: u64,
    /// (function id, line number), innermost first.
    lines: Vec<(u64, i64)>,
}

/// A row of the function table (string-table indices).
struct FunctionRow {
    name: i64,
    system_name: i64,
    filename: i64,
}

/// A row of the sample table.
struct SampleRow {
    /// Location ids, leaf first.
    locations: Vec<u64>,
    values: [i64; NUM_VALUES],
}

/// The tables of a profile being built. Ids are indices plus one (0 means
/// "none" in the format).
struct Tables {
    strings: Vec<String>,
    string_index: HashMap<String, i64>,
    mappings: Vec<MappingRow>,
    locations: Vec<LocationRow>,
    /// By (return address, inlined frames dropped by trimming).
    location_ids: HashMap<(usize, usize), u64>,
    functions: Vec<FunctionRow>,
    /// By (name, file) string indices.
    function_ids: HashMap<(i64, i64), u64>,
    samples: Vec<SampleRow>,
    /// By location ids, to add up sites with the same trimmed stack.
    sample_index: HashMap<Vec<u64>, usize>,
}

impl Tables {
    /// Empty tables, with the strings of the header and one mapping per
    /// executable region `symbolizer` knows.
    fn new(symbolizer: &Symbolizer) -> Self {
        let mut tables = Tables {
            strings: Vec::new(),
            string_index: HashMap::new(),
            mappings: Vec::new(),
            locations: Vec::new(),
            location_ids: HashMap::new(),
            functions: Vec::new(),
            function_ids: HashMap::new(),
            samples: Vec::new(),
            sample_index: HashMap::new(),
        };
        tables.string("");
        for region in symbolizer.regions() {
            let filename = tables.string(&region.path);
            tables.mappings.push(MappingRow {
                start: region.start as u64,
                limit: region.end as u64,
                offset: region.offset,
                filename,
                symbolized: true,
            });
        }
        tables
    }

    /// The string-table index of `s`, adding it if new.
    fn string(&mut self, s: &str) -> i64 {
        if let Some(&index) = self.string_index.get(s) {
            return index;
        }
        let index = self.strings.len() as i64;
        self.strings.push(s.to_owned());
        self.string_index.insert(s.to_owned(), index);
        index
    }

    /// Adds one call site: a new sample, or its values added to the sample
    /// with the same trimmed stack.
    fn add_site(&mut self, symbolizer: &mut Symbolizer, site: &SiteSample<'_>) {
        // Zero is no return address (unwinders end a stack with it).
        let stack: Vec<usize> = site.stack.iter().copied().filter(|&a| a != 0).collect();
        let (first, skip) = symbolizer.trim(&stack);
        let kept = stack.get(first..).unwrap_or_default();
        let locations: Vec<u64> = kept
            .iter()
            .enumerate()
            .map(|(i, &addr)| self.location(symbolizer, addr, if i == 0 { skip } else { 0 }))
            .collect();
        match self.sample_index.get(&locations) {
            Some(&i) => {
                let sample = &mut self.samples[i];
                for (sum, value) in sample.values.iter_mut().zip(site.values) {
                    *sum = sum.saturating_add(value);
                }
            }
            None => {
                self.sample_index
                    .insert(locations.clone(), self.samples.len());
                self.samples.push(SampleRow {
                    locations,
                    values: site.values,
                });
            }
        }
    }

    /// The id of the location for the return address `addr` without its
    /// `skip` innermost inlined frames, adding it if new.
    fn location(&mut self, symbolizer: &mut Symbolizer, addr: usize, skip: usize) -> u64 {
        if let Some(&id) = self.location_ids.get(&(addr, skip)) {
            return id;
        }
        let region = symbolizer.region_of(addr);
        let resolved = symbolizer.resolve(addr);
        let mapping_id = match region {
            Some(i) => {
                self.mappings[i].symbolized &= resolved.complete;
                i as u64 + 1
            }
            None => 0,
        };
        let frames = resolved.frames.get(skip..).unwrap_or_default();
        let lines = frames
            .iter()
            .map(|frame| {
                let name = self.string(&frame.name);
                let system_name = self.string(&frame.system_name);
                let filename = self.string(&frame.file);
                let id = match self.function_ids.get(&(name, filename)) {
                    Some(&id) => id,
                    None => {
                        self.functions.push(FunctionRow {
                            name,
                            system_name,
                            filename,
                        });
                        let id = self.functions.len() as u64;
                        self.function_ids.insert((name, filename), id);
                        id
                    }
                };
                (id, i64::from(frame.line))
            })
            .collect();
        self.locations.push(LocationRow {
            mapping_id,
            address: addr as u64,
            lines,
        });
        let id = self.locations.len() as u64;
        self.location_ids.insert((addr, skip), id);
        id
    }

    /// Encodes the profile (not compressed).
    fn encode(mut self, header: &Header) -> Vec<u8> {
        // Every string must be in the table before it is written.
        let sample_types: Vec<(i64, i64)> = SAMPLE_TYPES
            .iter()
            .map(|&(kind, unit)| (self.string(kind), self.string(unit)))
            .collect();
        let period_type = (self.string(PERIOD_TYPE.0), self.string(PERIOD_TYPE.1));
        let default_sample_type = self.string(DEFAULT_SAMPLE_TYPE);

        let mut profile = Message::default();
        for &(kind, unit) in &sample_types {
            profile.message(profile::SAMPLE_TYPE, &value_type(kind, unit));
        }
        for sample in &self.samples {
            let mut m = Message::default();
            m.packed(sample::LOCATION_ID, sample.locations.iter().copied());
            m.packed(sample::VALUE, sample.values.iter().map(|&v| v as u64));
            profile.message(profile::SAMPLE, &m);
        }
        for (i, mapping) in self.mappings.iter().enumerate() {
            profile.message(profile::MAPPING, &mapping_message(i as u64 + 1, mapping));
        }
        for (i, location) in self.locations.iter().enumerate() {
            profile.message(profile::LOCATION, &location_message(i as u64 + 1, location));
        }
        for (i, function) in self.functions.iter().enumerate() {
            profile.message(profile::FUNCTION, &function_message(i as u64 + 1, function));
        }
        for s in &self.strings {
            profile.bytes(profile::STRING_TABLE, s.as_bytes());
        }
        profile.int64(profile::TIME_NANOS, header.time_nanos);
        profile.int64(profile::DURATION_NANOS, header.duration_nanos);
        profile.message(
            profile::PERIOD_TYPE,
            &value_type(period_type.0, period_type.1),
        );
        profile.int64(profile::PERIOD, header.period);
        profile.int64(profile::DEFAULT_SAMPLE_TYPE, default_sample_type);
        profile.0
    }
}

/// A `ValueType` message.
fn value_type(kind: i64, unit: i64) -> Message {
    let mut m = Message::default();
    m.int64(value_type::TYPE, kind);
    m.int64(value_type::UNIT, unit);
    m
}

/// A `Mapping` message.
fn mapping_message(id: u64, mapping: &MappingRow) -> Message {
    let mut m = Message::default();
    m.uint64(mapping::ID, id);
    m.uint64(mapping::MEMORY_START, mapping.start);
    m.uint64(mapping::MEMORY_LIMIT, mapping.limit);
    m.uint64(mapping::FILE_OFFSET, mapping.offset);
    m.int64(mapping::FILENAME, mapping.filename);
    m.bool(mapping::HAS_FUNCTIONS, mapping.symbolized);
    m.bool(mapping::HAS_FILENAMES, mapping.symbolized);
    m.bool(mapping::HAS_LINE_NUMBERS, mapping.symbolized);
    m.bool(mapping::HAS_INLINE_FRAMES, mapping.symbolized);
    m
}

/// A `Location` message.
fn location_message(id: u64, location: &LocationRow) -> Message {
    let mut m = Message::default();
    m.uint64(location::ID, id);
    m.uint64(location::MAPPING_ID, location.mapping_id);
    m.uint64(location::ADDRESS, location.address);
    for &(function_id, line) in &location.lines {
        let mut l = Message::default();
        l.uint64(line::FUNCTION_ID, function_id);
        l.int64(line::LINE, line);
        m.message(location::LINE, &l);
    }
    m
}

/// A `Function` message.
fn function_message(id: u64, function: &FunctionRow) -> Message {
    let mut m = Message::default();
    m.uint64(function::ID, id);
    m.int64(function::NAME, function.name);
    m.int64(function::SYSTEM_NAME, function.system_name);
    m.int64(function::FILENAME, function.filename);
    m
}

// ---------------------------------------------------------------------------
// The field numbers of profile.proto, one module per message.

mod profile {
    pub(super) const SAMPLE_TYPE: u32 = 1;
    pub(super) const SAMPLE: u32 = 2;
    pub(super) const MAPPING: u32 = 3;
    pub(super) const LOCATION: u32 = 4;
    pub(super) const FUNCTION: u32 = 5;
    pub(super) const STRING_TABLE: u32 = 6;
    pub(super) const TIME_NANOS: u32 = 9;
    pub(super) const DURATION_NANOS: u32 = 10;
    pub(super) const PERIOD_TYPE: u32 = 11;
    pub(super) const PERIOD: u32 = 12;
    pub(super) const DEFAULT_SAMPLE_TYPE: u32 = 14;
}

mod value_type {
    pub(super) const TYPE: u32 = 1;
    pub(super) const UNIT: u32 = 2;
}

mod sample {
    pub(super) const LOCATION_ID: u32 = 1;
    pub(super) const VALUE: u32 = 2;
}

mod mapping {
    pub(super) const ID: u32 = 1;
    pub(super) const MEMORY_START: u32 = 2;
    pub(super) const MEMORY_LIMIT: u32 = 3;
    pub(super) const FILE_OFFSET: u32 = 4;
    pub(super) const FILENAME: u32 = 5;
    pub(super) const HAS_FUNCTIONS: u32 = 7;
    pub(super) const HAS_FILENAMES: u32 = 8;
    pub(super) const HAS_LINE_NUMBERS: u32 = 9;
    pub(super) const HAS_INLINE_FRAMES: u32 = 10;
}

mod location {
    pub(super) const ID: u32 = 1;
    pub(super) const MAPPING_ID: u32 = 2;
    pub(super) const ADDRESS: u32 = 3;
    pub(super) const LINE: u32 = 4;
}

mod line {
    pub(super) const FUNCTION_ID: u32 = 1;
    pub(super) const LINE: u32 = 2;
}

mod function {
    pub(super) const ID: u32 = 1;
    pub(super) const NAME: u32 = 2;
    pub(super) const SYSTEM_NAME: u32 = 3;
    pub(super) const FILENAME: u32 = 4;
}

// ---------------------------------------------------------------------------
// The protobuf wire format.

/// Wire type of a varint field.
const WIRE_VARINT: u64 = 0;
/// Wire type of a length-delimited field (bytes, string, message, packed).
const WIRE_LEN: u64 = 2;

/// Appends `v` as a base-128 varint: seven bits a byte, least significant
/// first, the high bit set on every byte but the last.
fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// A message in the wire format, its fields appended in the order written.
/// Scalar fields equal to zero are left out, as proto3 allows (a missing
/// field reads as zero).
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    /// Appends a field's key: its number and wire type.
    fn key(&mut self, field: u32, wire_type: u64) {
        put_varint(&mut self.0, u64::from(field) << 3 | wire_type);
    }

    /// Appends a `uint64` field.
    fn uint64(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, WIRE_VARINT);
            put_varint(&mut self.0, v);
        }
    }

    /// Appends an `int64` field (a negative number takes ten bytes).
    fn int64(&mut self, field: u32, v: i64) {
        self.uint64(field, v as u64);
    }

    /// Appends a `bool` field.
    fn bool(&mut self, field: u32, v: bool) {
        self.uint64(field, u64::from(v));
    }

    /// Appends a `bytes` or `string` field, even an empty one (an entry of a
    /// repeated field counts even when empty).
    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, WIRE_LEN);
        put_varint(&mut self.0, bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    /// Appends an embedded message.
    fn message(&mut self, field: u32, message: &Message) {
        self.bytes(field, &message.0);
    }

    /// Appends a packed repeated varint field (nothing when empty).
    fn packed(&mut self, field: u32, values: impl IntoIterator<Item = u64>) {
        let mut payload = Vec::new();
        for v in values {
            put_varint(&mut payload, v);
        }
        if !payload.is_empty() {
            self.bytes(field, &payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::super::symbolize::{Frame, Region, Resolved};
    use super::*;

    // --- The wire format, against known byte strings (the examples of the
    // protobuf encoding guide among them).

    fn varint(v: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        put_varint(&mut buf, v);
        buf
    }

    #[test]
    fn varints() {
        assert_eq!(varint(0), [0x00]);
        assert_eq!(varint(1), [0x01]);
        assert_eq!(varint(127), [0x7f]);
        assert_eq!(varint(128), [0x80, 0x01]);
        assert_eq!(varint(150), [0x96, 0x01]);
        assert_eq!(varint(300), [0xac, 0x02]);
        assert_eq!(varint(16_384), [0x80, 0x80, 0x01]);
        assert_eq!(
            varint(u64::MAX),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn scalar_fields() {
        let mut m = Message::default();
        m.uint64(1, 150);
        assert_eq!(m.0, [0x08, 0x96, 0x01]);
        // Zero is left out.
        let mut m = Message::default();
        m.uint64(1, 0);
        m.int64(2, 0);
        m.bool(3, false);
        assert!(m.0.is_empty());
        // -1 as int64: ten bytes.
        let mut m = Message::default();
        m.int64(2, -1);
        assert_eq!(
            m.0,
            [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        let mut m = Message::default();
        m.bool(10, true);
        assert_eq!(m.0, [0x50, 0x01]);
        // A field number past 15 takes a two-byte key.
        let mut m = Message::default();
        m.uint64(16, 1);
        assert_eq!(m.0, [0x80, 0x01, 0x01]);
    }

    #[test]
    fn length_delimited_fields() {
        let mut m = Message::default();
        m.bytes(2, b"testing");
        assert_eq!(m.0, b"\x12\x07testing");
        // The empty string is written (string_table[0]).
        let mut m = Message::default();
        m.bytes(6, b"");
        assert_eq!(m.0, [0x32, 0x00]);
        // Packed: [3, 270, 86942] as field 4.
        let mut m = Message::default();
        m.packed(4, [3, 270, 86942]);
        assert_eq!(m.0, [0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05]);
        let mut m = Message::default();
        m.packed(4, []);
        assert!(m.0.is_empty());
        // An embedded message: field 3 holding {1: 150}.
        let mut inner = Message::default();
        inner.uint64(1, 150);
        let mut m = Message::default();
        m.message(3, &inner);
        assert_eq!(m.0, [0x1a, 0x03, 0x08, 0x96, 0x01]);
    }

    #[test]
    fn profile_messages() {
        assert_eq!(value_type(1, 2).0, [0x08, 0x01, 0x10, 0x02]);
        let mapping = MappingRow {
            start: 0x1000,
            limit: 0x2000,
            offset: 0x10,
            filename: 3,
            symbolized: true,
        };
        assert_eq!(
            mapping_message(1, &mapping).0,
            [
                0x08, 0x01, // id 1
                0x10, 0x80, 0x20, // memory_start 0x1000
                0x18, 0x80, 0x40, // memory_limit 0x2000
                0x20, 0x10, // file_offset 0x10
                0x28, 0x03, // filename 3
                0x38, 0x01, 0x40, 0x01, 0x48, 0x01, 0x50, 0x01, // has_*
            ]
        );
        let location = LocationRow {
            mapping_id: 1,
            address: 0x1234,
            lines: vec![(2, 10), (1, 300)],
        };
        assert_eq!(
            location_message(5, &location).0,
            [
                0x08, 0x05, // id 5
                0x10, 0x01, // mapping_id 1
                0x18, 0xb4, 0x24, // address 0x1234
                0x22, 0x04, 0x08, 0x02, 0x10, 0x0a, // line {function 2, line 10}
                0x22, 0x05, 0x08, 0x01, 0x10, 0xac, 0x02, // line {function 1, line 300}
            ]
        );
        let function = FunctionRow {
            name: 4,
            system_name: 5,
            filename: 0,
        };
        assert_eq!(
            function_message(7, &function).0,
            [0x08, 0x07, 0x10, 0x04, 0x18, 0x05]
        );
    }

    // --- A small decoder, to read whole profiles back.

    /// One field of a message in the wire format.
    enum Value<'a> {
        Varint(u64),
        Bytes(&'a [u8]),
    }

    fn read_varint(buf: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = buf.split_first().expect("truncated varint");
            *buf = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return v;
            }
        }
        panic!("varint too long");
    }

    /// The fields of a message, in order (only wire types 0 and 2).
    fn fields(mut buf: &[u8]) -> Vec<(u32, Value<'_>)> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let key = read_varint(&mut buf);
            let field = (key >> 3) as u32;
            match key & 7 {
                0 => out.push((field, Value::Varint(read_varint(&mut buf)))),
                2 => {
                    let len = read_varint(&mut buf) as usize;
                    let (bytes, rest) = buf.split_at(len);
                    buf = rest;
                    out.push((field, Value::Bytes(bytes)));
                }
                t => panic!("wire type {t} in field {field}"),
            }
        }
        out
    }

    fn varint_of(v: &Value<'_>) -> u64 {
        match v {
            Value::Varint(v) => *v,
            Value::Bytes(_) => panic!("expected a varint"),
        }
    }

    fn bytes_of<'a>(v: &Value<'a>) -> &'a [u8] {
        match v {
            Value::Bytes(b) => b,
            Value::Varint(_) => panic!("expected bytes"),
        }
    }

    fn packed_of(v: &Value<'_>) -> Vec<u64> {
        let mut buf = bytes_of(v);
        let mut out = Vec::new();
        while !buf.is_empty() {
            out.push(read_varint(&mut buf));
        }
        out
    }

    /// The scalar field `field` of `m`, or 0.
    fn scalar(m: &[(u32, Value<'_>)], field: u32) -> u64 {
        m.iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, v)| varint_of(v))
            .next_back()
            .unwrap_or(0)
    }

    #[derive(Debug)]
    struct DMapping {
        id: u64,
        start: u64,
        limit: u64,
        filename: String,
        has_flags: [bool; 4],
    }

    #[derive(Debug)]
    struct DLocation {
        mapping_id: u64,
        address: u64,
        /// (function name, file, line), innermost first.
        lines: Vec<(String, String, i64)>,
    }

    #[derive(Debug)]
    struct DSample {
        locations: Vec<u64>,
        values: Vec<i64>,
    }

    /// A profile read back, with strings and functions resolved.
    #[derive(Debug)]
    struct Decoded {
        sample_types: Vec<(String, String)>,
        samples: Vec<DSample>,
        mappings: Vec<DMapping>,
        locations: HashMap<u64, DLocation>,
        /// Function id → (name, system name, file).
        functions: HashMap<u64, (String, String, String)>,
        strings: Vec<String>,
        time_nanos: i64,
        duration_nanos: i64,
        period_type: (String, String),
        period: i64,
        default_sample_type: String,
    }

    impl Decoded {
        fn location_names(&self, sample: &DSample) -> Vec<Vec<String>> {
            sample
                .locations
                .iter()
                .map(|id| {
                    self.locations[id]
                        .lines
                        .iter()
                        .map(|l| l.0.clone())
                        .collect()
                })
                .collect()
        }
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        assert_eq!(&data[..2], [0x1f, 0x8b], "not gzip");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    fn decode(raw: &[u8]) -> Decoded {
        let top = fields(raw);
        let strings: Vec<String> = top
            .iter()
            .filter(|(f, _)| *f == profile::STRING_TABLE)
            .map(|(_, v)| String::from_utf8(bytes_of(v).to_vec()).unwrap())
            .collect();
        let s = |i: u64| strings[i as usize].clone();
        let pair = |m: &[u8]| {
            let m = fields(m);
            (s(scalar(&m, 1)), s(scalar(&m, 2)))
        };
        let mut functions = HashMap::new();
        for (_, v) in top.iter().filter(|(f, _)| *f == profile::FUNCTION) {
            let m = fields(bytes_of(v));
            let id = scalar(&m, function::ID);
            assert_ne!(id, 0);
            let row = (
                s(scalar(&m, function::NAME)),
                s(scalar(&m, function::SYSTEM_NAME)),
                s(scalar(&m, function::FILENAME)),
            );
            assert!(
                functions.insert(id, row).is_none(),
                "function id {id} twice"
            );
        }
        let mut locations = HashMap::new();
        for (_, v) in top.iter().filter(|(f, _)| *f == profile::LOCATION) {
            let m = fields(bytes_of(v));
            let id = scalar(&m, location::ID);
            assert_ne!(id, 0);
            let lines = m
                .iter()
                .filter(|(f, _)| *f == location::LINE)
                .map(|(_, l)| {
                    let l = fields(bytes_of(l));
                    let f: &(String, String, String) = &functions[&scalar(&l, line::FUNCTION_ID)];
                    (f.0.clone(), f.2.clone(), scalar(&l, line::LINE) as i64)
                })
                .collect();
            let row = DLocation {
                mapping_id: scalar(&m, location::MAPPING_ID),
                address: scalar(&m, location::ADDRESS),
                lines,
            };
            assert!(
                locations.insert(id, row).is_none(),
                "location id {id} twice"
            );
        }
        let mappings = top
            .iter()
            .filter(|(f, _)| *f == profile::MAPPING)
            .map(|(_, v)| {
                let m = fields(bytes_of(v));
                DMapping {
                    id: scalar(&m, mapping::ID),
                    start: scalar(&m, mapping::MEMORY_START),
                    limit: scalar(&m, mapping::MEMORY_LIMIT),
                    filename: s(scalar(&m, mapping::FILENAME)),
                    has_flags: [7, 8, 9, 10].map(|f| scalar(&m, f) != 0),
                }
            })
            .collect();
        let samples = top
            .iter()
            .filter(|(f, _)| *f == profile::SAMPLE)
            .map(|(_, v)| {
                let m = fields(bytes_of(v));
                let get = |field| {
                    m.iter()
                        .filter(|(f, _)| *f == field)
                        .flat_map(|(_, v)| packed_of(v))
                        .collect::<Vec<u64>>()
                };
                DSample {
                    locations: get(sample::LOCATION_ID),
                    values: get(sample::VALUE).into_iter().map(|v| v as i64).collect(),
                }
            })
            .collect();
        let sample_types = top
            .iter()
            .filter(|(f, _)| *f == profile::SAMPLE_TYPE)
            .map(|(_, v)| pair(bytes_of(v)))
            .collect();
        let period_type = top
            .iter()
            .find(|(f, _)| *f == profile::PERIOD_TYPE)
            .map(|(_, v)| pair(bytes_of(v)))
            .expect("period_type");
        Decoded {
            sample_types,
            samples,
            mappings,
            locations,
            functions,
            time_nanos: scalar(&top, profile::TIME_NANOS) as i64,
            duration_nanos: scalar(&top, profile::DURATION_NANOS) as i64,
            period_type,
            period: scalar(&top, profile::PERIOD) as i64,
            default_sample_type: s(scalar(&top, profile::DEFAULT_SAMPLE_TYPE)),
            strings,
        }
    }

    /// Checks what every profile must satisfy: the header, string 0, ids
    /// that refer to rows, one value per sample type, addresses inside their
    /// mappings.
    fn check_profile(p: &Decoded) {
        let expect: Vec<(String, String)> = SAMPLE_TYPES
            .iter()
            .map(|&(t, u)| (t.to_owned(), u.to_owned()))
            .collect();
        assert_eq!(p.sample_types, expect);
        assert_eq!(p.strings[0], "");
        assert_eq!(p.default_sample_type, "inuse_space");
        assert_eq!(p.period_type, ("space".to_owned(), "bytes".to_owned()));
        for (i, m) in p.mappings.iter().enumerate() {
            assert_eq!(m.id, i as u64 + 1);
            assert!(m.start < m.limit);
        }
        for sample in &p.samples {
            assert_eq!(sample.values.len(), NUM_VALUES);
            for id in &sample.locations {
                assert!(p.locations.contains_key(id), "location {id}");
            }
        }
        for l in p.locations.values() {
            if l.mapping_id != 0 {
                let m = &p.mappings[l.mapping_id as usize - 1];
                assert!(m.start <= l.address && l.address < m.limit, "{l:?} {m:?}");
            }
        }
    }

    // --- Whole profiles.

    #[test]
    fn empty_profile() {
        let data = encode(&[], 512 * 1024, 1_700_000_000_000_000_000, 5_000_000_000);
        let p = decode(&gunzip(&data));
        check_profile(&p);
        assert!(p.samples.is_empty());
        assert!(p.locations.is_empty());
        assert!(p.functions.is_empty());
        assert_eq!(p.period, 512 * 1024);
        assert_eq!(p.time_nanos, 1_700_000_000_000_000_000);
        assert_eq!(p.duration_nanos, 5_000_000_000);
        // The executable is the first mapping; unused mappings say they are
        // symbolised (there is nothing to look up in them).
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(p.mappings[0].filename, exe.to_string_lossy());
        assert!(p.mappings.iter().all(|m| m.has_flags == [true; 4]));
    }

    // Stand-ins for an allocator entry point and the program's frames. As
    // this crate is spanalloc, the names of all of them are the allocator's
    // (`spanalloc::profile::pprof::tests::...`); `getpid` plays the
    // program's function that called the allocator.
    #[inline(never)]
    fn fake_malloc() -> usize {
        std::hint::black_box(1)
    }

    #[inline(never)]
    fn fake_calloc() -> usize {
        std::hint::black_box(2)
    }

    #[inline(never)]
    fn test_caller() -> usize {
        std::hint::black_box(3)
    }

    fn addr_of(f: fn() -> usize) -> usize {
        f as usize
    }

    #[test]
    fn profile_of_real_addresses() {
        let malloc = addr_of(fake_malloc) + 1;
        let calloc = addr_of(fake_calloc) + 1;
        let caller = addr_of(test_caller) + 1;
        let getpid = libc::getpid as unsafe extern "C" fn() -> libc::pid_t as usize + 1;
        let stack_a = [malloc, getpid, caller];
        let stack_b = [caller];
        let stack_d = [0x10, 0];
        let stack_e = [calloc, getpid, caller];
        let sites = [
            SiteSample {
                stack: &stack_a,
                values: [1, 2, 3, 4, 5, 6],
            },
            SiteSample {
                stack: &stack_b,
                values: [10, 20, 30, 40, 50, 60],
            },
            SiteSample {
                stack: &[],
                values: [100; NUM_VALUES],
            },
            SiteSample {
                stack: &stack_d,
                values: [-1; NUM_VALUES],
            },
            SiteSample {
                stack: &stack_e,
                values: [1000; NUM_VALUES],
            },
        ];
        let p = decode(&gunzip(&encode(&sites, 4096, 1, 2)));
        check_profile(&p);
        assert_eq!(p.samples.len(), 4, "{p:#?}");

        // A and E: the allocator frame trimmed, the same stack, added up.
        let ae = &p.samples[0];
        assert_eq!(ae.values, [1001, 1002, 1003, 1004, 1005, 1006]);
        assert_eq!(ae.locations.len(), 2);
        let leaf = &p.locations[&ae.locations[0]];
        assert_eq!(leaf.address, getpid as u64);
        let leaf_name = &leaf.lines.last().expect("getpid is named").0;
        assert!(leaf_name.contains("getpid"), "{leaf:?}");
        let top = &p.locations[&ae.locations[1]];
        assert_eq!(top.address, caller as u64);
        assert_eq!(top.mapping_id, 1, "the executable's mapping");
        let (name, file, line) = top.lines.last().unwrap();
        assert!(name.ends_with("pprof::tests::test_caller"), "{name}");
        assert!(file.ends_with("pprof.rs"), "{file}");
        assert!(*line > 0);
        let function = p.functions.values().find(|f| &f.0 == name).unwrap();
        assert_ne!(function.0, function.1, "system name is the mangled one");

        // B: every frame is the allocator's, so the stack stays whole; its
        // location is A's.
        let b = &p.samples[1];
        assert_eq!(b.values, [10, 20, 30, 40, 50, 60]);
        assert_eq!(b.locations, [ae.locations[1]]);
        // One function per (name, file).
        let same_name = p.functions.values().filter(|f| &f.0 == name).count();
        assert_eq!(same_name, 1);

        // An empty stack: a sample without locations.
        assert!(p.samples[2].locations.is_empty());
        assert_eq!(p.samples[2].values, [100; NUM_VALUES]);

        // An address nothing names: a location without lines or mapping.
        let d = &p.samples[3];
        assert_eq!(d.values, [-1; NUM_VALUES]);
        assert_eq!(d.locations.len(), 1, "the zero address is left out");
        let unknown = &p.locations[&d.locations[0]];
        assert_eq!((unknown.mapping_id, unknown.address), (0, 0x10));
        assert!(unknown.lines.is_empty());

        // Every location of the executable was named.
        assert_eq!(p.mappings[0].has_flags, [true; 4]);
    }

    #[inline(never)]
    fn capture_stack() -> Vec<usize> {
        let mut stack = Vec::new();
        backtrace::trace(|frame| {
            stack.push(frame.ip() as usize);
            true
        });
        stack
    }

    #[test]
    fn profile_of_a_captured_stack() {
        // A real stack, with the unwinder's frames on top: they and this
        // crate's go, the test harness's stay.
        let stack = capture_stack();
        let sites = [SiteSample {
            stack: &stack,
            values: [1, 512, 1, 512, 1, 512],
        }];
        let p = decode(&gunzip(&encode(&sites, 512, 0, 0)));
        check_profile(&p);
        assert_eq!(p.samples.len(), 1);
        let names = p.location_names(&p.samples[0]);
        assert!(!names.is_empty());
        for frames in &names {
            for name in frames {
                assert!(
                    !name.starts_with("backtrace::") && !name.contains("capture_stack"),
                    "{names:#?}"
                );
            }
        }
        assert!(
            names.iter().flatten().any(|n| n.starts_with("test::")),
            "{names:#?}"
        );
    }

    fn frame(name: &str, file: &str, line: u32) -> Frame {
        Frame {
            name: name.to_owned(),
            system_name: format!("_sys_{name}"),
            file: file.to_owned(),
            line,
        }
    }

    fn resolved(frames: Vec<Frame>, complete: bool, in_allocator_object: bool) -> Resolved {
        Resolved {
            frames,
            complete,
            in_allocator_object,
        }
    }

    /// A process with two objects: the executable at 0x10000 and the
    /// allocator's shared library at 0x20000.
    fn fake_symbolizer() -> Symbolizer {
        let regions = vec![
            Region {
                start: 0x10000,
                end: 0x11000,
                offset: 0,
                path: "/bin/app".to_owned(),
            },
            Region {
                start: 0x20000,
                end: 0x21000,
                offset: 0x1000,
                path: "/lib/libspanalloc.so".to_owned(),
            },
        ];
        let answers = vec![
            // In the allocator's library, named oddly (no debug info).
            (0x20010, resolved(vec![frame("xyz", "", 0)], true, true)),
            (
                0x20020,
                resolved(vec![frame("malloc", "malloc.rs", 9)], true, true),
            ),
            // An inlined allocator frame in the program's code.
            (
                0x10010,
                resolved(
                    vec![
                        frame("spanalloc::raw::malloc", "raw.rs", 5),
                        frame("core::ptr::write", "ptr.rs", 7),
                        frame("app::load", "app.c", 42),
                    ],
                    true,
                    false,
                ),
            ),
            (
                0x10020,
                resolved(vec![frame("main", "app.c", 50)], true, false),
            ),
            // Unnamed, in the executable.
            (0x10030, resolved(vec![], false, false)),
        ];
        Symbolizer::fake(regions, answers)
    }

    #[test]
    fn inlined_frames_and_the_allocator_library() {
        let mut symbolizer = fake_symbolizer();
        let header = Header {
            period: 1,
            time_nanos: 0,
            duration_nanos: 0,
        };
        let stack = [0x20010, 0x20020, 0x10010, 0x10020];
        let sites = [SiteSample {
            stack: &stack,
            values: [1; NUM_VALUES],
        }];
        let p = decode(&encode_raw(&sites, &mut symbolizer, &header));
        check_profile(&p);
        let s = &p.samples[0];
        assert_eq!(s.locations.len(), 2);
        let inlined = &p.locations[&s.locations[0]];
        assert_eq!(inlined.address, 0x10010);
        assert_eq!(inlined.mapping_id, 1);
        // The allocator's inlined frame went; the rest stay, innermost
        // first, the caller last.
        assert_eq!(
            inlined.lines,
            [
                ("core::ptr::write".to_owned(), "ptr.rs".to_owned(), 7),
                ("app::load".to_owned(), "app.c".to_owned(), 42),
            ]
        );
        assert_eq!(p.locations[&s.locations[1]].lines[0].0, "main");
        assert_eq!(p.mappings[1].filename, "/lib/libspanalloc.so");
        let f = p.functions.values().find(|f| f.0 == "main").unwrap();
        assert_eq!(f, &("main".into(), "_sys_main".into(), "app.c".into()));
        assert_eq!(p.mappings[0].has_flags, [true; 4]);
    }

    #[test]
    fn a_mapping_with_an_unnamed_address_is_not_symbolised() {
        let mut symbolizer = fake_symbolizer();
        let header = Header {
            period: 1,
            time_nanos: 0,
            duration_nanos: 0,
        };
        let stack = [0x20020, 0x10030, 0x10020];
        let sites = [SiteSample {
            stack: &stack,
            values: [1; NUM_VALUES],
        }];
        let p = decode(&encode_raw(&sites, &mut symbolizer, &header));
        check_profile(&p);
        let s = &p.samples[0];
        // The unnamed address stops the trimming and is kept, without lines.
        assert_eq!(s.locations.len(), 2);
        assert_eq!(p.locations[&s.locations[0]].address, 0x10030);
        assert!(p.locations[&s.locations[0]].lines.is_empty());
        assert_eq!(p.mappings[0].has_flags, [false; 4]);
        assert_eq!(p.mappings[1].has_flags, [true; 4]);
    }
}
