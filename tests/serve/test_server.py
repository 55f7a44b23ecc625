"""The service's listening socket."""

import asyncio
import socket

from vaekit.serve.server import bind


def test_connections_of_the_bound_socket_turn_nagle_off():
    """asyncio sets TCP_NODELAY only on connections whose socket says IPPROTO_TCP; with a
    socket made with protocol 0 every response written in two parts waited for the
    client's delayed ACK (40 ms on Linux) where uvloop is not installed."""
    sock = bind("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP

    async def accepted_nodelay() -> list[int]:
        seen = []

        async def handler(reader, writer):
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handler, sock=sock)
        reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        await reader.read()  # until the server has closed the connection
        writer.close()
        server.close()
        await server.wait_closed()
        return seen

    loop = asyncio.SelectorEventLoop()  # the standard library's loop, whatever policy is installed
    try:
        seen = loop.run_until_complete(accepted_nodelay())
    finally:
        loop.close()
    assert len(seen) == 1 and seen[0] != 0
