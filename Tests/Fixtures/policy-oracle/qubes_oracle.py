#!/usr/bin/env python3
"""Runs Qubes' own policy engine (qubes-core-qrexec's qrexec/policy/parser.py) as an oracle over
the cases policy_cases.py generates, and writes its answers as test data.

    scripts/policy-oracle            # fetches qubes-core-qrexec v4.4.2, runs this, rewrites cases.json

This file is ours; Qubes' code is never copied into the project: it is imported from the
checkout given with --qrexec (read at generation time only). Output: one JSON document,
deterministic (same seed and same Qubes version, same bytes).

An answer is one line of text, the form QubesOracleTests.swift builds from Odyssey's decision:
    allow TARGET [user=U] [noautostart] [notify] @FILE:LINE
    ask [A,B,...] [default=D] [user=U] [noautostart] [notify] @FILE:LINE => CHOICE: ANSWER
                            (ANSWER: the call once the user approves CHOICE, the preselected
                             choice or else the first, in one of these forms)
    deny notify|quiet: MESSAGE
    refused: EXCEPTION      (Qubes fails with an exception that is not AccessDenied: the daemon
                             drops the call, so Odyssey must deny it; message and notify unchecked)
File paths in messages are written relative to the policy directories, as @DIR@/NAME (the system
directory) and @RUN@/NAME (the runtime directory, loaded first, whose files shadow the system's).
"""

import argparse
import asyncio
import json
import logging
import os
import pathlib
import random
import sys
import tempfile
import types

import policy_cases

SEED = 14
SET_COUNT = 440
REQUESTS_PER_SET = 27
REQUESTS_PER_INVALID_SET = 3


def import_qubes_parser(qrexec_checkout):
    # parser.py itself imports no inotify, but the package's policy utils do: a stub keeps an
    # oracle run independent of the host's Python packages.
    sys.modules.setdefault("pyinotify", types.ModuleType("pyinotify"))
    sys.path.insert(0, str(qrexec_checkout))
    from qrexec.policy import parser  # pylint: disable=import-outside-toplevel
    from qrexec import exc  # pylint: disable=import-outside-toplevel
    return parser, exc


def system_info(domains):
    """The shape qrexec.utils.get_system_info() returns: by name, and again by "uuid:UUID"."""
    info = {}
    for domain in domains:
        entry = {key: value for key, value in domain.items()}
        entry["icon"] = ""
        entry["guivm"] = None
        info[domain["name"]] = entry
    for domain in domains:
        info["uuid:" + domain["uuid"]] = info[domain["name"]]
    return {"domains": info}


def write_files(directory, files):
    directory.mkdir(parents=True)
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def relative_paths(text, directory):
    """Paths in messages as @RUN@/NAME (runtime directory) or @DIR@/NAME (system directory)."""
    return text.replace(str(directory.parent / "runtime.d"), "@RUN@").replace(str(directory), "@DIR@")


def summarize(parser, resolution, request, directory):
    """The answer line for a resolution (allow or ask), as the Swift side prints it."""
    rule = resolution.rule
    line = " @%s:%d" % (relative_paths(str(rule.filepath), directory), rule.lineno)
    extras = ""
    if resolution.user:  # None and "" both mean the target's default user (the daemon: user=DEFAULT)
        extras += " user=" + resolution.user
    if not resolution.autostart:
        extras += " noautostart"
    if resolution.notify:
        extras += " notify"
    if isinstance(resolution, parser.AskResolution):
        choices = sorted(str(t) for t in resolution.targets_for_ask)
        preset = "" if resolution.default_target is None else " default=" + str(resolution.default_target)
        # The user approves a choice (the preselected one half the time, if there is one; drawn
        # from the request's text, so the same each run): what the daemon then does.
        draw = random.Random("|".join([request.service, request.argument, request.source, str(request.target)]))
        choice = draw.choice(choices)
        if resolution.default_target is not None and draw.random() < 0.5:
            choice = str(resolution.default_target)
        approval = outcome(parser, lambda: resolution.handle_user_response(True, choice), request, directory)
        return "ask [" + ",".join(choices) + "]" + preset + extras + line + " => " + choice + ": " + approval
    # The daemon's answer for an allow: execute() also refuses the loopback and looks the
    # target up, and names the target it connects to.
    result = asyncio.run(resolution.execute())
    fields = dict(item.split("=", 1) for item in result.split("\n"))
    return "allow " + fields["target"] + extras + line


