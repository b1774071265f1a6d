"""Helpers shared by the integration and browser tests, the test runner and the benchmarks.

They find (or start) PostgreSQL and Redis, start the portal's web server and worker as
separate processes, and sign in like a browser would. Nothing here imports the portal app, so
a runner can use it before the app's environment is set.
"""
