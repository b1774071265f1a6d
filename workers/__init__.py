"""Background workers: Dramatiq middleware, actors by domain, and how they are run.

The production entry point is ``workers.main`` (``dramatiq workers.main``).
"""
