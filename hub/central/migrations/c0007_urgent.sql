-- Urgent broadcasts: a publication marked urgent (a loudspeaker announcement that
-- plays at once, through quiet hours, until it expires), and each hub's
-- acknowledgement of it, one row per publication and hub: what its announcer did
-- with it (played, missed or failed) and when.
alter table publications add column urgent integer not null default 0;
alter table publications add column expires_at text;
create index publications_urgent on publications (urgent, seq);
create table publication_acks (
    publication_id text not null references publications (id),
    hub_id text not null references hubs (id),
    outcome text not null check (outcome in ('played', 'missed', 'failed')),
    started_at text,
    ended_at text,
    detail text not null default '',
    received_at text not null,
    primary key (publication_id, hub_id)
);
create index publication_acks_hub on publication_acks (hub_id);
