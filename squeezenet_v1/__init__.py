"""squeezenet_v1: the TF1 SqueezeNet CIFAR-10 notebook, on current TensorFlow in graph mode."""

from squeezenet_v1.model import SqueezeNetModel

__version__ = '0.1.0'

__all__ = ['SqueezeNetModel']
