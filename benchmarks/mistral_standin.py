"""A lean stand-in for Mistral's chat API for load tests: asyncio, one coroutine per request.

    python benchmarks/mistral_standin.py [--port 0] [--delay 3] [--hang-marker WORD]

It speaks `POST /v1/chat/completions` (keep-alive HTTP/1.1, as the SDK's pooled client
expects), so the bot's real `mistralai` SDK path is exercised. Each answer waits `delay`
seconds; a question containing the hang marker waits `hang` seconds (60 by default:
longer than any webhook budget), like a model that stops responding. Thousands of waiting
requests cost a coroutine each, not a thread (tests/fakes/mistral_server.py spends one
thread per request).

Control, for the benchmark: `POST /_control` with JSON `{"delay": s, "hang_marker": w,
"hang": s}` changes the behaviour; `GET /_stats` returns request counts. Prints
`listening on http://127.0.0.1:PORT` once ready; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
import uuid

ANSWER = (
    "{question} The meeting agreed to keep the current plan, with the timeline reviewed at "
    "the next session. *Key points*:\n- the budget stays as approved\n- the owners report "
    "back in two weeks\n- open questions go to the team lead\n\nThe discussion also noted "
    "that the figures still need checking before anything is announced, and that the "
    "partners will be told once the decision is final."
)


class StandIn:
    """Behaviour and counters shared by every connection."""

    def __init__(self, delay: float, hang_marker: str, hang: float) -> None:
        self.delay = delay
        self.hang_marker = hang_marker.lower()
        self.hang = hang
        self.counts = {"chat": 0, "hung": 0, "in_flight": 0, "max_in_flight": 0}

    async def chat(self, body: dict) -> dict:
        """One chat completion, after the configured wait."""
        question = _question(body)
        self.counts["chat"] += 1
        self.counts["in_flight"] += 1
        self.counts["max_in_flight"] = max(self.counts["max_in_flight"], self.counts["in_flight"])
        try:
            if self.hang_marker and self.hang_marker in question.lower():
                self.counts["hung"] += 1
                await asyncio.sleep(self.hang)
            elif self.delay > 0:
                await asyncio.sleep(self.delay)
        finally:
            self.counts["in_flight"] -= 1
        return {
            "id": uuid.uuid4().hex,
            "object": "chat.completion",
            "model": body.get("model", "mistral-small-latest"),
            "created": int(time.time()),
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Stub answer. " + ANSWER.format(question=question[:200]),
                        "tool_calls": None,
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020},
        }

    def control(self, body: dict) -> dict:
        """Change delay / hang marker / hang seconds; returns the new settings."""
        self.delay = float(body.get("delay", self.delay))
        self.hang_marker = str(body.get("hang_marker", self.hang_marker)).lower()
        self.hang = float(body.get("hang", self.hang))
        return {"delay": self.delay, "hang_marker": self.hang_marker, "hang": self.hang}

    async def route(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        """Status and JSON payload for one request."""
        path = path.split("?", 1)[0].rstrip("/")
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return 400, {"message": "invalid JSON"}
        if method == "POST" and path == "/v1/chat/completions":
            return 200, await self.chat(data)
        if method == "POST" and path == "/_control":
            return 200, self.control(data)
        if method == "GET" and path == "/_stats":
            return 200, dict(self.counts)
        return 404, {"detail": "Not Found"}

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Requests on one keep-alive connection, until the client closes it."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                status, payload = await self.route(method, path, body)
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                    .encode() + data
                )  # fmt: skip
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the client went away (a timeout), or closed its keep-alive connection
        except ValueError:
            pass  # a malformed request line: drop the connection
        except asyncio.CancelledError:
            pass  # shutting down with requests still waiting (hung ones): just close
        finally:
            writer.close()


def _question(body: dict) -> str:
    """The question: after the last `Question:` of the last user message."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
            return str(content or "").rsplit("Question:", 1)[-1].strip()
    return ""


async def serve(port: int, stand_in: StandIn) -> None:
    """Listen on 127.0.0.1 until SIGTERM or SIGINT."""
    server = await asyncio.start_server(stand_in.serve_connection, "127.0.0.1", port, backlog=2048)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--hang-marker", default="", help="questions with this word hang")
    parser.add_argument("--hang", type=float, default=60.0, help="seconds a hung answer waits")
    args = parser.parse_args()
    asyncio.run(serve(args.port, StandIn(args.delay, args.hang_marker, args.hang)))


if __name__ == "__main__":
    main()
