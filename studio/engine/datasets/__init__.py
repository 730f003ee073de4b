"""Datasets: import from folders/zips/files, sample datasets, and the on-disk array format.

Kept empty on purpose: decoding worker processes import `decode` alone and must not pay for
SQLAlchemy. Import from the submodules (`importer`, `samples`, `storage`).
"""
