"""Scheduling: the shared engine view of the service (page workers, dynamic batcher) and the durable job
runners (OCR and template jobs)."""
