"""The portal in the user's language: which locale a request uses, language names, and dates
and numbers written the way that locale writes them (Flask-Babel underneath)."""
