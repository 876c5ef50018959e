-- events.document_id is no longer a foreign key (issue 7).
--
-- The reference check of every event insert locked the document's row FOR
-- KEY SHARE: a heap lock written to the WAL, a page of documents dirtied
-- (and a multixact when two transactions touched the same document) for
-- each of the five or six events of a document's life, plus a probe of
-- documents_pkey per event. Events are append-only and written only by the
-- ledger, always for a document it has just inserted or read in the same
-- transaction (the accept transaction inserts the document; every later
-- event names the document of a delivery row, whose own foreign key still
-- holds, or of a document the flow has looked up). What the constraint
-- would still catch is a document deleted under its events; that is ruled
-- out instead by refusing DELETE and TRUNCATE on documents altogether:
-- retention empties a document's bytes (routing/evidence/retention.go) and
-- keeps the row, because the evidence log keeps proving its events. The
-- statement-level trigger costs nothing on insert or update.
--
-- events_document (document_id, id) stays: it serves every per-document
-- read of the history.
DO $$
DECLARE
    c name;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
        WHERE conrelid = 'events'::regclass AND contype = 'f' AND confrelid = 'documents'::regclass LOOP
        EXECUTE format('ALTER TABLE events DROP CONSTRAINT %I', c);
    END LOOP;
END $$;

CREATE FUNCTION documents_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'documents are never deleted (their events refer to them); retention empties the bytes instead'
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER documents_no_delete BEFORE DELETE OR TRUNCATE ON documents
    FOR EACH STATEMENT EXECUTE FUNCTION documents_kept();

-- events_at, the auditor's search by time range (migration 0007), becomes a
-- BRIN index. Events are appended in id order with the time of the
-- transaction that wrote them, so their times follow the heap order and a
-- block range summary (min and max of at per 128 pages) finds a range as
-- well as a B-tree would, at one small summary instead of one B-tree entry
-- (a WAL record, a leaf page dirtied) per event. autosummarize summarizes
-- each range once it is full; until then the newest pages are always read.
CREATE INDEX events_at_brin ON events USING brin (at) WITH (autosummarize = on);
DROP INDEX events_at;
ALTER INDEX events_at_brin RENAME TO events_at;
