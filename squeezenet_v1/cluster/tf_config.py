"""TF_CONFIG: the cluster this process is one task of, checked before any work is done.

Cluster managers (Kubeflow's TFJob, the TF1 Estimator convention) tell each process its cluster
and its role in the `TF_CONFIG` environment variable:

    {"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222"], "ps": ["host2:2222"]},
     "task": {"type": "worker", "index": 0}}

`task_from_environment()` returns the Task this process is, or None when there is no cluster to
join (TF_CONFIG unset or empty, or a cluster of one process): then nothing changes. Anything
else that is wrong with TF_CONFIG is a ClusterConfigError naming the problem and the fix,
raised before any work is done.
"""

import errno
import ipaddress
import json
import os
import re
import socket

from squeezenet_v1.errors import UserError
from squeezenet_v1.files import reading

TF_CONFIG = 'TF_CONFIG'
CHIEF, WORKER, PS = 'chief', 'worker', 'ps'
JOBS = (CHIEF, WORKER, PS)
# Keys the TF1 Estimator convention and Kubeflow put beside cluster and task; nothing to do.
_OTHER_KEYS = ('environment', 'rpc_layer')
_EXAMPLE = ('{"cluster": {"ps": ["host:port"], "worker": ["host:port", ...]}, '
            '"task": {"type": "worker", "index": 0}}')


class ClusterConfigError(UserError):
    """TF_CONFIG cannot be used: malformed, inconsistent, or naming a port already in use."""


class Task(object):
    """One task of a cluster: `type` (chief, worker or ps) and `index` within its job."""

    def __init__(self, cluster, task_type, index):
        self.cluster = cluster  # {job: [address, ...]}, jobs with no task left out
        self.type = task_type
        self.index = index

    @property
    def name(self):
        return '%s:%d' % (self.type, self.index)

    @property
    def address(self):
        return self.cluster[self.type][self.index]

    @property
    def is_ps(self):
        return self.type == PS

    @property
    def chief_name(self):
        """The chief: the `chief` task if there is one, else worker 0 (TF1's convention)."""
        return '%s:0' % (CHIEF if CHIEF in self.cluster else WORKER)

    @property
    def is_chief(self):
        return self.name == self.chief_name

    @property
    def worker_names(self):
        """Every task that trains, the chief first: ['chief:0', 'worker:0', ...] or
        ['worker:0', 'worker:1', ...]."""
        return ['%s:%d' % (job, i) for job in (CHIEF, WORKER)
                for i in range(len(self.cluster.get(job, [])))]

    @property
    def worker_number(self):
        """This task's position in worker_names (0 for the chief); None for a ps."""
        return None if self.is_ps else self.worker_names.index(self.name)

    @property
    def ps_addresses(self):
        return list(self.cluster[PS])

    def address_of(self, name):
        job, index = name.split(':')
        return self.cluster[job][int(index)]

    def device(self, name=None):
        """The TensorFlow device of a task (this one by default): '/job:worker/task:1'."""
        job, index = (name or self.name).split(':')
        return '/job:%s/task:%s' % (job, index)

    def describe(self):
        """What runs.jsonl records about the cluster."""
        return {'task': self.name, 'cluster': self.cluster}


def task_from_environment(environ=None):
    """The Task TF_CONFIG makes this process, its port checked free; None without a cluster."""
    text = (os.environ if environ is None else environ).get(TF_CONFIG, '')
    task = parse(text)
    if task is not None:
        check_port_free(task)
    return task


def parse(text):
    """The Task described by TF_CONFIG's text; None when empty or a one-process cluster."""
    if not text.strip():
        return None
    try:
        config = reading.loads(text)
    except ValueError as e:
        raise ClusterConfigError('TF_CONFIG is not valid JSON (%s). Set it to %s, or unset it '
                                 'to train in one process.' % (e, _EXAMPLE))
    if not isinstance(config, dict):
        raise ClusterConfigError('TF_CONFIG must be a JSON object with "cluster" and "task", '
                                 'not %s. Set it to %s.' % (type(config).__name__, _EXAMPLE))
    unknown = sorted(set(config) - {'cluster', 'task'} - set(_OTHER_KEYS))
    if unknown:
        raise ClusterConfigError('TF_CONFIG has unknown keys %s; it takes "cluster" and "task" '
                                 '(and "environment"). Set it to %s.'
                                 % (', '.join('"%s"' % k for k in unknown), _EXAMPLE))
    if config.get('rpc_layer', 'grpc') != 'grpc':
        raise ClusterConfigError('TF_CONFIG "rpc_layer" is %r; only "grpc" is supported. Remove '
                                 'it or set it to "grpc".' % config['rpc_layer'])
    cluster = _check_cluster(config.get('cluster'))
    task_type, index = _check_task(config.get('task'), cluster)
    if sum(len(addresses) for addresses in cluster.values()) == 1:
        return None  # one process: it trains alone, as without TF_CONFIG
    if PS not in cluster:
        raise ClusterConfigError(
            'TF_CONFIG names %d processes but no "ps" job. This runtime keeps the variables on '
            'parameter servers: add "ps": ["host:port"] to its cluster, or train in one process '
            'without TF_CONFIG.' % sum(len(a) for a in cluster.values()))
    return Task(cluster, task_type, index)


