"""Stage 1, the spec: the YAML a user writes, parsed into typed, validated objects (`parse`)."""
