-- The lt.events publisher (routing/relay.Events) tails log_leaves in leaf
-- order: next is the first leaf index whose message the broker has not yet
-- acknowledged. One row, moved forward once per published batch.
CREATE TABLE log_published (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    next       bigint NOT NULL CHECK (next >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Before this migration every event went to lt.events through the outbox.
-- A hub upgraded in place has published (or still holds in its outbox, which
-- the relay drains as before) the events of the leaves already in the log,
-- so the publisher starts after them. Events committed but not yet sequenced
-- have an outbox row and will get a leaf: they are published twice, which
-- consumers, idempotent by event id, already allow.
INSERT INTO log_published (next) SELECT size FROM log_state;
