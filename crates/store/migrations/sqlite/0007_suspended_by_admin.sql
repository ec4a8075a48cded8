-- Who suspended, as on PostgreSQL: a suspension by an admin is lifted only by an admin.
alter table access_tokens add column suspended_by_admin integer not null default 0;