def decide(parser, policy, call, source, target, info, directory):
    service, argument = parser.parse_service_and_argument(call)
    return outcome(parser, lambda: policy.evaluate(parser.Request(service, argument, source, target, system_info=info)),
                   None, directory)


def outcome(parser, resolve, request, directory):
    """The answer line for whatever `resolve` returns or raises."""
    from qrexec import exc  # pylint: disable=import-outside-toplevel
    try:
        resolution = resolve()
        return summarize(parser, resolution, resolution.request, directory)
    except exc.AccessDenied as denied:
        return "deny %s: %s" % ("notify" if denied.notify else "quiet", relative_paths(str(denied), directory))
    except Exception as failure:  # pylint: disable=broad-except
        return "refused: " + type(failure).__name__


def run(qrexec_checkout, output, seed=SEED, set_count=SET_COUNT):
    parser, exc = import_qubes_parser(qrexec_checkout)
    logging.disable(logging.CRITICAL)  # Qubes logs warnings for unknown targets: not answers
    sets = policy_cases.generate(seed, set_count, REQUESTS_PER_SET)
    counts = {"sets": 0, "invalid_sets": 0, "requests": 0}
    with tempfile.TemporaryDirectory(prefix="qubes-oracle-") as scratch:
        scratch = pathlib.Path(scratch).resolve()
        for number, policy_set in enumerate(sets):
            directory = scratch / ("set%d" % number) / "policy.d"
            write_files(directory, policy_set["files"])
            directories = [directory]
            if policy_set["runtime_files"]:
                directories.insert(0, directory.parent / "runtime.d")
                write_files(directories[0], policy_set["runtime_files"])
            info = system_info(policy_set["domains"])
            try:
                policy = parser.FilePolicy(policy_path=directories)
                policy_set["load_error"] = None
            except exc.AccessDenied as failure:
                policy = None
                policy_set["load_error"] = relative_paths(str(failure), directory)
                policy_set["requests"] = policy_set["requests"][:REQUESTS_PER_INVALID_SET]
                counts["invalid_sets"] += 1
            for request in policy_set["requests"]:
                if policy is None:
                    request.append("deny notify: policy failed to load")
                else:
                    request.append(decide(parser, policy, *request, info, directory))
            counts["sets"] += 1
            counts["requests"] += len(policy_set["requests"])
    document = {
        "about": "Qubes' policy engine's answers; regenerate with scripts/policy-oracle (see qubes_oracle.py)",
        "qubes_qrexec": qubes_version(qrexec_checkout),
        "seed": seed,
        "counts": counts,
        "sets": sets,
    }
    # One policy set per line, so that a regeneration's diff shows which sets changed.
    compact = dict(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    head = json.dumps(dict(document, sets=[]), **compact)
    with open(output, "w", encoding="utf-8") as file:
        file.write(head[: -len("[]}")] + "[\n")
        file.write(",\n".join(json.dumps(policy_set, **compact) for policy_set in sets))
        file.write("\n]}\n")
    print("%(sets)d policy sets (%(invalid_sets)d invalid), %(requests)d requests -> " % counts + str(output))


def qubes_version(checkout):
    version = (pathlib.Path(checkout) / "version")
    return version.read_text().strip() if version.exists() else "unknown"


def main():
    arguments = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    arguments.add_argument("--qrexec", required=True, help="a qubes-core-qrexec checkout (the R4.3 line, 4.4.x)")
    arguments.add_argument("--output", required=True, help="where to write the cases and answers (JSON)")
    arguments.add_argument("--seed", type=int, default=SEED,
                           help="another draw, for a run beside the committed one (default %(default)s)")
    arguments.add_argument("--sets", type=int, default=SET_COUNT, help="policy sets (default %(default)s)")
    options = arguments.parse_args()
    run(pathlib.Path(options.qrexec).resolve(), options.output, options.seed, options.sets)


if __name__ == "__main__":
    main()
