"""The upload client for clinic PCs: ``ocrpipe client watch DIR`` sends every new printout in a folder to
the gRPC ingestion service exactly once and hands each result to a command; ``ocrpipe client send FILE``
sends one.

Modules: :mod:`~ocrpipe.client.watcher` (finding completely written files), :mod:`~ocrpipe.client.spool`
(the durable SQLite queue), :mod:`~ocrpipe.client.connection` (channel, calls, what a status means),
:mod:`~ocrpipe.client.agent` (the watch loop), :mod:`~ocrpipe.client.results` (result JSON and the result
command), :mod:`~ocrpipe.client.send` (one file), :mod:`~ocrpipe.client.backoff`. Nothing is imported
here, so that ``ocrpipe`` commands other than ``client`` do not pay for loading gRPC.
"""
