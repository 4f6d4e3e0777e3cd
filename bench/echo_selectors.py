"""The course's IO多路复用 server on selectors (epoll on Linux), with lesson 02's echo (b'123'
appended) where the course answers data.upper(). A row of bench/ladder.sh, not a lesson. The
course's code as it writes it; only the port and the `listening on` line are ours:

    python3 bench/echo_selectors.py 0         # port 0: the system picks; prints the address

(select.select itself stops at descriptor 1024: FD_SETSIZE. selectors.DefaultSelector is the
course's answer for more.)
"""
import selectors
import socket
import sys

sel = selectors.DefaultSelector()


def accept(server, mask):
    conn, addr = server.accept()
    conn.setblocking(False)
    sel.register(conn, selectors.EVENT_READ, read)


def read(conn, mask):
    try:
        data = conn.recv(1024)
        if not data:
            raise ConnectionResetError
        print(data.decode('utf8'))
        conn.send(data + b'123')
    except ConnectionResetError:
        sel.unregister(conn)
        conn.close()


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('127.0.0.1', int(sys.argv[1])))
server.listen(5)
server.setblocking(False)
sel.register(server, selectors.EVENT_READ, accept)
print('listening on %s:%d' % server.getsockname(), flush=True)

while True:
    events = sel.select()
    for key, mask in events:
        callback = key.data
        callback(key.fileobj, mask)
