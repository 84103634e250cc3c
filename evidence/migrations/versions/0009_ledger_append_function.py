"""ledger append in the server: custody_append() locks the head, appends, moves it (PostgreSQL)

Revision ID: 0009
Revises: 0008

The head lock is then held only while the server works: a committer sends the call and its
COMMIT in one message, so no round trip to the client falls inside the lock (see
evidence.custody.append). The hashing is RFC 9162's, as in audit.merkle: a leaf is
sha256(0x00 || body), a node sha256(0x01 || left || right); the body is the prepared entry's
canonical encoding with the seq's decimal digits spliced in (evidence.custody.prepared).
Verification recomputes every hash in Python (audit), so a difference cannot go unnoticed.
SQLite keeps the Python append: its writer is in process, a round trip costs nothing there.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The border (the roots along the right edge, left to right, as in ledger_head.frontier) is kept
# as three parallel arrays used as a stack: appending leaf n pops one border root for each
# trailing 1 bit of n, each the left sibling of the node being completed, and pushes the result.
# A border that does not match the size (a damaged head) is refused rather than built on.
_APPEND = r"""
CREATE FUNCTION custody_append(
    expected_size bigint, release_early boolean,
    in_heads bytea[], in_tails bytea[], in_ats timestamptz[], in_actions text[], in_actors text[],
    in_subjects json[], in_details json[], in_items text[], in_cases text[]
) RETURNS TABLE (new_size bigint, new_frontier json)
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    border json;
    b_levels integer[];
    b_indexes bigint[];
    b_hashes bytea[];
    seqs bigint[] := '{}';
    bodies bytea[] := '{}';
    leaves bytea[] := '{}';
    n_levels integer[] := '{}';
    n_indexes bigint[] := '{}';
    n_hashes bytea[] := '{}';
    body bytea;
    value bytea;
    lvl integer;
    idx bigint;
    top integer;
BEGIN
    SELECT h.size, h.frontier INTO n, border FROM ledger_head h WHERE h.id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the ledger head is missing: the database has not been migrated'
            USING ERRCODE = 'EL001';
    END IF;
    IF expected_size IS NOT NULL AND n <> expected_size THEN
        RAISE EXCEPTION 'the ledger head was not at % under its lock (at %); nothing was appended',
            expected_size, n USING ERRCODE = 'EL001';
    END IF;
    IF release_early THEN
        -- This transaction's COMMIT frees the head without waiting for the WAL flush; the
        -- committer waits for the flush after it (evidence.custody.append).
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    IF coalesce(cardinality(in_heads), 0) = 0 THEN
        RETURN QUERY SELECT n, border;
        RETURN;
    END IF;
    SELECT coalesce(array_agg((e ->> 0)::integer ORDER BY o), '{}'),
           coalesce(array_agg((e ->> 1)::bigint ORDER BY o), '{}'),
           coalesce(array_agg(decode(e ->> 2, 'hex') ORDER BY o), '{}')
      INTO b_levels, b_indexes, b_hashes
      FROM json_array_elements(border) WITH ORDINALITY AS t(e, o);
    FOR k IN 1 .. cardinality(in_heads) LOOP
        body := in_heads[k] || convert_to(n::text, 'UTF8') || in_tails[k];
        value := sha256('\x00'::bytea || body);
        seqs := seqs || n;
        bodies := bodies || body;
        leaves := leaves || value;
        lvl := 0;
        idx := n;
        n_levels := n_levels || lvl;
        n_indexes := n_indexes || idx;
        n_hashes := n_hashes || value;
        WHILE idx % 2 = 1 LOOP
            top := coalesce(cardinality(b_hashes), 0);
            IF top = 0 OR b_levels[top] <> lvl OR b_indexes[top] <> idx - 1 THEN
                RAISE EXCEPTION 'the ledger head''s border does not match its size %', n USING ERRCODE = 'EL002';
            END IF;
            value := sha256('\x01'::bytea || b_hashes[top] || value);
            b_levels := b_levels[1:top - 1];
            b_indexes := b_indexes[1:top - 1];
            b_hashes := b_hashes[1:top - 1];
            lvl := lvl + 1;
            idx := idx / 2;
            n_levels := n_levels || lvl;
            n_indexes := n_indexes || idx;
            n_hashes := n_hashes || value;
        END LOOP;
        b_levels := b_levels || lvl;
        b_indexes := b_indexes || idx;
        b_hashes := b_hashes || value;
        n := n + 1;
    END LOOP;
    INSERT INTO custody_events (seq, at, action, actor, subject, details, item_id, case_ref, body, leaf_hash)
        SELECT * FROM unnest(seqs, in_ats, in_actions, in_actors, in_subjects, in_details, in_items, in_cases,
                             bodies, leaves);
    INSERT INTO ledger_nodes (level, idx, hash) SELECT * FROM unnest(n_levels, n_indexes, n_hashes);
    SELECT json_agg(json_build_array(l, i, encode(h, 'hex')) ORDER BY o) INTO border
      FROM unnest(b_levels, b_indexes, b_hashes) WITH ORDINALITY AS b(l, i, h, o);
    UPDATE ledger_head SET size = n, frontier = border WHERE id = 1;
    RETURN QUERY SELECT n, border;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_APPEND)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION custody_append(bigint, boolean, bytea[], bytea[], timestamptz[], text[], text[],"
            " json[], json[], text[], text[])"
        )
