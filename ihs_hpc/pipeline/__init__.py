"""The stages of a run (prep, 1, 2, 3, stats, allocation, report), their planning, provenance and execution."""
