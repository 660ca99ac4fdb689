-- How many feedback items no clerk has opened yet, per category: the counts every console
-- page shows (hub.feedback.unread_counts). Triggers keep them inside the transaction of
-- the write itself, whoever writes, so the console reads one row per category however
-- many items wait, instead of counting them (make bench: "how cost grows").
        create table feedback_unread (
            category text primary key,
            n integer not null
        );
        insert into feedback_unread (category, n)
            select category, count(*) from feedback where seen_at is null group by category;
        create trigger feedback_unread_insert after insert on feedback when new.seen_at is null begin
            insert into feedback_unread (category, n) values (new.category, 1)
                on conflict (category) do update set n = n + 1;
        end;
        create trigger feedback_unread_update after update of seen_at, category on feedback
        when old.seen_at is null or new.seen_at is null begin
            update feedback_unread set n = n - 1 where category = old.category and old.seen_at is null;
            insert into feedback_unread (category, n) select new.category, 1 where new.seen_at is null
                on conflict (category) do update set n = n + 1;
        end;
        create trigger feedback_unread_delete after delete on feedback when old.seen_at is null begin
            update feedback_unread set n = n - 1 where category = old.category;
        end;
