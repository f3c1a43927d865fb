#!/usr/bin/env python3
"""Hostile traffic against a running `retort serve` on loopback, bounded in count and time.

Sends N mutated requests over every route: JSON-level mutations (values swapped for extremes,
wrong types, deep nesting, invalid UTF-8, huge strings), byte-level mutations (flips, cuts,
inserts), and HTTP-level ones (bad methods, broken request lines and headers, lying or
negative Content-Length, chunked bodies, pipelined bursts, HTTP/1.0). Prints a JSON summary:
the status histogram, transport failures, and whether the server stayed healthy.

Usage: hostile_http.py --port P --key KEY --lm MODEL --classifier MODEL [--requests N] [--seed S]
                       [--pid PID] [--max-seconds T]
Exit status 0 when: no answer is a 5xx other than 503, every request got an answer (or a
deliberate close for malformed HTTP), the server process is alive and /health answers.
"""
import argparse
import json
import os
import random
import socket
import sys
import time


def read_answer(sock, buf, deadline):
    """One HTTP response from sock -> (status, body, rest of buffer); status 0: none."""
    def more():  # appends what arrives before the deadline; False on timeout or close
        nonlocal buf
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, OSError):
            return False
        buf += chunk
        return bool(chunk)

    while b"\r\n\r\n" not in buf:
        if not more():
            return 0, b"", buf
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return -1, head, buf
    if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
        return read_answer(sock, buf, deadline)
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower()] = v.strip()
    read_answer.closing = headers.get(b"connection", b"").lower() == b"close"
    if b"content-length" in headers:
        n = int(headers[b"content-length"])
        while len(buf) < n:
            if not more():
                return 0, b"", buf
        return status, buf[:n], buf[n:]
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = b""
        while True:
            while b"\r\n" not in buf:
                if not more():
                    return 0, b"", buf
            size_line, _, buf = buf.partition(b"\r\n")
            size = int(size_line, 16)
            while len(buf) < size + 2:
                if not more():
                    return 0, b"", buf
            body += buf[:size]
            buf = buf[size + 2:]
            if size == 0:
                return status, body, buf
    return status, b"", buf


read_answer.closing = False


def http_request(method, path, body=b"", key=None, version="1.1", extra=(), content_length=None):
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1", "User-Agent: hostile/1"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body or method in ("POST", "PUT"):
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


EXTREMES = [None, True, False, 0, -1, 1, 2**31, 2**63 - 1, -2**63, 2**64, 1e308, -1e308, 0.5, 1e-320, "",
            "x" * 5000, "\u0000", "\ud7ff", "\U0001F600" * 10, [], {}, [1, 2, 3], {"a": 1}, [[[[[]]]]], "NaN"]
RAW_EXTREMES = ["1e999", "-1e999", "NaN", "Infinity", "18446744073709551616", "0x10", "\"\\ud800\"", "[" * 80 + "]" * 80,
                "{\"a\":" * 70 + "1" + "}" * 70, "\"\xff\xfe\"", "1" * 400, "-0", "1e-400"]


