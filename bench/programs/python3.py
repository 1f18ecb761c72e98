"""The `python3` workload of `spanalloc-bench suite --c-side`.

Run as `python3 python3.py N` with PYTHONMALLOC=malloc, so that every object
Python allocates (its own small-object allocator is bypassed) comes from the
malloc in LD_PRELOAD. It builds and drops big dicts, lists and strings, as a
data-processing script does, and prints one line: a checksum of what it
computed, the same under every allocator.
"""

import json
import sys

MASK = (1 << 64) - 1


def records(n):
    """N records as dicts of strings, ints, floats and small lists."""
    table = {}
    for i in range(n):
        table[f"user:{i:08d}"] = {
            "id": i,
            "name": "x" * (i % 23 + 1) + str(i * 7919 % n),
            "tags": [f"tag{j}" for j in range(i % 7)],
            "score": (i * 37 % 1000) / 8,
        }
    return table


def main(n):
    checksum = 0

    # A dict of records, serialised to one big string and parsed back.
    table = records(n)
    text = json.dumps(table, sort_keys=True)
    checksum += len(text)
    parsed = json.loads(text)
    del text
    checksum += sum(len(r["tags"]) for r in parsed.values())

    # Lists of tuples, sorted; a second index keyed by name.
    ranking = sorted(((r["score"], k) for k, r in parsed.items()), reverse=True)
    checksum += sum(i * len(k) for i, (_, k) in enumerate(ranking[:1000]))
    by_name = {}
    for key, record in parsed.items():
        by_name.setdefault(record["name"][-3:], []).append(key)
    checksum += len(by_name) + max(len(v) for v in by_name.values())
    del ranking

    # Half the records dropped, the rest regrown with bigger values.
    for key in list(parsed)[::2]:
        del parsed[key]
    for i, record in enumerate(parsed.values()):
        record["history"] = [record["score"] + j for j in range(i % 40)]
        record["note"] = "-".join(record["tags"]) * 3
    checksum += sum(len(r["history"]) + len(r["note"]) for r in parsed.values())

    # Strings: words split out of a big text, counted, joined again.
    words = " ".join(r["name"] for r in table.values()).split()
    counts = {}
    for w in words:
        counts[w[:4]] = counts.get(w[:4], 0) + 1
    checksum += len(words) * 31 + sum(counts.values())
    lines = "\n".join(f"{k},{v}" for k, v in sorted(counts.items()))
    checksum += len(lines)

    del table, parsed, by_name, words, counts, lines
    print(checksum & MASK)


if __name__ == "__main__":
    main(int(sys.argv[1]))
