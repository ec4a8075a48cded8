-- Status list indices are published through a keyed permutation of each list (see
-- `IndexPermutation` in the domain crate): a list does not show which tokens were minted
-- together. The store keeps handing out slots in order; a token's `status.idx` and the bit a list
-- sets are the slot's permuted index. `index_key`: 16 random bytes per key set, written once by
-- the first replica that starts (never changed: every published index depends on it; it tells
-- only what the rows' `created_at` already tell whoever reads this table). `permuted_from`: the
-- first list whose indices are permuted; the lists started before this migration keep their
-- slots as indices, as the tokens naming them say.
create table status_list_index_keys (
    key_set       text primary key,
    index_key     bytea check (index_key is null or length(index_key) = 16),
    permuted_from integer not null check (permuted_from >= 0)
);

insert into status_list_index_keys (key_set, permuted_from)
select 'api', ((case when is_called then last_value + 1 else last_value end) + 1048575) / 1048576
    from status_index_api
union all
select 'public', ((case when is_called then last_value + 1 else last_value end) + 1048575) / 1048576
    from status_index_public
union all
select 'portal-preview',
       ((case when is_called then last_value + 1 else last_value end) + 1048575) / 1048576
    from status_index_portal_preview;
