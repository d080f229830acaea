"""Stage 4, the store: the only place results live (`results`), on a local path or a URI (`storage`), and the
progress of a sweep read from it alone (`status`)."""
