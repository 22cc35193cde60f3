"""The wire protocol shared by the gRPC server and the upload client (package ``ocrpipe.v1``): protobuf
messages and stubs generated from ``proto/ocrpipe/v1/ingest.proto`` by ``proto/generate.sh`` (committed, so a
plain install needs no grpcio-tools)."""
