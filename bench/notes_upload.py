"""The course notes' section 4 upload (优酷项目 视频上传), as a reference row of the benchmark.

The logic that decides the speed is the notes', line for line: the client sends the 4-byte
'i' length, the json dict header (报头), then the file with `for line in f: client.send(line)`;
the server reads the header with recv(4) / recv(n) and the body with `recv(1024)` into a file
opened with 'ab'.

Adapted so a script can run it, and nothing else:
- address, file and target directory come from the command line (the notes hard-code a LAN
  IP, a Windows folder and pick a file by number from input());
- the client uploads one file, half-closes and waits for the server's close, so its exit means
  "stored"; the header's file_name is the file's own name (the notes hard-code one; bug 10 in
  the course-notes README), which changes no byte count;
- the server prints `listening on IP:PORT` first (port 0 picks a free one), and when a client
  closes it closes that connection and accepts the next, instead of crashing on
  struct.unpack(b'') (bug 11); a body loop that sees b'' stops instead of spinning forever;
- the server writes into --dir, not the current directory.

    python3 bench/notes_upload.py server --addr 127.0.0.1:0 --dir /dev/shm/up
    python3 bench/notes_upload.py client --addr 127.0.0.1:PORT /dev/shm/video.bin
"""

import argparse
import json
import os
import socket
import struct
import sys
from socket import SOL_SOCKET, SO_REUSEADDR


def host_port(text):
    host, _, port = text.rpartition(':')
    return host.strip('[]'), int(port)


def server(addr, directory):
    server = socket.socket()
    server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    server.bind(host_port(addr))
    server.listen(5)
    ip, port = server.getsockname()[:2]
    print(f'listening on {ip}:{port}', flush=True)

    while True:
        sock, address = server.accept()
        print(address, file=sys.stderr)
        serve(sock, directory)
        sock.close()


def serve(sock, directory):
    while True:
        # 1. the fixed 4-byte header length
        recv_first = sock.recv(4)
        if not recv_first:  # adapted: the client closed (the notes crash here)
            return
        # 2. unpack it
        dict_length = struct.unpack('i', recv_first)[0]
        # 3. the dict header
        real_data = sock.recv(dict_length)
        # 4. json.loads decodes and deserialises
        real_dict = json.loads(real_data)
        print(real_dict, file=sys.stderr)
        # 5. size and file name
        data_length = real_dict.get('size')
        file_name = real_dict.get('file_name')

        recv_size = 0
        with open(os.path.join(directory, file_name), 'ab') as f:
            while recv_size < data_length:
                data = sock.recv(1024)
                if not data:  # adapted: the notes spin here forever
                    return
                recv_size += len(data)
                f.write(data)
        print(f'received {recv_size} bytes', file=sys.stderr)


def client(addr, movie_path):
    client = socket.socket()
    client.connect(host_port(addr))

    data_dict = {
        'file_name': os.path.basename(movie_path),
        'desc': '这是非常重要的数据',
        'size': os.path.getsize(movie_path),
        'info': '视频很提神醒脑!'
    }
    data_json = json.dumps(data_dict)
    data_first = struct.pack('i', len(data_json))
    client.send(data_first)
    client.send(data_json.encode('utf8'))
    with open(movie_path, 'rb') as f:
        for line in f:
            client.send(line)
    client.shutdown(socket.SHUT_WR)  # adapted: wait until the server has read everything
    client.recv(1)
    client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('server', help='receive uploads into --dir, one connection after another')
    s.add_argument('--addr', default='127.0.0.1:0')
    s.add_argument('--dir', default='.')
    c = sub.add_parser('client', help='upload one file')
    c.add_argument('--addr', required=True)
    c.add_argument('path')
    args = parser.parse_args()
    if args.cmd == 'server':
        server(args.addr, args.dir)
    else:
        client(args.addr, args.path)


if __name__ == '__main__':
    main()
