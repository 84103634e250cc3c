"""The officers' and auditors' pages under /app/: server-rendered (Jinja2), signed in by a
session cookie, with the tus project's browser client for uploads (built from ``web/``)."""
