#!/usr/bin/env python3
"""Checks ezpoll's Kubernetes manifests and Prometheus rules without a cluster.

usage: check_deploy.py [--manifests FILE] [--rules FILE] [--rules-test FILE] [--scaledobject FILE] [--dashboard FILE]

Defaults (relative to the repository root, found from this file's location):
deploy/ezpoll.yaml, deploy/prometheus-rules.yaml,
Tests/PackagingTests/prometheus-rules-test.yaml.

1. Every document of the manifests validates against the Kubernetes OpenAPI schemas of
   Kubernetes KUBERNETES_VERSION, strict (no unknown fields), offline: the schemas come
   bundled in the PyPI package kubernetes-validate.
2. The manifests do what ezpoll needs: no namespace; a Deployment running `ezpoll run`
   (no flags: EZPOLL_* variables only, each one that `ezpoll run` reads, per README.md's
   configuration reference), at least 2 replicas, the metrics port, liveness on
   /health/live and readiness on /health/ready of that port; the clientKey only as a
   file from the Secret ezpoll-client-key (EZPOLL_CLIENT_KEY_FILE pointing into a
   mounted secret volume that has the key), never EZPOLL_CLIENT_KEY nor a secret in the
   environment; the Kafka properties file (if any) from a mounted Secret too;
   terminationGracePeriodSeconds above the drain timeout; CPU and memory requests and
   limits; non-root, read-only root filesystem, no privilege escalation, all capabilities
   dropped; Prometheus scrape annotations; JSON logs; a PodDisruptionBudget and a Service
   with the metrics port, both selecting the Deployment's pods.
3. Every ezpoll_* metric named in the rules (expressions and annotations) and in the
   rule unit tests exists: declared in Sources/Poller/Observability/PipelineMetrics.swift
   and listed in README.md's metrics table (plus _bucket/_sum/_count of its histograms);
   every rule has for, labels.severity, annotations.summary and .description, and some
   unit test sees every alert fire; `promtool check rules` passes on the rules and `promtool test rules`
   on the unit tests.

4. The KEDA ScaledObject (deploy/keda-scaledobject.yaml) validates against
   keda-scaledobject.schema.json (beside this file: written from KEDA's published
   ScaledObject and Kafka scaler specifications, strict), and scales that Deployment on the
   Kafka trigger of its own group, topic and brokers, with a lag threshold no lower than
   the group's in-flight bound (2 x EZPOLL_RATE_LIMIT x the poll interval: lag up to it
   is work in progress), at least 2 and at most 64 replicas, and a scale-down
   stabilisation longer than the drain timeout and the 300 s result window.

5. The Grafana dashboard (deploy/grafana-dashboard.json): every panel has a title and a
   query, every query parses (`promtool check rules` on a rule per query, Grafana's
   $__rate_interval and $job filled in) and names only metrics ezpoll exports, and its
   ConfigMap (deploy/grafana-dashboard-configmap.yaml) carries the same dashboard.

Prints what it checked, one "PROBLEM: ..." line per problem, and exits 1 if there is any;
otherwise ends with "deploy OK" and exits 0. Exits 2 when a tool it needs is missing.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

KUBERNETES_VERSION = "1.33.0"
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENT_KEY_SECRET = "ezpoll-client-key"
DEFAULT_DRAIN_TIMEOUT = 10.0
DEFAULT_METRICS_PORT = 9464

try:
    import yaml
except ImportError:
    print("PROBLEM: Python package PyYAML is missing: run scripts/setup.sh (pip install pyyaml)")
    sys.exit(2)
try:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError
except ImportError:
    print("PROBLEM: Python package kubernetes-validate is missing: run scripts/setup.sh "
          "(pip install kubernetes-validate)")
    sys.exit(2)


class Checker:
    def __init__(self):
        self.problems = []
        self.checked = []

    def problem(self, message):
        self.problems.append(message)

    def ok(self, message):
        self.checked.append(message)

    def expect(self, condition, good, bad):
        if condition:
            self.ok(good)
        else:
            self.problem(bad)
        return condition


def repo_path(*parts):
    return os.path.join(REPOSITORY, *parts)


def describe(doc):
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind', '?')}/{meta.get('name', '?')}"


# ---------------------------------------------------------------- 1. schemas


def validate_schemas(c, docs):
    for doc in docs:
        try:
            version = kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            c.ok(f"schema: {describe(doc)} is valid for Kubernetes {version} (strict)")
        except ValidationError as e:
            where = ".".join(str(p) for p in e.path) or "<root>"
            c.problem(f"schema: {describe(doc)}: {where}: {e.message}")
        except SchemaNotFoundError:
            c.problem(f"schema: {describe(doc)}: no schema for kind {doc.get('kind')} "
                      f"apiVersion {doc.get('apiVersion')} in Kubernetes {KUBERNETES_VERSION}")
        except Exception as e:  # noqa: BLE001 - any other failure is a problem too
            c.problem(f"schema: {describe(doc)} could not be validated: {type(e).__name__}: {e}")


# ---------------------------------------------------------------- 2. what ezpoll needs


def known_variables():
    with open(repo_path("README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## Configuration reference", 1)[-1].split("\n## ", 1)[0]
    return set(re.findall(r"`(EZPOLL_[A-Z0-9_]+)`", section))


def selects(selector, labels):
    match = (selector or {}).get("matchLabels", selector or {})
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def secret_keys(secret):
    return set((secret.get("data") or {}).keys()) | set((secret.get("stringData") or {}).keys())


def file_from_secret(c, name, path, container, pod, secrets):
    """Is `path` a file of a mounted secret volume? Returns the Secret's name or None."""
    for mount in container.get("volumeMounts") or []:
        directory = mount.get("mountPath", "").rstrip("/")
        if not path.startswith(directory + "/"):
            continue
        relative = path[len(directory) + 1:]
        if mount.get("subPath"):
            c.problem(f"{name}: {path} comes from a subPath mount, which never sees Secret updates")
            return None
        volume = next((v for v in pod.get("volumes") or [] if v.get("name") == mount.get("name")), None)
        if volume is None or "secret" not in volume:
            c.problem(f"{name}: {path} is in volume {mount.get('name')}, which is not a secret volume")
            return None
        secret_volume = volume["secret"]
        secret_name = secret_volume.get("secretName")
        items = secret_volume.get("items")
        if items:
            key = next((i.get("key") for i in items if i.get("path") == relative), None)
        else:
            key = relative
        secret = secrets.get(secret_name)
        if key is None:
            c.problem(f"{name}: no item of secret volume {mount.get('name')} is mounted at {path}")
            return None
        if secret is None:
            c.problem(f"{name}: {path} comes from Secret {secret_name}, which the manifests do not define")
            return None
        if key not in secret_keys(secret):
            c.problem(f"{name}: {path} is key {key} of Secret {secret_name}, which has no such key")
            return None
        mode = secret_volume.get("defaultMode", 0o644)
        if mode & 0o007:
            c.problem(f"{name}: secret volume {mount.get('name')} is world-readable (defaultMode {oct(mode)})")
        return secret_name
    c.problem(f"{name}: {path} is not inside any volume mount of container {container.get('name')}")
    return None


