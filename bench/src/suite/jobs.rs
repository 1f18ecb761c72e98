//! What the suite runs: the catalogue of jobs, and one run of one job under
//! one allocator.
//!
//! A job is a Rust workload (run by the contender's workloads binary), a
//! workload of the C program ([`cprogram`]), or a real program
//! ([`programs`]). The last two are `--c-side` only: they take their
//! allocator from `LD_PRELOAD`. Before the runs, a [`Kit`] makes the selected
//! jobs ready: it compiles the C program and finds the programs, leaving out
//! (and saying so) those that are not installed.

use std::path::Path;

use spanalloc_workloads::{Kind, Variant};

use super::allocators::Contender;
use super::child::{self, RunMetrics, RunPlan};
use super::cprogram::{self, Compiled};
use super::programs::{self, Installed, Program};
use super::results::{About, Source};

/// One workload of the suite.
#[derive(Clone, Debug)]
pub enum Job {
    /// A workload of `spanalloc_workloads`, in the contender's binary.
    Rust(Variant),
    /// The same workload in the C program (a multi-threaded one).
    C(Variant),
    /// A real program.
    Program(Program),
}

impl Job {
    /// Its name in reports and for `--only`: `larson/t2`, `c/larson/t2`,
    /// `python3`.
    pub fn name(&self) -> String {
        match self {
            Job::Rust(v) => v.name.clone(),
            Job::C(v) => format!("{}{}", cprogram::PREFIX, v.name),
            Job::Program(p) => p.name().to_owned(),
        }
    }

    /// What it is, for the report.
    pub fn about(&self) -> About {
        let (description, unit, threads, source) = match self {
            Job::Rust(v) => (v.describe(), v.unit(), v.threads, Source::Rust),
            Job::C(v) => (
                format!("in C with pthreads: {}", v.describe()),
                v.unit(),
                v.threads,
                Source::C,
            ),
            Job::Program(p) => (p.describe(), p.unit(), 1, Source::Program),
        };
        About {
            name: self.name(),
            description,
            unit: unit.to_owned(),
            threads,
            source,
        }
    }

    /// Whether this is `phased`, whose resident size over time is charted.
    pub fn is_phased(&self) -> bool {
        matches!(self, Job::Rust(v) if v.kind == Kind::Phased)
    }
}

/// Every job, in report order: the Rust workloads, then, with `c_side`, the
/// C program's and the real programs.
pub fn catalogue(c_side: bool) -> Vec<Job> {
    let mut all: Vec<Job> = Variant::all().into_iter().map(Job::Rust).collect();
    if c_side {
        all.extend(cprogram::variants().into_iter().map(Job::C));
        all.extend(Program::ALL.into_iter().map(Job::Program));
    }
    all
}

/// What the selected jobs need, made ready.
pub struct Kit {
    /// The C program, if a C job is selected.
    c_program: Option<Compiled>,
    /// The real programs selected and found.
    programs: Vec<Installed>,
}

impl Kit {
    /// Makes `jobs` ready in `scratch`: compiles the C program if one of
    /// them needs it (failing if it cannot), finds the real programs. Returns
    /// the kit, the jobs that can run, and why each other one was left out.
    pub fn prepare(jobs: Vec<Job>, scratch: &Path) -> Result<(Kit, Vec<Job>, Vec<String>), String> {
        let c_program = if jobs.iter().any(|j| matches!(j, Job::C(_))) {
            Some(cprogram::compile(scratch, &[])?)
        } else {
            None
        };
        let mut programs = Vec::new();
        let mut left_out = Vec::new();
        let mut ready = Vec::with_capacity(jobs.len());
        for job in jobs {
            if let Job::Program(p) = job {
                match programs::find(p, scratch) {
                    Ok(found) => programs.push(found),
                    Err(why) => {
                        left_out.push(format!("{}: {why}", p.name()));
                        continue;
                    }
                }
            }
            ready.push(job);
        }
        Ok((
            Kit {
                c_program,
                programs,
            },
            ready,
            left_out,
        ))
    }

    /// What was built and found, as `(what, which)` for the report.
    pub fn tools(&self) -> Vec<(String, String)> {
        let mut tools = Vec::new();
        if let Some(c) = &self.c_program {
            tools.push(("C compiler".to_owned(), c.compiler.clone()));
        }
        for p in &self.programs {
            tools.push((p.program.name().to_owned(), p.version.clone()));
        }
        tools
    }

    /// Runs `job` once under `contender` and measures it.
    pub fn run(
        &self,
        job: &Job,
        contender: &Contender,
        plan: &RunPlan,
    ) -> Result<RunMetrics, String> {
        match job {
            Job::Rust(v) => child::run_workload(&contender.binary, contender, &v.name, plan),
            Job::C(v) => {
                let c = self.c_program.as_ref().expect("prepared with a C job");
                child::run_workload(&c.binary, contender, &v.name, plan)
            }
            Job::Program(p) => {
                let installed = self
                    .programs
                    .iter()
                    .find(|i| i.program == *p)
                    .expect("prepared with this program");
                programs::run(installed, contender, plan)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_names_are_unique_and_c_side_adds_c_and_programs() {
        let rust = catalogue(false);
        assert_eq!(rust.len(), Variant::all().len());
        let all = catalogue(true);
        let names: Vec<String> = all.iter().map(Job::name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        for name in [
            "larson/t8",
            "c/larson/t8",
            "c/churn/t1",
            "python3",
            "sqlite3",
            "redis",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        assert_eq!(all.iter().filter(|j| j.is_phased()).count(), 1);
        let c = all.iter().find(|j| j.name() == "c/prodcons/t2").unwrap();
        assert_eq!(c.about().threads, 2);
        assert_eq!(c.about().source, Source::C);
    }
}
