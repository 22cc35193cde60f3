"""gRPC ingestion (package ``ocrpipe.v1``): protobuf messages and stubs generated from
``proto/ocrpipe/v1/ingest.proto`` by ``proto/generate.sh`` (committed, so a plain install needs no
grpcio-tools), and the field-results table (:mod:`ocrpipe.grpc.models`)."""
