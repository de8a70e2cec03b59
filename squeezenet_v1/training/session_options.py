"""Session settings: threads, and the mixed-precision and XLA graph rewrites.

The default is the notebook's graph in float32. `bf16` turns on oneDNN's automatic mixed
precision rewrite (convolutions and matmuls in bfloat16, variables in float32) and needs a CPU
with AVX512-BF16 or AMX; `fp16` turns on the CUDA float16 rewrite, which needs a GPU and comes
with dynamic loss scaling in the optimizer (see `loss_scale_for`).
"""

import os

import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from squeezenet_v1 import machine
from squeezenet_v1.errors import UserError

tf1 = tf.compat.v1

PRECISIONS = ('fp32', 'bf16', 'fp16')
_BF16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')


class UnsupportedPrecisionError(UserError):
    """The machine cannot run the requested precision."""


def check_precision_supported(precision):
    """Raises UnsupportedPrecisionError, saying what is missing, when precision cannot run here."""
    if precision == 'bf16':
        if not set(_BF16_CPU_FLAGS) & machine.cpu_flags():
            raise UnsupportedPrecisionError(
                '--precision=bf16 needs a CPU with AVX512-BF16 or AMX (CPU flags %s); this one '
                'has neither, so bfloat16 would be emulated and slower. Use --precision=fp32.'
                % ' or '.join(_BF16_CPU_FLAGS))
        if os.environ.get('TF_ENABLE_ONEDNN_OPTS', '1') == '0':
            raise UnsupportedPrecisionError(
                '--precision=bf16 uses oneDNN, which TF_ENABLE_ONEDNN_OPTS=0 turns off. Unset it '
                'or use --precision=fp32.')
    elif precision == 'fp16':
        if not tf.config.list_physical_devices('GPU'):
            raise UnsupportedPrecisionError(
                '--precision=fp16 is the CUDA float16 rewrite and needs a GPU; none is visible. '
                'Use --precision=bf16 on a CPU with AVX512-BF16/AMX, or --precision=fp32.')
    elif precision not in PRECISIONS:
        raise ValueError('precision must be one of %s, got %r' % (PRECISIONS, precision))


def loss_scale_for(precision):
    """The optimizer's loss scale: dynamic for float16 (its range is narrow), else none."""
    return 'dynamic' if precision == 'fp16' else None


def session_config(precision='fp32', xla=False):
    """A ConfigProto with the precision rewrite and XLA auto-clustering as asked."""
    config = tf1.ConfigProto(allow_soft_placement=True)
    rewrites = config.graph_options.rewrite_options
    if precision == 'bf16':
        rewrites.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    elif precision == 'fp16':
        rewrites.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
    if xla:
        config.graph_options.optimizer_options.global_jit_level = tf1.OptimizerOptions.ON_1
    return config
