"""The OAuth 2.0 web flow: consent URLs for calling services and Google's callback."""
