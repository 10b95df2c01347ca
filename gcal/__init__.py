"""The Google Calendar domain core: settings, errors, notifications, OAuth, accounts and their
tokens, the Calendar client, event models, rate limits; :mod:`gcal.services` builds them.

This package knows nothing of arq or of aiohttp's web server; `worker/` and `auth_web/`
wire it into processes.
"""
