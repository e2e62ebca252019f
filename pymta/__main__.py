import sys

from pymta.cli import main

sys.exit(main())
