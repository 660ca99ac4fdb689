-- Transcripts and the clerk's replacements for kiosk prompts.
        create table transcripts (
            id text primary key,
            hub_id text not null,
            created_at text not null,
            updated_at text not null,
            media_id text not null unique references media (id),
            feedback_id text references feedback (id),
            source text not null default '',
            lang text not null,
            state text not null default 'pending'
                check (state in ('pending', 'no_model', 'done', 'failed')),
            attempts integer not null default 0,
            engine text not null default '',
            model text not null default '',
            text text not null default '',
            words text not null default '[]',
            confidence real,
            error text not null default '',
            audio_seconds real,
            processing_seconds real,
            transcribed_at text,
            corrected_text text,
            verified integer not null default 0,
            verified_by text,
            verified_at text
        );
        create index transcripts_queue on transcripts (state, created_at);
        create index transcripts_feedback on transcripts (feedback_id);
        create table voice_prompts (
            key text primary key,
            hub_id text not null,
            media_id text not null references media (id),
            updated_at text not null,
            updated_by text not null default ''
        );
