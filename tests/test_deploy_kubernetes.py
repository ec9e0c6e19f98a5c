"""deploy/kubernetes: offline schema validation, a small kustomize renderer, cross-checks.

No cluster and no kustomize binary here, so:
- the kustomizations are rendered by :func:`build` below, which supports exactly the
  kustomize features the manifests use (resources, components, configMapGenerator,
  patches as strategic merge or JSON 6902, images) and fails on any other field, so a new
  feature cannot slip by unrendered. Unlike kustomize it does not append the content hash
  to generated ConfigMap names (references stay consistent either way);
- built-in kinds are validated with the PyPI package ``kubernetes-validate`` (strict: no
  unknown fields) against the oldest and newest Kubernetes versions we document;
- CRDs (KEDA, Prometheus Operator) and kustomization files are not in those schemas and are
  checked against the small JSON Schemas below, which cover the fields we use.
"""

from __future__ import annotations

import copy
import importlib.metadata
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from streamer.config import Settings, load_settings

kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "kubernetes"
BASE = K8S / "base"
COMPONENTS = ("gpu", "keda", "prometheus-operator")
# Oldest and newest Kubernetes minor versions the manifests are checked against
# (docs/operations.md states the minimum).
K8S_VERSIONS = ("1.29", kv.latest_version() if hasattr(kv, "latest_version") else "1.37")
# Files that are deliberately not part of any kustomization.
OPT_IN = {K8S / "components/keda/triggerauthentication.yaml"}
README_PARTITIONS = 12  # caster.readings partitions in deploy/docker/compose.yaml

# ------------------------------------------------------------------------------------------
# A minimal kustomize
# ------------------------------------------------------------------------------------------

_KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "components", "configMapGenerator",
                         "patches", "images"}
# Strategic merge: lists merged by "name" (patchMergeKey in the Kubernetes API).
_MERGE_BY_NAME = {"containers", "initContainers", "env", "volumes"}


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _kustomization(path: Path, kind: str) -> dict[str, Any]:
    k = yaml.safe_load((path / "kustomization.yaml").read_text())
    assert k["kind"] == kind, f"{path}: expected kind {kind}"
    unknown = set(k) - _KUSTOMIZATION_FIELDS
    assert not unknown, f"{path}: the test renderer does not support {sorted(unknown)}"
    return k


