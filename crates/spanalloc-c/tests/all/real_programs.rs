//! Real programs under `LD_PRELOAD=libspanalloc.so` with
//! `SPANALLOC_STATS=1`: python3, git, gcc, sqlite3, redis. Each test checks
//! the program's own output and that spanalloc's report shows it served the
//! allocations. A program that is not installed skips its test, except
//! under CI, where `.ci/install-packages` installs them all.

use crate::harness::{installed, preloaded, run, scratch_dir, Running};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// python3 builds a dict of 200,000 entries, sorts it, serialises it to
/// JSON and back, sorts 300,000 floats. `PYTHONMALLOC=malloc` sends every
/// object through malloc (Python keeps small objects in arenas of its own
/// otherwise).
#[test]
fn python3() {
    let Some(python) = python_binary() else {
        return;
    };
    let script = r#"
import json, random
random.seed(7)
d = {f"key{i}": {"n": i, "s": "x" * (i % 50), "l": list(range(i % 20))} for i in range(200000)}
items = sorted(d.items(), key=lambda kv: (-kv[1]["n"] % 1000, kv[0]))
text = json.dumps(d, sort_keys=True)
assert json.loads(text) == d
floats = [random.random() for _ in range(300000)]
floats.sort()
assert all(a <= b for a, b in zip(floats, floats[1:]))
print("ok", len(d), items[0][0], items[-1][0])
"#;
    let out = run(
        preloaded(&python)
            .env("PYTHONMALLOC", "malloc")
            .args(["-c", script]),
        Duration::from_secs(120),
    );
    out.assert_success()
        .assert_stdout_has("ok 200000 key0 key99001");
    out.assert_report(1_000_000);
}

