#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Synthetic Azure Service Tags file for the amlfw end-to-end tests.

Writes a file in Microsoft's exact format (shared/docs/servicetags-format.md section 2:
changeNumber, cloud "Public", values with name/id/properties{changeNumber, region,
regionId, platform, systemService, addressPrefixes, networkFeatures}; 2-space indent,
no final newline) where every tag amlfw's default policy can need maps to documentation
address blocks, so that a test knows which address belongs to which tag.

Address plan (every block is a /28 of IPv4, listed as four /30 prefixes, plus one IPv6
/64 inside 2001:db8:<n>::/48):

  block      IPv4                tags
  aad        198.51.100.0/28     AzureActiveDirectory
  aml_we     198.51.100.16/28    AzureMachineLearning(.WestEurope)
  aml_eus    198.51.100.32/28    AzureMachineLearning(.EastUS)
  aml_x      198.51.100.48/28    AzureMachineLearning (global only)
  arm        198.51.100.64/28    AzureResourceManager
  st_we      198.51.100.80/28    Storage(.WestEurope)
  st_eus     198.51.100.96/28    Storage(.EastUS)          <- another region
  st_x       198.51.100.112/28   Storage (global only)
  afd_fe     198.51.100.128/28   AzureFrontDoor.Frontend
  afd_fp     198.51.100.144/28   AzureFrontDoor.FirstParty
  bnm_we     198.51.100.160/28   BatchNodeManagement(.WestEurope)
  bnm_eus    198.51.100.176/28   BatchNodeManagement(.EastUS)
  bnm_x      198.51.100.192/28   BatchNodeManagement (global only)
  acr_we     198.51.100.208/28   AzureContainerRegistry(.WestEurope)
  acr_x      198.51.100.224/28   AzureContainerRegistry
  mcr_we     198.51.100.240/28   MicrosoftContainerRegistry(.WestEurope)
  mcr_x      203.0.113.0/28      MicrosoftContainerRegistry
  kv_we      203.0.113.16/28     AzureKeyVault(.WestEurope)
  kv_x       203.0.113.32/28     AzureKeyVault
  mon        203.0.113.48/28     AzureMonitor
  new        203.0.113.64/28     (none; added to AzureMachineLearning by --variant update)
  ssh        203.0.113.96/28     (none; the tests' ssh_from block)
  unlisted   203.0.113.200       (none)

Variants:
  base     the file above
  update   AzureMachineLearning gains block "new" and loses the last /30 of aml_x
           (198.51.100.60/30): a small change (1 of its 15 prefixes removed, 4 of its
           48 IPv4 addresses) that amlfw must accept
  shrink   AzureMachineLearning, Storage and BatchNodeManagement keep only their
           WestEurope block (10 of 15 prefixes removed from each; 30 of the file's 150):
           an update amlfw must refuse (service_tags.max_shrink, default 10%)
  update2  from update: 198.51.100.60/30 comes back, the last /30 of block "new"
           (203.0.113.76/30) goes: again a small change (1 of 20 prefixes removed)
  nomltag  AzureMachineLearning is missing entirely (a required tag absent: refused)

--emit-env prints shell assignments E2E_<BLOCK>_V4 / _V6 (one sample host address per
block), E2E_<BLOCK>_NET4 (the /28), plus E2E_AML_REMOVED_V4 (an address that variant
update removes), E2E_NEW_REMOVED_V4 (one that update2 removes) and E2E_UNLISTED_V4/_V6.
"""
import argparse
import ipaddress
import json
import sys

BLOCKS = [  # name, IPv4 /28, index of its IPv6 /48
    ("aad", "198.51.100.0/28", 1),
    ("aml_we", "198.51.100.16/28", 2),
    ("aml_eus", "198.51.100.32/28", 3),
    ("aml_x", "198.51.100.48/28", 4),
    ("arm", "198.51.100.64/28", 5),
    ("st_we", "198.51.100.80/28", 6),
    ("st_eus", "198.51.100.96/28", 7),
    ("st_x", "198.51.100.112/28", 8),
    ("afd_fe", "198.51.100.128/28", 9),
    ("afd_fp", "198.51.100.144/28", 10),
    ("bnm_we", "198.51.100.160/28", 11),
    ("bnm_eus", "198.51.100.176/28", 12),
    ("bnm_x", "198.51.100.192/28", 13),
    ("acr_we", "198.51.100.208/28", 14),
    ("acr_x", "198.51.100.224/28", 15),
    ("mcr_we", "198.51.100.240/28", 16),
    ("mcr_x", "203.0.113.0/28", 17),
    ("kv_we", "203.0.113.16/28", 18),
    ("kv_x", "203.0.113.32/28", 19),
    ("mon", "203.0.113.48/28", 20),
    ("new", "203.0.113.64/28", 21),
    ("ssh", "203.0.113.96/28", 22),
]
BLOCK = {n: (ipaddress.ip_network(v4), i) for n, v4, i in BLOCKS}
UNLISTED_V4 = "203.0.113.200"
UNLISTED_V6 = "2001:db8:ee::1"

# name, region, regionId, systemService, blocks, networkFeatures
REGIONS = {"westeurope": 18, "eastus": 32}
TAGS = [
    ("AzureActiveDirectory", "", "AzureAD", ["aad"], ["API", "NSG", "UDR", "FW", "VSE"]),
    ("AzureMachineLearning", "", "AzureMachineLearning", ["aml_we", "aml_eus", "aml_x"],
     ["API", "NSG", "UDR", "FW"]),
    ("AzureResourceManager", "", "AzureResourceManager", ["arm"], ["API", "NSG", "UDR", "FW"]),
    ("Storage", "", "AzureStorage", ["st_we", "st_eus", "st_x"], ["API", "NSG", "UDR", "FW", "VSE"]),
    ("AzureFrontDoor.Frontend", "", "", ["afd_fe"], ["API", "NSG", "UDR", "FW"]),
    ("AzureFrontDoor.FirstParty", "", "AzureFrontDoor", ["afd_fp"], ["API", "NSG", "UDR", "FW"]),
    ("BatchNodeManagement", "", "BatchNodeManagement", ["bnm_we", "bnm_eus", "bnm_x"],
     ["API", "NSG", "UDR", "FW"]),
    ("AzureContainerRegistry", "", "AzureContainerRegistry", ["acr_we", "acr_x"],
     ["API", "NSG", "UDR", "FW", "VSE"]),
    ("MicrosoftContainerRegistry", "", "MicrosoftContainerRegistry", ["mcr_we", "mcr_x"],
     ["API", "NSG", "UDR", "FW"]),
    ("AzureKeyVault", "", "AzureKeyVault", ["kv_we", "kv_x"], ["API", "NSG", "UDR", "FW", "VSE"]),
    ("AzureMonitor", "", "AzureMonitor", ["mon"], ["API", "NSG", "UDR", "FW"]),
    # regional tags (PascalCase suffix; the region code is in properties.region)
    ("AzureMachineLearning.WestEurope", "westeurope", "AzureMachineLearning", ["aml_we"], None),
    ("AzureMachineLearning.EastUS", "eastus", "AzureMachineLearning", ["aml_eus"], None),
    ("Storage.WestEurope", "westeurope", "AzureStorage", ["st_we"], ["API", "NSG", "UDR", "FW", "VSE"]),
    ("Storage.EastUS", "eastus", "AzureStorage", ["st_eus"], ["NSG", "API", "UDR", "FW", "VSE"]),
    ("BatchNodeManagement.WestEurope", "westeurope", "BatchNodeManagement", ["bnm_we"],
     ["API", "NSG", "UDR", "FW"]),
    ("BatchNodeManagement.EastUS", "eastus", "BatchNodeManagement", ["bnm_eus"],
     ["API", "NSG", "UDR", "FW"]),
    ("AzureContainerRegistry.WestEurope", "westeurope", "AzureContainerRegistry", ["acr_we"],
     ["API", "NSG", "UDR", "FW", "VSE"]),
    ("MicrosoftContainerRegistry.WestEurope", "westeurope", "MicrosoftContainerRegistry", ["mcr_we"],
     ["API", "NSG", "UDR", "FW"]),
    ("AzureKeyVault.WestEurope", "westeurope", "AzureKeyVault", ["kv_we"],
     ["API", "NSG", "UDR", "FW", "VSE"]),
    ("AzureResourceManager.WestEurope", "westeurope", "AzureResourceManager", ["arm"], None),
]


def block_prefixes(name):
    net4, i = BLOCK[name]
    v4 = [str(n) for n in net4.subnets(new_prefix=30)]
    v6 = [f"2001:db8:{i:x}::/64"]
    return v4, v6


def sample(name):
    net4, i = BLOCK[name]
    return str(net4.network_address + 1), f"2001:db8:{i:x}::1"


def removed_prefix():
    """The /30 that variant 'update' removes from AzureMachineLearning."""
    return str(list(BLOCK["aml_x"][0].subnets(new_prefix=30))[-1])


def new_removed_prefix():
    """The /30 of block 'new' that variant 'update2' removes again."""
    return str(list(BLOCK["new"][0].subnets(new_prefix=30))[-1])


def build(variant, change_number=None):
    values = []
    for name, region, service, blocks, features in TAGS:
        blocks = list(blocks)
        change = 10 + len(name) % 7
        drop = set()
        if name == "AzureMachineLearning":
            if variant == "update":
                blocks.append("new")
                drop.add(removed_prefix())
                change += 1
            elif variant == "update2":
                blocks.append("new")
                drop.add(new_removed_prefix())
                change += 2
            elif variant == "shrink":
                blocks = ["aml_we"]
                change += 1
            elif variant == "nomltag":
                continue
        if variant == "shrink" and name in ("Storage", "BatchNodeManagement"):
            blocks = blocks[:1]
            change += 1
        v4, v6 = [], []
        for b in blocks:
            a, c = block_prefixes(b)
            v4 += a
            v6 += c
        v4 = [p for p in v4 if p not in drop]
        v4.sort(key=lambda p: ipaddress.ip_network(p))
        v6.sort(key=lambda p: ipaddress.ip_network(p))
        values.append({
            "name": name,
            "id": name,
            "properties": {
                "changeNumber": change,
                "region": region,
                "regionId": REGIONS.get(region, 0),
                "platform": "Azure",
                "systemService": service,
                "addressPrefixes": v4 + v6,
                "networkFeatures": features,
            },
        })
    # Microsoft's order: global tags, then regional ones (not alphabetical).
    values.sort(key=lambda v: (v["properties"]["region"] != "", TAGS_ORDER[v["name"]]))
    top = change_number or {"base": 375, "update": 376, "shrink": 377, "nomltag": 378, "update2": 379}[variant]
    return {"changeNumber": top, "cloud": "Public", "values": values}


TAGS_ORDER = {t[0]: i for i, t in enumerate(TAGS)}


def emit_env():
    lines = []
    for name, _, _ in BLOCKS:
        v4, v6 = sample(name)
        key = name.upper()
        lines.append(f"E2E_{key}_V4={v4}")
        lines.append(f"E2E_{key}_V6={v6}")
        lines.append(f"E2E_{key}_NET4={BLOCK[name][0]}")
    rem = ipaddress.ip_network(removed_prefix())
    lines.append(f"E2E_AML_REMOVED_V4={rem.network_address + 1}")
    lines.append(f"E2E_NEW_REMOVED_V4={ipaddress.ip_network(new_removed_prefix()).network_address + 1}")
    lines.append(f"E2E_UNLISTED_V4={UNLISTED_V4}")
    lines.append(f"E2E_UNLISTED_V6={UNLISTED_V6}")
    return "\n".join(lines) + "\n"


def tag_blocks(variant="base"):
    out = {}
    for name, _, _, blocks, _ in TAGS:
        out[name.lower()] = list(blocks) + (["new"] if variant in ("update", "update2") and name == "AzureMachineLearning" else [])
    return out


def _port_in(port, specs):
    for p in specs:
        if p == "*":
            return True
        lo, _, hi = p.partition("-")
        if int(lo) <= port <= int(hi or lo):
            return True
    return False


def expectations(plan, tcp_ports, udp_ports, variant="base"):
    """What a policy (plan --format json) allows for every block's sample addresses and
    the given listener ports: lines 'DIRECTION ADDR PORT PROTO allow|deny LABEL'. Egress
    lines name the destination, ingress lines the source."""
    blocks_of = tag_blocks(variant)
    lines = []
    samples = [(b, *sample(b)) for b, _, _ in BLOCKS if b != "ssh" and (b != "new" or variant in ("update", "update2"))]
    samples.append(("unlisted", UNLISTED_V4, UNLISTED_V6))
    for direction in ("egress", "ingress"):
        rules = [r for r in plan["rules"] if r["direction"] == direction and r.get("enforced", True) is not False]
        for block, v4, v6 in samples:
            for addr in (v4, v6):
                ip = ipaddress.ip_address(addr)
                for proto, ports in (("tcp", tcp_ports), ("udp", udp_ports)):
                    for port in ports:
                        who = []
                        for r in rules:
                            if r["proto"] not in (proto, "any") or not _port_in(port, r["ports"]):
                                continue
                            if "service_tag" in r and block in blocks_of.get(r["service_tag"].lower(), []):
                                who.append(r["id"])
                            elif "cidr" in r and ip in ipaddress.ip_network(r["cidr"], strict=False):
                                who.append(r["id"])
                        verdict = "allow" if who else "deny"
                        lines.append(f"{direction} {addr} {port} {proto} {verdict} {block}:{','.join(who) or '-'}")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="file to write (default: stdout)")
    ap.add_argument("--variant", default="base", choices=["base", "update", "update2", "shrink", "nomltag"])
    ap.add_argument("--change-number", type=int, help="top-level changeNumber (default: 375 + variant)")
    ap.add_argument("--crlf", action="store_true", help="CRLF line endings (Microsoft did publish some)")
    ap.add_argument("--emit-env", action="store_true", help="print the address plan as shell variables")
    ap.add_argument("--expect", metavar="PLAN_JSON",
                    help="print what the plan allows for every block sample and --tcp/--udp port")
    ap.add_argument("--tcp", default="80,443,8080")
    ap.add_argument("--udp", default="5831")
    args = ap.parse_args()
    if args.expect:
        with open(args.expect) as f:
            plan = json.load(f)
        ports = lambda s: [int(p) for p in s.split(",") if p]
        sys.stdout.write("\n".join(expectations(plan, ports(args.tcp), ports(args.udp), args.variant)) + "\n")
        return 0
    if args.emit_env:
        sys.stdout.write(emit_env())
        return 0
    text = json.dumps(build(args.variant, args.change_number), indent=2)
    if args.crlf:
        text = text.replace("\n", "\r\n")
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w", newline="") as f:
            f.write(text)
        import os
        os.replace(tmp, args.out)  # atomic: a reader never sees half a file
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
