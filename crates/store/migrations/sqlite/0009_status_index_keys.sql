-- Status list indices are published through a keyed permutation, as on PostgreSQL (see the
-- migration of the same name there).
create table status_list_index_keys (
    key_set       text primary key,
    index_key     blob check (index_key is null or length(index_key) = 16),
    permuted_from integer not null check (permuted_from >= 0)
) strict;

insert into status_list_index_keys (key_set, permuted_from)
    select key_set, (next_index + 1048575) / 1048576 from status_list_counters;
