"""The TCP echo server and client of the asyncio documentation ("Streams"), together.

    python echo_streams.py [CLIENTS]

The server echoes what one read gives it and closes; each client sends a message, reads the
echo and closes.  The clients run one after another, then the server closes.
"""

import asyncio
import sys


async def handle_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await reader.read(100)
    message = data.decode()
    addr = writer.get_extra_info("peername")
    print(f"Received {message!r} from {addr!r}")
    print(f"Send: {message!r}")
    writer.write(data)
    await writer.drain()
    print("Close the connection")
    writer.close()
    await writer.wait_closed()


async def tcp_echo_client(message: str, port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    print(f"Send: {message!r}")
    writer.write(message.encode())
    await writer.drain()
    data = await reader.read(100)
    print(f"Received: {data.decode()!r}")
    print("Close the connection")
    writer.close()
    await writer.wait_closed()


async def main(clients: int) -> None:
    server = await asyncio.start_server(handle_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        for i in range(clients):
            await tcp_echo_client(f"Hello World {i}!", port)
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
