-- API credentials can be revoked (hubctl principals revoke, POST
-- /v1/admin/principals/{id}/revoke). A revoked credential keeps its row, so
-- the record of who held it, and who revoked it when, stays; it no longer
-- authenticates, and re-adding the same token or certificate fingerprint
-- (ON CONFLICT DO NOTHING) does not bring it back: a new credential is
-- issued instead.
ALTER TABLE principals ADD COLUMN revoked_at timestamptz;
ALTER TABLE principals ADD COLUMN revoked_by text NOT NULL DEFAULT '';

-- A change of principals is announced on lt_directory like a change of
-- organs (migration 0008), so that every hub process drops its cached
-- credentials at once (ledger.WatchDirectory) instead of after DirectoryTTL.
CREATE TRIGGER principals_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON principals
    FOR EACH STATEMENT EXECUTE FUNCTION organs_notify();
