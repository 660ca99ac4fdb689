-- Provinces, districts and communes; hubs placed in a commune; officers
-- scoped to an area; publications addressed to areas; feedback's current
-- state kept beside its records so the dashboard counts with group by.
--
-- Area codes nest: a province is 2 digits, its districts 4 digits that
-- start with the province's, their communes 6 digits that start with the
-- district's (the codes of the national gazetteer).
create table areas (
    code text primary key,
    level text not null check (level in ('province', 'district', 'commune')),
    parent_code text references areas (code),
    name_km text not null,
    name_en text not null
);
create index areas_parent on areas (parent_code, code);
create index areas_level on areas (level, code);
alter table hubs add column province_code text;
alter table hubs add column district_code text;
alter table hubs add column commune_code text references areas (code);
create index hubs_province on hubs (province_code, name);
create index hubs_district on hubs (district_code, name);
create index hubs_commune on hubs (commune_code);
create index records_hub on records (hub_id, kind, created_at);
create table officer_scopes (
    user_id text primary key references users (id),
    area_code text not null references areas (code)
);
create table publication_targets (
    publication_id text not null references publications (id),
    area_code text,
    hub_id text
);
create index publication_targets_pub on publication_targets (publication_id);
create index publication_targets_hub on publication_targets (hub_id);
create table feedback_state (
    id text primary key,
    hub_id text not null references hubs (id),
    category text not null,
    status text not null,
    status_at text not null,
    created_at text not null
);
create index feedback_state_hub on feedback_state (hub_id, created_at);
create index feedback_state_created on feedback_state (created_at);
alter table publications add column areas text;
alter table publications add column scope text;
