import sys

from classroom_dashboard.cli import main

sys.exit(main())
