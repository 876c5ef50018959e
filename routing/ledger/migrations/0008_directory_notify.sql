-- Directory changes are announced on channel lt_directory, so that every hub
-- process drops its cached directory entries at once (ledger.WatchDirectory);
-- the cache's TTL bounds staleness when no watcher runs. Organ changes are
-- rare: the notification costs nothing on the document path.
CREATE FUNCTION organs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('lt_directory', '');
    RETURN NULL;
END $$;
CREATE TRIGGER organs_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON organs
    FOR EACH STATEMENT EXECUTE FUNCTION organs_notify();