def _check_cluster(cluster):
    if not isinstance(cluster, dict) or not cluster:
        raise ClusterConfigError('TF_CONFIG has no "cluster" (a JSON object of jobs, each a list '
                                 'of "host:port"). Set it to %s.' % _EXAMPLE)
    checked, seen = {}, {}
    for job, addresses in cluster.items():
        if job == 'evaluator':
            raise ClusterConfigError('TF_CONFIG names an "evaluator" job, which this trainer does '
                                     'not run: remove it, and evaluate the chief\'s model_dir '
                                     'with --mode=eval.')
        if job not in JOBS:
            raise ClusterConfigError('TF_CONFIG cluster job "%s" is not one of %s. Rename or '
                                     'remove it.' % (job, ', '.join(JOBS)))
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise ClusterConfigError('TF_CONFIG cluster job "%s" must be a list of "host:port" '
                                     'strings, not %s.' % (job, json.dumps(addresses)))
        for i, address in enumerate(addresses):
            where = _same_place(address, '%s:%d' % (job, i))
            if where in seen:
                other_name, other_address = seen[where]
                same = address if address == other_address else '%s (as %s)' % (
                    address, other_address)
                raise ClusterConfigError('TF_CONFIG gives %s to both %s and %s:%d; every task '
                                         'needs its own port.' % (same, other_name, job, i))
            seen[where] = ('%s:%d' % (job, i), address)
        if addresses:
            checked[job] = addresses
    if len(checked.get(CHIEF, [])) > 1:
        raise ClusterConfigError('TF_CONFIG names %d chief tasks; a cluster has at most one.'
                                 % len(checked[CHIEF]))
    if not (checked.get(CHIEF) or checked.get(WORKER)):
        raise ClusterConfigError('TF_CONFIG cluster has no "worker" or "chief" task: nothing '
                                 'would train. Add "worker": ["host:port", ...].')
    return checked


def _check_task(task, cluster):
    if not isinstance(task, dict) or 'type' not in task:
        raise ClusterConfigError('TF_CONFIG has no "task" (this process\'s {"type": ..., '
                                 '"index": ...}). Set it to %s.' % _EXAMPLE)
    task_type, index = task['type'], task.get('index', 0)
    if not isinstance(task_type, str):
        raise ClusterConfigError('TF_CONFIG task type %s is not a job name; give one of %s as '
                                 'a string, e.g. {"type": "worker", "index": 0}.'
                                 % (json.dumps(task_type), ', '.join(JOBS)))
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ClusterConfigError('TF_CONFIG task index %s is not a non-negative integer.'
                                 % json.dumps(index))
    if task_type not in cluster or index >= len(cluster[task_type]):
        jobs = ', '.join('%s has %d (indices 0-%d)' % (job, len(a), len(a) - 1)
                         for job, a in sorted(cluster.items()))
        raise ClusterConfigError('TF_CONFIG task {"type": %s, "index": %d} is not in its cluster '
                                 '(%s). Give each process a task its cluster lists.'
                                 % (json.dumps(task_type), index, jobs))
    return task_type, index


def _same_place(address, name):
    """What two addresses share when they reach the same port of the same machine.

    Every loopback name (localhost, 127.x.y.z, ::1) is this machine, so `localhost:2222` beside
    `127.0.0.1:2222` is one port given twice. Other names are compared as written: resolving
    them could wait on DNS before anything has started.
    """
    host, port = _split_address(address, name)
    try:
        loopback = host.lower() == 'localhost' or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return ('this machine' if loopback else host.lower(), port)


# A host name or an IPv4 address; an IPv6 address is written in brackets: [::1]:2222.
_HOST_NAME = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$')


def _is_ipv6(host):
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False


def _split_address(address, name):
    """(host, port) of 'host:port' ('[::1]:2222' too); ClusterConfigError naming the task if not."""
    host, _, port = address.rpartition(':')
    bracketed = host.startswith('[') and host.endswith(']')
    host = host[1:-1] if bracketed else host
    if not (_is_ipv6(host) if bracketed else _HOST_NAME.match(host)):
        host = ''  # '[::1:2222', '::1:2222' (IPv6 needs its brackets), 'a b:2222'
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterConfigError('TF_CONFIG address %s of %s is not "host:port" (a port from 1 '
                                 'to 65535). Fix it in TF_CONFIG.' % (json.dumps(address), name))
    return host, int(port)


def check_port_free(task):
    """Refuses to start when this task's port is in use, before TensorFlow tries to serve on it.

    TensorFlow's server listens on every interface at the task's port, so that is what is tried.
    """
    _, port = _split_address(task.address, task.name)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Connections of a previous run lingering in TIME_WAIT do not count; a listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(('', port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ClusterConfigError(
                'port %d of %s (%s in TF_CONFIG) is in use by another process. Stop that process '
                'or give this task a free port in TF_CONFIG.' % (port, task.name, task.address))
        raise ClusterConfigError('cannot listen on port %d of %s (%s in TF_CONFIG): %s. Give '
                                 'this task another port.'
                                 % (port, task.name, task.address, e.strerror or e))
    finally:
        probe.close()


def reachable(address, timeout=1.0):
    """Whether something accepts TCP connections at 'host:port' (a task's server is up)."""
    host, port = _split_address(address, address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False
