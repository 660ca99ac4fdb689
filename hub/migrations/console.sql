-- The clerk console: spoken replies, when a clerk first opened an item, and reply templates.
        alter table feedback add column reply_audio_id text references media (id);
        alter table feedback add column seen_at text;
        create table reply_templates (
            id text primary key,
            title text not null,
            body text not null,
            created_at text not null,
            updated_at text not null
        );
