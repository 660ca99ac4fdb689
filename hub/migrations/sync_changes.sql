-- Sync's change log: the rows of the sent tables written since sync last scanned them
-- (hub/sync/outbox.py). Triggers add a line inside the writer's own transaction,
-- whoever writes (the portal, the console, the transcriber, the announcer, a script), so
-- a scan reads what changed since the last one, through the index, instead of every
-- row of every table; it deletes the lines it has turned into records.
        create table sync_changes (
            seq integer primary key autoincrement,
            source text not null,
            source_id text not null
        );
        create index sync_changes_source on sync_changes (source, seq);
        create trigger feedback_sync_insert after insert on feedback begin
            insert into sync_changes (source, source_id) values ('feedback', new.id);
        end;
        create trigger feedback_sync_update after update on feedback begin
            insert into sync_changes (source, source_id) values ('feedback', new.id);
        end;
        -- A transcript leaves only once its feedback's sender agreed to share it.
        create trigger feedback_consent_sync_update after update of consent_share on feedback
        when new.consent_share is not old.consent_share begin
            insert into sync_changes (source, source_id)
                select 'transcripts', id from transcripts where feedback_id = new.id;
        end;
        create trigger transcripts_sync_insert after insert on transcripts begin
            insert into sync_changes (source, source_id) values ('transcripts', new.id);
        end;
        create trigger transcripts_sync_update after update on transcripts begin
            insert into sync_changes (source, source_id) values ('transcripts', new.id);
        end;
        create trigger play_log_sync_insert after insert on play_log begin
            insert into sync_changes (source, source_id) values ('play_log', new.id);
        end;
        create trigger play_log_sync_update after update on play_log begin
            insert into sync_changes (source, source_id) values ('play_log', new.id);
        end;
        -- Rows written before this migration: every one is looked at once by the next scan,
        -- which makes records only of those whose content it has not sent yet.
        insert into sync_changes (source, source_id)
            select 'feedback', id from feedback order by created_at;
        insert into sync_changes (source, source_id)
            select 'transcripts', id from transcripts order by created_at;
        insert into sync_changes (source, source_id)
            select 'play_log', id from play_log order by created_at;
