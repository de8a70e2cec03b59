"""Fetching and unpacking the official CIFAR-10 archives, never leaving half a file in place.

Downloads go to a temporary beside the archive (`.<archive>.<pid>-<random>.tmp`) and are
renamed only once complete and verified; archives are extracted into a temporary folder beside
the target and renamed into place only once whole. An error or Ctrl-C removes the temporary;
one a killed run left is removed by the next download or extraction in that folder.
"""

import http.client
import os
import shutil
import socket
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from absl import logging

from squeezenet_v1.files import atomic

from squeezenet_v1.files import reading

from squeezenet_v1.files import temporaries
from squeezenet_v1 import interrupts
from squeezenet_v1.data.errors import DataError
from squeezenet_v1.errors import first_line

_CHUNK_BYTES = 1 << 20
_REPORT_SECS = 5.0
_SCHEMES = ('http', 'https', 'ftp', 'file')
# A release unpacks to about 180 MB; an archive declaring more is not one.
_MAX_UNPACKED_BYTES = 1 << 30
DEFAULT_DEADLINE_SECS = 3600  # the 163 MB archive at 50 kB/s; a mirror slower than that fails


def file_md5(path):
    return reading.file_digest(path, 'md5')


def verify_md5(path, expected_md5):
    """Raises DataError when the file's md5 is not the expected one."""
    actual = file_md5(path)
    if actual != expected_md5:
        raise DataError('%s: md5 %s does not match the official %s; the archive is damaged or '
                        'not the official one. Delete it and download it again (--download).'
                        % (path, actual, expected_md5))


