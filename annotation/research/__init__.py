"""The research write API: campaigns set up from code (create, update, uploads, comparisons, annotators, status).

`api` holds one APIView per operation, `access` who may write, `services` the writes (the admin's forms and the
campaign_setup and importer services underneath), `idempotency` the answers kept for `Idempotency-Key` retries.
"""
