"""Generator families, one package each: `<name>/declaration.py` (what it is and promises, torch-free),
`<name>/pipeline.py` (its numpy procedures, shared by both backends), `<name>/model.py` (its torch networks,
training step and export description). `registry.py` holds the one list of families."""
