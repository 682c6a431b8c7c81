"""Hand-made TLS first flights: real OpenSSL ClientHellos, rewritten or
fragmented by the test before they go out."""

import ssl


def client_hello(sni="allowed.test"):
    """The bytes of a real OpenSSL ClientHello for sni (None: no SNI)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def _hello_parts(hello):
    """Split one-record ClientHello bytes into (handshake message, offset of
    the extensions length within it)."""
    assert hello[0] == 0x16 and len(hello) == 5 + int.from_bytes(hello[3:5], "big")
    hs = hello[5:]
    assert hs[0] == 1 and len(hs) == 4 + int.from_bytes(hs[1:4], "big")
    off = 4 + 2 + 32
    off += 1 + hs[off]                                 # session id
    off += 2 + int.from_bytes(hs[off:off + 2], "big")  # cipher suites
    off += 1 + hs[off]                                 # compression
    return hs, off


def add_extension(hello, ext_type, data):
    """A ClientHello record with one more extension appended."""
    hs, off = _hello_parts(hello)
    ext_len = int.from_bytes(hs[off:off + 2], "big")
    ext = ext_type.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data
    body = hs[4:off] + (ext_len + len(ext)).to_bytes(2, "big") + hs[off + 2:] + ext
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(msg).to_bytes(2, "big") + msg


def split_records(hello, at):
    """The same handshake message carried in two TLS records."""
    hs, _ = _hello_parts(hello)
    a, b = hs[:at], hs[at:]
    return (b"\x16\x03\x01" + len(a).to_bytes(2, "big") + a,
            b"\x16\x03\x01" + len(b).to_bytes(2, "big") + b)


class ManualTLS:
    """A verifying TLS client over a plain socket whose first flight the test
    may rewrite or fragment before it goes out."""

    def __init__(self, ca, sni):
        ctx = ssl.create_default_context(cafile=ca)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=sni)
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.hello = self.out.read()

    def finish(self, sock, timeout=10):
        """Complete the handshake after the hello was sent by the test."""
        sock.settimeout(timeout)
        while True:
            try:
                self.obj.do_handshake()
                sock.sendall(self.out.read())
                return
            except ssl.SSLWantReadError:
                pending = self.out.read()
                if pending:
                    sock.sendall(pending)
                d = sock.recv(65536)
                if not d:
                    raise ConnectionError("closed during the TLS handshake")
                self.inc.write(d)

    def request(self, sock, raw):
        """Send raw over TLS and read until the peer closes."""
        self.obj.write(raw)
        sock.sendall(self.out.read())
        data = b""
        while True:
            try:
                chunk = self.obj.read(65536)
                if not chunk:
                    break
                data += chunk
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            d = sock.recv(65536)
            if not d:
                break
            self.inc.write(d)
        return data
