"""The headless engine: datasets, models, training, export and inference. No Qt below here."""
