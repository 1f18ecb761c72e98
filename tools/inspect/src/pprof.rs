//! The pprof profile format: the messages of `perftools.profiles`
//! (`proto/profile.proto` in github.com/google/pprof) as Rust structs that
//! `prost` encodes and decodes. See [`crate::profile`] for how they are read.
//!
//! Written by hand from the `.proto` file, so no build script or `protoc` is
//! needed; the tag of each field is its field number there. Fields this tool
//! does not use (breakdowns, tick units, label sets) are left out: prost
//! skips unknown fields when decoding, as protobuf requires.
//!
//! A profile is a set of tables that refer to each other by id, with every
//! string an index into `string_table` (whose entry 0 is ""):
//!
//! ```text
//!  Sample ──location_id──▶ Location ──mapping_id──▶ Mapping
//!  (one value per            │ address
//!   sample_type)             └ line* ──function_id──▶ Function (name, file)
//! ```
//!
//! A sample's `location_id` lists its stack innermost first. A location has
//! several lines when calls were inlined at its address: innermost first
//! too, the last being the function that holds the code.
//!
//! This file is also compiled into the integration tests (by `#[path]`),
//! which build profiles with these structs.

/// A whole profile (`perftools.profiles.Profile`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    /// What each of a sample's values measures, in order.
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    /// The samples: a stack and its values.
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    /// Address ranges of the binaries loaded (the first is the main one).
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    /// The program locations samples refer to.
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    /// The functions locations' lines refer to.
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    /// Every string of the profile; entry 0 must be "". Read as bytes:
    /// protobuf wants UTF-8 in a `string`, but pprof's own reader does not
    /// check, and file names need not be.
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub string_table: Vec<Vec<u8>>,
    /// A regular expression (string index) for frames pprof drops.
    #[prost(int64, tag = "7")]
    pub drop_frames: i64,
    /// A regular expression (string index) for frames pprof keeps anyway.
    #[prost(int64, tag = "8")]
    pub keep_frames: i64,
    /// When the collection started, in nanoseconds since the Unix epoch.
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    /// How long the collection lasted, in nanoseconds.
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    /// What the sampling period counts (`space/bytes`, `cpu/nanoseconds`).
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    /// Events between two samples.
    #[prost(int64, tag = "12")]
    pub period: i64,
    /// Free-form comments (string indices).
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    /// The type (string index) of the sample type to show first; 0 means
    /// the last one.
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

/// A kind of value and its unit, as string indices (`inuse_space`, `bytes`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueType {
    /// The kind of value.
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    /// Its unit.
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

/// One stack and what was measured there.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Location ids, innermost (the leaf) first.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    /// One value per entry of `Profile::sample_type`.
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    /// Extra context (thread, object size, ...).
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

/// A key with a string or numeric value, attached to a sample.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// The key (string index).
    #[prost(int64, tag = "1")]
    pub key: i64,
    /// A string value (string index), or 0.
    #[prost(int64, tag = "2")]
    pub str: i64,
    /// A numeric value.
    #[prost(int64, tag = "3")]
    pub num: i64,
    /// The unit of `num` (string index), or 0.
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

/// A binary's address range.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Mapping {
    /// Unique non-zero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// First address.
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    /// One past the last address.
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    /// Offset in the file of the first address.
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    /// The file's path (string index).
    #[prost(int64, tag = "5")]
    pub filename: i64,
    /// Build id (string index).
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    /// Whether its locations have function names.
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    /// ... file names.
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    /// ... line numbers.
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    /// ... inlined frames.
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

/// A program location: an address and the source lines it stands for.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Location {
    /// Unique non-zero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Its mapping's id, or 0.
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    /// The instruction address, or 0.
    #[prost(uint64, tag = "3")]
    pub address: u64,
    /// Innermost inlined frame first, the function holding the code last.
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    /// Whether several functions share this address (identical code
    /// folding).
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

/// A function and a line in it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Line {
    /// The function's id.
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    /// Line number, or 0.
    #[prost(int64, tag = "2")]
    pub line: i64,
    /// Column number, or 0.
    #[prost(int64, tag = "3")]
    pub column: i64,
}

/// A function.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Function {
    /// Unique non-zero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Its name for people (string index).
    #[prost(int64, tag = "2")]
    pub name: i64,
    /// Its name for the linker, mangled (string index).
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    /// Its source file (string index).
    #[prost(int64, tag = "4")]
    pub filename: i64,
    /// Its first line.
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}
