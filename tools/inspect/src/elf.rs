//! `elf FILE`: the sections and program segments of an ELF file, grouped
//! the way GNU `size` groups them.
//!
//! Two groupings are computed from the section headers:
//!
//! * ours, by what a section holds at run time: **text** (allocated and
//!   executable), **rodata** (allocated, read-only, not executable), **data**
//!   (allocated, writable, with contents in the file), **bss** (allocated, no
//!   contents: `SHT_NOBITS`, including `.tbss`), **other** (not allocated:
//!   symbols, debug information, comments);
//! * GNU `size`'s Berkeley format (binutils `size.c`, `berkeley_or_gnu_sum`,
//!   over BFD's section flags): of the allocated sections, those that are
//!   code or read-only count as **text** (so rodata is inside text), the rest
//!   with contents as **data**, and the rest as **bss**. `dec` is their sum.
//!
//! `size -A` (System V format) lists every section BFD makes from the
//! section headers; we list the same ones and give the same total. BFD makes
//! no section of the null section, the section-name string table, the
//! static symbol table, its string table and index table, or the relocation
//! sections a relocatable file attaches to the sections they patch.
//!
//! The program headers are listed too: the `PT_LOAD` segments are what the
//! loader maps (`memsz` bytes at `vaddr`, of which `filesz` come from the
//! file and the rest are zero: that tail is the bss).

use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind};
use serde::Serialize;

use crate::error::{read_file, Error, Result};

/// Our grouping of a section (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Allocated and executable.
    Text,
    /// Allocated, read-only, not executable.
    Rodata,
    /// Allocated, writable, with contents in the file.
    Data,
    /// Allocated without contents in the file (`SHT_NOBITS`).
    Bss,
    /// Not allocated: not in memory when the program runs.
    Other,
}

impl Group {
    /// All groups, in the order they are shown.
    pub const ALL: [Group; 5] = [
        Group::Text,
        Group::Rodata,
        Group::Data,
        Group::Bss,
        Group::Other,
    ];

    /// The lower-case name used in text and JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Group::Text => "text",
            Group::Rodata => "rodata",
            Group::Data => "data",
            Group::Bss => "bss",
            Group::Other => "other",
        }
    }
}

/// One section header.
#[derive(Clone, Debug, Serialize)]
pub struct Section {
    /// Index in the section header table.
    pub index: usize,
    /// Name from the section-name string table.
    pub name: String,
    /// Type as `readelf` prints it (`PROGBITS`, `NOBITS`, ...).
    pub kind: String,
    /// Virtual address (0 for sections not allocated).
    pub addr: u64,
    /// Offset in the file.
    pub offset: u64,
    /// Size in bytes (in memory; in the file too unless `NOBITS`).
    pub size: u64,
    /// Flags as `readelf` prints them: `W` write, `A` alloc, `X` execute,
    /// `M` merge, `S` strings, `I` info, `L` link order, `G` group, `T` TLS,
    /// `C` compressed, `E` exclude.
    pub flags: String,
    /// Our grouping.
    pub group: Group,
    /// Whether `size -A` lists this section (and counts it in its total).
    pub in_size_sysv: bool,
}

/// One program header.
#[derive(Clone, Debug, Serialize)]
pub struct Segment {
    /// Type as `readelf` prints it (`LOAD`, `DYNAMIC`, `GNU_RELRO`, ...).
    pub kind: String,
    /// Offset in the file.
    pub offset: u64,
    /// Virtual address (before relocation of a position-independent file).
    pub vaddr: u64,
    /// Bytes taken from the file.
    pub filesz: u64,
    /// Bytes in memory (the part past `filesz` is zero-filled).
    pub memsz: u64,
    /// `R`, `W`, `X` or `-` for each.
    pub flags: String,
    /// Required alignment.
    pub align: u64,
    /// Names of the allocated sections that lie inside the segment.
    pub sections: Vec<String>,
}

/// Bytes and number of sections in one of our groups.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct GroupTotal {
    /// Sum of the section sizes.
    pub bytes: u64,
    /// Number of sections.
    pub sections: usize,
}

