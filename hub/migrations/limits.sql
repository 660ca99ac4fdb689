-- Per-address request counts for the villagers' side (receipt lookups, submissions), shared by
-- every web worker. One row per scope, address and fixed window; old windows are deleted as new
-- ones start.
        create table rate_limits (
            scope text not null,
            client text not null,
            window_start integer not null,
            hits integer not null default 0,
            primary key (scope, client, window_start)
        ) without rowid;
