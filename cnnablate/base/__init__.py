"""base: the ground floor every stage stands on, importing no stage.

The registries (catalog), the folder layout, atomic writes, user errors, the seed schedule of
adaptive studies (rounds), a run's identity and config hash (ids), which Keras backend a run
trains with (backends) and modules imported on first use (lazy). Plain Python: planning, jobs
and reporting all import it.
"""
