"""gunicorn's settings file (the Procfile names it; gunicorn also reads it from here by default).

Command-line flags in the Procfile (workers, threads, bind) still apply; this adds what has
no flag.
"""

from portal.serving import hide_gunicorn_banner

hide_gunicorn_banner()
