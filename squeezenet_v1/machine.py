"""What a result ran on: package versions, the CPU (Linux's /proc/cpuinfo, read here only), GPUs."""

import os
import platform
from importlib import metadata

_PACKAGES = ('tensorflow', 'numpy', 'absl-py', 'squeezenet_v1')


def _cpuinfo_value(key):
    """The first `key : value` line's value in /proc/cpuinfo, or None (not Linux)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith(key):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags():
    """The CPU feature flags the kernel reports (Linux); empty elsewhere."""
    return set((_cpuinfo_value('flags') or '').split())


def cpu_model():
    """The CPU's model name, else what the platform says."""
    return _cpuinfo_value('model name') or platform.processor() or platform.machine()


def versions():
    """{package: version} for python and the packages a result depends on."""
    found = {'python': platform.python_version()}
    for package in _PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def hardware():
    """The CPU's model and the flags that decide bf16 speed, and any visible GPUs."""
    import tensorflow as tf  # only here: the other functions serve commands without TensorFlow
    flags = cpu_flags()
    return {'cpu': cpu_model(), 'cpu_count': os.cpu_count(),
            'avx512_bf16': 'avx512_bf16' in flags, 'amx': 'amx_bf16' in flags,
            'gpus': [d.name for d in tf.config.list_physical_devices('GPU')]}
