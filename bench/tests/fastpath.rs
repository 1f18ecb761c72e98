//! The fast-path guard: spanalloc's instructions per 64-byte alloc + sized
//! free, counted by callgrind, must not grow past the count checked in to
//! `bench/fastpath-instructions.txt` for this build's profile (+2).
//!
//! Without valgrind the test is skipped, unless `CI` is set: CI must run it.

use std::process::Command;

#[test]
fn fast_path_instruction_count_has_not_grown() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "valgrind is not installed, and CI is set: .ci/install-packages should install it"
        );
        eprintln!(
            "SKIPPED fast_path_instruction_count_has_not_grown: \
             valgrind is not installed (apt-get install valgrind)"
        );
        return;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_spanalloc-bench"))
        .args([
            "fastpath",
            "--check",
            "--bin",
            env!("CARGO_BIN_EXE_fastpath"),
        ])
        .output()
        .expect("run spanalloc-bench fastpath");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Both counts, measured and checked in, for the log.
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the fast path's instruction count grew (or could not be measured):\n{stdout}\n{stderr}"
    );
}
