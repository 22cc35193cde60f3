"""``ocrpipe batch``: OCR a folder or a list of files into one Document JSON per input, resumably.

:mod:`ocrpipe.bulk.files` plans the work (which inputs, which outputs, what is already done), writes each
output atomically and builds the summary and the line tables; :mod:`ocrpipe.bulk.local` runs the files in
local processes. The Ray Data runner (``--ray ADDRESS``) lives in :mod:`ocrpipe.cluster.data` and writes the
same files with the same functions.
"""
