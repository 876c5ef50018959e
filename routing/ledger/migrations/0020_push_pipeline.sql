-- How many pushes to an organ's endpoint may be on the wire before the first
-- is answered (HTTP/1.1 pipelining on one connection; the endpoint takes and
-- answers them in order). 1: one push at a time, the default, for endpoints
-- not known to take pipelined requests.
ALTER TABLE organs ADD COLUMN push_pipeline smallint NOT NULL DEFAULT 1
    CHECK (push_pipeline BETWEEN 1 AND 64);
