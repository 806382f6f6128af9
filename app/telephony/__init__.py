"""Phone calls: each provider's webhook, its signature, its markup, the call's media stream and
its hang-up (docs/telephony.md). Nothing here imports an HTTP framework: the routes in
`app/routes/telephony.py` parse, call these, and shape the answers."""
