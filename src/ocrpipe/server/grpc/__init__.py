"""The gRPC ingestion transport: the ``ocrpipe.v1.Ingest`` service and its metrics interceptor."""
