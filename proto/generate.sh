#!/bin/sh
# Regenerate src/ocrpipe/protocol/ingest_pb2*.py from proto/ocrpipe/v1/ingest.proto (needs grpcio-tools, a dev
# dependency). The generated files are committed so that installing ocrpipe needs only grpcio + protobuf.
set -e
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
python -m grpc_tools.protoc -Iproto --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" \
    proto/ocrpipe/v1/ingest.proto
for f in ingest_pb2.py ingest_pb2.pyi ingest_pb2_grpc.py; do
    sed 's/^from ocrpipe\.v1 import ingest_pb2/from ocrpipe.protocol import ingest_pb2/' "$tmp/ocrpipe/v1/$f" \
        > "src/ocrpipe/protocol/$f"
done
rm -rf "$tmp"
echo "generated src/ocrpipe/protocol/ingest_pb2*.py"