def seeds(lm, clf):
    return [
        ("POST", "/v1/completions", {"model": lm, "prompt": "And God said", "max_tokens": 2, "logprobs": 2, "seed": 1}),
        ("POST", "/v1/completions", {"model": lm, "prompt": [65, 110, 100], "max_tokens": 1, "echo": True, "logprobs": 5, "temperature": 0}),
        ("POST", "/v1/completions", {"model": lm, "prompt": "In the", "max_tokens": 3, "n": 2, "stop": ["\n"], "stream": True,
                                     "stream_options": {"include_usage": True}}),
        ("POST", "/v1/chat/completions", {"model": lm, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2,
                                          "logprobs": True, "top_logprobs": 2}),
        ("POST", "/v1/chat/completions", {"model": lm, "messages": [{"role": "system", "content": "be brief"},
                                                                    {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                                          "max_tokens": 2, "stream": True}),
        ("POST", "/v1/classify", {"model": clf, "input": [[random.randint(0, 255) for _ in range(784)]], "top_k": 3}),
        ("GET", "/v1/models", None),
        ("GET", f"/v1/models/{lm}", None),
        ("GET", f"/v1/models/{lm}/tokenizer", None),
        ("GET", "/v1/admin/keys", None),
        ("POST", "/v1/admin/keys", {"name": "fuzz", "rpm": 1}),
        ("DELETE", "/v1/admin/keys/nobody", None),
        ("GET", "/health", None),
    ]


def mutate_json(rng, value):
    """A copy of value with one leaf or key changed."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        value = dict(value)
        k = rng.choice(list(value))
        r = rng.random()
        if r < 0.15:
            del value[k]
        elif r < 0.25:
            value[k + rng.choice(["", "_", "\u00e9"])] = rng.choice(EXTREMES)
        else:
            value[k] = mutate_json(rng, value[k])
        return value
    if isinstance(value, list) and value and rng.random() < 0.8:
        value = list(value)
        i = rng.randrange(len(value))
        value[i] = mutate_json(rng, value[i])
        if rng.random() < 0.1:
            value = value * rng.randint(2, 50)
        return value
    return rng.choice(EXTREMES)


def mutate_bytes(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not data:
            break
        at = rng.randrange(len(data))
        op = rng.random()
        if op < 0.4:
            data[at] = rng.randrange(256)
        elif op < 0.7:
            del data[at:at + rng.randint(1, 8)]
        else:
            data[at:at] = rng.choice([b"{", b"}", b"[", b"]", b"\"", b":", b",", b"\\u", b"\xff", b"1e999", b"null"])
    return bytes(data)


def make(rng, lm, clf, key):
    """(bytes to send, expected answers, label)."""
    method, path, body = rng.choice(seeds(lm, clf))
    use_key = key if rng.random() > 0.05 else rng.choice([None, "rt-" + "0" * 48, "x" * 300])
    kind = rng.random()
    raw = json.dumps(body).encode() if body is not None else b""
    if kind < 0.45 and body is not None:
        raw = json.dumps(mutate_json(rng, body), allow_nan=True).encode("utf-8", "surrogatepass")
        return http_request(method, path, raw, use_key), 1, "json"
    if kind < 0.65 and body is not None:
        text = json.dumps(body)
        k = rng.choice(list(body))
        text = text.replace(json.dumps(body[k]), rng.choice(RAW_EXTREMES), 1)
        return http_request(method, path, text.encode("utf-8", "surrogateescape"), use_key), 1, "raw-value"
    if kind < 0.8:
        return http_request(method, path, mutate_bytes(rng, raw), use_key), 1, "bytes"
    r = rng.random()
    if r < 0.15:
        return http_request(rng.choice(["PUT", "PATCH", "OPTIONS", "HEAD", "FOO", "G\x00T"]), path, raw, use_key), 1, "method"
    if r < 0.3:
        return http_request(method, rng.choice(["/", "//v1", "/v1/models/%00", "/v1/models/" + "a" * 3000, "/v1/../health",
                                                "/v1/models/x/y/z", "*"]), raw, use_key), 1, "path"
    if r < 0.45:
        return http_request(method, path, raw, use_key, version=rng.choice(["1.0", "0.9", "2.0", "1.1x"])), 1, "version"
    if r < 0.6:  # a Content-Length that lies: shorter, negative, junk (longer ones would wait for the body deadline)
        cl = rng.choice([max(0, len(raw) - 3), -1, "abc", "1, 2", "+5", " 0x10"])
        return http_request(method, path, raw, use_key, content_length=cl), 1, "length"
    if r < 0.7:  # chunked request bodies, well or badly framed
        chunked = f"{len(raw):x}\r\n".encode() + raw + b"\r\n0\r\n\r\n"
        if rng.random() < 0.5:
            chunked = mutate_bytes(rng, chunked)
        head = http_request(method, path, b"", use_key, extra=["Transfer-Encoding: chunked", "Content-Type: application/json"])
        return head + chunked, 1, "chunked"
    if r < 0.8:  # headers: huge, broken, repeated
        extra = rng.choice([["X-Big: " + "a" * 20000], ["Bad Header"], ["Authorization: Bearer a", "Authorization: Bearer b"],
                            ["Content-Type: text/plain"], ["Expect: 100-continue"], [":" * 10]])
        return http_request(method, path, raw, use_key, extra=extra), 1, "headers"
    if r < 0.9:  # a pipelined burst
        n = rng.randint(2, 6)
        return b"".join(http_request("GET", "/health") if rng.random() < 0.5 else http_request(method, path, raw, use_key)
                        for _ in range(n)), n, "pipelined"
    return mutate_bytes(rng, http_request(method, path, raw, use_key)), 1, "http-bytes"


# Kinds that may break HTTP framing: the server may answer and close, or close at once.
FRAMING = ("http-bytes", "method", "version", "headers", "length", "chunked", "path")


def alive(pid):
    if not pid:
        return True
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def health(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(http_request("GET", "/health", version="1.1", extra=["Connection: close"]))
        status, body, _ = read_answer(s, b"", time.monotonic() + 5)
        s.close()
        return status == 200 and b'"status":"ok"' in body
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--lm", required=True)
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=600)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    random.seed(a.seed)
    statuses, labels_5xx, unanswered = {}, [], {}
    sent = answered = closed_early = 0
    t0 = time.monotonic()
    sock, buf = None, b""
    while sent < a.requests and time.monotonic() - t0 < a.max_seconds:
        data, expect, label = make(rng, a.lm, a.classifier, a.key)
        if sock is None or rng.random() < 0.2:  # mostly kept alive, sometimes fresh
            if sock:
                sock.close()
            sock = socket.create_connection(("127.0.0.1", a.port), timeout=10)
            buf = b""
        try:
            sock.sendall(data)
        except OSError:
            sock, buf = None, b""
            continue
        sent += expect
        for _ in range(expect):
            status, body, buf = read_answer(sock, buf, time.monotonic() + 30)
            if status <= 0:  # closed or unparseable: a malformed request may be answered by a close
                closed_early += 1
                if label not in FRAMING:
                    print("unanswered:", label, data[:400], file=sys.stderr)
                unanswered[label] = unanswered.get(label, 0) + 1
                sock.close()
                sock, buf = None, b""
                break
            answered += 1
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 500 and status != 503:
                labels_5xx.append((label, status, body[:200].decode("utf-8", "replace"), data[:300].decode("utf-8", "replace")))
            if read_answer.closing:  # the server said it closes: the rest of a burst goes unanswered
                break
        if sock and (label in FRAMING or read_answer.closing):  # the server closes, or what follows is not ours to count
            sock.close()
            sock, buf = None, b""
        if sent % 500 < expect and not alive(a.pid):
            break
    if sock:
        sock.close()
    ok_alive = alive(a.pid)
    ok_health = health(a.port)
    summary = {"sent": sent, "answered": answered, "closed_without_answer": closed_early, "unanswered_by_kind": unanswered,
               "statuses": {str(k): v for k, v in sorted(statuses.items())}, "bad_5xx": labels_5xx[:10],
               "bad_5xx_count": len(labels_5xx), "alive": ok_alive, "healthy": ok_health,
               "seconds": round(time.monotonic() - t0, 1)}
    print(json.dumps(summary))
    # A close without an answer is acceptable only for bytes that are not HTTP at all.
    unexplained = sum(v for k, v in unanswered.items() if k not in FRAMING)
    ok = ok_alive and ok_health and not labels_5xx and sent >= a.requests and unexplained == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
