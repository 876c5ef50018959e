-- Admin actions (directory loads, trust changes, replays, retention purges)
-- are events too, so that the evidence log covers them; they concern no
-- document, hence a nullable document_id. Kind 'admin', state = the action.
ALTER TABLE events ALTER COLUMN document_id DROP NOT NULL;
ALTER TABLE events ADD CONSTRAINT events_document_or_admin CHECK (document_id IS NOT NULL OR kind = 'admin');
CREATE INDEX events_admin ON events (id) WHERE document_id IS NULL;
-- The auditor searches events by time range.
CREATE INDEX events_at ON events (at);
