-- Who suspended, as on PostgreSQL: a suspension by an admin is lifted only by an admin.
alter table access_tokens add column suspended_by_admin integer not null default 0;
-- A token suspended because a token it descends from was: that token's id (null: on its own).
alter table access_tokens add column suspended_with text;
create index access_tokens_suspended_with on access_tokens (org_id, suspended_with)
    where suspended_with is not null;
