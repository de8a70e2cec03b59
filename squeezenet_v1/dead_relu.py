"""The notebook's most likely first failure: a final ReLU that outputs zero for every image.

The notebook applies ReLU to final_conv, whose outputs are the logits. Once all of them are zero
for every image, softmax is uniform, the loss is exactly ln(classes) and no gradient reaches any
weight: the run never learns. Training warns at its log steps; summarize flags such a run.
"""

import math

# |loss - ln(classes)| below this: all-zero logits (float32 puts the mean loss within 1e-6).
TOLERANCE = 1e-4


def is_dead_relu_loss(loss, num_classes):
    """Whether `loss` is the loss of all-zero logits over `num_classes` classes."""
    return num_classes > 1 and abs(loss - math.log(num_classes)) < TOLERANCE
