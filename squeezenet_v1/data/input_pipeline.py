"""The notebook's tf.data pipeline over binary CIFAR-10 records, its resumable seeded twin, and
its batched evaluation twin.

records -> (shuffle, repeat when training) -> image_preprocessing per record -> batch ->
prefetch -> one-shot iterator. Labels come out as sparse int32 of shape (batch,).

Evaluation reads `read_evaluation_split` into `preprocess_batch`: the same images, bit for bit,
read without tf.data and preprocessed a batch at a time.

A seeded training run reads `resumable_dataset` instead: the same preprocessing, with every
random draw (data order, crop, flip, and the dropout mask through `dropout_seed`) a function of
(seed, global_step), so a run resumed at any step continues exactly as the uninterrupted one.
"""

import numpy as np
import tensorflow as tf

from squeezenet_v1.data import cifar10

tf1 = tf.compat.v1

# Enough to mix the 10,000-record batch files of CIFAR-10 well, small enough to fill quickly.
SHUFFLE_BUFFER = 10000


def without_autotune_model(dataset):
    """`dataset` without tf.data's autotuning model thread (options.autotune.enabled off).

    That thread sleeps between optimizations for a period that doubles up to 60 s, and its
    iterator's destructor, run by Session.close, joins it; TensorFlow runs the cancellation
    callback that wakes it before it marks the cancellation done, so it often sleeps on to the
    end of its period: 10-40 s after a run of a few minutes. AUTOTUNE map and prefetch keep
    their defaults (map parallelism = the cores, the legacy prefetch autotuner).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def parse_record(record):
    """Splits one 3,073-byte record into (3,072 uint8 pixel values, int32 label)."""
    raw = tf.io.decode_raw(record, tf.uint8)
    label = tf.cast(raw[0], tf.int32)
    return raw[cifar10.LABEL_BYTES:], label


def make_dataset(record_files, model, is_training, batch_size, shuffle_buffer=SHUFFLE_BUFFER):
    """A batched dataset of (images [b, resize_dim, resize_dim, 3] float32, labels [b] int32).

    Training shuffles and repeats forever; evaluation reads every record once, in file order,
    with the last partial batch kept.
    """
    dataset = tf.data.FixedLengthRecordDataset(record_files, cifar10.RECORD_BYTES)
    if is_training:
        dataset = dataset.shuffle(shuffle_buffer, reshuffle_each_iteration=True)
        dataset = dataset.repeat()

    # Plain graph code with a Python bool: AutoGraph would change nothing, but it writes its
    # generated source into TMPDIR, where a killed run would leave it.
    @tf.autograph.experimental.do_not_convert
    def preprocess(record):
        image_bytes, label = parse_record(record)
        return model.image_preprocessing(image_bytes, is_training), label

    dataset = dataset.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
    # Training repeats forever, so every batch is full anyway; saying so gives the graph a
    # static batch size, which lets grappler fold the shape arithmetic (about 4% per step).
    dataset = dataset.batch(batch_size, drop_remainder=is_training)
    return without_autotune_model(dataset.prefetch(tf.data.AUTOTUNE))


def preprocess_batch(model, records):
    """The notebook's evaluation image_preprocessing over a batch of records [N, 3072] uint8.

    Vectorized: one op per step of the preprocessing for the whole batch instead of one per
    image, bit for bit what make_dataset(is_training=False) gives each image
    (tests/test_data.py checks every image). Evaluation and the exported models run it.
    """
    # Not AutoGraph-converted: that would write generated source into TMPDIR.
    preprocess = tf.autograph.experimental.do_not_convert(
        lambda record: model.image_preprocessing(record, False))
    return tf.vectorized_map(preprocess, records)


def read_evaluation_split(record_files, num_classes):
    """(records [N, 3072] uint8, labels [N] int32): a split's records, in file order, in memory.

    30 MB for CIFAR-10's test split. Evaluation feeds them a batch at a time to
    preprocess_batch, as a served model is fed: no tf.data thread competes with the forward
    pass for the cores (on 2 cores a pass over 10,000 images took 1.90 s this way and 2.10 s
    through tf.data).
    """
    images, labels = zip(*(cifar10.read_binary_batch(path, num_classes, max_records=None)
                           for path in record_files))
    return np.concatenate(images), np.concatenate(labels).astype(np.int32)


def evaluation_batches(split, batch_size):
    """(records, labels) batches of a read_evaluation_split, the last one partial."""
    records, labels = split
    for start in range(0, len(labels), batch_size):
        yield records[start:start + batch_size], labels[start:start + batch_size]


# Independent random streams of a seeded run, derived from (seed, stream).
_ORDER_STREAM, _AUGMENT_STREAM, _DROPOUT_STREAM = 1, 2, 3


def _stream_seed(seed, stream, counter):
    """A [2] int64 stateless seed for `counter` (epoch, example or step) in one stream."""
    key = tf.constant([seed, stream], tf.int64)
    return tf.random.experimental.stateless_fold_in(key, tf.cast(counter, tf.int64))


def dropout_seed(seed, step):
    """The dropout mask's seed at `step` of a seeded run (model.TrainingOptions.dropout_seed)."""
    return _stream_seed(seed, _DROPOUT_STREAM, step)


def resumable_dataset(record_files, num_examples, model, batch_size, seed, first_step):
    """Training batches (images, labels, step) from `first_step` on, a function of (seed, step).

    Epoch e visits every record once, in a permutation drawn from (seed, e); the n-th image of
    the stream is cropped and flipped with draws from (seed, n); batch k holds images
    k * batch_size onwards. Started at step k, it yields exactly what a run started at 0
    yields from step k on. The split is held in memory (150 MB for CIFAR-10's training set).
    `first_step` may be a tensor (an initializable iterator's placeholder).
    """
    first_step = tf.cast(first_step, tf.int64)
    split = tf.data.FixedLengthRecordDataset(record_files, cifar10.RECORD_BYTES)
    split = split.batch(num_examples).take(1)  # one element: every record

    @tf.autograph.experimental.do_not_convert
    def stream(records):
        @tf.autograph.experimental.do_not_convert
        def example(index):
            epoch, position = index // num_examples, index % num_examples
            shuffled = tf.random.experimental.index_shuffle(
                position, _stream_seed(seed, _ORDER_STREAM, epoch),
                tf.constant(num_examples - 1, tf.int64))
            image_bytes, label = parse_record(records[shuffled])
            return model.image_preprocessing(
                image_bytes, True, seed=_stream_seed(seed, _AUGMENT_STREAM, index)), label
        indices = tf.data.Dataset.range(first_step * batch_size, tf.int64.max)
        return indices.map(example, num_parallel_calls=tf.data.AUTOTUNE)

    batches = split.flat_map(stream).batch(batch_size, drop_remainder=True)
    steps = tf.data.Dataset.range(first_step, tf.int64.max)
    dataset = tf.data.Dataset.zip((batches, steps)).map(
        lambda batch, step: (batch[0], batch[1], step))
    return without_autotune_model(dataset.prefetch(tf.data.AUTOTUNE))


def input_fn(record_files, model, is_training, batch_size):
    """The notebook's `it.get_next()`: (images, labels) tensors from a one-shot iterator."""
    dataset = make_dataset(record_files, model, is_training, batch_size)
    return tf1.data.make_one_shot_iterator(dataset).get_next()
