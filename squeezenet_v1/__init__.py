"""squeezenet_v1: the TF1 SqueezeNet CIFAR-10 notebook, on current TensorFlow in graph mode."""

import os

__version__ = '0.1.0'

# TensorFlow's C++ start-up chatter (INFO lines) would bury every command's output; a level the
# user set is kept.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

__all__ = ['SqueezeNetModel']


def __getattr__(name):
    # Loaded on first use, so the commands that need no TensorFlow (summarize) start at once.
    if name == 'SqueezeNetModel':
        from squeezenet_v1.model import SqueezeNetModel
        return SqueezeNetModel
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
