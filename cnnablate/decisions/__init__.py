"""decisions: see docs/extending.md for what lives here."""
