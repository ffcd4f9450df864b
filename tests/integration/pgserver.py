"""A throwaway PostgreSQL server for tests (Debian postgresql-15): initdb in a temp dir, a Unix socket
in that dir and TCP on a loopback port, password authentication (scram-sha-256) for the superuser
`s2test`, so that the proxy's logs can be checked for the password. As root, the server runs as
`postgres` (PostgreSQL refuses root).

S2_STORE=postgresql makes every s2proxy the integration harness starts use its own schema on the
one server started on first use (harness.ProxyProc), so whole test files run against the PostgreSQL
store unchanged.
"""
import atexit
import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
import urllib.parse

PASSWORD = "pg-secret-8c1f3a9e"
USER = "s2test"


def _pgbin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("no PostgreSQL server found (apt-get install postgresql-15)")
    return os.path.dirname(found[-1])


class PostgresServer:
    def __init__(self, port=36432):
        self.bin = _pgbin()
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="s2it-pg-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.as_pg = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, user="postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        self.started = False

    def _run(self, *argv):
        return subprocess.run(self.as_pg + list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=60)

    def start(self):
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        if self.as_pg:
            shutil.chown(pwfile, user="postgres")
        r = self._run(os.path.join(self.bin, "initdb"), "-D", self.dir + "/data", "-U", USER, "--pwfile", pwfile,
                      "--auth=scram-sha-256", "-E", "UTF8", "--no-sync")
        if r.returncode != 0:
            raise RuntimeError("initdb failed:\n" + r.stdout)
        os.unlink(pwfile)
        opts = ("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c max_connections=300"
                % (self.port, self.dir))
        r = self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.dir + "/data", "-l", self.dir + "/server.log",
                      "-w", "-o", opts, "start")
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start failed:\n%s\n%s" % (r.stdout, self.log_tail()))
        self.started = True
        atexit.register(self.stop)
        return self

    def stop(self):
        if self.started:
            self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.dir + "/data", "-m", "immediate", "stop")
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=20):
        try:
            with open(self.dir + "/server.log", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def psql(self, sql, schema=None):
        """Runs SQL as the superuser; returns stdout (unaligned, tuples only)."""
        env = dict(os.environ, PGPASSWORD=PASSWORD)
        if schema:
            env["PGOPTIONS"] = "-c search_path=%s" % schema
        r = subprocess.run([os.path.join(self.bin, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", "postgres", "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("psql %r failed: %s" % (sql, r.stdout))
        return r.stdout.strip()

    def url(self, schema):
        """A postgresql:// URL for the proxy, with the password in it (the proxy must never log it)
        and the schema as the search path."""
        opts = urllib.parse.quote("-c search_path=%s" % schema, safe="")
        return "postgresql://%s:%s@127.0.0.1:%d/postgres?options=%s" % (USER, PASSWORD, self.port, opts)


def schema_for(data_dir):
    return "p_" + hashlib.sha256(data_dir.encode()).hexdigest()[:16]


_server = None


def server():
    """The one server of this test process, started on first use."""
    global _server
    if _server is None:
        _server = PostgresServer().start()
    return _server


def store_url_for(data_dir):
    """A fresh schema for one proxy's data dir, and the URL that selects it."""
    s = server()
    schema = schema_for(data_dir)
    s.psql("CREATE SCHEMA IF NOT EXISTS %s" % schema)
    return s.url(schema)
