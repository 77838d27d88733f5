"""The stream worker, one module per stage in flow order: ingest → establishments → registry
→ views, wired by app; beside them what the stages rest on (config, bundles, deadletter,
table_store, faust_patch, faust_replay, offset_guard, local_state, log_limits)."""
