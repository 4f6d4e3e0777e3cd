"""The notes' echo (every message back with b'123' appended), served by Python's socketserver
with a thread or a process per client, and a few lines of pure-Python CPU work per message.
A tool for bench/gil.sh, not a lesson:

    python3 bench/gil_echo.py threads 20000      # ThreadingTCPServer, 20000 loop turns a message
    python3 bench/gil_echo.py processes 20000    # ForkingTCPServer (Unix)

Prints `listening on 127.0.0.1:PORT` (port 0: the system picks) and serves until killed.
"""
import socketserver
import sys


def work(turns):
    # The CPU work: about a millisecond of Python bytecode at 20000 turns (CPython 3.11).
    total = 0
    for i in range(turns):
        total += i * i % 7
    return total


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(1024)
            if not data:
                break
            work(TURNS)
            self.request.sendall(data + b'123')


if __name__ == '__main__':
    mode, TURNS = sys.argv[1], int(sys.argv[2])
    Server = {'threads': socketserver.ThreadingTCPServer,
              'processes': socketserver.ForkingTCPServer}[mode]
    Server.allow_reuse_address = True
    Server.daemon_threads = True
    with Server(('127.0.0.1', 0), Echo) as server:
        print('listening on %s:%d' % server.server_address, flush=True)
        server.serve_forever()
