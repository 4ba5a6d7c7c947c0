#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Network helpers for the amlfw end-to-end harness (tests/e2e/lib.sh).

Sub-commands (each is run inside a network namespace by lib.sh):
  serve   --label L --tcp P,P.. [--udp P,P..] [--tcp-at A:P ..] [--udp-at A:P ..] --ready FILE
          TCP servers that greet every client with one identifying line, then echo lines;
          UDP echo servers. One asyncio process serves every port, IPv4 and IPv6.
  probe   ADDR PORT [--udp] [--src ADDR] [--timeout S]
          one connection attempt; prints "<result> <milliseconds> <detail>" where result is
          ok, refused, unreach, eperm, timeout or error.
  hold    ADDR PORT --stop FILE --out FILE [--interval S]
          a long-lived TCP connection that sends a line every interval and checks the echo
          until FILE exists; writes "OK <n>" or "FAIL <reason>" into --out.
  dnsq    SERVER NAME [--type A|AAAA] [--port 53] [--tcp] [--timeout S]
          one DNS query; prints "rcode=<R>" then one line per answer ("A 1.2.3.4", "CNAME x").
  notify  SOCKET OUT   collect sd_notify datagrams (one line each) into OUT.
  jget    EXPR         evaluate EXPR (Python, the JSON document is `d`) on stdin's JSON.
