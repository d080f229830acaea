"""Stage 2, the plan: suites loaded into item files (`items`), work units with content keys and costs (`units`,
`costs`), and what the store already answers (`score_cache`) or must redo (`redo`: error rows)."""
