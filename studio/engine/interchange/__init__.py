"""Metadata other tools read and write: A1111 `parameters`, XMP curation, and images made elsewhere.

`a1111` formats and parses A1111's infotext, `xmp` writes and reads ratings, pick/reject, tags and
collections through libexiv2 (the `exiv2` package), `foreign` reads what other tools put in a file
(bounded), and `importer` brings those files into the gallery.
"""
