-- Announcements, occurrences and the play log.
        create table announcements (
            id text primary key,
            hub_id text not null,
            title text not null default '',
            audio_id text not null references media (id),
            notice_id text references notices (id),
            rrule text,
            repeats integer not null default 1 check (repeats between 1 and 5),
            urgent integer not null default 0,
            active integer not null default 1,
            scheduled_until text not null,
            next_at text,
            created_at text not null,
            updated_at text not null,
            clock_trusted integer not null default 1
        );
        create index announcements_next on announcements (active, next_at);
        create table occurrences (
            id text primary key,
            hub_id text not null,
            announcement_id text not null references announcements (id),
            due_at text not null,
            play_after text not null,
            urgent integer not null default 0,
            play_now integer not null default 0,
            state text not null default 'due'
                check (state in ('due', 'playing', 'played', 'missed', 'failed', 'cancelled')),
            started_at text,
            ended_at text,
            detail text not null default '',
            created_at text not null,
            updated_at text not null,
            unique (announcement_id, due_at)
        );
        create index occurrences_queue on occurrences (state, play_after);
        create table play_log (
            id text primary key,
            hub_id text not null,
            created_at text not null,
            occurrence_id text references occurrences (id),
            announcement_id text references announcements (id),
            title text not null default '',
            due_at text,
            started_at text,
            ended_at text,
            duration_ms integer not null default 0,
            repeats integer not null default 1,
            outcome text not null check (outcome in ('played', 'missed', 'failed')),
            detail text not null default '',
            clock_trusted integer not null default 1
        );
        create index play_log_time on play_log (created_at);
