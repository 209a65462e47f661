"""Seeded generator of policy sets, domain facts and requests for the differential policy test.

Ours, not Qubes': it only produces inputs. qubes_oracle.py feeds them to Qubes' own engine and
records its answers; Tests/PolicyTests/QubesOracleTests.swift replays them against Odyssey.

The draw is edge-heavy on purpose: uuid spellings, dom0's three names, `@dispvm` in every form,
domains with the `internal` feature, disposable templates that are internal or missing, calls
back to the caller, asks whose list comes out empty, redirects, user=, notify=, autostart=,
default_target=, include files, and invalid files (their error text is compared exactly).
Same seed, same cases: random.Random(seed) is the only source of randomness.
"""

import random

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
DOMAIN_NAMES = ["work", "personal", "vault", "sys-net", "sys-usb", "default-dvm", "other-dvm",
                "hidden-dvm", "fedora", "disp12", "mgmt", "untrusted"]
TAGS = ["work", "dvm", "net", "secret", "audio"]
TYPES = ["AppVM", "AppVM", "AppVM", "TemplateVM", "DispVM", "StandaloneVM"]
SERVICES = ["svc", "svc", "qubes.Filecopy", "other.Svc"]
ARGUMENTS = ["+", "+a", "+b", "+a+b"]
GHOST = "ghost"  # a name no domain has
# Requested targets a caller may send that no rule can name: each refused with its own text.
ODD_TARGETS = ["@dispvm:", "@", "*", "@type:AppVM", "@dispvm:@tag:dvm", "@default:x", "@adminvm:x", "@tag:",
               "@dispvm:@tag:", "uuid:", "@dispvmx", "@DISPVM", "Dom0"]


def make_uuid(rng):
    value = "%032x" % rng.getrandbits(128)
    return "%s-%s-%s-%s-%s" % (value[:8], value[8:12], value[12:16], value[16:20], value[20:])


def make_domains(rng):
    """dom0 plus 4..8 domains, with facts drawn to hit the engine's corners."""
    dom0 = {"name": "dom0", "type": "AdminVM", "tags": [], "template_for_dispvms": False,
            "default_dispvm": None, "power_state": "Running", "uuid": ZERO_UUID, "internal": False}
    if rng.random() < 0.3:
        dom0["tags"] = [rng.choice(TAGS)]
    if rng.random() < 0.2:
        dom0["default_dispvm"] = "default-dvm"
    names = rng.sample(DOMAIN_NAMES, rng.randint(4, 8))
    if "default-dvm" not in names and rng.random() < 0.7:
        names.append("default-dvm")
    domains = [dom0]
    for name in names:
        is_dvm = name.endswith("-dvm") or rng.random() < 0.1
        domains.append({
            "name": name,
            "type": "AppVM" if is_dvm else rng.choice(TYPES),
            "tags": sorted(set(rng.sample(TAGS, rng.randint(0, 2)) + (["dvm"] if is_dvm and rng.random() < 0.6 else []))),
            "template_for_dispvms": is_dvm,
            "default_dispvm": None,
            "power_state": rng.choice(["Running", "Halted", "Halted", "Paused"]),
            "uuid": make_uuid(rng),
            "internal": name == "hidden-dvm" or rng.random() < 0.12,
        })
    templates = [d["name"] for d in domains if d["template_for_dispvms"]]
    others = [d["name"] for d in domains]
    for domain in domains[1:]:
        draw = rng.random()
        if draw < 0.55 and templates:
            domain["default_dispvm"] = rng.choice(templates)
        elif draw < 0.65:
            domain["default_dispvm"] = rng.choice(others)  # not necessarily a template (or itself)
        elif draw < 0.72:
            domain["default_dispvm"] = GHOST
    return domains


def token_pool(rng, domains):
    """Domain specifications as a policy could write them, for this system."""
    names = [d["name"] for d in domains]
    templates = [d["name"] for d in domains if d["template_for_dispvms"]]
    pick = lambda: rng.choice(domains)
    plain = [rng.choice(names), rng.choice(names), "dom0", "uuid:" + pick()["uuid"], "uuid:" + ZERO_UUID, GHOST]
    dispvm = ["@dispvm", "@dispvm:" + rng.choice(templates or names), "@dispvm:" + rng.choice(names),
              "@dispvm:uuid:" + pick()["uuid"], "@dispvm:@tag:" + rng.choice(TAGS)]
    if rng.random() < 0.2:
        dispvm.append("@dispvm:" + GHOST)
    keywords = ["@anyvm", "@anyvm", "*", "@adminvm", "@tag:" + rng.choice(TAGS), "@type:" + rng.choice(TYPES),
                "@type:AdminVM", "@type:DispVM", "@tag:" + GHOST]
    return plain, dispvm, keywords


