"""Whether a batch size fits this machine's memory, asked before a graph is built."""

import os
import resource

from squeezenet_v1.errors import UserError

# Peak resident memory (ru_maxrss) per image of a batch, TensorFlow 2.21 on a CPU: training
# grew by 0.87 MB an image from batch 2,048 to 4,096 (every activation is kept for the backward
# pass); evaluating 1,000 images in one batch took 0.26 MB an image above the process's start.
TRAINING_BYTES_PER_IMAGE = 0.9e6
EVAL_BYTES_PER_IMAGE = 0.3e6
# TensorFlow, the graph and the input pipeline before the first batch (about 1 GB measured).
_BASE_BYTES = 1.0e9
# Leave room for TensorFlow itself, the input pipeline and the rest of the machine.
_USABLE_FRACTION = 0.8


class BatchTooLargeError(UserError):
    """A batch would not fit in the memory this process may use."""


def available_bytes():
    """Memory this process may still use: the least of MemAvailable, a cgroup limit and the
    process's own address-space limit (`ulimit -v`, usual on shared and HPC login nodes) less
    what it has mapped already."""
    candidates = _rlimit_room()
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    candidates.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for path in ('/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'):
        try:
            with open(path) as f:
                limit = f.read().strip()
            if limit.isdigit():
                candidates.append(int(limit))
        except OSError:
            pass
    if not candidates and hasattr(os, 'sysconf'):
        candidates.append(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_AVPHYS_PAGES'))
    return min(candidates) if candidates else None


def _rlimit_room():
    room = []
    # RLIMIT_AS bounds the whole address space (VmSize); RLIMIT_DATA, since Linux 4.7, the
    # private writable memory (VmData), not the shared libraries TensorFlow maps.
    for limit, field in ((resource.RLIMIT_AS, 'VmSize'), (resource.RLIMIT_DATA, 'VmData')):
        soft, _ = resource.getrlimit(limit)
        if soft != resource.RLIM_INFINITY:
            room.append(max(0, soft - _mapped_bytes(field)))
    return room


def _mapped_bytes(field='VmSize'):
    """A size of this process's memory from /proc/self/status (VmSize, VmData)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def check_batch_fits(batch_size, training, flag='--batch_size'):
    """Raises BatchTooLargeError, with the largest batch that fits, when batch_size does not."""
    available = available_bytes()
    if available is None:
        return
    per_image = TRAINING_BYTES_PER_IMAGE if training else EVAL_BYTES_PER_IMAGE
    needed = _BASE_BYTES + batch_size * per_image
    usable = available * _USABLE_FRACTION
    if needed > usable:
        raise BatchTooLargeError(
            '%s=%d needs about %.1f GB (%.2f MB per image when %s) but about %.1f GB of memory '
            'is available here; the largest that fits is about %d. Use a smaller %s.'
            % (flag, batch_size, needed / 1e9, per_image / 1e6,
               'training' if training else 'evaluating', available / 1e9,
               max(1, int((usable - _BASE_BYTES) // per_image)), flag))
