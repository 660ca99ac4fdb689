-- A version for the data the cached villager pages are made from (hub/web/pagecache.py):
-- the notices and the clock they are dated by. The row keeps the name 'notices'.
-- Triggers bump it inside the transaction of the write itself, whoever writes (the
-- console, sync's pull, a script), so a page rendered from version N is never taken
-- for one of version N+1.
        create table page_versions (
            name text primary key,
            version integer not null
        );
        insert into page_versions (name, version) values ('notices', 1);
        create trigger notices_version_insert after insert on notices begin
            update page_versions set version = version + 1 where name = 'notices';
        end;
        create trigger notices_version_update after update on notices begin
            update page_versions set version = version + 1 where name = 'notices';
        end;
        create trigger notices_version_delete after delete on notices begin
            update page_versions set version = version + 1 where name = 'notices';
        end;
        -- The pages say "today" and "yesterday" by the hub's clock: a correction of it by half a
        -- minute or more, or the first trust after a boot, is a new version too (sync saying
        -- every cycle that the time is still right is not).
        create trigger clock_version_insert after insert on clock_trust begin
            update page_versions set version = version + 1 where name = 'notices';
        end;
        create trigger clock_version_update after update on clock_trust
        when old.boot_id is not new.boot_id
            or abs(coalesce(old.offset_seconds, 0) - coalesce(new.offset_seconds, 0)) >= 30 begin
            update page_versions set version = version + 1 where name = 'notices';
        end;
        -- The home list and the clerk's inbox read a page of rows in the order these
        -- indexes hold, however many there are (make bench: "how cost grows").
        create index notices_front on notices (urgent, pinned, published_at);
        create index feedback_created on feedback (created_at);
        create index feedback_status_created on feedback (status, created_at);
        create index feedback_category_created on feedback (category, created_at);
