"""``python -m sngan_gluon.launch``: the command line of the distributed-job launcher.

Parses flags and hands them to :mod:`sngan_gluon.launcher`, which starts and
supervises the scheduler, servers and workers (see its docstring for the
protocol and the modes). Bad input (a :class:`~sngan_gluon.errors.UserError`:
a flag, the hosts file, a program that cannot be started) ends in one line and
exit code 2; any other exception is a bug and keeps its traceback.
"""
import argparse
import sys

from .. import launcher
from ..errors import UserError
from ..launcher import LaunchError
from ..supervise import say
from . import EXIT_INTERRUPTED, OneLineParser, finite_float, user_error


def build_parser():
    """The argument parser of ``python -m sngan_gluon.launch``."""
    parser = OneLineParser(
        prog="python -m sngan_gluon.launch",
        usage="%(prog)s -n N [options] -- COMMAND ...",
        description="Start a dist_sync MXNet job: one scheduler, servers and N workers "
                    "running COMMAND, on this host over loopback (default) or on the "
                    "hosts of --hosts.")
    parser.add_argument("-n", "--num-workers", type=int, required=True,
                        help="number of workers")
    parser.add_argument("-s", "--num-servers", type=int,
                        help="number of servers (default: the number of workers)")
    parser.add_argument("--port", type=int,
                        help="scheduler port (default: a free one locally, %d with --hosts)"
                             % launcher.DEFAULT_HOSTS_PORT)
    parser.add_argument("--timeout", type=finite_float,
                        help="stop the whole job after this many seconds (exit code 124; "
                             "default: no limit)")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment variable for every process (repeatable)")
    parser.add_argument("--python",
                        help="interpreter of the scheduler and servers (default: this one)")
    hosts = parser.add_argument_group("multi-host")
    hosts.add_argument("--hosts", metavar="FILE",
                       help="file with one host per line; the scheduler runs on the first")
    mode = hosts.add_mutually_exclusive_group()
    mode.add_argument("--print-commands", action="store_true",
                      help="print the ssh command of every process (what --hosts does "
                           "without --ssh)")
    mode.add_argument("--ssh", action="store_true",
                      help="run those commands through ssh and wait for the workers")
    hosts.add_argument("--workdir", help="directory on the hosts (default: the current one)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the worker command, after --")
    return parser


def _parse_env(pairs):
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise LaunchError("--env expects KEY=VALUE, got %r" % pair)
        env[key] = value
    return env


def _print_commands(lines):
    """Print the lines grouped by host, in the hosts file's order."""
    names = launcher.process_names(lines)
    for host in dict.fromkeys(host for host, _, _ in lines):
        print("# ---- %s" % host)
        for (where, _, line), name in zip(lines, names):
            if where == host:
                print("# %s" % name)
                print(line)


def _check_args(args, command):
    """Raise LaunchError naming the first bad flag."""
    if not command:
        raise LaunchError("no worker command given (put it after --)")
    launcher.check_sizes(args.num_workers, args.num_workers if args.num_servers is None
                       else args.num_servers)
    if args.port is not None and not 0 < args.port < 65536:
        raise LaunchError("--port must be in 1..65535, got %d" % args.port)
    if args.timeout is not None and not args.timeout > 0:
        raise LaunchError("--timeout must be positive, got %g" % args.timeout)
    if args.hosts is None and (args.ssh or args.print_commands or args.workdir):
        raise LaunchError("--print-commands, --ssh and --workdir need --hosts")


def main(argv=None):
    """Entry point of ``python -m sngan_gluon.launch``; returns the exit code."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        _check_args(args, command)
        env = _parse_env(args.env)
        if args.hosts is not None:
            lines = launcher.host_commands(launcher.read_hosts(args.hosts), command,
                                           args.num_workers, args.num_servers,
                                           args.port or launcher.DEFAULT_HOSTS_PORT,
                                           args.workdir, args.python, env)
    except UserError as err:
        return user_error(err)

    if args.hosts is not None and not args.ssh:
        _print_commands(lines)
        return 0
    try:  # Ctrl-C, SIGTERM, SIGHUP while the job runs: the launcher stops it in order
        if args.hosts is None:
            return launcher.launch_local(command, args.num_workers, args.num_servers,
                                         args.port, args.timeout, env, python=args.python)
        return launcher.launch_hosts(lines, args.timeout)
    except UserError as err:  # the command or ssh could not be started
        return user_error(err)
    except KeyboardInterrupt:  # before the job started
        say("interrupted; the job was stopped")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
