"""Worker processes for `SESSION_ISOLATION=process`: a prewarmed pool (`pool`), the worker
program (`worker`, run as `python -m app.workers.worker`), the messages between the two
(`protocol`) and the session manager's seam, a bot runner that runs each session in a worker
(`runner`). docs/isolation.md says what each mode guarantees."""