def extract_archive(archive_path, dest_dir, folder, only=None):
    """Extracts `folder` from a .tar.gz into dest_dir/folder, atomically. Returns its path.

    With `only` (file names inside `folder`), just those files are added to an existing folder,
    each renamed into place; files already there are never replaced.
    """
    target = os.path.join(dest_dir, folder)
    _remove_stale_temporaries(dest_dir)
    staging = temporaries.make_temp_dir(dest_dir, folder)
    try:
        try:
            with tarfile.open(archive_path, 'r:gz') as tar:
                members = [m for m in tar.getmembers()
                           if m.name == folder or m.name.startswith(folder + '/')]
                if only is not None:
                    members = [m for m in members if m.name in
                               {'%s/%s' % (folder, name) for name in only}]
                if not members:
                    raise DataError('%s: holds no %s/ folder; it is not a CIFAR-10 archive.'
                                    % (archive_path, folder))
                unpacked = sum(member.size for member in members)
                if unpacked > _MAX_UNPACKED_BYTES:  # what the tar headers declare, before
                    raise DataError('%s: unpacks to %d bytes, more than a CIFAR release holds; '
                                    'it is not one. Delete it and download it again (--download).'
                                    % (archive_path, unpacked))
                tar.extractall(staging, members=members, filter='data')
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            raise DataError('%s: cannot be extracted (%s); the archive is corrupt. Delete it and '
                            'download it again (--download).' % (archive_path, e))
        if only is None:
            if os.path.isdir(target):
                shutil.rmtree(target)
            os.replace(os.path.join(staging, folder), target)
        else:
            for name in sorted(os.listdir(os.path.join(staging, folder))):
                if not os.path.exists(os.path.join(target, name)):
                    os.replace(os.path.join(staging, folder, name), os.path.join(target, name))
                    logging.info('Restored %s from %s', os.path.join(target, name),
                                 archive_path)
        atomic.fsync_dir(dest_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class _Deadline(object):
    """Ends a request's connections when its deadline passes, whatever they are waiting for.

    A socket timeout bounds one wait; a server that sends a header byte now and then resets it
    forever. So every connection the request opens (redirects too) is recorded, and a timer
    shuts their sockets down at the deadline: the blocked read returns at once.
    """

    def __init__(self, seconds):
        self.seconds, self.expired, self._connections = seconds, False, []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def opener(self):
        deadline = self

        def watched(connection_class):
            def make(host, **kwargs):
                if deadline.expired:  # a redirect followed after the deadline
                    raise TimeoutError('the deadline passed')
                connection = deadline._watched(connection_class(host, **kwargs))
                return connection
            return make

        class Http(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(watched(http.client.HTTPConnection), req)

        class Https(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(watched(http.client.HTTPSConnection), req,
                                    context=self._context)

        return urllib.request.build_opener(Http, Https)

    def _watched(self, connection):
        """Records a connection; one whose socket opens after the deadline is ended as well."""
        connect, deadline = connection.connect, self

        def watched_connect():
            connect()
            if deadline.expired:
                deadline._end(connection)
        connection.connect = watched_connect
        with self._lock:
            self._connections.append(connection)
        return connection

    def _expire(self):
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            self._end(connection)

    @staticmethod
    def _end(connection):
        try:
            if connection.sock is not None:
                connection.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *unused_exc_info):
        self._timer.cancel()


def download(url, dest_path, expected_md5=None, timeout=60,
             deadline_secs=DEFAULT_DEADLINE_SECS, max_bytes=None):
    """Streams url to dest_path via a temporary, logging progress; verifies the md5.

    Gives up when `timeout` seconds pass without a byte, or `deadline_secs` in all, connecting,
    the status line and the headers included (a server that sends a byte now and then would
    otherwise hold the run forever), and once more than `max_bytes` arrive (the official
    archives' sizes are known: an endless body would fill the disk).
    """
    if urllib.parse.urlsplit(url).scheme not in _SCHEMES:
        raise DataError('--download_url %s is not a URL (it needs one of %s://). Give the '
                        'address of a mirror of %s.' % (url, ', '.join(_SCHEMES),
                                                        os.path.basename(dest_path)))
    folder = os.path.dirname(os.path.abspath(dest_path))
    _remove_stale_temporaries(folder)
    partial = temporaries.make_temp_file(folder, os.path.basename(dest_path))
    try:
        start = time.time()
        # No single wait may outlast the deadline, a server that answers nothing included.
        with _Deadline(deadline_secs) as deadline, \
                deadline.opener().open(url, timeout=min(timeout, deadline_secs)) as response, \
                open(partial, 'wb') as out:
            total = _declared_length(response, max_bytes)
            done, last_report, last_data = 0, start, start
            read = getattr(response, 'read1', response.read)  # what has arrived, not 1 MB
            while True:
                interrupts.answer_dropped()
                chunk = read(_CHUNK_BYTES)
                now = time.time()
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                gap, last_data = now - last_data, now
                if max_bytes is not None and done > max_bytes:
                    raise ValueError('more than the %d bytes the file has' % max_bytes)
                if now - start > deadline_secs or deadline.expired:
                    raise TimeoutError('still incomplete after the %d s deadline '
                                       '(--download_deadline_secs)' % deadline_secs)
                if now - last_report >= _REPORT_SECS:
                    last_report = now
                    _log_progress(url, done, total, now - start, gap)
            if deadline.expired:  # the connection was ended under a reader that took it as EOF
                raise TimeoutError('still incomplete after the %d s deadline '
                                   '(--download_deadline_secs)' % deadline_secs)
            _log_progress(url, done, total, time.time() - start, 0)
            if total and done != total:
                raise http.client.IncompleteRead(b'', total - done)
    except BaseException as e:
        temporaries.remove_path(partial)
        if not isinstance(e, (urllib.error.URLError, http.client.HTTPException, OSError,
                              ValueError)):
            raise  # Ctrl-C, or a bug: the temporary is gone either way
        reason = e if isinstance(e, urllib.error.HTTPError) else getattr(e, 'reason', e)
        if time.time() - start >= deadline_secs:
            reason = ('still incomplete after the %d s deadline (--download_deadline_secs)'
                      % deadline_secs)
        raise DataError('downloading %s failed (%s). Check the network, or download the file by '
                        'hand into %s.' % (url, first_line(reason) or type(e).__name__,
                                           os.path.dirname(dest_path)))
    if expected_md5:
        actual = file_md5(partial)
        if actual != expected_md5:
            temporaries.remove_path(partial)
            raise DataError('%s: the downloaded md5 %s does not match the official %s; nothing '
                            'was kept. Check that --download_url is a mirror of %s.'
                            % (url, actual, expected_md5, os.path.basename(dest_path)))
    os.replace(partial, dest_path)
    atomic.fsync_dir(folder)
    return dest_path


def _declared_length(response, max_bytes):
    """The Content-Length, refused when it is more than the file can be."""
    try:
        total = int(response.headers.get('Content-Length') or 0)
    except ValueError:
        total = 0
    if max_bytes is not None and total > max_bytes:
        raise ValueError('the server announces %d bytes, more than the %d the file has'
                         % (total, max_bytes))
    return total


def _log_progress(url, done, total, seconds, wait_seconds):
    rate = done / max(seconds, 1e-6) / 1e6
    stalled = (', waited %d s for the last data' % wait_seconds
               if wait_seconds >= _REPORT_SECS else '')
    if total:
        logging.info('Downloading %s: %5.1f%% (%.1f of %.1f MB, %.1f MB/s%s)',
                     url, 100.0 * done / total, done / 1e6, total / 1e6, rate, stalled)
    else:
        logging.info('Downloading %s: %.1f MB (%.1f MB/s%s)', url, done / 1e6, rate, stalled)


def _remove_stale_temporaries(folder):
    for path in temporaries.remove_stale_temporaries(folder):
        logging.info('Removed %s, left by a download or extraction that was killed.', path)
