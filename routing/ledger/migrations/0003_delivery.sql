-- Delivery policy per organ (issue 4): retry limits, and the start of the
-- retry window of a delivery, so that an operator's replay opens a new one.

ALTER TABLE organs
    ADD COLUMN max_attempts    integer NOT NULL DEFAULT 12 CHECK (max_attempts BETWEEN 1 AND 1000),
    ADD COLUMN max_age_seconds bigint  NOT NULL DEFAULT 259200 CHECK (max_age_seconds > 0); -- 72 hours

ALTER TABLE deliveries
    ADD COLUMN window_start timestamptz; -- NULL: the document's acceptance time

CREATE INDEX deliveries_dead ON deliveries (recipient, updated_at) WHERE state = 'dead';

-- First attempts in acceptance order: the delivery stage looks for earlier
-- deliveries of a recipient still waiting for their first attempt.
CREATE INDEX deliveries_waiting_seq ON deliveries (recipient, seq) WHERE state IN ('accepted', 'routed');
