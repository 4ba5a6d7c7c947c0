#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# write_learned.py FILE N: a learned.state of N addresses 2001:db8:aa::<i> for
# h<i>.anaconda.com, valid 10 more minutes, in the documented format (docs/operations.md).
# Used by tests/e2e/test_reboot.sh and bench/restore_bench.sh.
import ipaddress, os, struct, sys, time
def crc32c(data, table=[]):
    if not table:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
path, n = sys.argv[1], int(sys.argv[2])
now = int(time.time())
out = [struct.pack("<qI", now, n)]
for i in range(n):
    a = int(ipaddress.IPv6Address("2001:db8:aa::%x" % i))
    name = b"h%d.anaconda.com" % i
    out.append(b"\x06" + struct.pack("<QQ", a & (2**64 - 1), a >> 64) + struct.pack("<I", len(name)) + name +
               struct.pack("<q", now + 600))
payload = b"".join(out)
head = b"AMLFWST\0" + struct.pack("<IIQII", 1, 2, len(payload), crc32c(payload), 0)
with open(path + ".tmp", "wb") as f:
    f.write(head + payload)
os.rename(path + ".tmp", path)
