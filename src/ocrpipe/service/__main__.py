import sys

from ocrpipe.service.cli import main

sys.exit(main())
