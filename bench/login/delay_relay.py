"""A TCP forwarder that adds a fixed one-way delay in both directions (asyncio, own thread).

    relay = DelayRelay(listen_port=0, target_port=56222, one_way=0.025).start()
    ... clients connect to 127.0.0.1:relay.listen_port: RTT 50 ms to the target ...
    relay.stop()

Bytes are forwarded in order, each chunk `one_way` seconds after the relay read it, without any
bandwidth limit (a long fat pipe, not a slow one). EOF (a client cutting its TCP connection, a server
closing) is forwarded with the same delay.

The TCP handshake: the relay cannot delay the kernel's loopback SYN/SYN-ACK, so connect() returns at
once. A real connect() over this path returns after one RTT and only then can the client send; the
relay models it by forwarding the *first* client->server chunk of a connection 3 x one_way after it
arrived (SYN + SYN-ACK + the data's own way) instead of 1 x. So "time from TCP connect" includes the
TCP handshake round trip, as it would on a real network.

Run alone: /usr/bin/python3 delay_relay.py LISTEN_PORT TARGET_PORT [ONE_WAY_MS]
"""
import asyncio
import socket
import sys
import threading
import time

HOST = "127.0.0.1"


def _nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class DelayRelay:
    def __init__(self, listen_port, target_port, one_way=0.025, host=HOST, target_host=HOST,
                 model_tcp_handshake=True):
        self.listen_port = listen_port
        self.target_port = target_port
        self.one_way = one_way
        self.host = host
        self.target_host = target_host
        self.model_tcp_handshake = model_tcp_handshake
        self.loop = None
        self.server = None
        self.thread = None
        self.conns = set()
        self.accepted = 0
        self._ready = threading.Event()
        self._error = None

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout=5.0):
        self.thread = threading.Thread(target=self._run, name="relay-%d" % self.listen_port, daemon=True)
        self.thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("relay %d did not start" % self.listen_port)
        if self._error:
            raise self._error
        return self

    def _run(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.listen_port, reuse_address=True))
        except OSError as e:
            self._error = e
            self._ready.set()
            return
        self.listen_port = self.server.sockets[0].getsockname()[1]  # listen_port=0: the kernel's choice
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def stop(self, timeout=5.0):
        if self.loop is None or self.thread is None:
            return

        async def _shutdown():
            self.server.close()
            for w in list(self.conns):
                w.close()
            await asyncio.sleep(0)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(_shutdown(), self.loop)
        self.thread.join(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- forwarding -----------------------------------------------------------------------------
    async def _handle(self, creader, cwriter):
        self.accepted += 1
        self.conns.add(cwriter)
        _nodelay(cwriter)
        try:
            sreader, swriter = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            cwriter.close()
            self.conns.discard(cwriter)
            return
        self.conns.add(swriter)
        _nodelay(swriter)
        first_extra = 2 * self.one_way if self.model_tcp_handshake else 0.0
        try:
            await asyncio.gather(self._pipe(creader, swriter, first_extra),
                                 self._pipe(sreader, cwriter, 0.0))
        finally:
            for w in (cwriter, swriter):
                self.conns.discard(w)
                w.close()

    async def _pipe(self, reader, writer, first_extra):
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()

        async def pump():
            extra = first_extra
            while True:
                try:
                    data = await reader.read(65536)
                except (ConnectionError, OSError):
                    data = b""
                queue.put_nowait((loop.time() + self.one_way + extra, data))
                extra = 0.0
                if not data:
                    return

        ptask = asyncio.create_task(pump())
        last = 0.0
        try:
            while True:
                when, data = await queue.get()
                when = max(when, last)  # keep the order
                last = when
                delay = when - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            ptask.cancel()
            # end of this direction: close the connection it writes to (a cut is a cut)
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except (OSError, RuntimeError):
                pass
            writer.close()


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    one_way = (float(sys.argv[3]) if len(sys.argv) > 3 else 25.0) / 1000.0
    r = DelayRelay(int(sys.argv[1]), int(sys.argv[2]), one_way).start()
    print("relay 127.0.0.1:%s -> 127.0.0.1:%s, one way %.1f ms; Ctrl-C stops" % (sys.argv[1], sys.argv[2],
                                                                                   one_way * 1000))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        r.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
