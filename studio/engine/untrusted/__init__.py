"""The one reader for each kind of structured input that comes from outside Studio's control.

- `values`: bounded JSON (size, nesting, member count, string length, 64-bit integers, finite
  floats) and typed access to its fields; the base of every reader below.
- `png`: the `studio` metadata chunk of a gallery PNG (reproduce, `gallery check --repair`, the
  UI's drop-to-restore), with text chunks measured before Pillow reads them.
- `model_files`: a model folder's config.json and the header and `__metadata__` of its
  checkpoint.safetensors, with the header and the declared tensor sizes checked against the file.
- `manifest`: the manifest.json of an ONNX export.

Every reader returns checked values or raises a StudioError whose message is one line, quoting
untrusted text only through `values.shown` (escaped, shortened). Nothing here imports torch,
SQLAlchemy or onnxruntime: the ONNX runtime reads manifests through it. This package module
imports nothing, so a caller pays only for the reader it uses.
"""
