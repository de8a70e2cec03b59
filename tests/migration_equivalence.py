"""TensorFlow's migration guide's training equivalence, step by step, as a script for the suite.

Test-only: needs tf-keras and TF_USE_LEGACY_KERAS=1 (the notebook's class runs on the real
tf.compat.v1.layers, and DeterministicRandomTestTool is tf.compat.v1.keras.utils'). As the
guide does, both builds start from the same weights (the original's initial ones, assigned to
ours) and run under DeterministicRandomTestTool(mode='constant'), which aligns their dropout
masks; then STEPS Adam steps with dropout on, on the same batches:

- `bool`: is_training a Python bool;
- `tensor`: is_training a boolean tensor fed True;
- `resumed`: the original trains HALF steps and saves with tf.train.Saver; the original and
  ours each restore that checkpoint and continue: the two continuations must agree (each
  against the original restored, not against the original going on in its first session: the
  tool's random stream starts again in every new session, for either build);
- `perturbed`: ours with one op changed (1e-6 added to the logits), which must disagree, or the
  check could not fail.

Prints one JSON object: {variant: {"loss": max |loss difference|, "weights": max |weight
difference|}}.

    TF_USE_LEGACY_KERAS=1 python tests/migration_equivalence.py OUT_DIR
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import notebook_original  # noqa: E402
from squeezenet_v1 import SqueezeNetModel  # noqa: E402

tf1 = tf.compat.v1
STEPS, HALF = 20, 10


class _Perturbed(SqueezeNetModel):
    def get_logits(self, conv_layer):
        return super().get_logits(conv_layer) + 1e-6


def _train(model_class, steps, tensor_is_training=False, restore=None, save=None,
           start=None):
    """(losses, {variable: value} after `steps` Adam steps, {variable: value} before them)
    under the deterministic tool; `start` gives the initial values."""
    images, labels = notebook_original.fixed_inputs()
    tool = tf1.keras.utils.DeterministicRandomTestTool(mode='constant')
    with tool.scope():
        graph = tf.Graph()
        with graph.as_default(), tf1.Session(graph=graph) as sess:
            inputs = tf1.placeholder(tf.float32, [None, 24, 24, 3])
            label_input = tf1.placeholder(tf.int32, [None])
            feed = {inputs: images, label_input: labels}
            is_training = True
            if tensor_is_training:
                is_training = tf1.placeholder_with_default(False, [])
                feed[is_training] = True
            model = model_class(32, 24, 10)
            model.run_model_setup(inputs, label_input, is_training)
            saver = tf1.train.Saver()
            sess.run(tf1.global_variables_initializer())
            if start:
                for variable in tf1.global_variables():
                    variable.load(start[variable.op.name], sess)
            if restore:
                saver.restore(sess, restore)
            initial = {v.op.name: sess.run(v) for v in tf1.global_variables()}
            losses = []
            for step in range(steps):
                loss, _ = sess.run([model.loss, model.train_op], feed)
                losses.append(float(loss))
                if save and step + 1 == HALF:
                    saver.save(sess, save)
            weights = {v.op.name: sess.run(v) for v in tf1.global_variables()}
    return losses, weights, initial


def _differences(theirs, ours):
    (their_losses, their_weights, _), (our_losses, our_weights, _) = theirs, ours
    assert sorted(their_weights) == sorted(our_weights), 'the variables differ'
    return {'loss': float(np.max(np.abs(np.subtract(their_losses, our_losses)))),
            'weights': float(max(np.max(np.abs(their_weights[name] - our_weights[name]))
                                 for name in their_weights))}


def main(out_dir):
    original = notebook_original.SqueezeNetModel
    result = {}
    reference = _train(original, STEPS)
    start = reference[2]
    result['bool'] = _differences(reference, _train(SqueezeNetModel, STEPS, start=start))
    tensor = _train(original, STEPS, tensor_is_training=True)
    result['tensor'] = _differences(tensor, _train(SqueezeNetModel, STEPS, start=tensor[2],
                                                   tensor_is_training=True))
    halfway = os.path.join(out_dir, 'original_halfway.ckpt')
    _train(original, HALF, save=halfway)
    result['resumed'] = _differences(_train(original, STEPS - HALF, restore=halfway),
                                     _train(SqueezeNetModel, STEPS - HALF, restore=halfway))
    result['perturbed'] = _differences(reference, _train(_Perturbed, STEPS, start=start))
    result['steps'] = STEPS
    print(json.dumps(result))


if __name__ == '__main__':
    main(sys.argv[1])