def check_deployment(c, docs, variables):
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc.get("kind"), []).append(doc)
    secrets = {d["metadata"]["name"]: d for d in by_kind.get("Secret", [])}
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}

    for doc in docs:
        if (doc.get("metadata") or {}).get("namespace"):
            c.problem(f"{describe(doc)}: sets a namespace; the manifests must be namespace-agnostic (kubectl apply -n)")
    c.ok("no document sets a namespace")

    deployments = [d for d in by_kind.get("Deployment", [])
                   if any(str(ct.get("image", "")).split("/")[-1].split(":")[0].split("@")[0] == "ezpoll"
                          for ct in d["spec"]["template"]["spec"].get("containers", []))]
    if len(deployments) != 1:
        c.problem(f"expected one Deployment running the ezpoll image, found {len(deployments)}")
        return
    deployment = deployments[0]
    name = describe(deployment)
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    pod_labels = (spec["template"].get("metadata") or {}).get("labels") or {}
    c.expect(selects(spec.get("selector"), pod_labels),
             f"{name}: selector matches its pod labels",
             f"{name}: selector {spec.get('selector')} does not match the pod labels {pod_labels}")
    replicas = spec.get("replicas", 1)
    c.expect(isinstance(replicas, int) and replicas >= 2,
             f"{name}: {replicas} replicas in one consumer group",
             f"{name}: `ezpoll run` needs at least 2 replicas in one group, has {replicas}")

    container = next(ct for ct in pod["containers"]
                     if str(ct.get("image", "")).split("/")[-1].split(":")[0].split("@")[0] == "ezpoll")
    cname = f"{name} container {container.get('name')}"
    argv = [str(a) for a in (container.get("command") or ["ezpoll"]) + (container.get("args") or [])]
    if c.expect(argv[:2] == ["ezpoll", "run"],
                f"{cname}: runs `ezpoll run`",
                f"{cname}: runs {argv}, not `ezpoll run`"):
        c.expect(len(argv) == 2,
                 f"{cname}: no flags (configured through EZPOLL_* variables only)",
                 f"{cname}: `ezpoll run` must be configured through EZPOLL_* variables only, not {argv[2:]}")

    # The environment: env entries and envFrom ConfigMaps (a Secret in envFrom puts secrets in the env).
    environment = {}
    for source in container.get("envFrom") or []:
        if "secretRef" in source:
            c.problem(f"{cname}: envFrom Secret {source['secretRef'].get('name')} puts secrets in the environment; mount them as files")
        if "configMapRef" in source:
            ref = source["configMapRef"].get("name")
            if ref not in configmaps:
                c.problem(f"{cname}: envFrom ConfigMap {ref}, which the manifests do not define")
                continue
            prefix = source.get("prefix", "")
            for key, value in (configmaps[ref].get("data") or {}).items():
                environment[prefix + key] = ("literal", value, f"ConfigMap {ref}")
    for entry in container.get("env") or []:
        if "valueFrom" in entry:
            kind = next(iter(entry["valueFrom"]), "?")
            environment[entry["name"]] = (kind, None, "env valueFrom")
            if kind == "secretKeyRef":
                c.problem(f"{cname}: {entry['name']} takes a Secret's value into the environment; mount it as a file")
        else:
            environment[entry["name"]] = ("literal", entry.get("value"), "env")
    unknown = sorted(k for k in environment if k.startswith("EZPOLL_") and k not in variables)
    c.expect(not unknown,
             f"{cname}: sets {len([k for k in environment if k.startswith('EZPOLL_')])} EZPOLL_* variables, each one `ezpoll run` reads",
             f"{cname}: `ezpoll run` reads no variable {', '.join(unknown)} (README.md configuration reference)")
    c.expect("EZPOLL_CLIENT_KEY" not in environment,
             f"{cname}: EZPOLL_CLIENT_KEY is not in the environment",
             f"{cname}: EZPOLL_CLIENT_KEY is set in the environment ({environment.get('EZPOLL_CLIENT_KEY', ('', '', ''))[2]}); "
             f"the clientKey must come from the Secret {CLIENT_KEY_SECRET} as a file (EZPOLL_CLIENT_KEY_FILE)")
    if any("client-key" in a.lower() or "clientkey" in a.lower() for a in argv[2:]):
        c.problem(f"{cname}: the clientKey must not be on the command line")

    def literal(variable):
        kind, value, _ = environment.get(variable, (None, None, None))
        return value if kind == "literal" else None

    key_file = literal("EZPOLL_CLIENT_KEY_FILE")
    if c.expect(bool(key_file),
                f"{cname}: EZPOLL_CLIENT_KEY_FILE={key_file}",
                f"{cname}: EZPOLL_CLIENT_KEY_FILE is not set to a path: the clientKey must come from the Secret {CLIENT_KEY_SECRET} as a file"):
        source = file_from_secret(c, cname, key_file, container, pod, secrets)
        c.expect(source == CLIENT_KEY_SECRET,
                 f"{cname}: the clientKey file is a key of the mounted Secret {CLIENT_KEY_SECRET}",
                 f"{cname}: the clientKey file {key_file} must come from the Secret {CLIENT_KEY_SECRET}"
                 + (f", not {source}" if source else ""))
    kafka_file = literal("EZPOLL_KAFKA_CONFIG_FILE")
    if kafka_file:
        source = file_from_secret(c, cname, kafka_file, container, pod, secrets)
        c.expect(source is not None,
                 f"{cname}: EZPOLL_KAFKA_CONFIG_FILE={kafka_file} is a key of the mounted Secret {source}",
                 f"{cname}: EZPOLL_KAFKA_CONFIG_FILE={kafka_file} must be a file of a mounted Secret")
    for variable in ("EZPOLL_KAFKA_CONFIG", "EZPOLL_KAFKA_CONSUMER_CONFIG", "EZPOLL_KAFKA_PRODUCER_CONFIG"):
        value = literal(variable) or ""
        if re.search(r"(password|secret|\.key\b|token)\s*=", value, re.I):
            c.problem(f"{cname}: {variable} carries a secret ({value.split('=')[0]}...); put it in the EZPOLL_KAFKA_CONFIG_FILE Secret")
    c.expect(bool(literal("EZPOLL_BROKERS")),
             f"{cname}: EZPOLL_BROKERS={literal('EZPOLL_BROKERS')}",
             f"{cname}: EZPOLL_BROKERS is not set (the default localhost:9092 is never right in a pod)")
    c.expect(literal("EZPOLL_LOG_FORMAT") == "json",
             f"{cname}: EZPOLL_LOG_FORMAT=json (one JSON object per log line)",
             f"{cname}: EZPOLL_LOG_FORMAT must be json for log collectors, is {literal('EZPOLL_LOG_FORMAT')!r}")

    # Metrics port and probes.
    try:
        metrics_port = int(literal("EZPOLL_METRICS_PORT") or DEFAULT_METRICS_PORT)
    except ValueError:
        c.problem(f"{cname}: EZPOLL_METRICS_PORT={literal('EZPOLL_METRICS_PORT')!r} is not a number")
        metrics_port = DEFAULT_METRICS_PORT
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
    c.expect(ports.get("metrics") == metrics_port,
             f"{cname}: containerPort {metrics_port} named metrics",
             f"{cname}: needs containerPort {metrics_port} named metrics (EZPOLL_METRICS_PORT), has {ports}")

    def is_metrics_port(port):
        return port == "metrics" or port == metrics_port

    for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        get = (container.get(probe) or {}).get("httpGet") or {}
        c.expect(get.get("path") == path and is_metrics_port(get.get("port")),
                 f"{cname}: {probe} GET {path} on port {get.get('port')}",
                 f"{cname}: {probe} must be httpGet {path} on the metrics port, is {container.get(probe)}")
    live_get = (container.get("livenessProbe") or {}).get("httpGet") or {}
    if live_get.get("path") == "/health/ready":
        c.problem(f"{cname}: liveness on /health/ready would restart every pod during an IP ban")

    # Graceful stop.
    try:
        drain = float(literal("EZPOLL_DRAIN_TIMEOUT") or DEFAULT_DRAIN_TIMEOUT)
    except ValueError:
        c.problem(f"{cname}: EZPOLL_DRAIN_TIMEOUT={literal('EZPOLL_DRAIN_TIMEOUT')!r} is not a number")
        drain = DEFAULT_DRAIN_TIMEOUT
    grace = pod.get("terminationGracePeriodSeconds", 30)
    c.expect(isinstance(grace, (int, float)) and grace > drain,
             f"{name}: terminationGracePeriodSeconds {grace} > drain timeout {drain:g} s (drain, commit, leave the group)",
             f"{name}: terminationGracePeriodSeconds {grace} must exceed the drain timeout ({drain:g} s): "
             f"SIGKILL would cut the drain and the final commit")

    # Resources.
    resources = container.get("resources") or {}
    missing = [f"{side}.{what}" for side in ("requests", "limits") for what in ("cpu", "memory")
               if what not in (resources.get(side) or {})]
    c.expect(not missing,
             f"{cname}: resources requests {resources.get('requests')} limits {resources.get('limits')}",
             f"{cname}: resources must set {', '.join(missing)}")

    # Security context (container settings win over the pod's).
    pod_security = pod.get("securityContext") or {}
    security = container.get("securityContext") or {}
    c.expect(security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True
             and security.get("runAsUser", pod_security.get("runAsUser", 1)) != 0,
             f"{cname}: runAsNonRoot",
             f"{cname}: must set runAsNonRoot: true (and no runAsUser 0)")
    c.expect(security.get("readOnlyRootFilesystem") is True,
             f"{cname}: readOnlyRootFilesystem",
             f"{cname}: must set readOnlyRootFilesystem: true")
    c.expect(security.get("allowPrivilegeEscalation") is False,
             f"{cname}: allowPrivilegeEscalation false",
             f"{cname}: must set allowPrivilegeEscalation: false")
    c.expect("ALL" in ((security.get("capabilities") or {}).get("drop") or []),
             f"{cname}: drops ALL capabilities",
             f"{cname}: must drop ALL capabilities")
    if security.get("privileged") or (security.get("capabilities") or {}).get("add"):
        c.problem(f"{cname}: privileged or added capabilities")

    # Scrape annotations.
    annotations = (spec["template"].get("metadata") or {}).get("annotations") or {}
    c.expect(annotations.get("prometheus.io/scrape") == "true"
             and str(annotations.get("prometheus.io/port")) == str(metrics_port)
             and annotations.get("prometheus.io/path", "/metrics") == "/metrics",
             f"{name}: pod annotations prometheus.io/scrape, port {metrics_port}, path /metrics",
             f"{name}: pod template needs prometheus.io/scrape \"true\" and prometheus.io/port \"{metrics_port}\", has {annotations}")

    # PodDisruptionBudget.
    pdbs = [d for d in by_kind.get("PodDisruptionBudget", []) if selects(d["spec"].get("selector"), pod_labels)]
    if c.expect(len(pdbs) == 1,
                f"{describe(pdbs[0]) if pdbs else 'PodDisruptionBudget'}: selects the ezpoll pods",
                f"expected one PodDisruptionBudget selecting the ezpoll pods {pod_labels}, found {len(pdbs)}"):
        budget = pdbs[0]["spec"]
        limited = budget.get("maxUnavailable") == 1 or (
            isinstance(budget.get("minAvailable"), int) and 0 < budget["minAvailable"] < replicas)
        c.expect(limited,
                 f"{describe(pdbs[0])}: maxUnavailable {budget.get('maxUnavailable')} minAvailable {budget.get('minAvailable')}",
                 f"{describe(pdbs[0])}: must allow exactly one voluntary disruption at a time (maxUnavailable: 1), has {budget}")

    # Service for the metrics port.
    services = [d for d in by_kind.get("Service", []) if selects(d["spec"].get("selector"), pod_labels)]
    metrics_services = [s for s in services
                        if any(is_metrics_port(p.get("targetPort", p.get("port"))) for p in s["spec"].get("ports") or [])]
    c.expect(len(metrics_services) >= 1,
             f"{describe(metrics_services[0]) if metrics_services else 'Service'}: exposes the metrics port of the ezpoll pods",
             f"no Service selects the ezpoll pods {pod_labels} with targetPort metrics ({metrics_port})")

    # The clientKey Secret: a placeholder here (replaced at deploy time), never a real-looking key in env.
    c.expect(CLIENT_KEY_SECRET in secrets,
             f"Secret/{CLIENT_KEY_SECRET} is defined",
             f"Secret/{CLIENT_KEY_SECRET} is not defined")


