"""The course's socketserver server (a thread per client: ThreadingTCPServer), with lesson 02's
echo (b'123' appended) where the course answers data.upper(). A row of bench/ladder.sh, not a
lesson. The course's code as it writes it; only the port and the `listening on` line are ours:

    python3 bench/echo_socketserver.py 0      # port 0: the system picks; prints the address
"""
import socketserver
import sys


class MyServer(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            try:
                data = self.request.recv(1024)
                if len(data) == 0: break
                print(data.decode('utf8'))
                self.request.send(data + b'123')
            except ConnectionResetError as e:
                print(e)
                break


if __name__ == '__main__':
    server = socketserver.ThreadingTCPServer(('127.0.0.1', int(sys.argv[1])), MyServer)
    print('listening on %s:%d' % server.server_address, flush=True)
    server.serve_forever()
