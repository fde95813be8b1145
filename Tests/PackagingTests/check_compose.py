#!/usr/bin/env python3
"""Checks a docker-compose file for ezpoll without a Docker engine.

usage: check_compose.py COMPOSE_FILE COMPOSE_SCHEMA EZPOLL_BINARY

1. The file validates against the Compose Specification JSON schema (jsonschema + PyYAML).
2. Every service running the ezpoll image names a real subcommand, passes only options that
   `ezpoll SUBCOMMAND --help` lists, and sets only EZPOLL_* variables that the subcommand's
   help names (the help of `ezpoll run` names each variable it reads).
3. The `ezpoll run` service is configured only through the environment (no flags), runs at
   least two replicas, and every topic it uses is created by a one-shot service.

Prints one line per problem ("PROBLEM: ...") and exits 1 if there is any, else prints
"compose OK" and exits 0.
"""
import json
import re
import shlex
import subprocess
import sys

import jsonschema
import yaml

DEFAULT_TOPICS = {
    "EZPOLL_INPUT_TOPIC": "captcha.tasks",
    "EZPOLL_SOLUTIONS_TOPIC": "captcha.solutions",
    "EZPOLL_FAILURES_TOPIC": "captcha.failures",
    "EZPOLL_DEAD_LETTER_TOPIC": "captcha.tasks.dlq",
}


def help_text(binary, *args):
    result = subprocess.run([binary, *args, "--help"], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise SystemExit(f"PROBLEM: `{binary} {' '.join(args)} --help` failed: {result.stderr.strip()}")
    return result.stdout


def subcommands(binary):
    text = help_text(binary)
    section = text.split("SUBCOMMANDS:", 1)[1] if "SUBCOMMANDS:" in text else ""
    return {m.group(1) for m in re.finditer(r"^  ([a-z][a-z0-9-]*)(?=\s)", section, re.M)}


def as_list(command):
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command]


def as_dict(environment):
    if environment is None:
        return {}
    if isinstance(environment, list):
        pairs = (item.split("=", 1) for item in environment)
        return {p[0]: (p[1] if len(p) > 1 else None) for p in pairs}
    return dict(environment)


def runs_ezpoll(service):
    image = str(service.get("image", ""))
    return "build" in service or image.split(":")[0].split("/")[-1] == "ezpoll"


def check(compose_path, schema_path, binary):
    problems = []
    with open(compose_path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        problems.append(f"schema: {where}: {error.message}")
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        problems.append("no services")
        return problems

    services = doc["services"]
    known_subcommands = subcommands(binary)
    helps = {}
    run_services = []
    for name, service in services.items():
        if not isinstance(service, dict) or not runs_ezpoll(service):
            continue
        command = as_list(service.get("command"))
        if not command:
            problems.append(f"{name}: no ezpoll subcommand in command")
            continue
        sub = command[0]
        if sub not in known_subcommands:
            problems.append(f"{name}: `ezpoll {sub}` is not a subcommand (known: {sorted(known_subcommands)})")
            continue
        text = helps.setdefault(sub, help_text(binary, sub))
        options = set(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", text))
        variables = set(re.findall(r"\bEZPOLL_[A-Z0-9_]+\b", text))
        flags = [arg.split("=", 1)[0] for arg in command[1:] if arg.startswith("--")]
        for flag in flags:
            if flag not in options:
                problems.append(f"{name}: `ezpoll {sub}` has no option {flag}")
        environment = as_dict(service.get("environment"))
        for key in environment:
            if key.startswith("EZPOLL_") and key not in variables:
                problems.append(f"{name}: `ezpoll {sub}` reads no variable {key}")
        if sub == "run":
            run_services.append(name)
            if flags:
                problems.append(f"{name}: `ezpoll run` must be configured through EZPOLL_* variables only, not {flags}")
            if "EZPOLL_CLIENT_KEY" in environment and environment["EZPOLL_CLIENT_KEY"] not in (None, ""):
                if not str(environment["EZPOLL_CLIENT_KEY"]).startswith("${"):
                    problems.append(f"{name}: a literal clientKey in the compose file")
            replicas = (service.get("deploy") or {}).get("replicas", service.get("scale", 1))
            if not isinstance(replicas, int) or replicas < 2:
                problems.append(f"{name}: `ezpoll run` needs at least 2 replicas in one group, has {replicas}")
            if "EZPOLL_BROKERS" not in environment:
                problems.append(f"{name}: EZPOLL_BROKERS is not set")
            created = " ".join(
                " ".join(as_list(s.get("command")) + as_list(s.get("entrypoint")))
                for s in services.values() if isinstance(s, dict) and not runs_ezpoll(s))
            for variable, default in DEFAULT_TOPICS.items():
                topic = str(environment.get(variable) or default)
                if not re.search(rf"(?<![\w.-]){re.escape(topic)}(?![\w.-])", created):
                    problems.append(f"{name}: topic {topic} ({variable}) is created by no service")
    if not run_services:
        problems.append("no service runs `ezpoll run`")
    return problems


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(*argv[1:])
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if problems:
        return 1
    print("compose OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
