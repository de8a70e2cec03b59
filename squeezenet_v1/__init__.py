"""squeezenet_v1: the TF1 SqueezeNet CIFAR-10 notebook, on current TensorFlow in graph mode."""

import os

__version__ = '0.1.0'

# A level the user set is kept. Else TensorFlow's C++ INFO lines are hidden, as they would bury
# every command's output; and on a machine without an NVIDIA driver its errors too, as the
# `tensorflow` wheel then logs "failed call to cuInit" at error level at every start, a line
# a newcomer reads as a failure (tensorflow/tensorflow#37689), and only level 3 hides it. Our
# commands report every error TensorFlow raises themselves, in one line.
# tensorflow_logs.load_tensorflow(show_all=True) lowers a level set here, never the user's.
TF_LOG_LEVEL_IS_OURS = 'TF_CPP_MIN_LOG_LEVEL' not in os.environ
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL',
                      '1' if os.path.exists('/proc/driver/nvidia/version') else '3')

__all__ = ['SqueezeNetModel']


def __getattr__(name):
    # Loaded on first use, so the commands that need no TensorFlow (summarize) start at once.
    if name == 'SqueezeNetModel':
        from squeezenet_v1.model import SqueezeNetModel
        return SqueezeNetModel
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
