-- An insert returns once its part is on disk. By default ClickHouse returns with the part in
-- the page cache (fsync_after_insert = 0): an OS crash or a power cut within the kernel's
-- writeback delay (ext4: 5-30 s) loses the newest parts, although Relay was told they were
-- stored and the conversion's run went on (and its sends) on that basis. With these settings
-- each insert fsyncs every file of its part and the directories it is renamed into (15-16
-- fdatasync calls a part, strace), and a merge fsyncs the part it writes before chdb deletes
-- the merged ones (chdb keeps no old parts: old_parts_lifetime = 0). Measured in chdb
-- (bench/chdb_fsync.py, 2 cores, fsync 0.5 ms): +1.4 to +3.7 ms p50 an insert whether it
-- holds 1 row or 50, more on a slower disk or a busy machine; Relay's inserts are
-- group-committed per table (relay/store/batcher.py), so the cost is per batch, not per row.
--
-- Every table Relay writes on an acknowledged path: clicks (the visitor is redirected once the
-- click is stored; a lost click leaves its conversion unattributed), conversions, the attempt
-- logs and delivery states (no history holds their request and response bodies), and the
-- configuration (written by an admin, rarely). Set on the tables, so a ClickHouse server
-- gets it too: the same DDL serves `relay up` and the distributed mode, and a single server
-- loses unsynced parts on a host crash as chdb does. A replicated deployment that relies on
-- its replicas (insert_quorum) instead may `ALTER TABLE ... RESET SETTING fsync_after_insert,
-- fsync_part_directory, min_rows_to_fsync_after_merge`.
ALTER TABLE clicks MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1;
ALTER TABLE conversions MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1;
ALTER TABLE pixel_fires MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1;
ALTER TABLE postback_attempts MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1;
ALTER TABLE delivery_states MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1;
ALTER TABLE networks MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1;
ALTER TABLE campaigns MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1;
ALTER TABLE pixels MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1;
ALTER TABLE custom_conversions MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1;
ALTER TABLE outbound_postbacks MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1;
ALTER TABLE workspace_settings MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_rows_to_fsync_after_merge = 1;
