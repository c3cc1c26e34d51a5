"""Forensics: request reconstruction, lineage, and the tamper-evident audit trail."""
