"""HTTP and WebSocket routes. Thin: parse the request, call the session manager, shape the
response."""
