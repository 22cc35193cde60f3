import sys

from ocrpipe.cli import main

sys.exit(main())