/// The interpreter itself: a version manager's `python3` is often a shell
/// script that finds it (and would print reports of its own).
fn python_binary() -> Option<PathBuf> {
    let system = Path::new("/usr/bin/python3");
    if system.exists() {
        return Some(system.to_path_buf());
    }
    let python = installed("python3")?;
    let out = Command::new(python)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("cannot run python3");
    assert!(out.status.success(), "python3 does not run");
    Some(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
}

/// git on a generated tree: init, add, commit, change, commit, log, gc
/// (which runs pack-objects and repack with threads), fsck.
#[test]
fn git() {
    let Some(git) = installed("git") else {
        return;
    };
    let dir = scratch_dir("git");
    for d in 0..20 {
        let sub = dir.join(format!("src/d{d}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..10 {
            let text: String = (0..200)
                .map(|i| format!("line {} of {d}/{f}\n", i * f))
                .collect();
            std::fs::write(sub.join(format!("f{f}.txt")), text).unwrap();
        }
    }
    let git_in = |args: &[&str]| {
        let mut cmd = preloaded(&git);
        cmd.current_dir(&dir)
            .env("HOME", &dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .args(args);
        let out = run(&mut cmd, Duration::from_secs(60));
        out.assert_success();
        out.assert_report(100);
        out
    };
    git_in(&["init", "-q", "."]);
    git_in(&["config", "user.name", "spanalloc test"]);
    git_in(&["config", "user.email", "test@spanalloc.invalid"]);
    git_in(&["add", "-A"]);
    git_in(&["commit", "-q", "-m", "first"]);
    for f in 0..10 {
        let path = dir.join(format!("src/d3/f{f}.txt"));
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("changed\n");
        std::fs::write(path, text).unwrap();
    }
    git_in(&["commit", "-q", "-a", "-m", "second"]);
    let log = git_in(&["log", "--format=%s"]);
    assert_eq!(log.stdout, "second\nfirst\n", "{log}");
    let ls = git_in(&["ls-files"]);
    assert_eq!(ls.stdout.lines().count(), 200, "{ls}");
    git_in(&["gc", "-q", "--aggressive"]);
    git_in(&["fsck", "--full", "--strict"]);
}

/// gcc compiles and links a generated C file of 400 functions (the driver,
/// cc1, as and ld all run under LD_PRELOAD); the program it built runs.
#[test]
fn gcc() {
    let Some(gcc) = installed("gcc") else {
        return;
    };
    let dir = scratch_dir("gcc");
    let mut src = String::from("#include <stdio.h>\n");
    for i in 0..400 {
        src += &format!(
            "static int f{i}(int x) {{ int s = 0; for (int k = 0; k < x; k++) s += k * {i} ^ (s >> 3); return s; }}\n"
        );
    }
    src += "int main(void) {\n    long t = 0;\n";
    for i in 0..400 {
        src += &format!("    t += f{i}({});\n", i % 17);
    }
    src += "    printf(\"total %ld\\n\", t);\n    return 0;\n}\n";
    std::fs::write(dir.join("gen.c"), src).unwrap();
    let out = run(
        preloaded(&gcc)
            .current_dir(&dir)
            .args(["-O2", "-Wall", "gen.c", "-o", "gen"]),
        Duration::from_secs(120),
    );
    out.assert_success();
    let reports = out.reports();
    assert!(reports.len() >= 3, "driver, cc1 and as each report\n{out}");
    out.assert_report(10_000);
    // The same sum as the generated code computes.
    let expected: i64 = (0..400)
        .map(|i: i32| {
            let mut s: i32 = 0;
            for k in 0..(i % 17) {
                s = s.wrapping_add((k * i) ^ (s >> 3));
            }
            i64::from(s)
        })
        .sum();
    let built = run(&mut Command::new(dir.join("gen")), Duration::from_secs(10));
    built
        .assert_success()
        .assert_stdout_has(&format!("total {expected}\n"));
}

/// sqlite3 on a database file: 100,000 rows inserted in one transaction,
/// an index, aggregate queries.
#[test]
fn sqlite3() {
    let Some(sqlite) = installed("sqlite3") else {
        return;
    };
    let dir = scratch_dir("sqlite3");
    let sql = "
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t SELECT x, x % 97, printf('name-%06d', x) FROM c;
COMMIT;
CREATE INDEX t_grp ON t(grp, name);
SELECT count(*), sum(id), count(DISTINCT grp), max(name) FROM t;
SELECT grp, count(*) FROM t WHERE grp IN (0, 42, 96) GROUP BY grp ORDER BY grp;
SELECT sum(length(name)) FROM t WHERE grp < 10;
";
    std::fs::write(dir.join("work.sql"), sql).unwrap();
    let out = run(
        preloaded(&sqlite)
            .current_dir(&dir)
            .args(["test.db", ".read work.sql"]),
        Duration::from_secs(60),
    );
    out.assert_success();
    // The answers, computed here.
    let rows = 1..=100_000u64;
    let in_group = |g| rows.clone().filter(|x| x % 97 == g).count();
    let short: usize = rows
        .clone()
        .filter(|x| x % 97 < 10)
        .map(|x| format!("name-{x:06}").len())
        .sum();
    let expected = format!(
        "100000|{}|97|name-100000\n0|{}\n42|{}\n96|{}\n{short}\n",
        rows.clone().sum::<u64>(),
        in_group(0),
        in_group(42),
        in_group(96)
    );
    assert_eq!(out.stdout, expected, "{out}");
    out.assert_report(100_000);
}

/// redis-server on 127.0.0.1, driven by redis-benchmark (also preloaded)
/// with SET, GET, LPUSH and LPOP; then `SHUTDOWN NOSAVE`, so the server
/// exits and prints its report.
#[test]
fn redis() {
    let (Some(server), Some(bench)) = (installed("redis-server"), installed("redis-benchmark"))
    else {
        return;
    };
    let dir = scratch_dir("redis");
    let port = free_port().to_string();
    let mut cmd = preloaded(&server);
    cmd.current_dir(&dir).args([
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        "",
    ]);
    let running = Running::start(&mut cmd);
    let addr = (Ipv4Addr::LOCALHOST, port.parse::<u16>().unwrap());
    let ready = Instant::now();
    while ask(addr, "PING").as_deref() != Some("+PONG") {
        assert!(
            ready.elapsed() < Duration::from_secs(20),
            "redis-server did not start\n{}",
            running.finish(Duration::ZERO)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = run(
        preloaded(&bench).args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-n",
            "20000",
            "-q",
            "-t",
            "set,get,lpush,lpop",
        ]),
        Duration::from_secs(120),
    );
    out.assert_success();
    for test in ["SET", "GET", "LPUSH", "LPOP"] {
        let done = out
            .stdout
            .split(['\r', '\n'])
            .any(|l| l.starts_with(&format!("{test}: ")) && l.contains(" requests per second"));
        assert!(done, "no result for {test}\n{out}");
    }
    out.assert_report(1_000);
    let _ = ask(addr, "SHUTDOWN NOSAVE");
    let server = running.finish(Duration::from_secs(30));
    server.assert_success().assert_stdout_has("ready to exit");
    server.assert_report(100_000);
}

/// A port on 127.0.0.1 that is free now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends one inline command to redis; its one-line answer, or None if the
/// server is not (or no longer) there.
fn ask(addr: (Ipv4Addr, u16), command: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("{command}\r\n").as_bytes()).ok()?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).ok()?;
    let answer = String::from_utf8_lossy(&buf[..n]);
    Some(answer.lines().next().unwrap_or("").to_string())
}
