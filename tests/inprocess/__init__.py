"""In-process tests: the whole app, lifespan included, behind Starlette's `TestClient`, with
settings given explicitly (marker `inprocess`)."""
