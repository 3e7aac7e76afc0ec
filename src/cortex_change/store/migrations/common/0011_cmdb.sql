-- The CMDB (docs/cmdb.md): configuration items and their relationships. `source kind target`
-- reads "source depends_on / runs_on / part_of target": a change to the target reaches the source,
-- so the blast radius walks edges by target (the second index).
CREATE TABLE cis (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    tier INTEGER NOT NULL,
    owner TEXT,
    environment TEXT,
    data TEXT NOT NULL,
    attributes TEXT NOT NULL
);
CREATE INDEX cis_by_type ON cis (type, tier);
CREATE TABLE ci_relations (
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (source, kind, target)
);
CREATE INDEX ci_relations_by_target ON ci_relations (target, source, kind);