def _generate(path: Path, k: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for gen in k.get("configMapGenerator", []):
        data = {}
        for f in gen.get("files", []):
            key, _, src = f.partition("=") if "=" in f else (Path(f).name, "", f)
            data[key] = (path / src).read_text()
        for lit in gen.get("literals", []):
            key, _, value = lit.partition("=")
            data[key] = value
        out.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": gen["name"]}, "data": data})
    return out


def smp(base: Any, patch: Any, key: str = "") -> Any:
    """Strategic merge patch, as far as these manifests need it."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = smp(out[k], v, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if key in _MERGE_BY_NAME and isinstance(base, list) and isinstance(patch, list):
        out = [copy.deepcopy(x) for x in base]
        for item in patch:
            for i, b in enumerate(out):
                if b["name"] == item["name"]:
                    out[i] = smp(b, item)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    assert path.startswith("/")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json6902(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = _pointer(op["path"])
        node: Any = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if op["op"] == "remove":
            del node[int(last) if isinstance(node, list) else last]
        elif op["op"] in ("add", "replace"):
            if isinstance(node, list):
                if last == "-":
                    node.append(op["value"])
                elif op["op"] == "add":
                    node.insert(int(last), op["value"])
                else:
                    node[int(last)] = op["value"]
            else:
                if op["op"] == "replace":
                    assert last in node, f"replace of missing {op['path']}"
                node[last] = op["value"]
        else:
            raise AssertionError(f"unsupported JSON patch op {op['op']}")
    return doc


def _matches(obj: dict[str, Any], target: dict[str, Any]) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    checks = {"kind": obj["kind"], "name": obj["metadata"]["name"], "group": group,
              "version": version}
    return all(checks[k] == v for k, v in target.items())


def _transform(path: Path, k: dict[str, Any], objs: list[dict[str, Any]]) -> None:
    for patch in k.get("patches", []):
        body = yaml.safe_load((path / patch["path"]).read_text())
        target = patch.get("target") or {"kind": body["kind"], "name": body["metadata"]["name"]}
        hits = [i for i, o in enumerate(objs) if _matches(o, target)]
        assert hits, f"{path / patch['path']}: patch target {target} matches nothing"
        for i in hits:
            objs[i] = json6902(objs[i], body) if isinstance(body, list) else smp(objs[i], body)
    for img in k.get("images", []):
        for o in objs:
            for c in pod_spec(o).get("containers", []) if pod_spec(o) else []:
                name, _, tag = c["image"].partition(":")
                if name == img["name"]:
                    c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag)}"


def build(path: Path) -> list[dict[str, Any]]:
    """Render a kustomization directory (see the module docstring for the subset)."""
    k = _kustomization(path, "Kustomization")
    objs: list[dict[str, Any]] = []
    for r in k.get("resources", []):
        p = (path / r).resolve()
        assert p.exists(), f"{path}: resource {r} does not exist"
        objs += build(p) if p.is_dir() else load_docs(p)
    objs += _generate(path, k)
    for c in k.get("components", []):
        cpath = (path / c).resolve()
        ck = _kustomization(cpath, "Component")
        for r in ck.get("resources", []):
            objs += load_docs(cpath / r)
        objs += _generate(cpath, ck)
        _transform(cpath, ck, objs)
    _transform(path, k, objs)
    return objs


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] in ("StatefulSet", "Deployment", "DaemonSet", "Job"):
        return obj["spec"]["template"]["spec"]
    return None


def one(objs: list[dict[str, Any]], kind: str, name: str = "streamer") -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    spec = pod_spec(one(objs, "StatefulSet"))
    assert spec is not None
    return next(c for c in spec["containers"] if c["name"] == "streamer")


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


# ------------------------------------------------------------------------------------------
# JSON Schemas for what kubernetes-validate does not carry (the fields we use)
# ------------------------------------------------------------------------------------------

_META = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
    "namespace": {"type": "string"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "annotations": {"type": "object", "additionalProperties": {"type": "string"}}},
    "additionalProperties": False}
_INT_STRING = {"type": "string", "pattern": r"^[0-9]+$"}

CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    # https://keda.sh/docs/latest/reference/scaledobject-spec/ and the kafka scaler page
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {}, "kind": {}, "metadata": _META,
            "spec": {
                "type": "object", "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object", "required": ["name"], "additionalProperties": False,
                        "properties": {"apiVersion": {"type": "string"},
                                       "kind": {"type": "string"},
                                       "name": {"type": "string"}}},
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "idleReplicaCount": {"type": "integer", "minimum": 0},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "advanced": {
                        "type": "object", "additionalProperties": False,
                        "properties": {
                            "restoreToOriginalReplicaCount": {"type": "boolean"},
                            "horizontalPodAutoscalerConfig": {
                                "type": "object", "additionalProperties": False,
                                "properties": {"name": {"type": "string"},
                                               "behavior": {"type": "object"}}}}},
                    "triggers": {
                        "type": "array", "minItems": 1,
                        "items": {
                            "type": "object", "required": ["type", "metadata"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"const": "kafka"},
                                "name": {"type": "string"},
                                "authenticationRef": {
                                    "type": "object", "required": ["name"],
                                    "properties": {"name": {"type": "string"},
                                                   "kind": {"enum": [
                                                       "TriggerAuthentication",
                                                       "ClusterTriggerAuthentication"]}}},
                                "metadata": {
                                    "type": "object",
                                    "required": ["bootstrapServers", "consumerGroup", "topic",
                                                 "lagThreshold"],
                                    "additionalProperties": False,
                                    # KEDA wants every metadata value as a string.
                                    "properties": {
                                        "bootstrapServers": {"type": "string"},
                                        "consumerGroup": {"type": "string"},
                                        "topic": {"type": "string"},
                                        "lagThreshold": _INT_STRING,
                                        "activationLagThreshold": _INT_STRING,
                                        "offsetResetPolicy": {"enum": ["latest", "earliest"]},
                                        "allowIdleConsumers": {"enum": ["true", "false"]},
                                        "scaleToZeroOnInvalidOffset": {"enum": ["true",
                                                                                "false"]},
                                        "excludePersistentLag": {"enum": ["true", "false"]},
                                        "limitToPartitionsWithLag": {"enum": ["true",
                                                                              "false"]},
                                        "sasl": {"enum": ["plaintext", "scram_sha256",
                                                          "scram_sha512", "none"]},
                                        "tls": {"enum": ["enable", "disable"]},
                                    }}}}}}}}},
    ("keda.sh/v1alpha1", "TriggerAuthentication"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {}, "kind": {}, "metadata": _META,
            "spec": {"type": "object", "additionalProperties": False, "properties": {
                "secretTargetRef": {"type": "array", "items": {
                    "type": "object", "required": ["parameter", "name", "key"],
                    "additionalProperties": False,
                    "properties": {
                        "parameter": {"enum": ["sasl", "username", "password", "tls", "ca",
                                               "cert", "key", "keyPassword"]},
                        "name": {"type": "string"}, "key": {"type": "string"}}}}}}}},
    # https://prometheus-operator.dev/docs/api-reference/api/
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {}, "kind": {}, "metadata": _META,
            "spec": {"type": "object", "required": ["selector", "endpoints"],
                     "additionalProperties": False, "properties": {
                         "jobLabel": {"type": "string"},
                         "namespaceSelector": {"type": "object"},
                         "selector": {"type": "object", "required": ["matchLabels"],
                                      "properties": {"matchLabels": {
                                          "type": "object",
                                          "additionalProperties": {"type": "string"}}}},
                         "endpoints": {"type": "array", "minItems": 1, "items": {
                             "type": "object", "required": ["port"],
                             "additionalProperties": False, "properties": {
                                 "port": {"type": "string"},
                                 "path": {"type": "string", "pattern": "^/"},
                                 "scheme": {"enum": ["http", "https"]},
                                 "interval": {"type": "string", "pattern": r"^\d+[smh]$"},
                                 "scrapeTimeout": {"type": "string",
                                                   "pattern": r"^\d+[smh]$"}}}}}}}},
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {}, "kind": {}, "metadata": _META,
            "spec": {"type": "object", "required": ["groups"], "additionalProperties": False,
                     "properties": {"groups": {"type": "array", "items": {
                         "type": "object", "required": ["name", "rules"],
                         "additionalProperties": False, "properties": {
                             "name": {"type": "string"},
                             "interval": {"type": "string"},
                             "rules": {"type": "array", "minItems": 1, "items": {
                                 "type": "object", "required": ["alert", "expr"],
                                 "additionalProperties": False, "properties": {
                                     "alert": {"type": "string",
                                               "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                     "expr": {"type": "string", "minLength": 1},
                                     "for": {"type": "string", "pattern": r"^\d+[smh]$"},
                                     "labels": {"type": "object", "additionalProperties": {
                                         "type": "string"}},
                                     "annotations": {"type": "object",
                                                     "additionalProperties": {
                                                         "type": "string"}}}}}}}}}}}},
}

_PATHS = {"type": "array", "items": {"type": "string"}}
KUSTOMIZATION_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"enum": ["kustomize.config.k8s.io/v1beta1",
                                "kustomize.config.k8s.io/v1alpha1"]},
        "kind": {"enum": ["Kustomization", "Component"]},
        "resources": _PATHS, "components": _PATHS,
        "configMapGenerator": {"type": "array", "items": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "files": _PATHS, "literals": _PATHS}}},
        "patches": {"type": "array", "items": {
            "type": "object", "required": ["path"], "additionalProperties": False,
            "properties": {"path": {"type": "string"}, "target": {
                "type": "object", "additionalProperties": False,
                "properties": {k: {"type": "string"} for k in
                               ("group", "version", "kind", "name")}}}}},
        "images": {"type": "array", "items": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "newName": {"type": "string"},
                           "newTag": {"type": "string"}}}},
    },
    "allOf": [{"if": {"properties": {"kind": {"const": "Component"}}},
               "then": {"properties": {"apiVersion": {
                   "const": "kustomize.config.k8s.io/v1alpha1"}}},
               "else": {"properties": {"apiVersion": {
                   "const": "kustomize.config.k8s.io/v1beta1"}}}}],
}


def validate(obj: dict[str, Any]) -> None:
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_SCHEMAS:
        jsonschema.validate(obj, CRD_SCHEMAS[key])
        return
    for version in K8S_VERSIONS:
        try:
            kv.validate(obj, version, strict=True)
        except kv.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            raise AssertionError(f"{obj['kind']}/{obj['metadata'].get('name')} invalid for "
                                 f"Kubernetes {version} at {where}: {exc.message}") from None


# ------------------------------------------------------------------------------------------
# The tests
# ------------------------------------------------------------------------------------------

KUSTOMIZATION_DIRS = sorted(p.parent for p in K8S.rglob("kustomization.yaml"))
BUILDS = {
    "base": lambda: build(BASE),
    **{f"overlays/{c}": (lambda c=c: build(K8S / "overlays" / c)) for c in COMPONENTS},
}


def combined(tmp_path: Path) -> list[dict[str, Any]]:
    """A plant overlay using every component at once: they must compose."""
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [str(BASE)],
        "components": [str(K8S / "components" / c) for c in COMPONENTS]}))
    return build(tmp_path)


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return build(BASE)


@pytest.fixture(scope="module")
def config_settings(base: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
                    ) -> Settings:
    """The daemon's effective settings from the ConfigMap's streamer.yaml."""
    cm = one(base, "ConfigMap", "streamer-config")
    path = tmp_path_factory.mktemp("cm") / "streamer.yaml"
    path.write_text(cm["data"]["streamer.yaml"])
    return load_settings(path)


def test_layout_has_base_components_and_overlays() -> None:
    assert (BASE / "kustomization.yaml").is_file()
    for c in COMPONENTS:
        assert (K8S / "components" / c / "kustomization.yaml").is_file()
        assert (K8S / "overlays" / c / "kustomization.yaml").is_file()


@pytest.mark.parametrize("path", KUSTOMIZATION_DIRS, ids=lambda p: str(p.relative_to(K8S)))
def test_kustomization_files_are_valid_and_reference_existing_files(path: Path) -> None:
    k = yaml.safe_load((path / "kustomization.yaml").read_text())
    jsonschema.validate(k, KUSTOMIZATION_SCHEMA)
    refs = [*k.get("resources", []), *k.get("components", []),
            *(p["path"] for p in k.get("patches", [])),
            *(f.rpartition("=")[2] for g in k.get("configMapGenerator", [])
              for f in g.get("files", []))]
    for r in refs:
        assert (path / r).exists(), f"{path}: {r} does not exist"
        assert not r.endswith(".example.yaml"), f"{path}: examples must not be applied"


def test_every_manifest_is_used_or_an_explicit_example() -> None:
    used: set[Path] = set()
    for path in KUSTOMIZATION_DIRS:
        used.add(path / "kustomization.yaml")
        k = yaml.safe_load((path / "kustomization.yaml").read_text())
        for r in [*k.get("resources", []), *(p["path"] for p in k.get("patches", [])),
                  *(f.rpartition("=")[2] for g in k.get("configMapGenerator", [])
                    for f in g.get("files", []))]:
            used.add((path / r).resolve())
    for f in K8S.rglob("*.y*ml"):
        f = f.resolve()
        if f.name.endswith(".example.yaml") or f in OPT_IN:
            continue
        assert f in used, f"{f.relative_to(K8S)} is in no kustomization (orphan?)"


@pytest.mark.parametrize("name", [*BUILDS, "all-components"])
def test_rendered_objects_validate(name: str, tmp_path: Path) -> None:
    objs = combined(tmp_path) if name == "all-components" else BUILDS[name]()
    assert objs
    for obj in objs:
        validate(obj)


@pytest.mark.parametrize("path", [*sorted(K8S.rglob("*.example.yaml")), *sorted(OPT_IN)],
                         ids=lambda p: str(p.relative_to(K8S)))
def test_examples_and_opt_in_files_validate(path: Path) -> None:
    docs = load_docs(path)
    assert docs
    for d in docs:
        validate(d)


def test_validation_is_strict() -> None:
    """The checks above would catch a typo'd field (guards against a no-op validator)."""
    sts = copy.deepcopy(load_docs(BASE / "statefulset.yaml")[0])
    sts["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(AssertionError, match="paht"):
        validate(sts)
    so = copy.deepcopy(load_docs(K8S / "components/keda/scaledobject.yaml")[0])
    so["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 5000  # must be a string
    with pytest.raises(jsonschema.ValidationError):
        validate(so)


def test_ports_and_probes_match_the_daemon(base: list[dict[str, Any]],
                                          config_settings: Settings) -> None:
    port = Settings().http.port
    assert config_settings.http.port == port
    c = container(base)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": port}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    # The startup probe covers model load and start-up: 10 minutes.
    sp = c["startupProbe"]
    assert sp["periodSeconds"] * sp["failureThreshold"] >= 600
    svc = one(base, "Service")
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": port, "targetPort": "metrics",
                                     "protocol": "TCP"}]
    ann = svc["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == str(port)
    assert ann["prometheus.io/path"] == "/metrics"


def test_grace_period_outlasts_the_drain(base: list[dict[str, Any]],
                                         config_settings: Settings) -> None:
    grace = pod_spec(one(base, "StatefulSet"))["terminationGracePeriodSeconds"]
    for drain in (Settings().shutdown.drain_timeout_s, config_settings.shutdown.drain_timeout_s):
        assert grace >= drain + 20, "leave time after the drain for publish, commit and exit"


def test_command_and_config_mount(base: list[dict[str, Any]]) -> None:
    from streamer.cli import cli

    c = container(base)
    assert "command" not in c, "the image's ENTRYPOINT is `streamer`"
    args = c["args"]
    assert args[0] in cli.lazy_subcommands
    assert args[0] == "run"
    cfg = Path(args[args.index("--config") + 1])
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["config"]["mountPath"] == str(cfg.parent)
    vol = next(v for v in pod_spec(one(base, "StatefulSet"))["volumes"] if v["name"] == "config")
    cm = one(base, "ConfigMap", vol["configMap"]["name"])
    assert cfg.name in cm["data"]


def test_config_map_is_a_valid_config_without_secrets(config_settings: Settings) -> None:
    k = config_settings.kafka
    assert k.sasl_password is None and k.ssl_key_password is None
    assert k.group_instance_id is None, "set per pod from metadata.name, not in the ConfigMap"
    defaults = Settings().kafka
    assert (k.readings_topic, k.alerts_topic, k.dead_letter_topic) == (
        defaults.readings_topic, defaults.alerts_topic, defaults.dead_letter_topic)


def test_static_membership_from_the_pod_name(base: list[dict[str, Any]]) -> None:
    env = env_of(container(base))
    ref = env["STREAMER_KAFKA__GROUP_INSTANCE_ID"]["valueFrom"]["fieldRef"]
    assert ref["fieldPath"] == "metadata.name"
    sts = one(base, "StatefulSet")
    assert sts["spec"]["replicas"] <= README_PARTITIONS
    threads = env["STREAMER_MODEL__TORCH_THREADS"]["valueFrom"]["resourceFieldRef"]
    assert threads["resource"] == "limits.cpu"
    assert "cpu" in container(base)["resources"]["limits"], "torch threads follow the limit"


def test_pod_and_container_security(base: list[dict[str, Any]]) -> None:
    spec = pod_spec(one(base, "StatefulSet"))
    c = container(base)
    psc, csc = spec["securityContext"], c["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert csc["runAsNonRoot"] is True and csc["runAsUser"] == 10001
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False  # no injected STREAMER_SERVICE_HOST & co.
    tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
    vol = next(v for v in spec["volumes"] if v["name"] == tmp["name"])
    assert "emptyDir" in vol
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


def test_selectors_and_names_agree(base: list[dict[str, Any]]) -> None:
    sts = one(base, "StatefulSet")
    labels = sts["spec"]["template"]["metadata"]["labels"]
    selector = sts["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    svc = one(base, "Service")
    assert svc["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert svc["spec"]["selector"].items() <= labels.items()
    pdb = one(base, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pod_spec(sts)["serviceAccountName"] == one(base, "ServiceAccount")["metadata"]["name"]


def test_secret_references_match_the_example(base: list[dict[str, Any]]) -> None:
    example = BASE / "secret.example.yaml"
    secrets = {d["metadata"]["name"]: d for d in load_docs(example)}
    text = example.read_text()
    c = container(base)
    for e in c["env"]:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] in secrets
            assert ref["optional"] is True, "PLAINTEXT clusters need no Secret"
            assert ref["key"] in text, f"{ref['key']} not shown in {example.name}"
    for v in pod_spec(one(base, "StatefulSet"))["volumes"]:
        if "secret" in v:
            assert v["secret"]["secretName"] in secrets
    assert not any(o["kind"] == "Secret" for o in base), "Secrets are created out of band"


def test_images_follow_the_package_version(base: list[dict[str, Any]]) -> None:
    version = importlib.metadata.version("streamer")
    assert container(base)["image"] == f"streamer:{version}-cpu"
    gpu = BUILDS["overlays/gpu"]()
    assert container(gpu)["image"] == f"streamer:{version}-cuda"


def test_gpu_overlay() -> None:
    objs = BUILDS["overlays/gpu"]()
    c = container(objs)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert env_of(c)["STREAMER_MODEL__DEVICE"]["value"] == "cuda"
    # the base env survives the merge
    assert "STREAMER_KAFKA__GROUP_INSTANCE_ID" in env_of(c)
    spec = pod_spec(one(objs, "StatefulSet"))
    assert spec["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])


def test_keda_overlay(config_settings: Settings) -> None:
    objs = BUILDS["overlays/keda"]()
    sts = one(objs, "StatefulSet")
    assert "replicas" not in sts["spec"], "the HPA owns the replica count"
    so = one(objs, "ScaledObject")
    ref = so["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "StatefulSet",
                                                             "streamer")
    assert so["spec"]["maxReplicaCount"] == README_PARTITIONS
    assert so["spec"]["minReplicaCount"] >= 1, "never scale the monitor to zero"
    (trigger,) = so["spec"]["triggers"]
    md = trigger["metadata"]
    k = config_settings.kafka
    assert md["consumerGroup"] == k.group_id
    assert md["topic"] == k.readings_topic
    assert md["bootstrapServers"] == k.bootstrap_servers
    assert md["offsetResetPolicy"] == getattr(k, "auto_offset_reset", md["offsetResetPolicy"])
    assert md["allowIdleConsumers"] == "false"
    assert int(md["lagThreshold"]) > 0
    text = (K8S / "components/keda/scaledobject.yaml").read_text()
    assert re.search(r"MUST equal the partition count", text)


def test_keda_trigger_authentication_uses_the_daemon_secrets() -> None:
    (ta,) = load_docs(K8S / "components/keda/triggerauthentication.yaml")
    secrets = {d["metadata"]["name"]: d for d in load_docs(BASE / "secret.example.yaml")}
    for ref in ta["spec"]["secretTargetRef"]:
        assert ref["name"] in secrets
        assert ref["key"] in secrets[ref["name"]]["stringData"]


def test_prometheus_operator_overlay() -> None:
    objs = BUILDS["overlays/prometheus-operator"]()
    sm = one(objs, "ServiceMonitor")
    svc = one(objs, "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    port_names = {p["name"] for p in svc["spec"]["ports"]}
    for ep in sm["spec"]["endpoints"]:
        assert ep["port"] in port_names
        assert ep["path"] == "/metrics"
    rule = one(objs, "PrometheusRule")
    rules_file = yaml.safe_load((ROOT / "deploy/prometheus/streamer.rules.yml").read_text())
    assert rule["spec"] == rules_file, "PrometheusRule and streamer.rules.yml have drifted"


def test_renderer_merges_like_kustomize() -> None:
    """The renderer's own semantics on a known case (containers/env by name, 6902 remove)."""
    base = {"spec": {"replicas": 3, "template": {"spec": {"containers": [
        {"name": "a", "env": [{"name": "X", "value": "1"}], "image": "i:1"},
        {"name": "b", "image": "j:1"}]}}}}
    patched = smp(base, {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "env": [{"name": "Y", "value": "2"}]}],
        "tolerations": [{"key": "t"}]}}}})
    a, b = patched["spec"]["template"]["spec"]["containers"]
    assert a["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
    assert a["image"] == "i:1" and b == {"name": "b", "image": "j:1"}
    assert "replicas" not in json6902(patched, [{"op": "remove", "path": "/spec/replicas"}])[
        "spec"]
