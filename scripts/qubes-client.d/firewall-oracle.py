#!/usr/bin/env python3
"""Writes Tests/Fixtures/qubes-firewall/cases.jsonl: seeded, edge-heavy
firewall rule lines and what qubesd's own parser answers for each.

usage: firewall-oracle.py CORE_ADMIN_DIR OUT [COUNT] [SEED]
  CORE_ADMIN_DIR  a checkout of QubesOS/qubes-core-admin (its qubes/ package)
  OUT             the fixture to write (one JSON object a line:
                  {"line": RULE, "qubesd": API_RULE} accepted,
                  {"line": RULE, "qubesd": null} accepted but expired (not answered),
                  {"line": RULE, "error": EXCEPTION_TYPE} refused)

Qubes' code only answers here; nothing of it is copied into Odyssey. The
modules qubes/ imports but the rule parser does not use (lxml, libvirt...)
are stubbed. Run once; the Swift test (FirewallOracleTests) compares
Odyssey's parser with the committed answers.
"""
import importlib.abc
import importlib.machinery
import json
import random
import sys
import types

GOOD = [
    "action=accept", "action=drop", "proto=tcp", "proto=udp", "proto=icmp", "specialtarget=dns",
    "dst4=10.0.0.0/8", "dst4=1.2.3.4", "dst4=192.168.1.1/32", "dst4=0.0.0.0/0", "dst6=fe80::1", "dst6=::/0",
    "dst6=2001:db8::/32", "dst6=::ffff:1.2.3.4", "dsthost=example.com", "dsthost=a-b_c.d", "dsthost=1.2.3.4",
    "dsthost=fe80::2/64", "dstname=qubes-os.org", "dstname=10.1.1.1/24", "dstports=80", "dstports=1-65535",
    "dstports=0", "dstports=443-443", "dstports=0080", "icmptype=8", "icmptype=0", "icmptype=255",
    "icmptype=008", "expire=1", "expire=9999999999", "expire=0", "comment=hello", "comment=a b  c",
    "comment=[x]:;,./-_", "dst4=1.2.3.4/032",
]
BAD = [
    "action=allow", "action=", "action", "proto=sctp", "proto=", "specialtarget=ntp", "dst4=1.2.3.4/33",
    "dst4=1.2.3", "dst4=1.2.3/24", "dst4=1.2.3.4/", "dst4=1.2.3.4/x", "dst4=a/b/c", "dst6=fe80::1/129",
    "dst6=zz::1/64", "dsthost=Example.com", "dsthost=a!b", "dstports=65536", "dstports=80-70",
    "dstports=1-2-3", "dstports=-1", "dstports=x", "dstports=80-", "icmptype=256", "icmptype=1000",
    "icmptype=-1", "expire=x", "expire=99999999999999", "expire=-5", "comment=é", "comment=a=b",
    "comment=no'quote", "colour=red", "=", "x", "dstports=+80", "dstports=8_0", "dsthost=",
    "dsthost=a%b", "expire=253402300800", "expire=253402300799",
]
NOISE = ["", " ", "  ", "\t", "\x0b", "\x0c", "\x1c", "\x1f", "\r", "comment=", "/", "-", "="]


def structured(rng):
    """A rule built slot by slot (mostly valid), options in random order, comment last."""
    parts = [rng.choice(["action=accept", "action=drop"])]
    if rng.random() < 0.6:
        parts.append(rng.choice([g for g in GOOD if g.startswith(("dst4", "dst6", "dsthost", "dstname"))]))
    proto = rng.choice([None, "tcp", "udp", "icmp"])
    if proto:
        parts.append("proto=" + proto)
        if proto != "icmp" and rng.random() < 0.7:
            parts.append(rng.choice([g for g in GOOD if g.startswith("dstports")]))
        if proto == "icmp" and rng.random() < 0.7:
            parts.append(rng.choice([g for g in GOOD if g.startswith("icmptype")]))
    if rng.random() < 0.2:
        parts.append("specialtarget=dns")
    if rng.random() < 0.2:
        parts.append(rng.choice(["expire=1", "expire=9999999999", "expire=0", "expire=253402300799"]))
    if rng.random() < 0.2:
        parts[rng.randrange(len(parts))] = rng.choice(BAD)
    rng.shuffle(parts)
    if rng.random() < 0.3:
        parts.append(rng.choice([g for g in GOOD if g.startswith("comment")]))
    return " ".join(parts)


def generate(rng, count):
    for _ in range(count):
        if rng.random() < 0.5:
            yield structured(rng)
            continue
        parts = [rng.choice(GOOD) for _ in range(rng.randrange(0, 4))]
        if rng.random() < 0.8:
            parts.insert(0, rng.choice(["action=accept", "action=drop"]))
        if rng.random() < 0.25:
            parts.insert(rng.randrange(0, len(parts) + 1), rng.choice(BAD))
        if rng.random() < 0.1:
            parts.insert(rng.randrange(0, len(parts) + 1), rng.choice(NOISE))
        line = (" " if rng.random() < 0.95 else "  ").join(parts)
        if rng.random() < 0.05:
            line = rng.choice(NOISE) + line + rng.choice(NOISE)
        yield line


class _Any:
    def __init__(self, *a, **k):
        pass

    def __call__(self, *a, **k):
        return _Any()

    def __getattr__(self, n):
        return _Any()

    def __mro_entries__(self, bases):
        return (object,)


class _Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    names = ("lxml", "libvirt", "xen", "qubesdb", "docutils", "yaml", "pyinotify", "systemd", "gbulb")

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in self.names:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        m = types.ModuleType(spec.name)
        m.__path__ = []
        m.__getattr__ = lambda n: _Any
        return m

    def exec_module(self, m):
        pass


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    core, out = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 14
    sys.path.insert(0, core)
    sys.meta_path.insert(0, _Stub())
    import qubes.firewall  # Qubes' parser, the oracle
    seen = set()
    with open(out, "w", encoding="utf-8") as f:
        for line in generate(random.Random(seed), count):
            if line in seen:
                continue
            seen.add(line)
            try:
                rule = qubes.firewall.Rule.from_api_string(untrusted_rule=line)
                answer = {"line": line, "qubesd": rule.api_rule}
            except Exception as e:  # every refusal: its type is the answer
                answer = {"line": line, "error": type(e).__name__}
            f.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
