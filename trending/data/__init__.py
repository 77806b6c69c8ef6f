"""Data: the Title record schema, sources, ingest with quarantine, snapshots, lineage, windows."""
