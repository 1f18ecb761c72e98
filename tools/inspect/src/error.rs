//! Errors and exit codes: every failure the tool reports is one of a few
//! kinds, each with its own exit code, so scripts can tell "that process is
//! gone" from "that file is not an ELF file".
//!
//! | code | kind |
//! |---:|---|
//! | 0 | success |
//! | 1 | bad input: not an ELF file, a truncated ELF file, a heap dump that is not valid JSON or not in the dump format, a file that is not a pprof profile or has dangling references |
//! | 2 | bad command line (from clap, or an argument that does not fit the input: `profile --sample` naming a type the profile lacks) |
//! | 3 | no such process |
//! | 4 | permission denied (a process or a file we may not read) |
//! | 5 | a file that cannot be read: missing, a directory, an I/O error; or a file we cannot write |

use std::fmt;
use std::io;
use std::path::Path;

/// What went wrong, which decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The input exists but is not what the subcommand reads.
    BadInput,
    /// An argument does not fit the input (clap's own usage errors exit
    /// with the same code).
    Usage,
    /// The process does not exist (or exited while we read it).
    NoSuchProcess,
    /// The kernel refused to show us the file or the process.
    PermissionDenied,
    /// The file is missing, a directory, or could not be read or written.
    Io,
}

impl Kind {
    /// The process exit code for this kind of failure (see the module table).
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::BadInput => 1,
            Kind::Usage => 2,
            Kind::NoSuchProcess => 3,
            Kind::PermissionDenied => 4,
            Kind::Io => 5,
        }
    }
}

/// A failure with a message for a person.
#[derive(Debug)]
pub struct Error {
    /// Decides the exit code.
    pub kind: Kind,
    /// The whole message, naming the file or process concerned.
    pub message: String,
}

/// The result of everything in this crate that can fail.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A failure of the given kind.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// The input is not what we expected.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Error::new(Kind::BadInput, message)
    }

    /// An I/O error on `path`, worded for a person: "no such file",
    /// "is a directory", "permission denied".
    pub fn file(path: &Path, err: &io::Error) -> Self {
        let path = path.display();
        match err.kind() {
            io::ErrorKind::NotFound => Error::new(Kind::Io, format!("{path}: no such file")),
            io::ErrorKind::PermissionDenied => {
                Error::new(Kind::PermissionDenied, format!("{path}: permission denied"))
            }
            io::ErrorKind::IsADirectory => Error::new(Kind::Io, format!("{path}: is a directory")),
            _ => Error::new(Kind::Io, format!("{path}: {err}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Reads a whole input file, refusing directories with a clear message
/// (`read` on a directory fails with a less helpful "Is a directory (os
/// error 21)", and only on some systems).
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::file(path, &e))?;
    if meta.is_dir() {
        return Err(Error::new(
            Kind::Io,
            format!("{}: is a directory", path.display()),
        ));
    }
    std::fs::read(path).map_err(|e| Error::file(path, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_not_clap_s() {
        // Usage errors share clap's code on purpose; every other kind has
        // its own.
        assert_eq!(Kind::Usage.exit_code(), 2);
        let kinds = [
            Kind::BadInput,
            Kind::NoSuchProcess,
            Kind::PermissionDenied,
            Kind::Io,
        ];
        let mut codes: Vec<u8> = kinds.iter().map(|k| k.exit_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len());
        assert!(!codes.contains(&0) && !codes.contains(&2));
    }

    #[test]
    fn io_errors_are_worded_for_people() {
        let p = Path::new("/nonexistent/x");
        let e = read_file(p).unwrap_err();
        assert_eq!(e.kind, Kind::Io);
        assert_eq!(e.message, "/nonexistent/x: no such file");
        let e = read_file(Path::new("/")).unwrap_err();
        assert_eq!(e.message, "/: is a directory");
    }
}
