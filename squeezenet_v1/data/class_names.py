"""Class names, from wherever they come (batches.meta, batches.meta.txt, labels.txt), checked.

A name is one line of printable text, at most 200 characters, and the names of a data set
differ from each other: a name holding a newline would make labels.txt a line longer than the
model's classes, and every later predict or export of that run would refuse it.
"""

from squeezenet_v1.data.errors import DataError

MAX_NAME_CHARS = 200


def checked_names(names, source, fix, count=None):
    """`names` as a list of str, each stripped; DataError naming `source` and `fix` otherwise.

    `count`, when given, is the number of classes the names must match.
    """
    if not isinstance(names, (list, tuple)):
        raise DataError('%s: its class names are a %s, not a list of names. %s'
                        % (source, type(names).__name__, fix))
    if count is not None and len(names) != count:
        raise DataError('%s: %d class names for %d classes. %s' % (source, len(names), count, fix))
    checked = [_checked_name(name, index, source, fix) for index, name in enumerate(names)]
    if not checked:
        raise DataError('%s holds no class names. %s' % (source, fix))
    repeated = sorted({name for name in checked if checked.count(name) > 1})
    if repeated:
        raise DataError('%s: the class name %r appears more than once. %s'
                        % (source, repeated[0], fix))
    return checked


def _checked_name(name, index, source, fix):
    if isinstance(name, bytes):
        try:
            name = name.decode('utf-8')
        except UnicodeDecodeError:
            raise DataError('%s: class name %d is not UTF-8 text. %s' % (source, index, fix))
    if not isinstance(name, str):
        raise DataError('%s: class name %d is a %s, not text. %s'
                        % (source, index, type(name).__name__, fix))
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise DataError('%s: class name %d (%r) is not one line of printable text of 1 to %d '
                        'characters. %s' % (source, index, name[:40], MAX_NAME_CHARS, fix))
    return name
