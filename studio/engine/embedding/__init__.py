"""The contrastive encoder of a dataset (SimCLR) and what its embeddings power: similar items,
near-duplicates, memorisation, quality scores and a map."""