# ---------------------------------------------------------------- 3. rules


DEFAULT_POLL_INTERVAL = 3.0  # ez-captcha's profile
RESULT_WINDOW = 300.0


def validate_scaledobject(c, scaled):
    """The ScaledObject against keda-scaledobject.schema.json: strict, offline."""
    import json
    import jsonschema
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "keda-scaledobject.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(scaled), key=lambda e: list(e.absolute_path))
    # A value can break two rules that say the same (metadata is strings; Kafka's are too).
    for line in dict.fromkeys(f"scaledobject schema: {'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
                              for e in errors):
        c.problem(line)
    if not errors:
        c.ok(f"scaledobject schema: {describe(scaled)} is valid for keda.sh/v1alpha1 (strict, Tests/PackagingTests/keda-scaledobject.schema.json)")


def check_scaledobject(c, path, docs):
    """The ScaledObject against the Deployment and ConfigMap it scales."""
    with open(path, encoding="utf-8") as f:
        scaled = [d for d in yaml.safe_load_all(f) if d is not None]
    objects = [d for d in scaled if d.get("kind") == "ScaledObject" and d.get("apiVersion") == "keda.sh/v1alpha1"]
    if len(objects) != 1:
        c.problem(f"scaledobject: expected one keda.sh/v1alpha1 ScaledObject, found {len(objects)}")
        return
    validate_scaledobject(c, objects[0])
    spec = objects[0].get("spec") or {}
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    config = next((d.get("data") or {} for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "ezpoll-config"), {})
    target = (spec.get("scaleTargetRef") or {}).get("name")
    c.expect(any(d["metadata"]["name"] == target for d in deployments),
             f"scaledobject: scales Deployment {target}", f"scaledobject: scaleTargetRef {target} is no Deployment of the manifests")
    triggers = [t for t in spec.get("triggers") or [] if t.get("type") == "kafka"]
    if len(triggers) != 1:
        c.problem(f"scaledobject: expected one kafka trigger, found {len(triggers)}")
        return
    meta = triggers[0].get("metadata") or {}
    for key, variable in (("consumerGroup", "EZPOLL_GROUP_ID"), ("topic", "EZPOLL_INPUT_TOPIC"), ("bootstrapServers", "EZPOLL_BROKERS")):
        c.expect(meta.get(key) == config.get(variable),
                 f"scaledobject: trigger {key} is {variable} ({meta.get(key)})",
                 f"scaledobject: trigger {key} {meta.get(key)!r} is not {variable} {config.get(variable)!r}")
    rate = float(config.get("EZPOLL_RATE_LIMIT", 200))
    interval = float(config.get("EZPOLL_POLL_INTERVAL", DEFAULT_POLL_INTERVAL))
    bound = 2 * rate * interval
    try:
        threshold = float(meta.get("lagThreshold"))
    except (TypeError, ValueError):
        threshold = None
    c.expect(threshold is not None and threshold >= bound,
             f"scaledobject: lagThreshold {threshold:.0f} >= the group's in-flight bound {bound:.0f}" if threshold is not None else "",
             f"scaledobject: lagThreshold {meta.get('lagThreshold')} is below the group's in-flight bound {bound:.0f} "
             f"(2 x rate {rate:.0f} x interval {interval:.0f} s): tasks in flight alone would add replicas the shared budget cannot feed")
    low, high = spec.get("minReplicaCount"), spec.get("maxReplicaCount")
    c.expect(isinstance(low, int) and isinstance(high, int) and 2 <= low <= high <= 64,
             f"scaledobject: {low} to {high} replicas",
             f"scaledobject: replicas must be 2 <= minReplicaCount <= maxReplicaCount <= 64 (got {low}, {high})")
    window = ((((spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get("behavior") or {})
              .get("scaleDown") or {}).get("stabilizationWindowSeconds")
    drain = float(config.get("EZPOLL_DRAIN_TIMEOUT", DEFAULT_DRAIN_TIMEOUT))
    c.expect(isinstance(window, (int, float)) and window > max(drain, RESULT_WINDOW),
             f"scaledobject: scale-down stabilisation {window} s outlasts a drain and a task",
             f"scaledobject: scaleDown.stabilizationWindowSeconds {window} must exceed the drain timeout ({drain:.0f} s) "
             f"and the result window ({RESULT_WINDOW:.0f} s)")


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$job": ".*"}


def check_dashboard(c, path, configmap_path, names):
    """Every panel's query parses and names only exported metrics; the ConfigMap matches."""
    import json
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    panels = dashboard.get("panels") or []
    queries = []
    for panel in panels:
        targets = [t.get("expr") for t in panel.get("targets") or [] if t.get("expr")]
        if not panel.get("title") or not targets:
            c.problem(f"dashboard: panel {panel.get('id')} has no title or no query")
        queries += [(panel.get("title"), expr) for expr in targets]
    c.ok(f"dashboard: {len(panels)} panels, {len(queries)} queries")
    check_metric_names(c, "dashboard", "\n".join(expr for _, expr in queries), names)
    filled = []
    for _, expr in queries:
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        filled.append(expr)
    if shutil.which("promtool") is None:
        c.problem("promtool is missing: run scripts/setup.sh (apt-get install prometheus)")
    else:
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"ezpoll_dashboard:query_{i}", "expr": expr} for i, expr in enumerate(filled)]}]}
        with tempfile.TemporaryDirectory() as directory:
            copy = os.path.join(directory, "dashboard-queries.yaml")
            with open(copy, "w", encoding="utf-8") as f:
                yaml.safe_dump(rules, f, sort_keys=False)
            result = subprocess.run(["promtool", "check", "rules", copy], capture_output=True, text=True, timeout=300)
        c.expect(result.returncode == 0, f"dashboard: every query parses (promtool, {len(filled)} queries)",
                 f"dashboard: a query does not parse:\n{(result.stdout + result.stderr).strip()}")
    with open(configmap_path, encoding="utf-8") as f:
        configmap = yaml.safe_load(f) or {}
    embedded = next(iter((configmap.get("data") or {}).values()), "")
    try:
        same = json.loads(embedded) == dashboard
    except ValueError:
        same = False
    c.expect(same and configmap.get("kind") == "ConfigMap",
             f"dashboard: {os.path.relpath(configmap_path, REPOSITORY)} carries the same dashboard",
             f"dashboard: {os.path.relpath(configmap_path, REPOSITORY)} does not carry {os.path.relpath(path, REPOSITORY)}")


