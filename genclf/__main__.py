import sys

from genclf.cli import main

sys.exit(main())
