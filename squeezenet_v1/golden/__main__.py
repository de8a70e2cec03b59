"""`python -m squeezenet_v1.golden record|check DIR`: see records.py and cli.py."""

import sys

from squeezenet_v1.golden import cli

if __name__ == '__main__':
    sys.exit(cli.main())