def metric_names():
    """Names both in PipelineMetrics.swift and in README.md's metrics table, plus the
    _bucket/_sum/_count series of the table's histograms."""
    with open(repo_path("Sources", "Poller", "Observability", "PipelineMetrics.swift"), encoding="utf-8") as f:
        declared = set(re.findall(r'public static let \w+ = "(ezpoll_[a-z0-9_]+)"', f.read()))
    with open(repo_path("README.md"), encoding="utf-8") as f:
        rows = [line for line in f if line.startswith("| `ezpoll_")]
    documented = {name for row in rows for name in re.findall(r"`(ezpoll_[a-z0-9_]+)`", row.split("|")[1])}
    histograms = {name for row in rows if row.split("|")[2].strip() == "histogram"
                  for name in re.findall(r"`(ezpoll_[a-z0-9_]+)`", row.split("|")[1])}
    names = declared & documented
    for h in histograms & names:
        names |= {h + "_bucket", h + "_sum", h + "_count"}
    return names


def check_metric_names(c, label, text, names):
    used = set(re.findall(r"\b(ezpoll_[a-z0-9_]+)", text))
    unknown = sorted(used - names)
    c.expect(not unknown,
             f"{label}: uses {len(used)} metrics, each one ezpoll exports ({', '.join(sorted(used))})",
             f"{label}: metric {', '.join(unknown)} does not exist (not both in PipelineMetrics.swift and README.md's metrics table)")