def redirect_pool(rng, domains, plain, dispvm):
    usable = [t for t in plain + dispvm + ["@adminvm"] if not t.startswith("@dispvm:@tag:")]
    return usable


def make_rule(rng, domains, service=None):
    plain, dispvm, keywords = token_pool(rng, domains)
    service = service or rng.choice(SERVICES + ["*"])
    argument = "*" if service == "*" else rng.choice(["*", "*"] + ARGUMENTS)
    generic = ["@anyvm", "@anyvm", "@anyvm", "*"]
    source = rng.choice(generic * 3 + plain + keywords + ["@dispvm:" + rng.choice(domains)["name"]])
    target = rng.choice(generic + plain + dispvm + keywords + ["@default", "@default"])
    action = rng.choice(["allow", "allow", "ask", "ask", "deny"])
    params = []
    redirects = redirect_pool(rng, domains, plain, dispvm)
    if action in ("allow", "ask") and (target == "@default" and action == "allow" or rng.random() < 0.3):
        params.append("target=" + rng.choice(redirects))
    if action == "ask" and rng.random() < 0.35:
        params.append("default_target=" + rng.choice(redirects))
    if action in ("allow", "ask") and rng.random() < 0.2:
        params.append("user=" + rng.choice(["root", "user", ""]))
    if rng.random() < 0.25:
        params.append("notify=" + rng.choice(["yes", "no"]))
    if action in ("allow", "ask") and rng.random() < 0.2:
        params.append("autostart=" + rng.choice(["yes", "no"]))
    rng.shuffle(params)
    return " ".join([service, argument, source, target, action] + params)


# Lines Qubes refuses, each with a different error text (compared exactly).
BAD_LINES = [
    "svc * @anyvm @anyvm",
    "svc * @anyvm @anyvm allow extra",
    "svc * @anyvm @anyvm bogus",
    "svc * @anyvm @anyvm allow,target=work",
    "svc * @dispvm @anyvm allow",
    "svc * @default @anyvm allow",
    "svc * @anyvm @invalid allow",
    "svc * @anyvm @tag: allow",
    "svc * @anyvm @dispvm: allow",
    "svc * @anyvm @dispvm:@tag: allow",
    "svc * @anyvm @type: deny",
    "svc * @anyvm @anyvm allow target=@anyvm",
    "svc * @anyvm @anyvm allow target=@tag:work",
    "svc * @anyvm @anyvm ask default_target=@default",
    "svc * @anyvm @anyvm allow target=",
    "svc * @anyvm @anyvm allow target=work target=vault",
    "svc * @anyvm @anyvm allow default_target=work",
    "svc * @anyvm @anyvm deny target=work",
    "svc * @anyvm @anyvm deny user=root",
    "svc * @anyvm @anyvm allow notify=true",
    "svc * @anyvm @anyvm ask autostart=1",
    "svc * @anyvm @default allow",
    "svc a @anyvm @anyvm allow",
    "svc +a/b @anyvm @anyvm allow",
    "svc+x * @anyvm @anyvm allow",
    "* +a @anyvm @anyvm allow",
    "svc * @anyvm @anyvm allow bogus=1",
    "svc * @anyvm @anyvm allow # trailing comment",
    "!include",
    "!include a b",
    "!include-dir",
    "!include-service svc *",
    "!bogus",
    "!include include/missing",
    "!include-dir missing-dir",
    "!include-service svc +a include/missing",
    "!include-service svc+x * include/old",
    "!compat-4.0 extra",
    "svc * @anyvm @anyvm ask target=@dispvm:@tag:dvm",
    "svc * uuid: @anyvm allow",
]

# File names Qubes refuses (the whole policy, with no line number); the last is inside an
# !include-dir directory, which the same rule covers.
BAD_FILE_NAMES = ["Bad.policy", "x y.policy", "ümlaut.policy", "incdir/Bad.policy"]


