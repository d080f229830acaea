"""Stage 5, the report: leaderboards computed from the store (`compute`, with `stats` and `ensembles`), then written
for people and machines (`html`, `plots`, `export`)."""
