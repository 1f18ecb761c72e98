//! `elf FILE` against what binutils says about the same file.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{inspect_json, inspect_ok, num, sh, BIN};

/// A C program with globals of known sizes in .data, .bss and .rodata.
pub const PROGRAM: &str = r#"
int initialized[1000] = {1};          /* .data: 4000 bytes */
char zeroed[1 << 20];                 /* .bss: 1 MiB */
const int table[2048] = {1, 2, 3};    /* .rodata: 8192 bytes */

int main(int argc, char **argv) {
    (void)argv;
    return initialized[argc] + zeroed[argc] + table[argc];
}
"#;

/// Compiles [`PROGRAM`] in `dir` and returns the executable's path.
pub fn compile(dir: &Path) -> PathBuf {
    let src = dir.join("globals.c");
    let exe = dir.join("globals");
    std::fs::write(&src, PROGRAM).unwrap();
    let out = Command::new("cc")
        .arg("-O0")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("a C compiler (cc) is installed");
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// A section as `readelf -SW` shows it.
#[derive(Debug, PartialEq, Eq)]
struct ReadelfSection {
    name: String,
    kind: String,
    addr: u64,
    offset: u64,
    size: u64,
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("not hex: {s}"))
}

fn readelf_sections(file: &Path) -> Vec<ReadelfSection> {
    let text = sh("readelf", &["-SW", file.to_str().unwrap()]);
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start().strip_prefix('[')?;
            let (nr, rest) = l.split_once(']')?;
            let nr: usize = nr.trim().parse().ok()?;
            if nr == 0 {
                return None;
            }
            let t: Vec<&str> = rest.split_whitespace().collect();
            Some(ReadelfSection {
                name: t[0].to_string(),
                kind: t[1].to_string(),
                addr: hex(t[2]),
                offset: hex(t[3]),
                size: hex(t[4]),
            })
        })
        .collect()
}

/// `(vaddr, filesz, memsz, flags as R-X)` of each LOAD in `readelf -lW`.
fn readelf_loads(file: &Path) -> Vec<(u64, u64, u64, String)> {
    let text = sh("readelf", &["-lW", file.to_str().unwrap()]);
    text.lines()
        .filter(|l| l.trim_start().starts_with("LOAD "))
        .map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            let flags = t[6..t.len() - 1].concat();
            let f = |c: char, shown: char| if flags.contains(c) { shown } else { '-' };
            let flags: String = [f('R', 'R'), f('W', 'W'), f('E', 'X')].iter().collect();
            (hex(t[2]), hex(t[4]), hex(t[5]), flags)
        })
        .collect()
}

/// `size -A`'s Total line.
fn size_sysv_total(file: &Path) -> u64 {
    let text = sh("size", &["-A", file.to_str().unwrap()]);
    let line = text
        .lines()
        .find(|l| l.starts_with("Total"))
        .expect("a Total line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Checks the tool's report on `file` against `readelf`, `size` and
/// `size -A`, and returns the JSON report.
fn check_against_binutils(file: &Path) -> serde_json::Value {
    let path = file.to_str().unwrap();
    let r = inspect_json(&["elf", path]);

    // Every section as readelf lists it.
    let ours: Vec<ReadelfSection> = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| ReadelfSection {
            name: s["name"].as_str().unwrap().to_string(),
            kind: s["kind"].as_str().unwrap().to_string(),
            addr: num(&s["addr"]),
            offset: num(&s["offset"]),
            size: num(&s["size"]),
        })
        .collect();
    assert_eq!(ours, readelf_sections(file), "sections of {path}");

    // The LOAD segments.
    let loads: Vec<(u64, u64, u64, String)> = r["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "LOAD")
        .map(|s| {
            (
                num(&s["vaddr"]),
                num(&s["filesz"]),
                num(&s["memsz"]),
                s["flags"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(!loads.is_empty());
    assert_eq!(loads, readelf_loads(file), "LOAD segments of {path}");

    // The Berkeley lines exactly as size prints them, and size -A's total.
    let text = inspect_ok(&["elf", path]).stdout;
    let size = sh("size", &[path]);
    assert!(text.contains(&size), "size says\n{size}\nwe say\n{text}");
    assert_eq!(num(&r["size_sysv_total"]), size_sysv_total(file));
    assert!(text.contains(&format!("size -A total: {}", size_sysv_total(file))));
    r
}

#[test]
fn globals_land_in_data_bss_and_rodata() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(dir.path());
    let r = check_against_binutils(&exe);

    let section = |name: &str| {
        r["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name} section"))
            .clone()
    };
    let (data, bss, rodata) = (section(".data"), section(".bss"), section(".rodata"));
    assert_eq!(data["group"], "data");
    assert_eq!(bss["group"], "bss");
    assert_eq!(rodata["group"], "rodata");
    assert_eq!(section(".text")["group"], "text");
    assert!(num(&data["size"]) >= 4000, "{data}");
    assert!(num(&bss["size"]) >= 1 << 20, "{bss}");
    assert!(num(&rodata["size"]) >= 8192, "{rodata}");
    assert_eq!(bss["kind"], "NOBITS");

    // Our groups add up to Berkeley's: text = text + rodata.
    let g = |name: &str| num(&r["groups"][name]["bytes"]);
    let b = |name: &str| num(&r["berkeley"][name]);
    assert_eq!(g("text") + g("rodata"), b("text"));
    assert_eq!(g("data"), b("data"));
    assert_eq!(g("bss"), b("bss"));
    assert!(g("bss") >= 1 << 20 && g("data") >= 4000 && g("rodata") >= 8192);

    // The writable LOAD segment carries the bss in memsz beyond filesz.
    let rw = r["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "LOAD" && s["flags"] == "RW-")
        .expect("a writable LOAD segment");
    assert!(num(&rw["memsz"]) - num(&rw["filesz"]) >= 1 << 20, "{rw}");
    let names: Vec<&str> = rw["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        names.contains(&".data") && names.contains(&".bss"),
        "{names:?}"
    );
}

#[test]
fn own_binary_matches_size() {
    let r = check_against_binutils(Path::new(BIN));
    assert_eq!(r["class"], "ELF64");
    assert!(num(&r["groups"]["text"]["bytes"]) > 100_000);
}

#[test]
fn text_report_names_the_groups() {
    let out = inspect_ok(&["elf", BIN]).stdout;
    for want in [
        "Sections:",
        "Program headers",
        "LOAD",
        ".text",
        "rodata",
        "bss",
        "size -A total",
    ] {
        assert!(out.contains(want), "no {want:?} in\n{out}");
    }
}
