"""The cluster-launcher YAMLs pass Ray's own validation; the KubeRay manifests pass the CRDs' schemas.

Ray's check is the one `ray up` runs (prepare_config fills defaults per provider, validate_config
applies ray-schema.json), so a typo or a wrong type fails here rather than on a real cluster.

KubeRay: the OpenAPI v3 schemas inside the operator's CustomResourceDefinitions
(../shared/schemas/kuberay/, see SOURCE.md there), applied with `jsonschema`. An object schema with
`properties` gets additionalProperties: false, because the API server prunes (or, with
`kubectl apply --validate=strict`, rejects) unknown fields: a misspelt field would otherwise vanish
silently. The CRDs' CEL rules (x-kubernetes-validations) need a Kubernetes API server and are not
checked here.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath

import jsonschema
import pytest
import yaml
from conftest import SHARED, shared_path

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER_YAMLS = ["cluster/head_plus_two.yaml", "cluster/aws_head_plus_two.yaml", "cluster/gcp_head_plus_two.yaml"]
CLOUD_YAMLS = ["cluster/aws_head_plus_two.yaml", "cluster/gcp_head_plus_two.yaml"]
FAKE_YAML = "cluster/fake_multinode.yaml"


def test_every_cluster_yaml_is_checked():
    """A new layout cannot slip past Ray's validation below."""
    assert {str(p.relative_to(ROOT)) for p in (ROOT / "cluster").glob("*.yaml")} == {*LAUNCHER_YAMLS, FAKE_YAML}


def _prepared(name: str) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load((ROOT / name).read_text()))
    validate_config(config)
    return config


@pytest.mark.parametrize("name", LAUNCHER_YAMLS)
def test_launcher_yaml_passes_ray_validation(name):
    config = _prepared(name)
    # Two worker nodes, always there.
    worker_types = [t for n, t in config["available_node_types"].items() if n != config["head_node_type"]] or [
        config["available_node_types"][config["head_node_type"]]
    ]
    assert sum(t["min_workers"] for t in worker_types) == 2
    assert config["max_workers"] == 2
    # The project is synced and installed on every node.
    assert "." in config["file_mounts"].values()
    assert any("pip install" in c and "-e" in c for c in config["setup_commands"])
    # Token authentication is on for every `ray start`, and the token is shipped to every node.
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in config[key] if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token" in c for c in starts), key
    assert "~/.ray/auth_token" in config["file_mounts"]


def _start_flags(command: str) -> dict:
    words = shlex.split(command.split(";")[-1])
    return {w.split("=")[0]: (w.split("=", 1)[1] if "=" in w else True) for w in words if w.startswith("--")}


def test_local_yaml_declares_gpu_head_and_cpu_workers():
    config = _prepared("cluster/head_plus_two.yaml")
    assert config["provider"]["type"] == "local"
    assert len(config["provider"]["worker_ips"]) == 2 and config["provider"]["head_ip"]
    assert config["auth"]["ssh_user"] and config["auth"]["ssh_private_key"]
    head = _start_flags([c for c in config["head_start_ray_commands"] if "ray start" in c][0])
    worker = _start_flags([c for c in config["worker_start_ray_commands"] if "ray start" in c][0])
    assert "--head" in head and float(head["--num-gpus"]) >= 1
    assert float(worker["--num-gpus"]) == 0
    assert head["--dashboard-host"] == "127.0.0.1"


@pytest.mark.parametrize("name", CLOUD_YAMLS)
def test_cloud_yaml_has_the_same_layout(name):
    _same_layout(_prepared(name))


TOKEN_AUTH_RAY = "2.52"  # Ray turns token authentication on from this release; the deploy files keep it on


def _image_ray() -> str:
    """The Ray release the container image pins (deploy/Dockerfile's FROM); every deploy file pins the same."""
    line = next(line for line in (ROOT / "deploy/Dockerfile").read_text().splitlines() if line.startswith("FROM "))
    return line.split(":")[1].split("-")[0]


