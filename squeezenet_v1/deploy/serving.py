"""The inference graph shared by prediction and every export format.

uint8 images [N, 32, 32, 3] go in; the notebook's evaluation preprocessing (its own
`image_preprocessing`, vectorized over the batch) and forward pass run inside the graph;
`probabilities` [N, classes] and `classes` [N] come out.
"""

import collections

import tensorflow as tf

from squeezenet_v1.data import input_pipeline
from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.data.cifar10 import IMAGE_BYTES, IMAGE_SIZE, NUM_CHANNELS
from squeezenet_v1.model import new_model

tf1 = tf.compat.v1

INPUT_KEY = 'images'
PROBABILITIES_KEY = 'probabilities'
CLASSES_KEY = 'classes'

ServingGraph = collections.namedtuple(
    'ServingGraph', ['graph', 'images', 'probabilities', 'classes', 'global_step', 'saver',
                     'variables'])


def build_serving_graph(num_classes):
    """A new graph holding the inference path for a model with `num_classes` outputs."""
    graph = tf.Graph()
    with graph.as_default():
        # Inference draws no random numbers, but once a seeded run in this process has turned
        # op determinism on, every graph whose variables have initializers needs a seed.
        tf1.set_random_seed(0)
        model = new_model(num_classes)
        images = tf1.placeholder(tf.uint8, [None, IMAGE_SIZE, IMAGE_SIZE, NUM_CHANNELS],
                                 name=INPUT_KEY)
        # Back to the record layout (R, G, B planes) that image_preprocessing reads.
        records = tf.reshape(tf.transpose(images, [0, 3, 1, 2]), [-1, IMAGE_BYTES])
        inputs = input_pipeline.preprocess_batch(model, records)
        logits = model.model_layers(inputs, is_training=False)
        probabilities = tf.nn.softmax(logits, name=PROBABILITIES_KEY)
        classes = tf.argmax(probabilities, axis=-1, name=CLASSES_KEY)
        global_step = tf1.train.get_or_create_global_step()
        variables = tf1.global_variables()
        saver = tf1.train.Saver(variables)
    return ServingGraph(graph, images, probabilities, classes, global_step, saver, variables)


def restored_session(checkpoint_path, label_names):
    """(ServingGraph, Session) restored from the checkpoint. The caller closes the session."""
    num_classes = checkpoints.num_classes(checkpoint_path)
    if num_classes != len(label_names):
        raise checkpoints.CheckpointMismatchError(
            '%s has %d output classes but there are %d class names (%s); the checkpoint is of '
            'another output size. Use the model_dir that matches, or its labels.txt.'
            % (checkpoint_path, num_classes, len(label_names), ', '.join(label_names[:4]) + ', ...'))
    serving = build_serving_graph(num_classes)
    sess = tf1.Session(graph=serving.graph)
    try:
        with serving.graph.as_default():
            checkpoints.restore(sess, serving.saver, checkpoint_path, serving.variables)
    except BaseException:
        sess.close()
        raise
    return serving, sess


def chosen_restored_session(model_dir, label_names, checkpoint_path=None):
    """restored_session of checkpoint_path, else of model_dir's newest complete checkpoint
    (taken again if a rotating trainer removes it)."""
    return checkpoints.with_checkpoint(
        model_dir, lambda path: restored_session(path, label_names), checkpoint_path)
