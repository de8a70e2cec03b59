"""Image files made into what the model reads: uint8 [32, 32, 3] RGB, one way for all.

TensorFlow's own decoders read PNG, JPEG, GIF, BMP and WebP; grayscale is replicated to three
channels and an alpha channel is dropped (not composited); every image is resized to 32x32 the
same way (bilinear with antialiasing, rounded to uint8; a 32x32 image passes unchanged). predict
and the folder data set both decode here, so a trained model sees a user's new picture as it saw
its training images. A header declaring too many pixels is refused before decoding
(image_size.py).
"""

from squeezenet_v1.data import image_size
from squeezenet_v1.data.cifar10 import IMAGE_SIZE
from squeezenet_v1.files import reading

# What tf.io.decode_image reads; the same list picks files inside folders.
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.gif', '.bmp', '.webp')
# A 32x32 picture is a few kB; even a photo to be shrunk is far below this.
MAX_IMAGE_BYTES = 256 << 20


class ImageDecoder(object):
    """One small graph that turns encoded bytes into a uint8 [32, 32, 3] image."""

    def __init__(self):
        import tensorflow as tf  # here: data/ is imported by tools that start without it
        self._tf, tf1 = tf, tf.compat.v1
        self._graph = tf.Graph()
        with self._graph.as_default():
            self._contents = tf1.placeholder(tf.string, [])
            image = tf.io.decode_image(self._contents, channels=3, dtype=tf.uint8,
                                       expand_animations=False)
            resized = tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE], method='bilinear',
                                      antialias=True)
            self._image = tf.cast(tf.round(tf.clip_by_value(resized, 0, 255)), tf.uint8)
        self._sess = tf1.Session(graph=self._graph)

    def decode(self, path):
        """The image, or raises ValueError saying why the file is not one."""
        try:  # the user's own files: a link to an image is followed
            contents = reading.read_bytes(path, MAX_IMAGE_BYTES, follow_links=True)
        except reading.UnreadableFileError as e:
            raise ValueError(e.reason)
        except OSError as e:
            raise ValueError('cannot be read (%s)' % (e.strerror or e))
        if not contents:
            raise ValueError('is empty, not an image')
        image_size.check_pixels(contents)
        try:
            return self._sess.run(self._image, {self._contents: contents})
        except self._tf.errors.InvalidArgumentError as e:
            # The op's own words are the last line before the node reference.
            lines = [line.strip() for line in (e.message or '').splitlines()
                     if line.strip() and not line.strip().startswith('[[')]
            reason = lines[-1] if lines else 'undecodable'
            raise ValueError('is not an image TensorFlow can decode '
                             '(%s)' % reason)

    def close(self):
        self._sess.close()
