import sys

from classroom_capture.cli import main

sys.exit(main())
