import sys

from vmc_duel.cli import main

sys.exit(main())
