"""The PySide6 user interface. Everything Qt lives below here."""
