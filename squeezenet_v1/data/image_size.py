"""The width and height an image file declares, read from its header without decoding it.

`--mode=predict` refuses a file declaring more than MAX_IMAGE_PIXELS before TensorFlow decodes
it: a 1 MB PNG can declare 20000x20000 and decode to gigabytes. The decoders allocate what
the header declares, so the header is what is checked. Formats are told by their first bytes,
as tf.io.decode_image tells them, and each header is read the way its decoder reads it (a
JPEG's stray bytes between segments skipped, as libjpeg skips them). A file of one of these
formats whose size cannot be read is refused too: its decoder might still decode it.
"""

import struct

# Pillow's limit is 89 MP; this one is lower because the resize works in float32: a 50 MP
# photo (the largest phones') peaks near 0.8 GB, and passes.
MAX_IMAGE_PIXELS = 50 * 1000 * 1000


def declared_size(contents):
    """(width, height) the header of these bytes declares, or None when it cannot be read."""
    try:
        if contents.startswith(b'\x89PNG\r\n\x1a\n') and contents[12:16] == b'IHDR':
            return struct.unpack('>II', contents[16:24])
        if contents[:6] in (b'GIF87a', b'GIF89a'):
            return struct.unpack('<HH', contents[6:10])
        if contents.startswith(b'BM'):
            width, height = struct.unpack('<ii', contents[18:26])
            return abs(width), abs(height)  # a negative height means top-down rows
        if contents.startswith(b'\xff\xd8'):
            return _jpeg_size(contents)
        if contents[:4] == b'RIFF' and contents[8:12] == b'WEBP':
            return _webp_size(contents)
    except struct.error:  # shorter than its header
        return None
    return None


# Start-of-frame markers, the segments that hold a JPEG's size (not DHT, JPG or DAC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(contents):
    position = 2
    while position + 4 <= len(contents):
        if contents[position] != 0xFF:  # libjpeg skips extraneous bytes before a marker
            position = contents.find(b'\xff', position)
            if position < 0:
                return None
            continue
        marker = contents[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0x00:  # a stuffed zero: no marker, skipped as libjpeg skips it
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # the image ends, or its data starts, before any frame
            return None
        if marker in (0x01,) or 0xD0 <= marker <= 0xD9:  # markers without a length
            position += 2
            continue
        length, = struct.unpack('>H', contents[position + 2:position + 4])
        if marker in _SOF_MARKERS:
            height, width = struct.unpack('>HH', contents[position + 5:position + 9])
            return width, height
        position += 2 + length
    return None


def _webp_size(contents):
    chunk = contents[12:16]
    if chunk == b'VP8 ':
        width, height = struct.unpack('<HH', contents[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b'VP8L':
        bits, = struct.unpack('<I', contents[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b'VP8X':
        return (int.from_bytes(contents[24:27], 'little') + 1,
                int.from_bytes(contents[27:30], 'little') + 1)
    return None


def _is_known_format(contents):
    return (contents.startswith((b'\x89PNG', b'GIF8', b'BM', b'\xff\xd8'))
            or (contents[:4] == b'RIFF' and contents[8:12] == b'WEBP'))


def check_pixels(contents):
    """Raises ValueError when the header declares more than MAX_IMAGE_PIXELS, or when an image
    format TensorFlow decodes has a header whose size cannot be read."""
    size = declared_size(contents)
    if size is None and _is_known_format(contents):
        raise ValueError('has an image header whose size cannot be read, so it is not decoded '
                         '(the file is damaged); save it again')
    if size and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise ValueError('declares %dx%d pixels, over the limit of %d million; shrink it first'
                         % (size[0], size[1], MAX_IMAGE_PIXELS // 1000000))
