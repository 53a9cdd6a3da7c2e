"""workflow: see docs/extending.md for what lives here."""
