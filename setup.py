"""squeezenet_v1: the TF1 SqueezeNet CIFAR-10 notebook on current TensorFlow, in graph mode."""

import re

from setuptools import find_packages, setup

with open('squeezenet_v1/__init__.py') as f:
    VERSION = re.search(r"__version__ = '([^']+)'", f.read()).group(1)

setup(
    name='squeezenet_v1',
    version=VERSION,
    description='The SqueezeNet CIFAR-10 notebook of TF1, reproduced under tf.compat.v1.',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['squeezenet_v1', 'squeezenet_v1.*']),
    py_modules=['run_train'],
    # TensorFlow 2.16 supports Python 3.9-3.12; the newest, 2.21, needs 3.10 or later (pip picks
    # the newest TensorFlow the running Python supports).
    python_requires='>=3.9',
    install_requires=[
        'tensorflow>=2.16',
        'numpy',
        'absl-py',
        # TensorFlow 2.21 no longer installs it; the README's `tensorboard --logdir` needs it.
        'tensorboard',
    ],
    # Each also runs as `python -m <module>` (run_train.py as a script), as the README shows.
    entry_points={
        'console_scripts': [
            'squeezenet-train = run_train:console_main',
            'squeezenet-summarize = squeezenet_v1.evaluation.summarize:main',
            'squeezenet-golden = squeezenet_v1.golden.cli:main',
            'squeezenet-local-cluster = squeezenet_v1.cluster.local_cluster:main',
            'squeezenet-synthetic = squeezenet_v1.data.synthetic:main',
            'squeezenet-parameters = squeezenet_v1.parameters:main',
            'squeezenet-checkpoint = squeezenet_v1.model_dir.checkpoint_tool:main',
        ],
    },
    extras_require={
        # tf-keras is only for the fidelity test, which runs the notebook on the real
        # tf.compat.v1.layers. Each tf-keras release pins its TensorFlow minor version, so pip
        # picks the tf-keras that matches the installed TensorFlow.
        'test': ['pytest', 'pytest-xdist', 'hypothesis', 'tf-keras>=2.16'],
        # model.onnx (export) and onnxruntime (eval, predict and the equality test read it).
        # tf2onnx 1.16 would take protobuf back to 3.20; from 1.17 the extra resolves beside the
        # base install without changing its TensorFlow, protobuf or numpy.
        'onnx': ['tf2onnx>=1.17', 'onnx', 'onnxruntime'],
    },
)
