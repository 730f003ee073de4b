"""Transitional: the families moved to `studio.engine.families`; these modules re-export for code being moved."""
