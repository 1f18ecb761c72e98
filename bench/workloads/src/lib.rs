//! The workloads of `spanalloc-bench suite`: allocation-heavy programs, each
//! run in a process of its own under one allocator.
//!
//! The same workloads are linked into four binaries of the `spanalloc-bench`
//! package (`workloads-spanalloc`, `workloads-system`, `workloads-mimalloc`,
//! `workloads-jemalloc`) that differ only in their `#[global_allocator]`, so
//! every allocation of a workload, the standard library's included, goes to
//! the allocator under test, as in a real program. The driver times each
//! process from outside (wall and CPU time, peak resident size, page faults);
//! the process itself prints one line of JSON, an [`Outcome`], with the work
//! done, a checksum and, for `phased`, its resident size over time.
//!
//! The catalogue ([`Variant::all`]) names every workload; the modules hold
//! them by kind: [`small`] (pairs, batches), [`threaded`] (larson,
//! producer/consumer, false sharing, thread churn), [`growth`] (realloc,
//! large objects), [`phased`] (memory in phases) and [`programs`] (hash map,
//! B-tree, JSON). Each is sized by [`Size`] to run for a few seconds, or for
//! milliseconds with `--quick`.

pub mod block;
pub mod cli;
pub mod growth;
pub mod phased;
pub mod programs;
pub mod rng;
pub mod rss;
pub mod size;
pub mod small;
pub mod threaded;

use serde::{Deserialize, Serialize};

pub use crate::size::Size;

/// Thread counts of the multi-threaded workloads: one, the machine's two
/// cores, and oversubscribed.
pub const THREADS: [usize; 3] = [1, 2, 8];

/// What a workload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Work {
    /// Operations performed, in the workload's unit (see [`Variant::unit`]).
    pub ops: u64,
    /// A digest of what the program computed, the same under every allocator;
    /// `None` where thread scheduling decides the result.
    pub checksum: Option<u64>,
}

impl Work {
    /// Work whose result does not depend on scheduling.
    pub fn deterministic(ops: u64, checksum: u64) -> Self {
        Self {
            ops,
            checksum: Some(checksum),
        }
    }

    /// Work whose result depends on how threads interleave.
    pub fn racy(ops: u64) -> Self {
        Self {
            ops,
            checksum: None,
        }
    }
}

/// Which workload, with its parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Alloc+free pairs of one size, in bytes.
    Pairs(usize),
    /// Mixed small objects freed in random order.
    Batch,
    /// Larson-style server simulation.
    Larson,
    /// Producer/consumer pairs.
    ProdCons,
    /// False sharing between threads' objects.
    FalseShare,
    /// Short-lived threads.
    Churn,
    /// Growing strings and vectors.
    Realloc,
    /// Objects of 64 KiB to 64 MiB.
    Large,
    /// Memory in phases, resident size sampled.
    Phased,
    /// `HashMap<String, Vec<u64>>`.
    HashMap,
    /// `BTreeMap<u64, String>`.
    BTreeMap,
    /// serde_json documents.
    Json,
}

/// One workload as the suite runs it: a kind and a thread count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Name in reports and on the command line, e.g. `larson/t8`.
    pub name: String,
    /// What it does.
    pub kind: Kind,
    /// Threads (for `prodcons`, producer/consumer pairs).
    pub threads: usize,
}