"""
import argparse
import errno
import json
import os
import random
import socket
import struct
import sys
import time

_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux value; Python 3.11 lacks the name


# ---------------------------------------------------------------------------------- serve

class _UdpEcho:
    """UDP echo that answers from the address the datagram was sent to (AnyIP ranges:
    a socket bound to 0.0.0.0 would answer from the interface address otherwise)."""

    def __init__(self, label, sock):
        self.label = label
        self.sock = sock
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)

    def readable(self):
        try:
            data, anc, _, addr = self.sock.recvmsg(65535, 256)
        except (BlockingIOError, InterruptedError):
            return
        local, reply_anc = "?", []
        for level, kind, raw in anc:
            if level == socket.IPPROTO_IP and kind == _IP_PKTINFO:
                # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
                local = socket.inet_ntop(socket.AF_INET, raw[8:12])
                reply_anc = [(socket.IPPROTO_IP, _IP_PKTINFO,
                              struct.pack("=i4s4s", 0, raw[8:12], b"\0" * 4))]
            elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                local = socket.inet_ntop(socket.AF_INET6, raw[:16])
                reply_anc = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, raw[:16] + b"\0" * 4)]
        port = self.sock.getsockname()[1]
        msg = f"amlfw-e2e {self.label} udp={local}:{port} ".encode() + data
        try:
            self.sock.sendmsg([msg], reply_anc, 0, addr)
        except OSError:
            pass


def _fmt(sockname):
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _sock(family, kind, addr, port):
    s = socket.socket(family, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: AnyIP ranges
    except OSError:
        pass
    s.bind((addr, port))
    if kind == socket.SOCK_STREAM:
        s.listen(128)
    s.setblocking(False)
    return s


def _split_at(spec):
    addr, _, port = spec.rpartition(":")
    return addr.strip("[]"), int(port)


async def _serve(args):
    import asyncio

    class _Echo(asyncio.Protocol):
        def __init__(self, label):
            self.label = label
            self.transport = None

        def connection_made(self, transport):
            self.transport = transport
            local = transport.get_extra_info("sockname")
            peer = transport.get_extra_info("peername")
            transport.write(
                f"amlfw-e2e {self.label} dst={_fmt(local)} src={peer[0]}\n".encode())

        def data_received(self, data):
            self.transport.write(data)

    loop = asyncio.get_running_loop()
    servers = []
    endpoints_tcp = []
    endpoints_udp = []
    for p in filter(None, args.tcp.split(",")):
        endpoints_tcp += [("0.0.0.0", int(p)), ("::", int(p))]
    for p in filter(None, (args.udp or "").split(",")):
        endpoints_udp += [("0.0.0.0", int(p)), ("::", int(p))]
    endpoints_tcp += [_split_at(s) for s in args.tcp_at]
    endpoints_udp += [_split_at(s) for s in args.udp_at]
    for addr, port in endpoints_tcp:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = _sock(fam, socket.SOCK_STREAM, addr, port)
        servers.append(await loop.create_server(lambda: _Echo(args.label), sock=s))
    for addr, port in endpoints_udp:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = _sock(fam, socket.SOCK_DGRAM, addr, port)
        echo = _UdpEcho(args.label, s)
        loop.add_reader(s.fileno(), echo.readable)
        servers.append(echo)
    with open(args.ready + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(args.ready + ".tmp", args.ready)
    await asyncio.Event().wait()


# ---------------------------------------------------------------------------------- probe

_ERRS = {
    errno.ECONNREFUSED: "refused",
    errno.ECONNRESET: "refused",
    errno.EHOSTUNREACH: "unreach",
    errno.ENETUNREACH: "unreach",
    errno.EACCES: "eperm",
    errno.EPERM: "eperm",
    errno.EHOSTDOWN: "unreach",
    errno.EPROTO: "unreach",
}


def _family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def probe(args):
    print(probe_one(args.addr, args.port, args.udp, args.src, args.timeout))


def probes(args):
    """Many probes at once: stdin lines 'ADDR PORT tcp|udp [SRC]'; prints
    'ADDR PORT PROTO RESULT MS DETAIL' in input order."""
    from concurrent.futures import ThreadPoolExecutor
    jobs = [l.split() for l in sys.stdin if l.strip()]

    def run(j):
        src = j[3] if len(j) > 3 and j[3] != "-" else None
        return f"{j[0]} {j[1]} {j[2]} " + probe_one(j[0], int(j[1]), j[2] == "udp", src, args.timeout)

    with ThreadPoolExecutor(max_workers=args.parallel) as ex:
        for line in ex.map(run, jobs):
            print(line)


def probe_one(addr, port, udp, src, timeout):
    addr = addr.strip("[]")
    start = time.monotonic()
    s = socket.socket(_family(addr), socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    s.settimeout(timeout)
    res = []

    def out(result, detail=""):
        ms = int((time.monotonic() - start) * 1000)
        res.append(f"{result} {ms} {detail}".rstrip())

    try:
        if src:
            s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: a source in an AnyIP range
            s.bind((src, 0))
        s.connect((addr, port))
        if udp:
            token = f"ping-{random.randrange(1 << 30)}".encode()
            s.send(token)
            data = s.recv(2048)
            if token not in data:
                out("error", "udp answer without our token")
                return res[0]
            out("ok", data.decode(errors="replace").strip().replace(" ", "_"))
        else:
            f = s.makefile("rb")
            line = f.readline(512)
            if not line:
                out("refused", "closed-before-greeting")
                return res[0]
            out("ok", line.decode(errors="replace").strip().replace(" ", "_"))
    except socket.timeout:
        out("timeout")
    except OSError as e:
        out(_ERRS.get(e.errno, "error"), errno.errorcode.get(e.errno, str(e.errno)))
    finally:
        s.close()
    return res[0]


def watch(args):
    """Probe ADDR:PORT every interval until the stop file exists; one line per probe."""
    with open(args.out, "w") as f:
        while not os.path.exists(args.stop):
            f.write(probe_one(args.addr, args.port, args.udp, None, args.timeout) + "\n")
            f.flush()
            time.sleep(args.interval)


# ----------------------------------------------------------------------------------- hold

def hold(args):
    addr = args.addr.strip("[]")
    n = 0

    def result(text):
        with open(args.out + ".tmp", "w") as f:
            f.write(text + "\n")
        os.rename(args.out + ".tmp", args.out)

    try:
        s = socket.create_connection((addr, args.port), timeout=3)
        s.settimeout(3)
        f = s.makefile("rb")
        greeting = f.readline(512)
        if not greeting:
            result("FAIL no greeting")
            return 1
        with open(args.out + ".started", "w") as g:
            g.write(greeting.decode(errors="replace"))
        while True:
            n += 1
            msg = f"ping {n}\n".encode()
            s.sendall(msg)
            echo = f.readline(512)
            if echo != msg:
                result(f"FAIL echo {n}: got {echo!r}")
                return 1
            if os.path.exists(args.stop):
                result(f"OK {n}")
                return 0
            time.sleep(args.interval)
    except OSError as e:
        result(f"FAIL after {n} echoes: {e}")
        return 1


# ----------------------------------------------------------------------------------- dnsq

_TYPES = {"A": 1, "AAAA": 28, "CNAME": 5}
_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def _qname(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _read_name(msg, off):
    labels = []
    jumped = False
    end = off
    for _ in range(128):
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumped = True
            continue
        if n == 0:
            if not jumped:
                end = off + 1
            break
        labels.append(msg[off + 1: off + 1 + n].decode(errors="replace"))
        off += 1 + n
    return ".".join(labels), end


def dnsq(args):
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _qname(args.name) + \
        struct.pack(">HH", _TYPES[args.type], 1)
    server = args.server.strip("[]")
    fam = _family(server)
    try:
        if args.tcp:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(args.timeout)
            s.connect((server, args.port))
            s.sendall(struct.pack(">H", len(q)) + q)
            ln = b""
            while len(ln) < 2:
                chunk = s.recv(2 - len(ln))
                if not chunk:
                    raise OSError(errno.ECONNRESET, "closed")
                ln += chunk
            want = struct.unpack(">H", ln)[0]
            msg = b""
            while len(msg) < want:
                chunk = s.recv(want - len(msg))
                if not chunk:
                    raise OSError(errno.ECONNRESET, "closed")
                msg += chunk
        else:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(args.timeout)
            s.connect((server, args.port))
            s.send(q)
            while True:
                msg = s.recv(65535)
                if len(msg) >= 2 and struct.unpack(">H", msg[:2])[0] == qid:
                    break
    except socket.timeout:
        print("rcode=TIMEOUT")
        return 1
    except OSError as e:
        print(f"rcode=ERROR {errno.errorcode.get(e.errno, e.errno)}")
        return 1
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    print(f"rcode={_RCODES.get(flags & 0xF, flags & 0xF)}" + (" TC" if flags & 0x200 else ""))
    off = 12
    for _ in range(qd):
        _, off = _read_name(msg, off)
        off += 4
    for _ in range(an):
        _, off = _read_name(msg, off)
        rtype, _, ttl, rdlen = struct.unpack(">HHIH", msg[off: off + 10])
        off += 10
        rdata = msg[off: off + rdlen]
        if rtype == 1:
            print(f"A {socket.inet_ntop(socket.AF_INET, rdata)} ttl={ttl}")
        elif rtype == 28:
            print(f"AAAA {socket.inet_ntop(socket.AF_INET6, rdata)} ttl={ttl}")
        elif rtype == 5:
            print(f"CNAME {_read_name(msg, off)[0]} ttl={ttl}")
        off += rdlen
    return 0


# ----------------------------------------------------------------------------------- dhcp

def dhcp(args):
    """One DHCPDISCOVER on IFACE (from 0.0.0.0:68 to 255.255.255.255:67, broadcast flag);
    prints 'offer <yiaddr> from <server>' or 'timeout' / 'error <errno>'."""
    with open(f"/sys/class/net/{args.iface}/address") as f:
        mac = bytes.fromhex(f.read().strip().replace(":", ""))
    xid = random.randrange(1 << 32)
    pkt = struct.pack(">BBBBIHHIIII", 1, 1, 6, 0, xid, 0, 0x8000, 0, 0, 0, 0)
    pkt += mac + b"\0" * 10 + b"\0" * 192 + b"\x63\x82\x53\x63"
    pkt += b"\x35\x01\x01" + b"\x37\x03\x01\x03\x06" + b"\xff"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, args.iface.encode())
    s.bind(("0.0.0.0", 68))
    s.settimeout(args.timeout)
    start = time.monotonic()
    try:
        s.sendto(pkt, ("255.255.255.255", 67))
        while True:
            data, addr = s.recvfrom(4096)
            if len(data) >= 240 and data[0] == 2 and struct.unpack(">I", data[4:8])[0] == xid:
                yiaddr = socket.inet_ntoa(data[16:20])
                ms = int((time.monotonic() - start) * 1000)
                print(f"offer {yiaddr} from {addr[0]} {ms}")
                return 0
    except socket.timeout:
        print("timeout")
        return 1
    except OSError as e:
        print(f"error {errno.errorcode.get(e.errno, e.errno)}")
        return 1


# --------------------------------------------------------------------------------- notify

def notify(args):
    try:
        os.unlink(args.socket)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(args.socket)
    os.chmod(args.socket, 0o777)
    with open(args.out, "a") as f:
        while True:
            data = s.recv(65536)
            for line in data.decode(errors="replace").splitlines():
                f.write(line + "\n")
            f.flush()


# ----------------------------------------------------------------------------------- jget

def jget(args):
    try:
        d = json.load(sys.stdin)
    except ValueError:
        return 1  # not JSON (an error message): print nothing, fail
    try:
        v = eval(args.expr, {"d": d, "json": json})  # noqa: S307 (test helper, trusted input)
    except (KeyError, IndexError, TypeError, StopIteration) as e:
        print(f"jget: {args.expr}: {type(e).__name__} {e}", file=sys.stderr)
        return 1
    if isinstance(v, (dict, list)):
        print(json.dumps(v))
    elif isinstance(v, bool):
        print("true" if v else "false")
    elif v is None:
        print("null")
    else:
        print(v)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--label", default="inet")
    p.add_argument("--tcp", default="")
    p.add_argument("--udp", default="")
    p.add_argument("--tcp-at", action="append", default=[])
    p.add_argument("--udp-at", action="append", default=[])
    p.add_argument("--ready", required=True)
    p = sub.add_parser("probe")
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--udp", action="store_true")
    p.add_argument("--src")
    p.add_argument("--timeout", type=float, default=2.0)
    p = sub.add_parser("probes")
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--parallel", type=int, default=32)
    p = sub.add_parser("watch")
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--udp", action="store_true")
    p.add_argument("--stop", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=2.0)
    p = sub.add_parser("hold")
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--stop", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--interval", type=float, default=0.1)
    p = sub.add_parser("dnsq")
    p.add_argument("server")
    p.add_argument("name")
    p.add_argument("--type", default="A", choices=sorted(_TYPES))
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--tcp", action="store_true")
    p.add_argument("--timeout", type=float, default=2.0)
    p = sub.add_parser("dhcp")
    p.add_argument("iface")
    p.add_argument("--timeout", type=float, default=3.0)
    p = sub.add_parser("notify")
    p.add_argument("socket")
    p.add_argument("out")
    p = sub.add_parser("jget")
    p.add_argument("expr")
    args = ap.parse_args()
    if args.cmd == "serve":
        import asyncio  # only the servers need it (it costs 100+ ms per probe otherwise)
        asyncio.run(_serve(args))
        return 0
    return {"probe": probe, "probes": probes, "watch": watch, "hold": hold, "dnsq": dnsq, "dhcp": dhcp, "notify": notify, "jget": jget}[
        args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