def test_deploy_files_pin_a_ray_the_project_accepts():
    """The image's Ray lies in the range pyproject.toml declares (not the Ray installed here: a fresh
    install may resolve another release of that range) and has token authentication."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    dependencies = [Requirement(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    declared = next(d.specifier for d in dependencies if d.name == "ray")
    assert Version(_image_ray()) in declared and Version(_image_ray()) >= Version(TOKEN_AUTH_RAY), (_image_ray(), declared)


def _python_of(image: str) -> str:
    """'3.11' for rayproject/ray:2.60.0-py311-gpu."""
    digits = re.fullmatch(r"py3(\d+)", next(part for part in image.split(":")[1].split("-") if part.startswith("py")))
    return f"3.{digits.group(1)}"


@pytest.mark.parametrize("name", CLOUD_YAMLS)
def test_cloud_yaml_runs_pinned_images_with_the_projects_python(name):
    """Ray's GPU image on the head, its CPU image on the workers, both pinned to the container image's Ray
    and a Python the project accepts; the project is installed with the GPU extra on the head only."""
    from packaging.specifiers import SpecifierSet

    config = _prepared(name)
    docker = config["docker"]
    head, worker = docker["head_image"], docker["worker_image"]
    requires_python = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    for image, kind in ((head, "gpu"), (worker, "cpu")):
        repository, tag = image.split(":")
        assert repository == "rayproject/ray" and tag.startswith(_image_ray() + "-") and tag.endswith("-" + kind), image
        assert _python_of(image) in requires_python, image
    assert not any("docker" in t for t in config["available_node_types"].values())  # no per-type image override
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("tensorflow[and-cuda]") for r in extras["gpu"])
    assert any("pip install" in c and "[gpu]" in c for c in config["head_setup_commands"])
    assert not any("[gpu]" in c for c in config["worker_setup_commands"] + config["setup_commands"])
    # An explicit machine image on every node type: Ray's default AWS image is Ubuntu 18.04.
    for node_type in config["available_node_types"].values():
        node = node_type["node_config"]
        if config["provider"]["type"] == "aws":
            assert node["ImageId"].startswith("resolve:ssm:/aws/service/deeplearning/ami/x86_64/"), node
        else:
            (disk,) = node["disks"]
            assert disk["initializeParams"]["sourceImage"].startswith("projects/deeplearning-platform-release/"), node


def _dashboard_metrics():
    """deploy/dashboard_metrics.py (a script the head runs, not a package module)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("dashboard_metrics", ROOT / "deploy" / "dashboard_metrics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assignments(command: str) -> dict:
    """VAR=value words of a shell command line."""
    return dict(w.split("=", 1) for w in shlex.split(command.replace(";", " ")) if re.fullmatch(r"[A-Z_]+=\S*", w))


@pytest.mark.parametrize("name", LAUNCHER_YAMLS)
def test_head_starts_prometheus_and_grafana_for_the_session(name):
    """The dashboard learns where Prometheus and Grafana answer when the head starts (the browser loads
    Grafana through the forwarded port 3000); then deploy/dashboard_metrics.py starts both with the
    session's configs, installed once by the head's setup."""
    metrics = _dashboard_metrics()
    config = _prepared(name)
    starts = config["head_start_ray_commands"]
    (position,) = [i for i, c in enumerate(starts) if "ray start --head" in c]
    wanted = {
        "RAY_AUTH_MODE": "token",
        "RAY_PROMETHEUS_HOST": metrics.PROMETHEUS_URL,
        "RAY_GRAFANA_HOST": metrics.GRAFANA_URL,
        "RAY_GRAFANA_IFRAME_HOST": metrics.GRAFANA_URL,
    }
    assigned = _assignments(starts[position])
    assert {key: assigned.get(key) for key in wanted} == wanted
    assert any("deploy/dashboard_metrics.py start" in c for c in starts[position + 1 :])
    assert any("deploy/dashboard_metrics.py install" in c for c in config["head_setup_commands"])
    workers = config["worker_start_ray_commands"] + config["worker_setup_commands"]
    assert not any("dashboard_metrics" in c or "RAY_PROMETHEUS_HOST" in c for c in workers)


def _same_layout(config: dict) -> None:
    """head_plus_two's layout: a GPU head (trainer) and one CPU-only worker type, exactly two nodes."""
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    workers = [t for n, t in types.items() if n != config["head_node_type"]]
    assert head["resources"]["GPU"] >= 1
    assert len(workers) == 1 and workers[0]["resources"].get("GPU", 0) == 0
    assert workers[0]["min_workers"] == workers[0]["max_workers"] == config["max_workers"] == 2


def test_fake_multinode_yaml_has_the_same_layout():
    """Ray's schema check only: prepare_config would read the provider's example.yaml, which Ray's
    wheel does not ship (the autoscaler itself reads the file as is)."""
    from ray.autoscaler._private.fake_multi_node.node_provider import FAKE_HEAD_NODE_TYPE
    from ray.autoscaler._private.util import validate_config

    config = yaml.safe_load((ROOT / FAKE_YAML).read_text())
    validate_config(config)
    assert config["provider"]["type"] == "fake_multinode"
    assert config["head_node_type"] == FAKE_HEAD_NODE_TYPE  # the provider knows its head by this name
    _same_layout(config)


def _layout_cpus(name: str) -> float:
    """CPUs of a launcher YAML's cluster once its workers are up (head + min_workers of each type)."""
    config = yaml.safe_load((ROOT / name).read_text())
    return sum(
        t["resources"]["CPU"] * (1 if n == config["head_node_type"] else t["min_workers"])
        for n, t in config["available_node_types"].items()
    )


def test_auto_pool_size_follows_the_layout():
    """n_generators: auto = floor((cluster CPUs - trainer_cpus) / cpus_per_generator), at least 1."""
    from services.options import generator_count
    from xrdgen.config import load_config

    cluster = load_config(ROOT / "configs/cluster.yaml").cluster
    assert cluster.n_generators == "auto"
    for name in ("cluster/aws_head_plus_two.yaml", "cluster/gcp_head_plus_two.yaml"):  # the head offers the trainer's CPUs only
        layout = yaml.safe_load((ROOT / name).read_text())
        assert layout["available_node_types"][layout["head_node_type"]]["resources"]["CPU"] == cluster.trainer_cpus
        assert _layout_cpus(name) == 36
    head_start = " ".join(yaml.safe_load((ROOT / "cluster/head_plus_two.yaml").read_text())["head_start_ray_commands"])
    assert f"--num-cpus={cluster.trainer_cpus:g}" in head_start
    assert generator_count(cluster, 36) == 32  # 4 + 2 x 16 - 4 trainer CPUs, one CPU per generator
    assert generator_count(cluster, 24) == 20  # a worker lost: the pool stops replacing down to 20
    assert generator_count(cluster, 4) == 1  # never empty
    halves = cluster.model_copy(update={"cpus_per_generator": 0.5, "trainer_cpus": 1})
    assert generator_count(halves, _layout_cpus("cluster/fake_multinode.yaml")) == 4
    fixed = cluster.model_copy(update={"n_generators": 5})
    assert generator_count(fixed, 40) == 5


def test_a_broken_launcher_yaml_is_rejected():
    """The validation is real: a wrong type or an unknown top-level key fails."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "cluster/aws_head_plus_two.yaml").read_text())
    config["max_workers"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(config))
    config = yaml.safe_load((ROOT / "cluster/aws_head_plus_two.yaml").read_text())
    config["worker_start_commands"] = []
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(config))


# --- KubeRay ------------------------------------------------------------------------------------
SCHEMAS = SHARED / "schemas" / "kuberay"
CRDS = {"RayCluster": "ray.io_rayclusters.yaml.gz", "RayJob": "ray.io_rayjobs.yaml.gz"}
KUBERAY_MANIFESTS = ["deploy/raycluster.yaml", "deploy/rayjob.yaml"]
RUNS_CLAIM = "deploy/runs_pvc.yaml"
IMAGE_HOME, IMAGE_GID = "/home/ray", 100  # the user `ray` of Ray's images (deploy/Dockerfile builds on one), group `users`


def _strict(node):
    """The schema with unknown fields forbidden (pruned by the API server) and OpenAPI's nullable."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _strict(value) for key, value in node.items()}
    if (
        node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        node["additionalProperties"] = False
    if node.get("nullable") and "type" in node:
        node["type"] = [node["type"], "null"]
    return node


@functools.cache
def _crd_schema(kind: str, version: str) -> dict:
    path = shared_path(SCHEMAS / CRDS[kind], "../shared/schemas/kuberay beside the checkout")
    crd = yaml.safe_load(gzip.decompress(path.read_bytes()))
    assert crd["spec"]["names"]["kind"] == kind
    return _strict(next(v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["name"] == version))


@functools.cache
def _validator(kind: str, version: str):
    return jsonschema.Draft4Validator(_crd_schema(kind, version))  # OpenAPI 3.0 schemas are draft-4 style


def _schema_errors(manifest: dict) -> list[str]:
    group, version = manifest["apiVersion"].split("/")
    assert group == "ray.io", manifest["apiVersion"]
    errors = _validator(manifest["kind"], version).iter_errors(manifest)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def _manifest(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def _cluster_spec(manifest: dict) -> dict:
    return manifest["spec"] if manifest["kind"] == "RayCluster" else manifest["spec"]["rayClusterSpec"]


@pytest.mark.parametrize("name", KUBERAY_MANIFESTS)
def test_kuberay_manifest_passes_the_crd_schema(name):
    manifest = _manifest(name)
    assert _schema_errors(manifest) == []
    assert manifest["metadata"]["name"]  # the API server requires it; the CRD schema leaves metadata open
    spec = _cluster_spec(manifest)
    # The layout of cluster/head_plus_two.yaml: a GPU head (trainer) and two CPU-only workers.
    assert "nvidia.com/gpu" in spec["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    (workers,) = spec["workerGroupSpecs"]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 2
    assert "nvidia.com/gpu" not in workers["template"]["spec"]["containers"][0]["resources"]["limits"]
    # Token authentication on, with the image's Ray (token auth needs >= 2.52: see the test of the pin).
    assert spec["authOptions"]["mode"] == "token"
    assert spec["rayVersion"] == _image_ray()


@pytest.mark.parametrize("name", KUBERAY_MANIFESTS)
def test_the_crd_schema_rejects_typos_and_wrong_types(name):
    """The check is real: a misspelt field, a string count and an unknown container key all fail."""
    manifest = _manifest(name)
    spec = _cluster_spec(manifest)
    spec["headGroupSpec"]["rayStartParam"] = {"num-gpus": "1"}
    spec["workerGroupSpecs"][0]["replicas"] = "two"
    spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    errors = _schema_errors(manifest)
    assert any("rayStartParam" in e and "unexpected" in e for e in errors), errors
    assert any(e.startswith(_path(manifest, "workerGroupSpecs.0.replicas")) for e in errors), errors
    assert any("imagePullPolicy" in e for e in errors), errors
    assert len(errors) == 3, errors


def _path(manifest: dict, inner: str) -> str:
    return ("spec." if manifest["kind"] == "RayCluster" else "spec.rayClusterSpec.") + inner


def _claim_errors(claim: dict) -> list[str]:
    """A PersistentVolumeClaim is no KubeRay resource, but the CRDs embed its schema: a pod's ephemeral
    volume is a claim template, {metadata, spec} of a PersistentVolumeClaim."""
    pod = _crd_schema("RayCluster", "v1")["properties"]["spec"]["properties"]["headGroupSpec"]["properties"]["template"]
    volume = pod["properties"]["spec"]["properties"]["volumes"]["items"]["properties"]
    template = volume["ephemeral"]["properties"]["volumeClaimTemplate"]
    body = {key: value for key, value in claim.items() if key not in ("apiVersion", "kind")}
    errors = jsonschema.Draft4Validator(template).iter_errors(body)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_runs_claim_passes_the_claim_schema():
    claim = _manifest(RUNS_CLAIM)
    assert (claim["apiVersion"], claim["kind"]) == ("v1", "PersistentVolumeClaim")
    assert _claim_errors(claim) == [] and claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]  # one head writes at a time
    claim["spec"]["resources"]["requests"]["storage"] = "fifty gigabytes"
    claim["spec"]["accesModes"] = ["ReadWriteOnce"]
    errors = _claim_errors(claim)
    assert len(errors) == 2 and any("accesModes" in e for e in errors), errors  # the check is real


@pytest.mark.parametrize("name", KUBERAY_MANIFESTS)
def test_the_run_directory_is_on_the_claim(name):
    """The job's training.output_dir lies on the claim in the head, which outlives the cluster: a RayJob
    retry (a new RayCluster) resumes from its checkpoints, and the model stays after the teardown."""
    pod = _cluster_spec(_manifest(name))["headGroupSpec"]["template"]["spec"]
    (head,) = [c for c in pod["containers"] if c["name"] == "ray-head"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    output_dir = yaml.safe_load((ROOT / "configs/cluster.yaml").read_text())["training"]["output_dir"]
    output_dir = PurePosixPath(output_dir.replace("~", IMAGE_HOME, 1))
    (mount,) = [m for m in head["volumeMounts"] if output_dir.is_relative_to(m["mountPath"])]
    claim = _manifest(RUNS_CLAIM)["metadata"]["name"]
    assert volumes[mount["name"]] == {"name": mount["name"], "persistentVolumeClaim": {"claimName": claim}}
    assert pod["securityContext"]["fsGroup"] == IMAGE_GID  # the claim is writable by the image's user


@pytest.mark.parametrize("name", KUBERAY_MANIFESTS)
def test_kuberay_head_runs_prometheus_and_grafana_for_the_session(name):
    """Sidecars of the head, pinned to the script's versions, read the configs Ray's dashboard writes
    into the shared /tmp/ray; the head's variables point the dashboard at them; an init container puts
    the xrdgen dashboard (copied into the image) into the folder Ray's Grafana provisioning reads."""
    metrics = _dashboard_metrics()
    pod = _cluster_spec(_manifest(name))["headGroupSpec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert pod["containers"][0]["name"] == "ray-head"  # KubeRay runs Ray in the first container
    env = {e["name"]: e["value"] for e in containers["ray-head"]["env"]}
    assert env["RAY_PROMETHEUS_HOST"] == metrics.PROMETHEUS_URL
    assert env["RAY_GRAFANA_HOST"] == env["RAY_GRAFANA_IFRAME_HOST"] == metrics.GRAFANA_URL
    assert containers["prometheus"]["image"] == f"prom/prometheus:v{metrics.PROMETHEUS_VERSION}"
    assert containers["grafana"]["image"] == f"grafana/grafana:{metrics.GRAFANA_VERSION}"
    (shared,) = [v["name"] for v in pod["volumes"] if "emptyDir" in v]
    for container in [*containers.values(), *pod["initContainers"]]:
        assert {"name": shared, "mountPath": "/tmp/ray"} in [
            {k: m[k] for k in ("name", "mountPath")} for m in container["volumeMounts"]
        ]
    prometheus = " ".join(containers["prometheus"]["args"])
    assert f"--web.listen-address=127.0.0.1:{metrics.PROMETHEUS_PORT}" in prometheus
    assert "--config.file=/tmp/ray/session_latest/metrics/prometheus/prometheus.yml" in prometheus
    grafana = {e["name"]: e["value"] for e in containers["grafana"]["env"]}
    assert grafana["GF_PATHS_CONFIG"] == "/tmp/ray/session_latest/metrics/grafana/grafana.ini"
    (init,) = pod["initContainers"]
    copy = init["command"][-1]
    dashboard = "/home/ray/xrdgen/deploy/grafana_xrdgen_dashboard.json"
    assert f"cp {dashboard} {env['RAY_METRICS_GRAFANA_DASHBOARD_OUTPUT_DIR']}" in copy
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    assert "WORKDIR /home/ray/xrdgen" in dockerfile and re.search(
        r"COPY .*deploy/grafana_xrdgen_dashboard.json.* deploy/", dockerfile
    )


def test_rayjob_runs_the_training_entrypoint():
    spec = _manifest("deploy/rayjob.yaml")["spec"]
    words = shlex.split(spec["entrypoint"])
    assert words[:3] == ["python", "-m", "services.train"]
    config_path = words[words.index("--config") + 1]
    from xrdgen.config import load_config

    load_config(ROOT / config_path)  # the config the job runs is valid
    assert isinstance(yaml.safe_load(spec["runtimeEnvYAML"]), dict)


def test_grafana_dashboard_plots_every_xrdgen_series():
    """Each series of services/metrics.py has a panel, and nothing queries a series we do not export."""
    from services.metrics import SERIES, prometheus_name

    text = (ROOT / "deploy/grafana_xrdgen_dashboard.json").read_text()
    dashboard = json.loads(text)
    exported = {prometheus_name(name) for name in SERIES}
    panels = dashboard["panels"]
    plotted = {m for p in panels for t in p["targets"] for m in re.findall(r"\bray_xrdgen_\w+", t["expr"])}
    assert plotted == exported
    assert set(re.findall(r"\bray_xrdgen_\w+", text)) <= exported
    assert len({p["id"] for p in panels}) == len(panels)
    assert all(p["datasource"] == "${datasource}" for p in panels)  # Ray's own dashboards' convention


def test_dockerfile_installs_the_project():
    text = (ROOT / "deploy/Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0].startswith("FROM rayproject/ray:")
    copied = {line.split()[-2].rstrip("/") for line in lines if line.startswith("COPY")}
    for package in ("xrdgen", "models", "services", "configs"):
        assert package in copied and (ROOT / package).is_dir()
    assert any("pip install" in line and '-e ".[gpu]"' in line for line in lines)  # TensorFlow's CUDA libraries