def promtool(c, *args):
    result = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=300)
    output = (result.stdout + result.stderr).strip()
    shown = " ".join(os.path.relpath(a, REPOSITORY) if os.path.isabs(a) and a.startswith(REPOSITORY) else a for a in args)
    if result.returncode == 0:
        c.ok(f"promtool {shown}: {output.splitlines()[-1].strip() if output else 'ok'}")
    else:
        c.problem(f"promtool {shown} failed (exit {result.returncode}):\n{output}")


def check_rules(c, rules_path, test_path, names):
    with open(rules_path, encoding="utf-8") as f:
        rules_text = f.read()
    rules = yaml.safe_load(rules_text) or {}
    alerts = [r for g in rules.get("groups") or [] for r in g.get("rules") or [] if "alert" in r]
    for rule in alerts:
        missing = [k for k in ("for",) if k not in rule]
        missing += [f"labels.{k}" for k in ("severity",) if k not in (rule.get("labels") or {})]
        missing += [f"annotations.{k}" for k in ("summary", "description") if k not in (rule.get("annotations") or {})]
        if missing:
            c.problem(f"rules: alert {rule['alert']} lacks {', '.join(missing)}")
    c.ok(f"rules: {len(alerts)} alerts, each with for, labels.severity, annotations.summary/description: "
         f"{', '.join(r['alert'] for r in alerts)}")
    # Expressions and the annotations' text: every metric named anywhere must exist.
    check_metric_names(c, "rules", yaml.safe_dump(alerts), names)
    with open(test_path, encoding="utf-8") as f:
        test_text = f.read()
    tests = yaml.safe_load(test_text) or {}
    series = "\n".join(s.get("series", "") for t in tests.get("tests") or [] for s in t.get("input_series") or [])
    check_metric_names(c, "rule tests", series, names)
    tested = {a.get("alertname") for t in tests.get("tests") or [] for a in t.get("alert_rule_test") or []
              if a.get("exp_alerts")}
    untested = sorted({r["alert"] for r in alerts} - tested)
    c.expect(not untested,
             f"rule tests: every alert is seen firing ({len(tested)})",
             f"rule tests: no test sees {', '.join(untested)} fire")

    if shutil.which("promtool") is None:
        c.problem("promtool is missing: run scripts/setup.sh (apt-get install prometheus)")
        return
    promtool(c, "check", "rules", rules_path)
    default_rules = os.path.realpath(repo_path("deploy", "prometheus-rules.yaml"))
    if os.path.realpath(rules_path) == default_rules:
        promtool(c, "test", "rules", test_path)
    else:
        # Point the unit tests at the rules under check.
        tests["rule_files"] = [os.path.abspath(rules_path)]
        with tempfile.TemporaryDirectory() as directory:
            copy = os.path.join(directory, "rules-test.yaml")
            with open(copy, "w", encoding="utf-8") as f:
                yaml.safe_dump(tests, f, sort_keys=False)
            promtool(c, "test", "rules", copy)


