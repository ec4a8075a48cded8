-- Suspension, as on PostgreSQL: a suspended token is refused until it is resumed.
alter table access_tokens add column suspended_at integer;
