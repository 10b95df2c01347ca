"""The Google Calendar domain core: settings, OAuth, tokens, the Calendar client, models, errors.

This package knows nothing of arq or of aiohttp's web server; `worker/` and `auth_web/`
wire it into processes.
"""
