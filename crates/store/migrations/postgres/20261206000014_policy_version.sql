-- A policy's version, raised by every change: a replica checks a creation against the policy it
-- holds in memory, and the creation's insert writes the token only while that version is still
-- the stored one (an organization without a row is version 0), so that a change made on any
-- replica holds for every creation whose insert starts after its commit, without a read per
-- creation.
alter table org_policies add column version bigint not null default 1;