impl Variant {
    fn single(name: &str, kind: Kind) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            threads: 1,
        }
    }

    /// Every workload, in report order.
    pub fn all() -> Vec<Variant> {
        let mut all: Vec<Variant> = small::PAIR_SIZES
            .iter()
            .map(|&s| Self::single(&format!("pairs/{s}"), Kind::Pairs(s)))
            .collect();
        all.push(Self::single("batch", Kind::Batch));
        for (base, kind) in [
            ("larson", Kind::Larson),
            ("prodcons", Kind::ProdCons),
            ("falseshare", Kind::FalseShare),
            ("churn", Kind::Churn),
        ] {
            for t in THREADS {
                all.push(Variant {
                    name: format!("{base}/t{t}"),
                    kind,
                    threads: t,
                });
            }
        }
        for (name, kind) in [
            ("realloc", Kind::Realloc),
            ("large", Kind::Large),
            ("phased", Kind::Phased),
            ("hashmap", Kind::HashMap),
            ("btreemap", Kind::BTreeMap),
            ("json", Kind::Json),
        ] {
            all.push(Self::single(name, kind));
        }
        all
    }

    /// The workload called `name`.
    pub fn find(name: &str) -> Option<Variant> {
        Self::all().into_iter().find(|v| v.name == name)
    }

    /// What one operation is.
    pub fn unit(&self) -> &'static str {
        match self.kind {
            Kind::Pairs(_) => "alloc+free pairs",
            Kind::Batch | Kind::Larson | Kind::ProdCons | Kind::Churn => "objects",
            Kind::FalseShare => "writes",
            Kind::Realloc => "appends",
            Kind::Large => "large objects",
            Kind::Phased => "objects",
            Kind::HashMap | Kind::BTreeMap => "map operations",
            Kind::Json => "records",
        }
    }

    /// What the workload does, in one line (full size).
    pub fn describe(&self) -> String {
        let t = self.threads;
        let text = match self.kind {
            Kind::Pairs(bytes) => {
                return format!("alloc + free of one {bytes}-byte block, both ends written")
            }
            Kind::Batch => "10,000 objects of 8 B–1 KiB allocated, then freed in random order",
            Kind::Larson => {
                "threads replacing random slots of a shared array of 20,000 \
                             blocks of 16 B–1 KiB"
            }
            Kind::ProdCons => {
                "producer/consumer pairs: blocks of 16–512 B sent in batches \
                               of 256, freed by the consumer"
            }
            Kind::FalseShare => {
                "threads each incrementing a 16-byte object of their own \
                                 (atomic adds), reallocating it every 100"
            }
            Kind::Churn => {
                "waves of short-lived threads, each allocating 1,000 blocks of \
                            16 B–4 KiB; one in eight freed by the main thread"
            }
            Kind::Realloc => {
                "8 strings/vectors at a time growing to 8 B–2 MiB, one in four \
                              by exact reservations"
            }
            Kind::Large => "objects of 64 KiB–64 MiB, every page written, 4 alive at a time",
            Kind::Phased => "1 GiB of objects, 90% freed, regrown to 1 GiB, 90% freed, idle",
            Kind::HashMap => {
                "HashMap<String, Vec<u64>>: 700,000 keys built, queried by \
                              formatted keys, half removed"
            }
            Kind::BTreeMap => {
                "BTreeMap<u64, String>: 1.5 million entries, range scans, \
                               half removed"
            }
            Kind::Json => {
                "serde_json: a 120,000-record document written, parsed typed and \
                           untyped, rewritten"
            }
        };
        match self.kind {
            Kind::Larson | Kind::FalseShare | Kind::Churn => format!("{text} ({t} at a time)"),
            Kind::ProdCons => format!("{text} ({t} pairs)"),
            _ => text.to_owned(),
        }
    }

    /// Runs the workload in this process, under whatever allocator it has.
    pub fn run(&self, size: Size) -> (Work, Option<phased::Phases>) {
        let t = self.threads;
        let work = match self.kind {
            Kind::Pairs(bytes) => small::pairs(bytes, size),
            Kind::Batch => small::batch(size),
            Kind::Larson => threaded::larson(t, size),
            Kind::ProdCons => threaded::prodcons(t, size),
            Kind::FalseShare => threaded::falseshare(t, size),
            Kind::Churn => threaded::churn(t, size),
            Kind::Realloc => growth::realloc(size),
            Kind::Large => growth::large(size),
            Kind::Phased => {
                let (work, phases) = phased::phased(size);
                return (work, Some(phases));
            }
            Kind::HashMap => programs::hashmap(size),
            Kind::BTreeMap => programs::btreemap(size),
            Kind::Json => programs::json(size),
        };
        (work, None)
    }
}

/// The line of JSON a workload process prints when it is done.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// The workload's name.
    pub name: String,
    /// The allocator the binary was built with.
    pub allocator: String,
    /// `LD_PRELOAD`, if set: a C allocator in place of the C library's.
    pub preload: Option<String>,
    /// Whether this was a `--quick` run.
    pub quick: bool,
    /// Operations performed.
    pub ops: u64,
    /// See [`Work::checksum`].
    pub checksum: Option<u64>,
    /// Seconds the workload took inside the process (no start-up or exit).
    pub elapsed_s: f64,
    /// Resident size when the workload was done, in bytes.
    pub final_rss: u64,
    /// `phased` only: resident size at the end of each phase, in bytes.
    pub rss_after_phase: Option<[u64; 4]>,
    /// `phased` only: the resident size over time.
    pub rss_series: Option<Vec<rss::Sample>>,
    /// While a heap profiler sampled the run (spanalloc with
    /// `SPANALLOC_PROFILE_RATE`): its estimate of the bytes allocated, from
    /// the samples; shows that the profiler really was on.
    #[serde(default)]
    pub profiled_alloc_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let all = Variant::all();
        assert_eq!(all.len(), 25);
        for v in &all {
            assert_eq!(Variant::find(&v.name).as_ref(), Some(v));
        }
        assert_eq!(Variant::find("larson/t8").unwrap().threads, 8);
        assert_eq!(Variant::find("nope"), None);
    }

    #[test]
    fn every_workload_runs_quick_and_deterministic_ones_repeat() {
        for v in Variant::all() {
            let (work, phases) = v.run(Size::Quick);
            assert!(work.ops > 0, "{}", v.name);
            assert_eq!(phases.is_some(), v.kind == Kind::Phased, "{}", v.name);
            if work.checksum.is_some() && v.kind != Kind::Phased {
                assert_eq!(v.run(Size::Quick).0, work, "{} is not repeatable", v.name);
            }
        }
    }
}