/// Our groups' totals.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Groups {
    /// Allocated and executable.
    pub text: GroupTotal,
    /// Allocated, read-only data.
    pub rodata: GroupTotal,
    /// Allocated, writable, initialised.
    pub data: GroupTotal,
    /// Zero-initialised.
    pub bss: GroupTotal,
    /// Not allocated.
    pub other: GroupTotal,
}

impl Groups {
    /// The total of one group.
    pub fn get(&self, g: Group) -> GroupTotal {
        match g {
            Group::Text => self.text,
            Group::Rodata => self.rodata,
            Group::Data => self.data,
            Group::Bss => self.bss,
            Group::Other => self.other,
        }
    }

    fn get_mut(&mut self, g: Group) -> &mut GroupTotal {
        match g {
            Group::Text => &mut self.text,
            Group::Rodata => &mut self.rodata,
            Group::Data => &mut self.data,
            Group::Bss => &mut self.bss,
            Group::Other => &mut self.other,
        }
    }
}

/// The totals `size FILE` prints (Berkeley format).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Berkeley {
    /// Code and read-only data.
    pub text: u64,
    /// Writable data with contents.
    pub data: u64,
    /// Allocated without contents.
    pub bss: u64,
    /// `text + data + bss`.
    pub dec: u64,
    /// `dec` in hexadecimal, as `size` prints it (no `0x`).
    pub hex: String,
}

/// Everything `elf FILE` reports.
#[derive(Clone, Debug, Serialize)]
pub struct ElfReport {
    /// The file, as given.
    pub path: String,
    /// Bytes in the file.
    pub file_size: u64,
    /// `ELF32` or `ELF64`.
    pub class: String,
    /// `little` or `big`.
    pub endian: String,
    /// `e_type`, in words.
    pub file_type: String,
    /// `e_machine`, in words.
    pub machine: String,
    /// Entry point.
    pub entry: u64,
    /// The section headers (without the null section 0).
    pub sections: Vec<Section>,
    /// The program headers.
    pub segments: Vec<Segment>,
    /// Our grouping of the sections.
    pub groups: Groups,
    /// What `size FILE` prints.
    pub berkeley: Berkeley,
    /// The `Total` line of `size -A FILE`.
    pub size_sysv_total: u64,
    /// Sum of `memsz` over the `PT_LOAD` segments: what the loader maps.
    pub load_memsz: u64,
    /// Remarks about the file (for example: no section headers).
    pub notes: Vec<String>,
}

impl ElfReport {
    /// The two lines `size FILE` prints, byte for byte.
    pub fn size_lines(&self) -> String {
        let b = &self.berkeley;
        format!(
            "   text\t   data\t    bss\t    dec\t    hex\tfilename\n{:>7}\t{:>7}\t{:>7}\t{:>7}\t{:>7x}\t{}\n",
            b.text, b.data, b.bss, b.dec, b.dec, self.path
        )
    }
}

/// Reads and analyses the ELF file at `path`.
pub fn inspect(path: &Path) -> Result<ElfReport> {
    let data = read_file(path)?;
    let shown = path.display().to_string();
    analyse(&shown, &data)
}

/// Analyses the bytes of an ELF file; `path` is only used in messages.
pub fn analyse(path: &str, data: &[u8]) -> Result<ElfReport> {
    let not_elf = |what: &str| Error::bad_input(format!("{path}: not an ELF file ({what})"));
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        return Err(not_elf(if data.is_empty() {
            "empty file"
        } else {
            "no ELF magic number"
        }));
    }
    match FileKind::parse(data) {
        Ok(FileKind::Elf32) => analyse_as::<elf::FileHeader32<Endianness>>(path, data),
        Ok(FileKind::Elf64) => analyse_as::<elf::FileHeader64<Endianness>>(path, data),
        Ok(_) => Err(not_elf("unknown format")),
        Err(e) => Err(Error::bad_input(format!(
            "{path}: not a valid ELF file: {e} (truncated?)"
        ))),
    }
}

