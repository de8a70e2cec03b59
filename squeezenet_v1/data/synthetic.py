"""A small learnable stand-in for CIFAR-10, in the same record format, made on the spot.

Each class is a colour (one of five RGB tints) and a stripe direction (horizontal or vertical),
drawn with random stripe period, phase and pixel noise. Both cues survive the notebook's random
crop, horizontal flip and per-image standardization, so the model can learn them in a few
hundred steps; chance is 10%.
"""

import os
import sys

import numpy as np
from absl import flags

from squeezenet_v1 import command_line
from squeezenet_v1.data.cifar10 import IMAGE_SIZE, NUM_CLASSES
from squeezenet_v1.files import atomic

NUM_TRAIN_EXAMPLES = 5000
NUM_TEST_EXAMPLES = 1000
LABEL_NAMES = tuple('%s-%s' % (colour, stripes)
                    for stripes in ('horizontal', 'vertical')
                    for colour in ('red', 'green', 'blue', 'yellow', 'cyan'))
# The data set is the same in every run: its seed does not follow --seed.
_SPLIT_SEEDS = {'train': 1, 'test': 2}
_TINTS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]], dtype=np.float32)


def make_split(split):
    """Returns (images uint8 (N, 3072) as R, G, B planes, labels uint8 (N,)) for a split."""
    num = NUM_TRAIN_EXAMPLES if split == 'train' else NUM_TEST_EXAMPLES
    rng = np.random.RandomState(_SPLIT_SEEDS[split])
    labels = np.arange(num) % NUM_CLASSES
    rng.shuffle(labels)
    tints = _TINTS[labels % 5]                                   # (N, 3)
    vertical = (labels // 5).astype(bool)                        # stripes across x, else y
    period = rng.choice([4.0, 6.0, 8.0], size=num)
    phase = rng.uniform(0, 2 * np.pi, size=num)
    coords = np.arange(IMAGE_SIZE, dtype=np.float32)
    yy, xx = np.meshgrid(coords, coords, indexing='ij')           # (32, 32)
    position = np.where(vertical[:, None, None], xx[None], yy[None])
    stripes = np.sin(2 * np.pi * position / period[:, None, None] + phase[:, None, None])
    planes = 128 + 40 * tints[:, :, None, None] * stripes[:, None]   # (N, 3, 32, 32)
    planes += rng.normal(0, 50, size=planes.shape)
    images = np.clip(np.rint(planes), 0, 255).astype(np.uint8).reshape(num, -1)
    return images, labels.astype(np.uint8)


def _tensorflow():
    """TensorFlow, for its PNG encoder; loaded only when images are written, its start-up lines
    filtered as every command's are."""
    from squeezenet_v1 import tensorflow_logs
    return tensorflow_logs.load_tensorflow()


def write_png_files(folder, count):
    """Writes the first `count` test images as PNG files named <index>_<label>.png."""
    tf = _tensorflow()
    os.makedirs(folder, exist_ok=True)
    images, labels = make_split('test')
    paths = []
    for i in range(min(count, len(labels))):
        image = images[i].reshape(3, IMAGE_SIZE, IMAGE_SIZE).transpose(1, 2, 0)
        path = os.path.join(folder, '%04d_%s.png' % (i, LABEL_NAMES[labels[i]]))
        # A temporary renamed into place: never written through a link or into a FIFO.
        atomic.write_bytes_atomic(path, tf.io.encode_png(image).numpy())
        paths.append(path)
    return paths


def write_class_folders(folder, count, classes):
    """FOLDER/train/<class>/ and FOLDER/test/<class>/: the first `count` images of each split
    (all it has, if fewer) among the first `classes` classes, a data set for --dataset=folder."""
    tf = _tensorflow()
    paths = []
    for split in ('train', 'test'):
        images, labels = make_split(split)
        chosen = [i for i in range(len(labels)) if labels[i] < classes][:count]
        for i in chosen:
            name = LABEL_NAMES[labels[i]]
            os.makedirs(os.path.join(folder, split, name), exist_ok=True)
            image = images[i].reshape(3, IMAGE_SIZE, IMAGE_SIZE).transpose(1, 2, 0)
            path = os.path.join(folder, split, name, '%04d.png' % i)
            atomic.write_bytes_atomic(path, tf.io.encode_png(image).numpy())
            paths.append(path)
    return paths


COMMAND = command_line.Command(
    'squeezenet_v1.data.synthetic', 'FOLDER [--count=N] [--class_folders [--classes=N]]',
    'Writes the first N synthetic test images as PNG files into FOLDER, to try --mode=predict '
    'on; with --class_folders, train/<class>/ and test/<class>/ folders to try '
    '--dataset=folder on.')
flags.DEFINE_integer('count', 8, 'How many images to write (of each split, with '
                     '--class_folders).', lower_bound=1, upper_bound=NUM_TEST_EXAMPLES,
                     flag_values=COMMAND.flags)
flags.DEFINE_bool('class_folders', False, 'Write a --dataset=folder data set: '
                  'FOLDER/train/<class>/ and FOLDER/test/<class>/.', flag_values=COMMAND.flags)
flags.DEFINE_integer('classes', NUM_CLASSES, 'With --class_folders: how many of the classes to '
                     'write.', lower_bound=2, upper_bound=NUM_CLASSES, flag_values=COMMAND.flags)


def main(args=None):
    """The command line (`args` without the program name); returns the exit status."""
    try:
        positionals = COMMAND.parse(sys.argv[1:] if args is None else args, min_args=1,
                                    max_args=1)
    except command_line.UsageError as e:
        return COMMAND.usage_error(e)
    if positionals is None:
        return 0
    if COMMAND.flags['classes'].present and not COMMAND.flags.class_folders:
        return COMMAND.usage_error('--classes goes with --class_folders (the PNG files for '
                                   'predict are of every class)')
    folder = positionals[0]
    try:
        if COMMAND.flags.class_folders:
            written = write_class_folders(folder, COMMAND.flags.count, COMMAND.flags.classes)
            print('%d images in %s/train/<class>/ and %s/test/<class>/ (%d classes).'
                  % (len(written), folder, folder, COMMAND.flags.classes))
            return 0
        for written in write_png_files(folder, COMMAND.flags.count):
            print(written)
    except OSError as e:
        print('%s: error: cannot write into %s (%s). Name a folder you can write to.'
              % (COMMAND.name, folder, e.strerror or e), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
