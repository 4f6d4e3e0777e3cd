"""The course's gevent server (协程: monkey.patch_all, then spawn(talk, conn) per client), with
lesson 02's echo (b'123' appended) where the course answers data.upper(); lesson 12's README
shows it line by line beside the Rust. A row of bench/ladder.sh, not a lesson. The course's
code as it writes it; only the port and the `listening on` line are ours:

    python3 bench/echo_gevent.py 0            # port 0: the system picks; prints the address
"""
from gevent import monkey; monkey.patch_all()
from gevent import spawn
import socket
import sys


def talk(conn):
    while True:
        try:
            data = conn.recv(1024)
            if len(data) == 0: break
            print(data.decode('utf-8'))
            conn.send(data + b'123')
        except ConnectionResetError as e:
            print(e)
            break
    conn.close()


def server(ip, port):
    server = socket.socket()
    server.bind((ip, port))
    server.listen(5)
    print('listening on %s:%d' % server.getsockname(), flush=True)
    while True:
        conn, addr = server.accept()
        spawn(talk, conn)


if __name__ == '__main__':
    g1 = spawn(server, '127.0.0.1', int(sys.argv[1]))
    g1.join()
