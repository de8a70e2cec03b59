"""Random corruptions of small CIFAR-10 batches: a clear DataError or valid data, nothing else."""

import os
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import tiny_split
from squeezenet_v1.data import cifar10
from squeezenet_v1.data.errors import DataError

_IMAGES, _LABELS = tiny_split(3, seed=5)
BINARY_BATCH = np.concatenate([_LABELS[:, None], _IMAGES], axis=1).tobytes()
PYTHON_BATCH = pickle.dumps({b'data': _IMAGES, b'labels': [int(x) for x in _LABELS]}, protocol=2)

corruptions = st.one_of(
    st.tuples(st.just('truncate'), st.integers(0, 10000)),
    st.tuples(st.just('flip'), st.lists(st.tuples(st.integers(0, 10000), st.integers(1, 255)),
                                        min_size=1, max_size=8)),
    st.tuples(st.just('append'), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just('replace'), st.binary(max_size=256)),
)


def _corrupt(data, corruption):
    kind, arg = corruption
    if kind == 'truncate':
        return data[:arg % (len(data) + 1)]
    if kind == 'flip':
        buf = bytearray(data)
        for position, mask in arg:
            buf[position % len(buf)] ^= mask
        return bytes(buf)
    if kind == 'append':
        return data + arg
    return arg


def _write(tmp_path_factory, data):
    path = os.path.join(str(tmp_path_factory.mktemp('fuzz')), 'data_batch_1')
    with open(path, 'wb') as f:
        f.write(data)
    return path


# numpy failing inside a destructor is reported only as a warning: make it fail the test.
@pytest.mark.filterwarnings('error::pytest.PytestUnraisableExceptionWarning')
@pytest.mark.parametrize('reader, pristine', [
    (cifar10.read_binary_batch, BINARY_BATCH),
    (cifar10.read_python_batch, PYTHON_BATCH),
], ids=['binary', 'python'])
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corruption=corruptions)
def test_corrupt_batch_is_data_error_or_valid(tmp_path_factory, reader, pristine, corruption):
    path = _write(tmp_path_factory, _corrupt(pristine, corruption))
    try:
        images, labels = reader(path)
    except DataError as e:
        assert path in str(e)
        return
    assert images.dtype == np.uint8 and images.shape == (len(labels), 3072)
    assert len(labels) >= 1 and labels.max() <= 9
