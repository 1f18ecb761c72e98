//! `mksizeclasses`: writes spanalloc's size-class table.
//!
//! From the workspace root:
//!
//! ```text
//! cargo run -p spanalloc-mksizeclasses -- crates/spanalloc/src/sizeclasses.rs
//! ```
//!
//! With no argument the table is printed to standard output instead.

use std::io::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (path, extra) = (args.next(), args.next());
    if extra.is_some()
        || path
            .as_ref()
            .is_some_and(|p| p.to_string_lossy().starts_with('-'))
    {
        eprintln!("usage: mksizeclasses [OUTPUT_FILE]   (prints to stdout without OUTPUT_FILE)");
        return ExitCode::FAILURE;
    }
    let text = spanalloc_mksizeclasses::generate();
    let written = match &path {
        Some(path) => std::fs::write(path, &text),
        None => std::io::stdout().lock().write_all(text.as_bytes()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let target = path.map_or("standard output".into(), |p| {
                p.to_string_lossy().into_owned()
            });
            eprintln!("mksizeclasses: cannot write {target}: {err}");
            ExitCode::FAILURE
        }
    }
}
