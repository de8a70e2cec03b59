"""`python -m squeezenet_v1.golden record|check DIR`: see records.py."""

import sys

from squeezenet_v1.golden import records

if __name__ == '__main__':
    sys.exit(records.main())
