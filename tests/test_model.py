"""The model's golden structure and the notebook's parameter arithmetic."""

import numpy as np
import pytest
import tensorflow as tf

from squeezenet_v1 import SqueezeNetModel

from squeezenet_v1 import layers

from squeezenet_v1 import parameters

tf1 = tf.compat.v1

GOLDEN_SHAPES = {
    'conv1/kernel': [3, 3, 3, 64], 'conv1/bias': [64],
    'fire1/squeeze/kernel': [1, 1, 64, 32], 'fire1/expand1x1/kernel': [1, 1, 32, 64],
    'fire1/expand3x3/kernel': [3, 3, 32, 64], 'fire2/squeeze/kernel': [1, 1, 128, 32],
    'fire3/squeeze/kernel': [1, 1, 128, 32], 'fire3/expand3x3/kernel': [3, 3, 32, 128],
    'fire4/squeeze/kernel': [1, 1, 256, 32], 'fire4/expand1x1/bias': [128],
    'final_conv/kernel': [1, 1, 256, 10], 'final_conv/bias': [10],
}


def test_notebook_squeeze_example_arithmetic():
    """The notebook's example: 45,100 parameters direct, 510 + 9,100 + 100 through a squeeze."""
    def counted(build):
        with tf.Graph().as_default():
            build(tf1.placeholder(tf.float32, [None, 8, 8, 50]))
            return parameters.parameter_report(tf1.trainable_variables())['total_parameters']

    model = SqueezeNetModel(32, 24, 10)
    direct = counted(lambda x: model.custom_conv2d(x, 100, [3, 3], 'direct'))
    squeeze = counted(lambda x: model.custom_conv2d(x, 10, [1, 1], 'squeeze'))
    squeezed = counted(lambda x: model.custom_conv2d(
        model.custom_conv2d(x, 10, [1, 1], 'squeeze'), 100, [3, 3], 'expand'))
    assert (direct, squeeze, squeezed) == (45100, 510, 9610)


def test_parameter_report_totals_146570_and_under_one_megabyte():
    report = parameters.model_parameter_report()
    assert report['total_parameters'] == 146570
    assert report['float32_bytes'] == 146570 * 4 < 1000000
    assert len(report['layers']) == 28  # kernel + bias for conv1, 4 x 3 fire convs, final_conv
    shapes = {layer['name']: layer['shape'] for layer in report['layers']}
    for name, shape in GOLDEN_SHAPES.items():
        assert shapes[name] == shape
    assert sum(layer['count'] for layer in report['layers']) == 146570
    table = parameters.format_parameter_report(report)
    assert '146,570' in table and 'fire4/expand3x3/kernel' in table


def test_parameter_count_follows_output_size():
    # Only final_conv depends on the number of classes: 256 * k + k.
    assert parameters.model_parameter_report(output_size=100)['total_parameters'] == \
        146570 - 2570 + 25700


def test_run_model_setup_sets_the_notebooks_attributes():
    with tf.Graph().as_default():
        model = SqueezeNetModel(32, 24, 10)
        images = tf1.placeholder(tf.float32, [4, 24, 24, 3])
        labels = tf1.placeholder(tf.int32, [4])
        model.run_model_setup(images, labels, is_training=True)
        assert model.probs.shape.as_list() == [4, 10]
        assert model.predictions.shape.as_list() == [4]
        assert model.loss.shape.as_list() == [] and model.accuracy.shape.as_list() == []
        assert model.train_op is not None
        assert model.global_step.op.name == 'global_step'


def test_an_unknown_batch_keeps_the_class_dimension_as_tf_layers_did():
    with tf.Graph().as_default():
        model = SqueezeNetModel(32, 24, 10)
        model.run_model_setup(tf1.placeholder(tf.float32, [None, 24, 24, 3]),
                              tf1.placeholder(tf.int32, [None]), is_training=False)
        assert model.logits.shape.as_list() == [None, 10]
        assert model.probs.shape.as_list() == [None, 10]