def main():
    parser = argparse.ArgumentParser(description="Checks ezpoll's Kubernetes manifests and Prometheus rules.")
    parser.add_argument("--manifests", default=repo_path("deploy", "ezpoll.yaml"))
    parser.add_argument("--rules", default=repo_path("deploy", "prometheus-rules.yaml"))
    parser.add_argument("--rules-test", default=repo_path("Tests", "PackagingTests", "prometheus-rules-test.yaml"))
    parser.add_argument("--scaledobject", default=repo_path("deploy", "keda-scaledobject.yaml"))
    parser.add_argument("--dashboard", default=repo_path("deploy", "grafana-dashboard.json"))
    parser.add_argument("--dashboard-configmap", default=repo_path("deploy", "grafana-dashboard-configmap.yaml"))
    options = parser.parse_args()

    c = Checker()
    print(f"kubernetes-validate {kubernetes_validate.__version__} (bundled schemas), Kubernetes {KUBERNETES_VERSION}")
    try:
        with open(options.manifests, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        print(f"PROBLEM: cannot read {options.manifests}: {e}")
        return 1
    malformed = [d for d in docs if not isinstance(d, dict) or not d.get("kind") or not (d.get("metadata") or {}).get("name")]
    if malformed:
        print(f"PROBLEM: {options.manifests}: {len(malformed)} document(s) without kind or metadata.name")
        return 1
    c.ok(f"{os.path.relpath(options.manifests, REPOSITORY)}: {len(docs)} documents: {', '.join(describe(d) for d in docs)}")
    validate_schemas(c, docs)
    try:
        check_deployment(c, docs, known_variables())
    except (KeyError, TypeError, AttributeError, StopIteration) as e:
        c.problem(f"manifests: unexpected structure ({type(e).__name__}: {e})")
    check_rules(c, options.rules, options.rules_test, metric_names())
    try:
        check_dashboard(c, options.dashboard, options.dashboard_configmap, metric_names())
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        c.problem(f"dashboard: cannot check {options.dashboard} ({type(e).__name__}: {e})")
    try:
        check_scaledobject(c, options.scaledobject, docs)
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        c.problem(f"scaledobject: cannot check {options.scaledobject} ({type(e).__name__}: {e})")

    for line in c.checked:
        print(f"ok: {line}")
    for line in c.problems:
        print(f"PROBLEM: {line}")
    if c.problems:
        print(f"{len(c.problems)} problem(s), {len(c.checked)} check(s) passed")
        return 1
    print(f"deploy OK ({len(c.checked)} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
