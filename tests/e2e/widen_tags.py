#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# widen_tags.py IN OUT N: the service-tags file IN with N more prefixes in AzureMachineLearning,
# N /32s 10.0.0.0, 10.0.0.2, ... never adjacent: N more ranges after merging. For the restore
# measurements (tests/e2e/test_reboot.sh, bench/restore_bench.sh); the addresses are only loaded
# into the kernel, never connected to.
import json, sys
d = json.load(open(sys.argv[1]))
n = int(sys.argv[3])
for v in d["values"]:
    if v["name"] == "AzureMachineLearning":
        v["properties"]["addressPrefixes"] += ["10.%d.%d.%d/32" % ((2 * i) >> 16, ((2 * i) >> 8) & 255, (2 * i) & 255)
                                               for i in range(n)]
json.dump(d, open(sys.argv[2], "w"))
