"""A TCP forwarder between s2proxy and the upstream that the test can cut like a network does.

    relay = CutRelay(target_port=upstream.c2s).start()     # proxy --upstream 127.0.0.1:relay.port
    relay.cut()    # every open connection goes silent both ways: no FIN, no RST, bytes vanish;
                   # new connections are accepted and then silent too (the path is down)
    relay.heal()   # new connections work again; the cut ones stay dead (as after a real outage)
    relay.mute_replies = True   # the upstream's bytes toward the proxy vanish, the proxy's still
                                # arrive (the upstream routes what it is sent; its acks are lost)
    relay.reply_delay = 0.3     # the upstream's bytes reach the proxy this many seconds late
    relay.stop()

Threads and blocking sockets; one pair of pump threads per connection.
"""
import select
import socket
import threading
import time

HOST = "127.0.0.1"


class CutRelay:
    def __init__(self, target_port, target_host=HOST):
        self.target = (target_host, target_port)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(256)
        self.port = self.lsock.getsockname()[1]
        self.generation = 0  # bumped by cut(): connections of older generations are dead
        self.down = False
        self.stopped = False
        self.lock = threading.Lock()
        self.conns = []
        self.accepted = 0
        self.mute_replies = False
        self.reply_delay = 0.0

    def start(self):
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def cut(self):
        with self.lock:
            self.generation += 1
            self.down = True

    def heal(self):
        with self.lock:
            self.down = False

    def stop(self):
        self.stopped = True
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            for s in self.conns:
                try:
                    s.close()
                except OSError:
                    pass

    def _accept_loop(self):
        while not self.stopped:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.accepted += 1
            with self.lock:
                gen = self.generation
                down = self.down
                self.conns.append(c)
            if down:
                # The path is down: the SYN got an answer (loopback), nothing else does.
                threading.Thread(target=self._sink, args=(c,), daemon=True).start()
                continue
            try:
                u = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns.append(u)
            for a, b, reply in ((c, u, False), (u, c, True)):
                threading.Thread(target=self._pump, args=(a, b, gen, reply), daemon=True).start()

    def _alive(self, gen):
        return not self.stopped and gen == self.generation

    def _pump(self, src, dst, gen, reply):
        while not self.stopped:
            r, _, _ = select.select([src], [], [], 0.2)
            if not r:
                continue
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not self._alive(gen):
                if not data:
                    return
                continue  # cut: the bytes vanish, and nobody is told
            if data and reply:
                if self.reply_delay > 0:
                    time.sleep(self.reply_delay)
                if self.mute_replies or not self._alive(gen):
                    continue
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def _sink(self, c):
        while not self.stopped:
            r, _, _ = select.select([c], [], [], 0.2)
            if r:
                try:
                    if not c.recv(65536):
                        return
                except OSError:
                    return
