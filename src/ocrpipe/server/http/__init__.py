"""The REST transport: routes, request schemas, the key check dependency and the web page."""