fn analyse_as<Elf: FileHeader<Endian = Endianness>>(path: &str, data: &[u8]) -> Result<ElfReport> {
    let bad = |what: String| Error::bad_input(format!("{path}: {what}"));
    let header =
        Elf::parse(data).map_err(|e| bad(format!("not a valid ELF file: {e} (truncated?)")))?;
    let endian = header
        .endian()
        .map_err(|e| bad(format!("not a valid ELF file: {e}")))?;
    let len = data.len() as u64;
    let phdrs = header
        .program_headers(endian, data)
        .map_err(|e| bad(format!("bad program headers: {e} (truncated?)")))?;
    let table = header
        .sections(endian, data)
        .map_err(|e| bad(format!("bad section headers: {e} (truncated?)")))?;
    let file_type = header.e_type(endian);
    let relocatable = file_type == elf::ET_REL;
    let has_interp = phdrs.iter().any(|p| p.p_type(endian) == elf::PT_INTERP);

    // The sections BFD keeps to itself (see the module comment).
    let shstrndx = header
        .section_strings_index(endian, data)
        .map(|i| i.0)
        .unwrap_or(0);
    let symtab = table
        .enumerate()
        .find(|(_, s)| s.sh_type(endian) == elf::SHT_SYMTAB)
        .map(|(i, s)| (i.0, s.sh_link(endian) as usize));

    let mut sections = Vec::new();
    for (index, sh) in table.enumerate() {
        let index = index.0;
        if index == 0 {
            continue;
        }
        let name = table
            .section_name(endian, sh)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_else(|_| format!("<bad name {}>", sh.sh_name(endian)));
        let sh_type = sh.sh_type(endian);
        let flags: u64 = sh.sh_flags(endian).into();
        let offset: u64 = sh.sh_offset(endian).into();
        let size: u64 = sh.sh_size(endian).into();
        if sh_type != elf::SHT_NOBITS && offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(bad(format!(
                "truncated ELF file: section {name} needs bytes {offset}..{} but the file has {len}",
                offset.saturating_add(size)
            )));
        }
        let linked_to_symtab = symtab.is_some_and(|(sym, _)| sh.sh_link(endian) as usize == sym);
        let kept_by_bfd = match sh_type {
            elf::SHT_SYMTAB | elf::SHT_SYMTAB_SHNDX => false,
            elf::SHT_STRTAB => index != shstrndx && symtab.is_none_or(|(_, s)| s != index),
            elf::SHT_REL | elf::SHT_RELA => {
                // Attached to its target section (not a section of its own)
                // only in a relocatable file, or when not allocated.
                let alloc_in_linked = !relocatable && flags & u64::from(elf::SHF_ALLOC) != 0;
                let info = sh.sh_info(endian) as usize;
                alloc_in_linked || !linked_to_symtab || info == 0 || info >= table.len()
            }
            _ => true,
        };
        let alloc = flags & u64::from(elf::SHF_ALLOC) != 0;
        let write = flags & u64::from(elf::SHF_WRITE) != 0;
        let exec = flags & u64::from(elf::SHF_EXECINSTR) != 0;
        let nobits = sh_type == elf::SHT_NOBITS;
        // BFD skips sections that end up with no flags at all.
        let no_bfd_flags = nobits && !alloc && write && !exec;
        let group = if !alloc {
            Group::Other
        } else if exec {
            Group::Text
        } else if nobits {
            Group::Bss
        } else if !write {
            Group::Rodata
        } else {
            Group::Data
        };
        sections.push(Section {
            index,
            name,
            kind: section_type_name(sh_type),
            addr: sh.sh_addr(endian).into(),
            offset,
            size,
            flags: section_flags(flags),
            group,
            in_size_sysv: kept_by_bfd && !no_bfd_flags,
        });
    }

    let mut groups = Groups::default();
    let mut berkeley = Berkeley::default();
    for s in &sections {
        let g = groups.get_mut(s.group);
        g.bytes += s.size;
        g.sections += 1;
        if !s.in_size_sysv || !s.flags.contains('A') {
            continue;
        }
        // binutils size.c: code or read-only -> text; else contents -> data;
        // else bss.
        if s.flags.contains('X') || !s.flags.contains('W') {
            berkeley.text += s.size;
        } else if s.kind != "NOBITS" {
            berkeley.data += s.size;
        } else {
            berkeley.bss += s.size;
        }
    }
    berkeley.dec = berkeley.text + berkeley.data + berkeley.bss;
    berkeley.hex = format!("{:x}", berkeley.dec);
    let size_sysv_total = sections
        .iter()
        .filter(|s| s.in_size_sysv)
        .map(|s| s.size)
        .sum();

    let mut segments = Vec::new();
    for ph in phdrs {
        let p_type = ph.p_type(endian);
        let offset: u64 = ph.p_offset(endian).into();
        let filesz: u64 = ph.p_filesz(endian).into();
        if p_type == elf::PT_LOAD && offset.checked_add(filesz).is_none_or(|end| end > len) {
            return Err(bad(format!(
                "truncated ELF file: a LOAD segment needs bytes {offset}..{} but the file has {len}",
                offset.saturating_add(filesz)
            )));
        }
        let vaddr: u64 = ph.p_vaddr(endian).into();
        let memsz: u64 = ph.p_memsz(endian).into();
        let inside = sections
            .iter()
            .filter(|s| {
                let tls_bss = s.kind == "NOBITS" && s.flags.contains('T');
                s.flags.contains('A')
                    && s.size > 0
                    && (p_type == elf::PT_TLS || !tls_bss)
                    && s.addr >= vaddr
                    && s.addr + s.size <= vaddr + memsz
            })
            .map(|s| s.name.clone())
            .collect();
        segments.push(Segment {
            kind: segment_type_name(p_type),
            offset,
            vaddr,
            filesz,
            memsz,
            flags: segment_flags(ph.p_flags(endian)),
            align: ph.p_align(endian).into(),
            sections: inside,
        });
    }
    let load_memsz = segments
        .iter()
        .filter(|s| s.kind == "LOAD")
        .map(|s| s.memsz)
        .sum();

    let mut notes = Vec::new();
    if sections.is_empty() {
        notes.push(
            "no section headers (stripped to the program headers?): groups and size totals are empty"
                .to_string(),
        );
    }
    Ok(ElfReport {
        path: path.to_string(),
        file_size: len,
        class: if header.is_class_64() {
            "ELF64"
        } else {
            "ELF32"
        }
        .to_string(),
        endian: if header.is_little_endian() {
            "little"
        } else {
            "big"
        }
        .to_string(),
        file_type: file_type_name(file_type, has_interp),
        machine: machine_name(header.e_machine(endian)),
        entry: header.e_entry(endian).into(),
        sections,
        segments,
        groups,
        berkeley,
        size_sysv_total,
        load_memsz,
        notes,
    })
}

