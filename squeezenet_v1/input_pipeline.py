"""The notebook's tf.data pipeline over binary CIFAR-10 records.

records -> (shuffle, repeat when training) -> image_preprocessing per record -> batch ->
prefetch -> one-shot iterator. Labels come out as sparse int32 of shape (batch,).
"""

import tensorflow as tf

from squeezenet_v1 import cifar10

tf1 = tf.compat.v1

# Enough to mix the 10,000-record batch files of CIFAR-10 well, small enough to fill quickly.
SHUFFLE_BUFFER = 10000


def parse_record(record):
    """Splits one 3,073-byte record into (3,072 uint8 pixel values, int32 label)."""
    raw = tf.io.decode_raw(record, tf.uint8)
    label = tf.cast(raw[0], tf.int32)
    return raw[cifar10.LABEL_BYTES:], label


def make_dataset(record_files, model, is_training, batch_size, seed=None,
                 shuffle_buffer=SHUFFLE_BUFFER):
    """A batched dataset of (images [b, resize_dim, resize_dim, 3] float32, labels [b] int32).

    Training shuffles and repeats forever; evaluation reads every record once, in file order,
    with the last partial batch kept.
    """
    dataset = tf.data.FixedLengthRecordDataset(record_files, cifar10.RECORD_BYTES)
    if is_training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
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
    return dataset.prefetch(tf.data.AUTOTUNE)


def input_fn(record_files, model, is_training, batch_size, seed=None):
    """The notebook's `it.get_next()`: (images, labels) tensors from a one-shot iterator."""
    dataset = make_dataset(record_files, model, is_training, batch_size, seed=seed)
    return tf1.data.make_one_shot_iterator(dataset).get_next()