def test_eval_graph_has_no_optimizer_and_no_dropout():
    with tf.Graph().as_default() as graph:
        model = SqueezeNetModel(32, 24, 10)
        model.run_model_setup(tf1.placeholder(tf.float32, [None, 24, 24, 3]),
                              tf1.placeholder(tf.int32, [None]), is_training=False)
        assert model.train_op is None
        names = [v.op.name for v in tf1.global_variables()]
        assert not any('Adam' in n for n in names)
        assert not any(op.type in ('RandomUniform', 'RandomUniformV2') and 'dropout' in op.name
                       for op in graph.get_operations())


def test_image_preprocessing_eval_is_centre_crop_then_standardization():
    model = SqueezeNetModel(32, 24, 10)
    planes = np.arange(3 * 32 * 32, dtype=np.float64).reshape(3, 32, 32) % 251
    with tf.Graph().as_default():
        out = model.image_preprocessing(tf.constant(planes.astype(np.uint8).reshape(-1)), False)
        with tf1.Session() as sess:
            got = sess.run(out)
    hwc = planes.transpose(1, 2, 0)[4:28, 4:28, :]
    expected = (hwc - hwc.mean()) / max(hwc.std(), 1 / np.sqrt(hwc.size))
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_training_preprocessing_crops_to_resize_dim():
    model = SqueezeNetModel(32, 24, 10)
    with tf.Graph().as_default():
        tf1.set_random_seed(3)
        out = model.image_preprocessing(tf.zeros([3072], tf.uint8) + 7, True)
        assert out.shape.as_list() == [24, 24, 3]


def test_layers_shim_initializers_and_variable_names():
    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        x = tf1.placeholder(tf.float32, [None, 8, 8, 16])
        y = layers.conv2d(x, 256, [3, 3], padding='same', activation=tf.nn.relu, name='c')
        assert y.shape.as_list() == [None, 8, 8, 256]
        kernel, bias = tf1.global_variables()
        assert (kernel.op.name, bias.op.name) == ('c/kernel', 'c/bias')
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            k, b = sess.run([kernel, bias])
    limit = np.sqrt(6.0 / (3 * 3 * 16 + 3 * 3 * 256))  # Glorot-uniform
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.9 * limit
    assert abs(k.std() - limit / np.sqrt(3)) < 0.02 * limit
    assert not b.any()


def test_layers_shim_pooling_flatten_dropout_match_numpy():
    x = np.random.RandomState(0).normal(size=(2, 4, 4, 3)).astype(np.float32)
    with tf.Graph().as_default():
        t = tf.constant(x)
        pooled = layers.max_pooling2d(t, [2, 2], 2)
        averaged = layers.average_pooling2d(t, [t.shape[1], t.shape[2]], 1)
        flat = layers.flatten(averaged)
        kept = layers.dropout(t, rate=0.5, training=False)
        dropped = layers.dropout(t, rate=0.5, training=True)
        with tf1.Session() as sess:
            p, a, f, k, d = sess.run([pooled, averaged, flat, kept, dropped])
    np.testing.assert_allclose(p, x.reshape(2, 2, 2, 2, 2, 3).max(axis=(2, 4)))
    np.testing.assert_allclose(f, x.mean(axis=(1, 2)), atol=1e-6)
    assert a.shape == (2, 1, 1, 3) and f.shape == (2, 3)
    np.testing.assert_array_equal(k, x)
    assert set(np.unique(np.isclose(d, 2 * x) | (d == 0))) == {True}
    assert 0 < np.mean(d == 0) < 1


def test_unknown_spatial_size_is_refused_with_a_clear_error():
    with tf.Graph().as_default():
        x = tf1.placeholder(tf.float32, [None, None, None, 10])
        with pytest.raises(ValueError, match='static height and width'):
            SqueezeNetModel(32, 24, 10).get_logits(x)
