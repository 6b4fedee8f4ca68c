"""The HTTP API for host applications (`seatflow api`): see docs/api.md.

The package itself imports nothing: every CLI command imports
`seatflow.api.server` to register `seatflow api`, and would otherwise load
FastAPI and every route before parsing its arguments. Import the app from
`seatflow.api.app` and the tokens from `seatflow.api.auth`.
"""
