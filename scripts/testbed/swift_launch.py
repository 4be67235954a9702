# Runs one Swift server of the test bed (scripts/testbed.sh) from Debian's Swift packages.
#
#   /usr/bin/python3 swift_launch.py SERVER CONF LOG
#
# SERVER is proxy-server, account-server, container-server or object-server. Two things differ
# from Debian's swift-*-server launchers, both because the test bed must leave the machine alone:
#  - swift.conf is read from the configuration's own directory, not /etc/swift;
#  - logs go to the file LOG: this machine has no /dev/log, and Swift would otherwise send them to
#    UDP syslog, where they are lost.
import logging
import os
import sys

from swift.common import utils


class _FileLog(logging.FileHandler):
    """Stands in for Swift's syslog handler: same constructor call, a plain file underneath."""

    def __init__(self, *args, **kwargs):
        super().__init__(_LOG_FILE)


def main():
    global _LOG_FILE
    server, conf, _LOG_FILE = sys.argv[1:4]
    utils.ThreadSafeSysLogHandler = _FileLog
    utils.set_swift_dir(os.path.dirname(os.path.abspath(conf)))
    from swift.common.wsgi import run_wsgi

    kwargs = {}
    if server == "object-server":
        from swift.obj import server as obj

        kwargs["global_conf_callback"] = obj.global_conf_callback
    sys.exit(run_wsgi(conf, server, verbose=False, **kwargs))


_LOG_FILE = None

if __name__ == "__main__":
    main()
