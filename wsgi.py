"""WSGI entry point: ``gunicorn -k gevent -w 1 wsgi:app`` (Procfile) or ``flask --app wsgi ...``.

Imported by the gevent worker after it patched the standard library: keep imports of the app
(and of psycopg, redis, web3) out of anything gunicorn loads earlier (gunicorn.conf.py).
"""

from portal import create_app

app = create_app()