/// A `PT_LOAD` segment, as `maps` needs it to tell text from data and bss
/// in a mapped program image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    /// Offset in the file.
    pub offset: u64,
    /// Virtual address before the load bias is added.
    pub vaddr: u64,
    /// Bytes from the file.
    pub filesz: u64,
    /// Bytes in memory.
    pub memsz: u64,
    /// `p_flags`: `PF_R`, `PF_W`, `PF_X`.
    pub flags: u32,
}

impl LoadSegment {
    /// Executable.
    pub fn exec(&self) -> bool {
        self.flags & elf::PF_X != 0
    }

    /// Writable.
    pub fn write(&self) -> bool {
        self.flags & elf::PF_W != 0
    }
}

/// The `PT_LOAD` segments of the ELF file at `path`, reading only its
/// headers; `None` if it is not an ELF file or cannot be read.
pub fn load_segments(path: &Path) -> Option<Vec<LoadSegment>> {
    use std::io::Read as _;
    /// Program headers sit near the start; read more only if they do not.
    const FIRST: u64 = 64 << 10;
    const MOST: u64 = 1 << 20;
    let read = |n: u64| -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        std::fs::File::open(path)
            .ok()?
            .take(n)
            .read_to_end(&mut buf)
            .ok()?;
        Some(buf)
    };
    let buf = read(FIRST)?;
    match load_segments_in(&buf) {
        Ok(segs) => Some(segs),
        Err(Some(need)) if need <= MOST => load_segments_in(&read(need)?).ok(),
        Err(_) => None,
    }
}

