-- The `sqlite3` workload of `spanalloc-bench suite --c-side`, run as
--   sqlite3 -batch -bail DB ".parameter set :rows N" ".read sqlite3.sql"
-- on a fresh database file in a temporary folder. SQLite takes its page
-- cache, its sorters, its statements and every value it builds from malloc.
-- The output is the same under every allocator (the suite checks it).

PRAGMA synchronous = OFF;      -- the allocator is measured, not the disk
PRAGMA cache_size = -65536;    -- a page cache of up to 64 MiB, sorts in memory
-- (No `PRAGMA temp_store`: changing it drops the temp schema, and with it
-- the :rows parameter.)

CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    grp INTEGER NOT NULL,
    note TEXT NOT NULL
);

-- N rows in one transaction.
BEGIN;
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :rows)
INSERT INTO items (id, name, grp, note)
SELECT i,
       printf('name-%08d', (i * 7919) % :rows),
       i % 97,
       printf('%.*c', 16 + (i * 31) % 240, 'x') || i
FROM seq;
COMMIT;

CREATE INDEX items_name ON items (name);
CREATE INDEX items_grp ON items (grp, name);

-- Queries: aggregates, a grouped scan, an index range, a sort of every row.
SELECT count(*), sum(length(note)) FROM items;
SELECT grp, count(*), min(name), max(name) FROM items GROUP BY grp ORDER BY grp LIMIT 3;
SELECT count(*) FROM items WHERE name BETWEEN 'name-00001000' AND 'name-00005000';
SELECT id, name FROM items ORDER BY length(note) DESC, note, id LIMIT 3;
SELECT count(DISTINCT substr(note, -3)) FROM items;

-- Updates that grow rows, then a delete of about half the rows.
BEGIN;
UPDATE items SET note = note || note WHERE id % 3 = 0;
DELETE FROM items WHERE grp < 48;
COMMIT;
SELECT count(*), total(length(note)) FROM items;

DROP TABLE items;
