"""Scale-out on a Ray cluster (``pip install 'ocrpipe[ray]'``): the same page path on many machines.

* :mod:`ocrpipe.cluster.serve` — ``ocrpipe serve --ray ADDRESS``: the service's FastAPI app as a Ray Serve
  ingress deployment, a detector deployment running the page path and a recogniser deployment whose
  ``@serve.batch`` pools crops across pages and requests (the in-process batcher's role).
* :mod:`ocrpipe.cluster.data` — ``ocrpipe batch --ray ADDRESS``: Ray Data reads and decodes the files, a
  detector actor pool cuts their line crops and a recogniser actor pool reads them, writing the same per-file
  outputs as the local runner.

Ray is imported only by those two modules, and only this package's CLI hook imports them (lazily), so the
base install never needs Ray. :mod:`ocrpipe.cluster.settings` (the flags) is Ray-free.
"""
