"""The domain of avatune: search spaces, specs, tuners, replay and separability analysis.

No web, no database, no torch: both the service and the workers import it.
"""