/// The `PT_LOAD` segments in `data`, the start of an ELF file; on failure the
/// number of bytes the program headers need, if the header was readable.
fn load_segments_in(data: &[u8]) -> std::result::Result<Vec<LoadSegment>, Option<u64>> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf32) => load_segments_as::<elf::FileHeader32<Endianness>>(data),
        Ok(FileKind::Elf64) => load_segments_as::<elf::FileHeader64<Endianness>>(data),
        _ => Err(None),
    }
}

fn load_segments_as<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
) -> std::result::Result<Vec<LoadSegment>, Option<u64>> {
    let header = Elf::parse(data).map_err(|_| None)?;
    let endian = header.endian().map_err(|_| None)?;
    let need = || {
        let phoff: u64 = header.e_phoff(endian).into();
        let n = u64::from(header.e_phnum(endian)) * u64::from(header.e_phentsize(endian));
        Some(phoff.saturating_add(n))
    };
    let phdrs = header.program_headers(endian, data).map_err(|_| need())?;
    Ok(phdrs
        .iter()
        .filter(|p| p.p_type(endian) == elf::PT_LOAD)
        .map(|p| LoadSegment {
            offset: p.p_offset(endian).into(),
            vaddr: p.p_vaddr(endian).into(),
            filesz: p.p_filesz(endian).into(),
            memsz: p.p_memsz(endian).into(),
            flags: p.p_flags(endian),
        })
        .collect())
}

fn file_type_name(t: u16, has_interp: bool) -> String {
    match t {
        elf::ET_REL => "relocatable object".into(),
        elf::ET_EXEC => "executable".into(),
        elf::ET_DYN if has_interp => "position-independent executable".into(),
        elf::ET_DYN => "shared object".into(),
        elf::ET_CORE => "core dump".into(),
        t => format!("type {t:#x}"),
    }
}

fn machine_name(m: u16) -> String {
    match m {
        elf::EM_X86_64 => "x86-64".into(),
        elf::EM_386 => "i386".into(),
        elf::EM_AARCH64 => "AArch64".into(),
        elf::EM_ARM => "ARM".into(),
        elf::EM_RISCV => "RISC-V".into(),
        elf::EM_PPC64 => "PowerPC64".into(),
        elf::EM_S390 => "s390".into(),
        m => format!("machine {m}"),
    }
}

fn section_type_name(t: u32) -> String {
    let name = match t {
        elf::SHT_NULL => "NULL",
        elf::SHT_PROGBITS => "PROGBITS",
        elf::SHT_SYMTAB => "SYMTAB",
        elf::SHT_STRTAB => "STRTAB",
        elf::SHT_RELA => "RELA",
        elf::SHT_HASH => "HASH",
        elf::SHT_DYNAMIC => "DYNAMIC",
        elf::SHT_NOTE => "NOTE",
        elf::SHT_NOBITS => "NOBITS",
        elf::SHT_REL => "REL",
        elf::SHT_DYNSYM => "DYNSYM",
        elf::SHT_INIT_ARRAY => "INIT_ARRAY",
        elf::SHT_FINI_ARRAY => "FINI_ARRAY",
        elf::SHT_PREINIT_ARRAY => "PREINIT_ARRAY",
        elf::SHT_GROUP => "GROUP",
        elf::SHT_SYMTAB_SHNDX => "SYMTAB SECTION INDICES",
        elf::SHT_RELR => "RELR",
        elf::SHT_GNU_HASH => "GNU_HASH",
        elf::SHT_GNU_VERDEF => "VERDEF",
        elf::SHT_GNU_VERNEED => "VERNEED",
        elf::SHT_GNU_VERSYM => "VERSYM",
        elf::SHT_GNU_ATTRIBUTES => "GNU_ATTRIBUTES",
        elf::SHT_X86_64_UNWIND => "X86_64_UNWIND",
        _ => return format!("{t:#x}"),
    };
    name.to_string()
}

