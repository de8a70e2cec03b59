"""`model.onnx`: the frozen inference graph converted by tf2onnx, for onnxruntime.

An optional extra (`pip install -e ".[onnx]"`: tf2onnx 1.17 or later, onnx, onnxruntime); they
resolve beside the base install without changing its TensorFlow, protobuf or numpy (tf2onnx
1.16 would take protobuf back to 3.20, hence the floor). Without them export skips the file
and says so.
"""

import contextlib
import logging as python_logging

# tf2onnx's preferred opset in 1.17; onnxruntime 1.16 and later run it. Stated, not left to the
# converter's default, so an export names the opset it wrote.
OPSET = 15
INSTALL_HINT = 'pip install -e ".[onnx]" (tf2onnx, onnx, onnxruntime)'


def missing_packages():
    """Why model.onnx cannot be written here, or None when it can."""
    missing = []
    for module in ('tf2onnx', 'onnx', 'onnxruntime'):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        return '%s not installed: %s' % (', '.join(missing), INSTALL_HINT)
    return None


def write_onnx(frozen_graph_def, path):
    """Converts the frozen graph (uint8 images -> probabilities, classes) into path."""
    import tf2onnx
    with _quiet('tf2onnx'):
        tf2onnx.convert.from_graph_def(
            frozen_graph_def, input_names=['images:0'],
            output_names=['probabilities:0', 'classes:0'], opset=OPSET, output_path=path)


@contextlib.contextmanager
def _quiet(name):
    """The converter logs each pass at INFO; only its warnings and errors are kept."""
    logger = python_logging.getLogger(name)
    level = logger.level
    logger.setLevel(python_logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
