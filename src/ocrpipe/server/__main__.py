import sys

from ocrpipe.server.cli import main

sys.exit(main())