fn section_flags(f: u64) -> String {
    const LETTERS: [(u32, char); 11] = [
        (elf::SHF_WRITE, 'W'),
        (elf::SHF_ALLOC, 'A'),
        (elf::SHF_EXECINSTR, 'X'),
        (elf::SHF_MERGE, 'M'),
        (elf::SHF_STRINGS, 'S'),
        (elf::SHF_INFO_LINK, 'I'),
        (elf::SHF_LINK_ORDER, 'L'),
        (elf::SHF_GROUP, 'G'),
        (elf::SHF_TLS, 'T'),
        (elf::SHF_COMPRESSED, 'C'),
        (elf::SHF_EXCLUDE, 'E'),
    ];
    LETTERS
        .iter()
        .filter(|(bit, _)| f & u64::from(*bit) != 0)
        .map(|&(_, c)| c)
        .collect()
}

fn segment_type_name(t: u32) -> String {
    let name = match t {
        elf::PT_NULL => "NULL",
        elf::PT_LOAD => "LOAD",
        elf::PT_DYNAMIC => "DYNAMIC",
        elf::PT_INTERP => "INTERP",
        elf::PT_NOTE => "NOTE",
        elf::PT_SHLIB => "SHLIB",
        elf::PT_PHDR => "PHDR",
        elf::PT_TLS => "TLS",
        elf::PT_GNU_EH_FRAME => "GNU_EH_FRAME",
        elf::PT_GNU_STACK => "GNU_STACK",
        elf::PT_GNU_RELRO => "GNU_RELRO",
        elf::PT_GNU_PROPERTY => "GNU_PROPERTY",
        _ => return format!("{t:#x}"),
    };
    name.to_string()
}

fn segment_flags(f: u32) -> String {
    let bit = |b: u32, c: char| if f & b != 0 { c } else { '-' };
    [
        bit(elf::PF_R, 'R'),
        bit(elf::PF_W, 'W'),
        bit(elf::PF_X, 'X'),
    ]
    .iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_elf() {
        let e = analyse("x", b"").unwrap_err();
        assert!(e.message.contains("not an ELF file (empty file)"), "{e}");
        let e = analyse("x", b"#!/bin/sh\necho hi\n").unwrap_err();
        assert!(e.message.contains("not an ELF file"), "{e}");
        let e = analyse("x", b"\x7fELF\x02\x01").unwrap_err();
        assert!(e.message.contains("truncated"), "{e}");
    }

    #[test]
    fn flags_read_like_readelf() {
        let wa = u64::from(elf::SHF_WRITE | elf::SHF_ALLOC);
        assert_eq!(section_flags(wa), "WA");
        assert_eq!(segment_flags(elf::PF_R | elf::PF_X), "R-X");
    }

    #[test]
    fn size_lines_match_size_s_layout() {
        let mut r = analyse_self();
        r.berkeley = Berkeley {
            text: 33393,
            data: 1592,
            bss: 408,
            dec: 35393,
            hex: "8a41".into(),
        };
        r.path = "/usr/bin/cat".into();
        assert_eq!(
            r.size_lines(),
            "   text\t   data\t    bss\t    dec\t    hex\tfilename\n  33393\t   1592\t    408\t  35393\t   8a41\t/usr/bin/cat\n"
        );
    }

    fn analyse_self() -> ElfReport {
        let exe = std::env::current_exe().unwrap();
        inspect(&exe).unwrap()
    }

    #[test]
    fn own_test_binary_has_the_usual_groups() {
        let r = analyse_self();
        assert!(r.groups.text.bytes > 0 && r.groups.rodata.bytes > 0);
        assert!(r
            .segments
            .iter()
            .any(|s| s.kind == "LOAD" && s.flags == "R-X"));
        let text = r.sections.iter().find(|s| s.name == ".text").unwrap();
        assert_eq!(text.group, Group::Text);
        assert!(r.berkeley.text >= r.groups.text.bytes + r.groups.rodata.bytes);
    }
}
