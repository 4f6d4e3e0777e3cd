"""The echo with asyncio (协程 in today's Python): a coroutine per client on one thread, with
lesson 02's echo (b'123' appended). A row of bench/ladder.sh, not a lesson. The usual
asyncio streams server; only the port and the `listening on` line are ours:

    python3 bench/echo_asyncio.py 0           # port 0: the system picks; prints the address
"""
import asyncio
import sys


async def talk(reader, writer):
    while True:
        data = await reader.read(1024)
        if not data:
            break
        print(data.decode('utf8'))
        writer.write(data + b'123')
        await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(talk, '127.0.0.1', int(sys.argv[1]))
    print('listening on %s:%d' % server.sockets[0].getsockname(), flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