def make_set(rng, index):
    """One policy set: files (name -> text), domains, and whether it is meant to be invalid."""
    domains = make_domains(rng)
    files = {}
    file_count = rng.choice([1, 1, 2, 3])
    file_names = sorted(rng.sample(["10-first.policy", "30-user.policy", "50-config.policy", "70-addon.policy",
                                    "90-default.policy"], file_count))
    focus = rng.choice(SERVICES)  # most rules of a set share a service, so that they interact
    for name in file_names:
        lines = []
        for _ in range(rng.randint(2, 9)):
            draw = rng.random()
            if draw < 0.08:
                lines.append(rng.choice(["", "# a comment", "   "]))
            else:
                lines.append(make_rule(rng, domains, service=focus if rng.random() < 0.75 else None))
        files[name] = lines
    # Include files: v5 (!include, !include-dir) and old per-service (!include-service).
    if rng.random() < 0.25:
        files["include/extra"] = [make_rule(rng, domains, service=focus) for _ in range(rng.randint(1, 3))]
        rng.choice(list(files.values())[:file_count]).insert(0, "!include include/extra")
    if rng.random() < 0.1:
        files["incdir/20-inc.policy"] = [make_rule(rng, domains, service=focus) for _ in range(2)]
        files["incdir/README"] = ["not policy: ignored"]
        list(files.values())[0].insert(0, "!include-dir incdir")
    if rng.random() < 0.12:
        old = []
        for _ in range(rng.randint(1, 3)):
            rule = make_rule(rng, domains).split()
            params = [p for p in rule[5:] if not p.startswith("notify")]
            old.append(" ".join([rule[2].replace("@", "$"), rule[3].replace("@", "$"), ",".join([rule[4]] + params)]))
        files["include/old"] = old
        argument = "+a" if focus != "*" else "*"
        list(files.values())[0].append("!include-service %s %s include/old" % (focus, rng.choice([argument, "*"])))
    # Every eighth set is invalid, walking through every kind of error in turn.
    if index % 8 == 4:
        included = [name for name in files if name.startswith("include/") or name.startswith("incdir/2")]
        target_file = rng.choice(file_names + included)
        kind = (index // 8) % (len(BAD_LINES) + len(BAD_FILE_NAMES))
        if kind < len(BAD_LINES):
            lines = files[target_file]
            lines.insert(rng.randint(0, len(lines)), BAD_LINES[kind])
        else:
            bad_name = BAD_FILE_NAMES[kind - len(BAD_LINES)]
            files[bad_name] = ["svc * @anyvm @anyvm allow"]
            if bad_name.startswith("incdir/") and "!include-dir incdir" not in files[file_names[0]]:
                files[file_names[0]].insert(0, "!include-dir incdir")
    if rng.random() < 0.1:
        files[".hidden.policy"] = ["bogus line"]  # ignored: starts with a dot
        files["notes.txt"] = ["bogus line"]  # ignored: not *.policy
    # A runtime directory loaded before the system one (Qubes: /run/qubes/policy.d): a file of
    # the same basename there replaces the system's whole file.
    runtime = {}
    if rng.random() < 0.15:
        for name in rng.sample(file_names + ["20-runtime.policy"], rng.randint(1, 2)):
            runtime[name] = [make_rule(rng, domains, service=focus) for _ in range(rng.randint(1, 3))]
    return {"files": {name: "\n".join(lines) + "\n" for name, lines in files.items()},
            "runtime_files": {name: "\n".join(lines) + "\n" for name, lines in runtime.items()},
            "domains": domains, "focus": focus}


def make_requests(rng, policy_set, count):
    domains = policy_set["domains"]
    names = [d["name"] for d in domains]
    templates = [d["name"] for d in domains if d["template_for_dispvms"]]
    requests = []
    for _ in range(count):
        source_domain = rng.choice(domains[1:] if rng.random() < 0.9 else domains)
        source = source_domain["name"] if rng.random() < 0.85 else "uuid:" + source_domain["uuid"]
        other = rng.choice(domains)
        target = rng.choice([
            rng.choice(names), rng.choice(names), "uuid:" + other["uuid"], source_domain["name"],
            "uuid:" + source_domain["uuid"], "dom0", "@adminvm", "uuid:" + ZERO_UUID, "", "@default",
            "@dispvm", "@dispvm", "@dispvm:" + rng.choice(templates or names), "@dispvm:" + rng.choice(names),
            "@dispvm:uuid:" + other["uuid"], GHOST,
        ] * 8 + ["@dispvm:" + GHOST, "@anyvm", "@tag:work", rng.choice(ODD_TARGETS)])
        service = policy_set["focus"] if rng.random() < 0.8 else rng.choice(SERVICES)
        if service == "*":
            service = "svc"
        argument = rng.choice(ARGUMENTS)
        call = service if argument == "+" and rng.random() < 0.5 else service + argument
        requests.append([call, source, target])
    return requests


def generate(seed, set_count, requests_per_set):
    rng = random.Random(seed)
    sets = []
    for index in range(set_count):
        policy_set = make_set(rng, index)
        policy_set["requests"] = make_requests(rng, policy_set, requests_per_set)
        del policy_set["focus"]
        sets.append(policy_set)
    return sets
