"""The golden record: the SqueezeNet graphs and numbers of one TensorFlow, kept to check others.

The command's exit statuses and report format live here, beside no TensorFlow import, so that
`squeezenet-golden --help` and its usage errors answer at once.
"""

REPORT_FORMAT = 'squeezenet_v1-golden-report/1'  # what check --json writes, and alone replaces
EXIT_HOLDS, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2
