//! Rust programs as people write them, with the standard collections and
//! serde_json, where the allocator is one cost among many.
//!
//! - `hashmap`: build a `HashMap<String, Vec<u64>>` of 700,000 keys, look
//!   keys up by freshly formatted strings, update, remove half, drop;
//! - `btreemap`: build a `BTreeMap<u64, String>`, scan ranges, remove half;
//! - `json`: generate a large JSON document as a `serde_json::Value`, write it
//!   out, parse it back into typed records and into a `Value`, and write both
//!   again.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::rng::SplitMix64;
use crate::size::Size;
use crate::Work;

/// The key of user `id`, as a program would format it.
fn user_key(id: u64) -> String {
    format!("user:{id:012x}")
}

/// `hashmap`: 700,000 keys with short vectors, 2.1 million lookups and
/// updates, half the keys removed.
pub fn hashmap(run: Size) -> Work {
    let keys: u64 = run.pick(700_000, 2_000);
    let mut rng = SplitMix64::new(0x4A54);
    let mut map: HashMap<String, Vec<u64>> = HashMap::new();
    for id in 0..keys {
        let values = (0..rng.range_inclusive(1, 8)).map(|k| id * k).collect();
        map.insert(user_key(id), values);
    }
    let mut checksum = 0u64;
    for _ in 0..2 * keys {
        let id = rng.range_inclusive(0, keys * 2);
        if let Some(v) = map.get(&user_key(id)) {
            checksum = checksum.wrapping_add(v.iter().sum::<u64>());
        }
    }
    for _ in 0..keys {
        let id = rng.range_inclusive(0, keys * 2);
        map.entry(user_key(id)).or_default().push(id);
    }
    for id in (0..keys * 2).step_by(2) {
        if let Some(v) = map.remove(&user_key(id)) {
            checksum = checksum.wrapping_add(v.len() as u64);
        }
    }
    checksum = checksum.wrapping_add(map.len() as u64);
    Work::deterministic(6 * keys, checksum)
}

/// `btreemap`: 1.5 million entries with string values, range scans, half
/// removed, the rest rewritten.
pub fn btreemap(run: Size) -> Work {
    let entries: u64 = run.pick(1_500_000, 4_000);
    let mut rng = SplitMix64::new(0xB7EE);
    let mut map: BTreeMap<u64, String> = BTreeMap::new();
    for _ in 0..entries {
        let k = rng.next_u64() >> 16;
        map.insert(k, format!("value-{k}"));
    }
    let mut checksum = 0u64;
    for _ in 0..entries / 20 {
        let from = rng.next_u64() >> 16;
        checksum += map
            .range(from..)
            .take(20)
            .map(|(_, v)| v.len() as u64)
            .sum::<u64>();
    }
    let doomed: Vec<u64> = map.keys().step_by(2).copied().collect();
    for k in doomed {
        map.remove(&k);
    }
    for v in map.values_mut() {
        v.push_str("-updated");
    }
    checksum += map.values().map(|v| v.len() as u64).sum::<u64>();
    Work::deterministic(entries * 2, checksum)
}

/// One record of the `json` document.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    email: String,
    score: f64,
    active: bool,
    tags: Vec<String>,
    friends: Vec<u64>,
    address: Address,
}

/// A nested object of a [`Record`].
#[derive(Debug, Serialize, Deserialize)]
struct Address {
    street: String,
    city: String,
    zip: String,
}

/// The generated document: `records` users as a `Value`.
fn document(records: u64, rng: &mut SplitMix64) -> Value {
    const TAGS: [&str; 6] = ["admin", "beta", "staff", "trial", "legacy", "vip"];
    let users: Vec<Value> = (0..records)
        .map(|id| {
            let tags: Vec<&str> = (0..rng.below(4)).map(|_| TAGS[rng.below(6)]).collect();
            let friends: Vec<u64> = (0..rng.below(12))
                .map(|_| rng.below(1 << 20) as u64)
                .collect();
            json!({
                "id": id,
                "name": format!("User Number {id}"),
                "email": format!("user{id}@example.org"),
                "score": rng.below(100_000) as f64 / 7.0,
                "active": id % 3 != 0,
                "tags": tags,
                "friends": friends,
                "address": {
                    "street": format!("{} Long Street", rng.below(10_000)),
                    "city": format!("City {}", rng.below(500)),
                    "zip": format!("{:05}", rng.below(100_000)),
                }
            })
        })
        .collect();
    json!({ "version": 1, "users": users })
}

/// `json`: a document of 120,000 records (about 30 MB of text) written,
/// parsed twice (typed and untyped) and written again.
pub fn json(run: Size) -> Work {
    let records: u64 = run.pick(120_000, 300);
    let mut rng = SplitMix64::new(0x750E);
    let text = serde_json::to_string(&document(records, &mut rng)).expect("serialise");

    #[derive(Deserialize, Serialize)]
    struct Doc {
        version: u32,
        users: Vec<Record>,
    }
    let mut typed: Doc = serde_json::from_str(&text).expect("typed parse");
    for u in &mut typed.users {
        u.score *= 2.0;
        u.tags.push("seen".to_owned());
    }
    let typed_text = serde_json::to_string(&typed).expect("typed write");
    drop(typed);

    let mut untyped: Value = serde_json::from_str(&text).expect("untyped parse");
    if let Some(users) = untyped["users"].as_array_mut() {
        users.retain(|u| u["active"].as_bool() == Some(true));
    }
    let pretty = serde_json::to_string_pretty(&untyped).expect("pretty write");
    let checksum = (text.len() + typed_text.len() + pretty.len()) as u64;
    Work::deterministic(records, checksum)
}
