"""A 50 MB download through a tunnel with a slow reader: it arrives intact
and the proxy does not buffer it (bounded RSS: watermarks work)."""

import hashlib
import os
import threading
import time

import sbxtest

# Well under the 50 MB file, so that buffering most of it fails; the ASan
# build (quarantine capped at 8 MB by the fixture) stays near +10 MB.
RSS_LIMIT_KB = 24 * 1024


def test_large_download_slow_reader_bounded_rss(env, proxy, tmp_path):
    want = hashlib.sha256(env.tls.big()).hexdigest()
    out = str(tmp_path / "big.bin")
    # Warm up (first connection allocates the proxy's steady-state buffers),
    # then take the baseline.
    sbxtest.curl(env, "-x", proxy.http_proxy_url(),
                 f"https://allowed.test:{env.tls.port}/warm")
    base = sbxtest.vmrss_kb(proxy.pid)

    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                samples.append(sbxtest.vmrss_kb(proxy.pid))
            except (OSError, sbxtest.HarnessError):
                return
            time.sleep(0.05)

    cenv = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    t0 = time.monotonic()
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        # 25 MB/s: the server writes far faster, so without back-pressure
        # the proxy would hold most of the file.
        r = sbxtest.run(["curl", "--silent", "--show-error", "--max-time", "40",
                         "--limit-rate", "25M", "--cacert", env.pki["ca"],
                         "-x", proxy.http_proxy_url(), "-o", out,
                         f"https://allowed.test:{env.tls.port}/big"],
                        timeout=50, env=cenv)
    finally:
        stop.set()
        th.join(timeout=2)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr.decode()
    assert os.path.getsize(out) == sbxtest.BIG_SIZE
    assert sbxtest.sha256_file(out) == want, "the download arrived corrupted"
    assert samples, "no RSS samples taken"
    peak = max(samples)
    print(f"\nproxy RSS: baseline {base} kB, peak {peak} kB, {len(samples)} samples, "
          f"{elapsed:.1f}s")
    assert peak - base < RSS_LIMIT_KB, (
        f"proxy RSS grew from {base} kB to {peak} kB during a {elapsed:.1f}s "
        f"slow-reader transfer (limit +{RSS_LIMIT_KB} kB): no back-pressure?")
    proxy.wait_record(event="connect", host="allowed.test", decision="allow",
                      port=env.tls.port)
    close = proxy.wait_record(
        event="close", bytes_down=lambda b: isinstance(b, int) and b >= sbxtest.BIG_SIZE)
    assert close.get("bytes_up", 0) > 0, close
